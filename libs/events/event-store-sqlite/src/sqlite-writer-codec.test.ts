import { describe, expect, it } from 'vitest';
import { decodeAppends, decodeOutcomes, encodeAppends, encodeOutcomes, type AppendToEncode, type WriterOutcome } from './sqlite-writer.worker.js';

const event = (id: string, sequence: number, json: string) => ({ id, sequence, type: 'frame.recorded', schemaVersion: 1, occurredAt: '2026-12-07T17:00:00.000001Z', json });

describe('the writer messages, flat', () => {
  it('decodes every append as encoded: strings of any characters, every kind of expected revision', () => {
    const appends: AppendToEncode[] = [
      { id: 1, stream: 'session-a', expected: 'any', events: [event('e1', 0, '{"a":"plain"}')], jsons: ['{"a":"plain"}'] },
      { id: 2, stream: 'session-ü', expected: 'no-stream', events: [event('e2', 0, ''), event('e3', 1, '')], jsons: ['{"t":"naïve \u{1F600} \uD800"}', '{}'] },
      { id: 3, stream: 'session-b', expected: 'stream-exists', events: [event('e4', 7, '')], jsons: ['x'.repeat(100_000)] },
      { id: 9_007_199_254_740_991, stream: 's', expected: 0, events: [event('', 1, '')], jsons: [''] },
      { id: 5, stream: 'session-c', expected: 41, events: [event('e5', 42, '')], jsons: ['{"n":42}'] },
    ];
    const flat = encodeAppends('2026-12-07T17:00:00.123456Z', appends);
    const decoded = decodeAppends(structuredClone(flat));
    expect(decoded).toEqual(
      appends.map((a) => ({
        id: a.id,
        stream: a.stream,
        expected: a.expected,
        recordedAt: '2026-12-07T17:00:00.123456Z',
        events: a.events.map((e, i) => ({ id: e.id, sequence: e.sequence, type: e.type, schemaVersion: e.schemaVersion, occurredAt: e.occurredAt, json: a.jsons[i] })),
      })),
    );
  });

  it('refuses a message whose parts do not add up', () => {
    const flat = encodeAppends('t', [{ id: 1, stream: 's', expected: 'any', events: [event('e', 0, '')], jsons: ['{}'] }]);
    expect(() => decodeAppends({ strings: [...flat.strings, 'x'], numbers: flat.numbers })).toThrow(/malformed append message/);
    expect(() => decodeAppends({ strings: flat.strings.slice(0, -1), numbers: flat.numbers })).toThrow(/malformed append message/);
  });

  it('decodes outcomes, refusals included; positions beyond 2^53 are not made numbers', () => {
    const outcomes: WriterOutcome[] = [
      { id: 1, ok: true, result: { firstRevision: 0, nextExpectedRevision: 3, firstPosition: 10n, position: 13n, deduplicated: false } },
      { id: 2, ok: false, refusal: { kind: 'sequence-mismatch', stream: 's', eventId: 'e', expectedSequence: 4, actualSequence: 6 } },
      { id: 3, ok: true, result: { firstRevision: 5, nextExpectedRevision: 5, firstPosition: 0n, position: 9_007_199_254_740_991n, deduplicated: true } },
    ];
    const flat = encodeOutcomes(outcomes)!;
    const decoded = decodeOutcomes(structuredClone(flat));
    expect(decoded).toEqual(outcomes);
    expect(decodeOutcomes(structuredClone(encodeOutcomes([outcomes[1]!, outcomes[0]!, outcomes[1]!])!))).toEqual([outcomes[1], outcomes[0], outcomes[1]]);
    expect(encodeOutcomes([{ id: 1, ok: true, result: { firstRevision: 0, nextExpectedRevision: 0, firstPosition: 2n ** 53n, position: 2n ** 53n, deduplicated: false } }])).toBeUndefined();
  });
});
