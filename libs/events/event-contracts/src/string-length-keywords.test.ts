import { Ajv2020 } from 'ajv/dist/2020.js';
import { describe, expect, it } from 'vitest';
import { EventFactory } from './create-event.js';
import { EventContractError } from './errors.js';
import { codePointLength, hasAtLeastCodePoints, hasAtMostCodePoints, stringLengthKeywords } from './string-length-keywords.js';

// ajv's own keywords (counting every code point) are the reference: the replacements must pass
// and fail exactly the same strings, errors included.
const reference = new Ajv2020({ allErrors: true, strict: true });
const replaced = new Ajv2020({ allErrors: true, strict: true });
for (const definition of stringLengthKeywords) {
  replaced.removeKeyword(definition.keyword as string);
  replaced.addKeyword(definition);
}

const astral = '\u{1F600}'; // two UTF-16 units, one code point
const samples: string[] = [];
for (let n = 0; n <= 12; n++) {
  samples.push('a'.repeat(n), astral.repeat(n), 'a'.repeat(n) + astral.repeat(Math.floor(n / 2)), astral.repeat(n) + '\uD800', '\uDC00'.repeat(n), '\uD800'.repeat(n), 'é'.repeat(n));
}

describe('maxLength / minLength without a per-character count', () => {
  it('counts code points as ajv does (astral characters one, lone surrogates one)', () => {
    expect(codePointLength('')).toBe(0);
    expect(codePointLength(astral.repeat(3))).toBe(3);
    expect(codePointLength('\uD800a\uDC00')).toBe(3);
    expect(codePointLength(`x${astral}\uD800`)).toBe(3);
    expect(hasAtMostCodePoints(astral.repeat(4), 4)).toBe(true);
    expect(hasAtMostCodePoints(astral.repeat(5), 4)).toBe(false);
    expect(hasAtLeastCodePoints(astral.repeat(4), 5)).toBe(false);
    expect(hasAtLeastCodePoints('a'.repeat(10), 5)).toBe(true);
  });

  for (const keyword of ['maxLength', 'minLength'] as const) {
    it(`${keyword}: the same strings pass and fail as with ajv's keyword, with the same errors`, () => {
      for (let limit = 0; limit <= 8; limit++) {
        const schema = { type: 'string', [keyword]: limit };
        const mine = replaced.compile(schema);
        const theirs = reference.compile(schema);
        for (const text of samples) {
          expect(mine(text), `${keyword} ${limit} ${JSON.stringify(text)}`).toBe(theirs(text));
          expect(mine.errors ?? null).toEqual(theirs.errors ?? null);
        }
        // The replacement is what runs: ajv's per-character count is not in the compiled code.
        expect(theirs.toString()).toMatch(/func\d+\(data\) [<>] \d+/);
        expect(mine.toString()).toMatch(/!func\d+\(data, \d+\)/);
      }
    });
  }

  it('a frame above the contract limit is still refused, and one at the limit accepted', () => {
    const factory = new EventFactory({ service: 'gateway', instance: 'gw-1' });
    const sessionId = '0190c8e2-1111-7aaa-8bbb-0123456789ab';
    const frame = (data: string) =>
      factory.create({
        type: 'frame.recorded',
        stream: `session-${sessionId}`,
        sequence: 0,
        identity: null,
        payload: { sessionId, direction: 'upstream-to-client', offsetMicros: 0, data, byteLength: 0 },
      });
    expect(frame('A'.repeat(1_398_104)).payload.data).toHaveLength(1_398_104);
    let error: unknown;
    try {
      frame('A'.repeat(1_398_105));
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(EventContractError);
    expect((error as EventContractError).issues).toContainEqual({ path: '/payload/data', message: 'must NOT have more than 1398104 characters' });
  });
});
