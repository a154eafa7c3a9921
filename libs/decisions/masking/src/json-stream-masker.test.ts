import { describe, expect, it } from 'vitest';
import { JsonStreamError, type JsonStreamMasker } from './json-stream-masker.js';
import { JSON_LIMIT_RULE } from './json-text-masker.js';
import { MaskingPolicy } from './policy.js';

const policy = MaskingPolicy.create({
  jsonPaths: [
    { path: '$.user.ssn', id: 'pii-ssn', strategy: { kind: 'redact' } },
    { path: '$.items[*].card', id: 'pci-card', strategy: { kind: 'partial', keepLast: 4 } },
    { path: '$..password', id: 'credential', strategy: { kind: 'redact', label: 'secret' } },
    { path: '$.private', id: 'private', strategy: { kind: 'redact' } },
    { path: '$[*].customer.ssn', id: 'row-ssn', strategy: { kind: 'redact' } },
  ],
});

function run(masker: JsonStreamMasker, chunks: readonly (Uint8Array | string)[]): string {
  let out = '';
  for (const chunk of chunks) out += masker.push(chunk);
  return out + masker.end();
}

function splitAt(bytes: Buffer, at: number): Buffer[] {
  return [bytes.subarray(0, at), bytes.subarray(at)];
}

const DOCUMENTS = [
  '{ "user" : {"name": "Maria",  "ssn":"219-45-6789", "mail": "maria@example.com" },\n  "n": 1 }',
  '{"items":[{"card":"4111111111111111","qty":1},{"card":"5500 0055 5555 5559"}],"note":"call +1 415 555 0100"}',
  '{"password":"a","deep":{"x":[{"password":"b"},{"y":{"password":"c"}}]},"passwords":"not me"}',
  '{"private":{"k":"v","n":12,"ok":true,"none":null,"more":["x",{"y":"z"}]},"z":false}',
  '[{"customer":{"ssn":"123-45-6789","name":"Zoë ✓ 𝄞"}},{"customer":{"ssn":"987-65-4320"}},4111111111111111,12345678901234567890123,1.5e-300]',
  '"just a string with bob@example.org in it"',
  '12345',
  '[]',
  // Escapes the stream decodes itself (an e-mail written with \u0040 is still found), surrogate pairs, odd spacing.
  '{"esc\\"aped":"tab\\there \\u00e9 \\ud834\\udd1e \\/ \\\\ \\b\\f\\r","mail":"x\\u0040example.com", "n" :[ 12 , 0.5,-12.25 ,true,false , null ]}',
];

describe('JsonStreamMasker: the same masking as maskJsonText, streamed', () => {
  it('every document, split at every byte (inside keys, values, escapes and UTF-8 characters), masks to the same JSON', () => {
    for (const doc of DOCUMENTS) {
      const whole = policy.maskJsonText(doc);
      if (whole.outcome !== 'masked') throw new Error(whole.outcome);
      const bytes = Buffer.from(doc, 'utf8');
      for (let at = 0; at <= bytes.length; at++) {
        const masker = policy.createJsonStreamMasker({ location: 'response.body' });
        const out = run(masker, splitAt(bytes, at));
        // Re-serialised compact; the values (and big numbers, kept as written) are what maskJsonText gives.
        expect(out).toBe(JSON.stringify(JSON.parse(whole.text)).replace('1.2345678901234568e+22', '12345678901234567890123'));
        expect(masker.findings.toArray()).toEqual(policy.maskJsonText(doc, { location: 'response.body' }).findings.toArray());
      }
    }
  });

  it('PII split across chunk boundaries one byte at a time never appears in the output', () => {
    const doc = JSON.stringify({ rows: [{ email: 'maria.garcia@example.com', card: '4111 1111 1111 1111' }], user: { ssn: '219-45-6789' } });
    const masker = policy.createJsonStreamMasker();
    const out = run(masker, [...Buffer.from(doc)].map((b) => Uint8Array.of(b)));
    expect(out).not.toContain('maria.garcia@example.com');
    expect(out).not.toContain('4111 1111 1111 1111');
    expect(out).not.toContain('219-45-6789');
    expect(JSON.parse(out)).toMatchObject({ user: { ssn: '[REDACTED:pii-ssn]' } });
  });

  it('keeps numbers as written (precision, exponent) and emits output as values complete', () => {
    const masker = policy.createJsonStreamMasker();
    expect(masker.push('[123456789012345678901234567890, 1E+2, "a"')).toBe('[123456789012345678901234567890,1E+2,"a"');
    expect(masker.push(', -0.5]')).toBe(',-0.5]');
    expect(masker.end()).toBe('');
  });

  it('a container deeper than maxDepth becomes one redacted string and the stream goes on', () => {
    const masker = policy.createJsonStreamMasker({ maxDepth: 3 });
    const out = run(masker, ['{"a":[{"deep":{"x":[1,2]}},"next"],"b":"ok"}']);
    expect(JSON.parse(out)).toEqual({ a: [{ deep: `[REDACTED:${JSON_LIMIT_RULE}]` }, 'next'], b: 'ok' });
    expect(masker.findings.toArray()).toContainEqual({ field: '$.a[*].deep', rule: JSON_LIMIT_RULE, count: 1 });
  });

  it.each([
    ['{"a":1,}', 'invalid'],
    ['[1 2]', 'invalid'],
    ['{"a" 1}', 'invalid'],
    ['{1:2}', 'invalid'],
    ['[1]]', 'invalid'],
    ['{} {}', 'invalid'],
    ['{} 5', 'invalid'],
    ['{"a":', 'invalid'],
    ['[tru]', 'invalid'],
    ['[nul]', 'invalid'],
    ['[01]', 'invalid'],
    ['[1.]', 'invalid'],
    ['[-]', 'invalid'],
    ['[1e]', 'invalid'],
    ['["a\\x"]', 'invalid'],
    ['["\\u12G4"]', 'invalid'],
    ['["a\nb"]', 'invalid'],
    ['{"a":1 "b":2}', 'invalid'],
    ['[1,]', 'invalid'],
    ['[,1]', 'invalid'],
    ['{"a"}', 'invalid'],
    ['"open', 'invalid'],
    ['', 'invalid'],
  ])('%s is refused (%s), never passed', (text, reason) => {
    const masker = policy.createJsonStreamMasker();
    let error: unknown;
    try {
      run(masker, [text]);
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(JsonStreamError);
    expect((error as JsonStreamError).reason).toBe(reason);
    expect((error as JsonStreamError).code).toBe('MASKING_JSON_INVALID');
  });

  it('bytes that are not UTF-8 are refused, wherever the chunk boundary falls', () => {
    const bytes = Buffer.concat([Buffer.from('["ok","'), Buffer.from([0xc3, 0x28]), Buffer.from('"]')]);
    for (let at = 0; at <= bytes.length; at++) {
      const masker = policy.createJsonStreamMasker();
      expect(() => run(masker, splitAt(bytes, at))).toThrow(JsonStreamError);
    }
  });

  it('a rule naming one array index masks that element only, split at every byte', () => {
    const indexed = MaskingPolicy.create({ jsonPaths: [{ path: '$.items[1].card', id: 'second-card', strategy: { kind: 'redact' } }], detection: { enabled: ['email'] } });
    const doc = '{"items":[{"card":"1111"},{"card":"2222"},{"card":"3333"}]}';
    const whole = indexed.maskJsonText(doc);
    if (whole.outcome !== 'masked') throw new Error(whole.outcome);
    expect(whole.text).toContain('"card":"[REDACTED:second-card]"');
    const bytes = Buffer.from(doc);
    for (let at = 0; at <= bytes.length; at++) expect(run(indexed.createJsonStreamMasker(), splitAt(bytes, at))).toBe(whole.text);
  });

  it('distinct keys beyond the shape budget are still masked by path and detectors; the shapes kept stay bounded', () => {
    const members = Array.from({ length: 10_000 }, (_, i) => `"k${i}":{"password":"p${i}","note":"mail u${i}@example.com"}`);
    const doc = `{${members.join(',')}}`;
    const whole = policy.maskJsonText(doc);
    if (whole.outcome !== 'masked') throw new Error(whole.outcome);
    const masker = policy.createJsonStreamMasker();
    expect(run(masker, [doc.slice(0, 100_000), doc.slice(100_000)])).toBe(whole.text);
    expect(masker.stats.shapesKept).toBeLessThanOrEqual(4096);
    expect(masker.findings.toArray()).toEqual(policy.maskJsonText(doc).findings.toArray());
  });

  it('a single value longer than maxValueChars fails the stream while it grows (bounded memory), not at its end', () => {
    const masker = policy.createJsonStreamMasker({ maxValueChars: 1000 });
    expect(masker.push('{"a":"')).toBe('{"a":');
    let error: unknown;
    try {
      for (let i = 0; i < 100; i++) masker.push('x'.repeat(100));
    } catch (caught) {
      error = caught;
    }
    expect((error as JsonStreamError).reason).toBe('value-too-large');
    expect((error as JsonStreamError).code).toBe('MASKING_JSON_VALUE_TOO_LARGE');
  });

  it('a long array streams through with state bounded by its deepest element, not its length', () => {
    const masker = policy.createJsonStreamMasker();
    let out = masker.push('[');
    let emitted = out.length;
    for (let i = 0; i < 20_000; i++) {
      const piece = masker.push(`${i === 0 ? '' : ','}{"customer":{"ssn":"123-45-${String(i % 10_000).padStart(4, '0')}","mail":"u${i}@example.com"}}`);
      // Each element is out as soon as it is complete: nothing accumulates.
      expect(piece.length).toBeGreaterThan(0);
      emitted += piece.length;
      if (i === 19_999) out = piece;
    }
    emitted += masker.push(']').length + masker.end().length;
    expect(out).toContain('"ssn":"[REDACTED:row-ssn]"');
    expect(out).not.toContain('@example.com');
    expect(masker.stats.maxDepth).toBe(3);
    expect(emitted).toBeGreaterThan(20_000 * 40);
    expect(masker.findings.toArray()).toContainEqual({ field: '$[*].customer.ssn', rule: 'row-ssn', count: 20_000 });
  });
});
