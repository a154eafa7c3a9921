import { describe, expect, it } from 'vitest';
import { MaskingFindings } from './findings.js';
import { JSON_LIMIT_RULE } from './json-text-masker.js';
import { MaskingPolicy } from './policy.js';

const hmacKey = Buffer.from('0123456789abcdef0123456789abcdef');
const policy = MaskingPolicy.create({
  hmacKey,
  jsonPaths: [
    { path: '$.user.ssn', id: 'pii-ssn', strategy: { kind: 'redact' } },
    { path: '$.items[*].card', id: 'pci-card', strategy: { kind: 'partial', keepLast: 4 } },
    { path: '$..password', id: 'credential', strategy: { kind: 'redact', label: 'secret' } },
    { path: '$.customer.email', id: 'pii-email', strategy: { kind: 'hmac' } },
    { path: '$.list[1]', id: 'second', strategy: { kind: 'redact' } },
    { path: '$.private', id: 'private', strategy: { kind: 'redact' } },
    { path: '$.*.token', id: 'tokens', strategy: { kind: 'redact' } },
  ],
});
/** Path rules only, no detectors: what a policy with only `jsonPaths` rules builds. */
const pathsOnly = MaskingPolicy.create({ jsonPaths: [{ path: '$.ssn', id: 'pii-ssn', strategy: { kind: 'redact' } }], detection: { enabled: [] } });

function masked(text: string, p: MaskingPolicy = policy): { text: string; findings: ReturnType<MaskingFindings['toArray']>; changed: boolean } {
  const result = p.maskJsonText(text);
  if (result.outcome !== 'masked') throw new Error(`expected masked, got ${result.outcome}`);
  return { text: result.text, findings: result.findings.toArray(), changed: result.changed };
}

describe('maskJsonText: path rules', () => {
  it('masks the value at a path and keeps every other byte (spacing, key order, other keys)', () => {
    const input = '{ "user" : {"name": "Maria",  "ssn":"219-45-6789" },\n  "n": 1 }';
    const out = masked(input);
    expect(out.text).toBe('{ "user" : {"name": "Maria",  "ssn":"[REDACTED:pii-ssn]" },\n  "n": 1 }');
    expect(out.findings).toEqual([{ field: '$.user.ssn', rule: 'pii-ssn', count: 1 }]);
  });

  it('wildcards: every element of an array, every member of an object', () => {
    const out = masked('{"items":[{"card":"4111111111111111","qty":1},{"card":"5500 0055 5555 5559"}],"a":{"token":"t1"},"b":{"token":"t2","x":"keep"}}');
    expect(JSON.parse(out.text)).toEqual({ items: [{ card: '************1111', qty: 1 }, { card: '**** **** **** 5559' }], a: { token: '[REDACTED:tokens]' }, b: { token: '[REDACTED:tokens]', x: 'keep' } });
    expect(out.findings).toEqual([
      { field: '$.a.token', rule: 'tokens', count: 1 },
      { field: '$.b.token', rule: 'tokens', count: 1 },
      { field: '$.items[*].card', rule: 'pci-card', count: 2 },
    ]);
  });

  it('recursive descent finds the key at any depth, in objects and arrays', () => {
    const out = masked('{"password":"a","deep":{"x":[{"password":"b"},{"y":{"password":"c"}}]},"passwords":"not me"}');
    expect(JSON.parse(out.text)).toEqual({ password: '[REDACTED:secret]', deep: { x: [{ password: '[REDACTED:secret]' }, { y: { password: '[REDACTED:secret]' } }] }, passwords: 'not me' });
    expect(out.findings.find((f) => f.rule === 'credential' && f.field === '$.deep.x[*].y.password')).toEqual({ field: '$.deep.x[*].y.password', rule: 'credential', count: 1 });
  });

  it('an index masks one element; a matched object or array has every scalar inside masked (booleans and null kept)', () => {
    const out = masked('{"list":["a","b","c"],"private":{"k":"v","n":12,"ok":true,"none":null,"more":["x",{"y":"z"}]}}');
    expect(JSON.parse(out.text)).toEqual({
      list: ['a', '[REDACTED:second]', 'c'],
      private: { k: '[REDACTED:private]', n: '[REDACTED:private]', ok: true, none: null, more: ['[REDACTED:private]', { y: '[REDACTED:private]' }] },
    });
    expect(out.findings).toEqual([
      { field: '$.list[*]', rule: 'second', count: 1 },
      { field: '$.private', rule: 'private', count: 4 },
    ]);
  });

  it('strategies: redact, partial and hmac work as for columns (hmac deterministic per key)', () => {
    const out = masked('{"customer":{"email":"maria@example.com"},"user":{"ssn":"219-45-6789"},"items":[{"card":"4111-1111-1111-1111"}]}');
    const value = JSON.parse(out.text) as { customer: { email: string }; user: { ssn: string }; items: { card: string }[] };
    expect(value.customer.email).toMatch(/^tok_[a-z2-7]{16}$/);
    expect(value.customer.email).toBe(policy.forJsonPath('$.customer.email')!.mask('maria@example.com'));
    expect(JSON.parse(masked('{"customer":{"email":"maria@example.com"}}').text)).toEqual({ customer: { email: value.customer.email } });
    expect(value.user.ssn).toBe('[REDACTED:pii-ssn]');
    expect(value.items[0]!.card).toBe('****-****-****-1111');
  });

  it('numbers at a path become masked strings; other numbers keep their exact text (no precision lost)', () => {
    const out = masked('{"ssn":219456789,"big":123456789012345678901234567890,"f":1.50e+10}', pathsOnly);
    expect(out.text).toBe('{"ssn":"[REDACTED:pii-ssn]","big":123456789012345678901234567890,"f":1.50e+10}');
  });

  it('decodes escapes in keys and values before matching and masking; the output is valid JSON', () => {
    const out = masked('{"us\\u0065r":{"ssn":"219\\u002d45-6789","name":"a \\"quoted\\" \\\\ name"}}');
    expect(JSON.parse(out.text)).toEqual({ user: { ssn: '[REDACTED:pii-ssn]', name: 'a "quoted" \\ name' } });
    expect(out.text).toContain('"name":"a \\"quoted\\" \\\\ name"');
  });

  it('duplicate keys are each masked; a __proto__ member is an ordinary member', () => {
    expect(masked('{"ssn":"1","ssn":"2"}', pathsOnly).text).toBe('{"ssn":"[REDACTED:pii-ssn]","ssn":"[REDACTED:pii-ssn]"}');
    const proto = MaskingPolicy.create({ jsonPaths: [{ path: '$.__proto__.ssn', id: 'p', strategy: { kind: 'redact' } }], detection: { enabled: [] } });
    expect(masked('{"__proto__":{"ssn":"219-45-6789"}}', proto).text).toBe('{"__proto__":{"ssn":"[REDACTED:p]"}}');
    // The parsed-value masker keeps it too (plain assignment would set the prototype and drop it).
    const parsed = JSON.parse('{"__proto__":{"ssn":"219-45-6789"}}') as unknown;
    expect(JSON.stringify(proto.maskJson(parsed).value)).toBe('{"__proto__":{"ssn":"[REDACTED:p]"}}');
  });

  it('nothing to mask: the very same text comes back, unchanged', () => {
    const input = '[1, "two", {"three": [true, false, null]}]';
    const result = policy.maskJsonText(input);
    expect(result).toMatchObject({ outcome: 'masked', text: input, changed: false });
    expect(result.findings.isEmpty).toBe(true);
  });
});

describe('maskJsonText: detectors for what no path covers', () => {
  it('scans other strings and long numbers with the detectors, as maskJson does for parsed values', () => {
    const doc = {
      user: { ssn: '219-45-6789', name: 'Maria', contact: 'maria@example.com' },
      items: [{ card: '4111111111111111', qty: 1 }],
      auth: { nested: { password: 'hunter2' } },
      big: 4111111111111111,
      ok: true,
    };
    const text = masked(JSON.stringify(doc));
    const tree = policy.maskJson(doc);
    expect(JSON.parse(text.text)).toEqual(tree.value);
    expect(text.findings).toEqual(tree.findings.toArray());
    expect(text.findings).toContainEqual({ field: '$.user.contact', rule: 'detector:email', detector: 'email', count: 1 });
  });

  it('reports paths and rules, never a value', () => {
    const findings = new MaskingFindings();
    policy.maskJsonText('{"user":{"ssn":"219-45-6789","c":"maria@example.com"}}', { location: 'public.people.doc', findings });
    const reported = JSON.stringify(findings.toArray());
    expect(findings.toArray().map((f) => f.field)).toEqual(['public.people.doc$.user.c', 'public.people.doc$.user.ssn']);
    expect(reported).not.toMatch(/219-45|maria/);
  });
});

describe('maskJsonText: input that is not JSON, or too much of it', () => {
  const invalid = ['', ' ', '{', '{"a":1,}', "{'a':1}", '[1 2]', '"unterminated', 'tru', 'nul', '{"a":"\\x"}', '{"a":"\\u12"}', '"a\u0001b"', '{} x', '01', '-', '1.', '.5', '{"a" 1}', '{"a":1 "b":2}', '[,]', 'NaN', '{"ssn":"219-45-6789"'];
  it.each(invalid)('%j is reported invalid, without throwing and without findings', (text) => {
    const findings = new MaskingFindings();
    const result = policy.maskJsonText(text, { findings });
    expect(result.outcome).toBe('invalid');
    expect(findings.isEmpty).toBe(true);
  });

  it('accepts every JSON value at the top level', () => {
    for (const text of ['0', '-0.5e-3', 'true', 'null', '"s"', '[]', '{}', ' \n[ ] ']) expect(policy.maskJsonText(text).outcome, text).toBe('masked');
  });

  it('a document over the size limit is replaced whole (fail closed) and reported', () => {
    const text = JSON.stringify({ user: { ssn: '219-45-6789' }, pad: 'x'.repeat(200) });
    const result = policy.maskJsonText(text, { maxChars: 100, location: 'public.people.doc' });
    expect(result).toMatchObject({ outcome: 'refused', reason: 'too-large', text: `"[REDACTED:${JSON_LIMIT_RULE}]"` });
    expect(result.findings.toArray()).toEqual([{ field: 'public.people.doc', rule: JSON_LIMIT_RULE, count: 1 }]);
    expect(policy.maskJsonText(text, { maxChars: text.length }).outcome).toBe('masked');
  });

  it('nesting beyond the depth limit is refused without exhausting the stack, however deep', () => {
    expect(policy.maskJsonText('['.repeat(1_000_000) + ']'.repeat(1_000_000), { maxChars: 3_000_000 })).toMatchObject({ outcome: 'refused', reason: 'too-deep' });
    expect(policy.maskJsonText(`${'{"a":'.repeat(5)}1${'}'.repeat(5)}`, { maxDepth: 4 })).toMatchObject({ outcome: 'refused', reason: 'too-deep' });
    expect(policy.maskJsonText(`${'{"a":'.repeat(5)}1${'}'.repeat(5)}`, { maxDepth: 5 }).outcome).toBe('masked');
  });

  it('a large document is masked in one pass (about 1.5 MB, bounded time)', () => {
    const rows = Array.from({ length: 20_000 }, (_, i) => `{"id":${i},"user":{"ssn":"219-45-6789","note":"row ${i} of the export"}}`);
    const text = `{"items":[${rows.join(',')}]}`;
    const started = performance.now();
    const result = pathsOnly.maskJsonText(text);
    expect(result.outcome).toBe('masked');
    expect(performance.now() - started).toBeLessThan(5_000);
  });
});
