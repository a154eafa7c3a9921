import { createStreamMasker, MaskingFindings, MaskingPolicy } from '@custodian/masking';
import { decodeDataRow, encodeDataRow, type FieldDescription, type Frame } from '@custodian/postgres-wire';
import { describe, expect, it } from 'vitest';
import type { CatalogResolver, TableColumns } from './catalog.js';
import { maskDataRow, planRows, VALUE_LIMIT_RULE, VALUE_LIMIT_TEXT, type ValueScanner } from './row-masking.js';

const TABLE_OID = 16400;
const TABLE: TableColumns = { schema: 'public', table: 'people', columns: new Map([[5, 'secret']]), ancestors: [], sources: [] };
const catalog = { cached: (oid: number) => (oid === TABLE_OID ? TABLE : undefined) } as unknown as CatalogResolver;

const policy = MaskingPolicy.create({
  columns: [{ column: 'public.people.secret', id: 'people-secret', strategy: { kind: 'redact' } }],
  detection: { enabled: ['card', 'email', 'iban', 'jwt'] },
});

function field(name: string, typeOid: number, format: 0 | 1, tableOid = 0, columnAttribute = 0): FieldDescription {
  return { name, tableOid, columnAttribute, typeOid, typeSize: -1, typeModifier: -1, format };
}

/** int4 (passes), text, varchar in binary, bytea in text (hex), a column under a rule, text again. */
const FIELDS = [field('id', 23, 0), field('note', 25, 0), field('name', 1043, 1), field('blob', 17, 0), field('secret', 25, 0, TABLE_OID, 5), field('other', 25, 0)];
const LIMIT = 300;

function frameOf(values: readonly (Buffer | null)[]): Frame {
  const raw = encodeDataRow(values);
  return { type: raw[0] as number, raw, body: raw.subarray(5) };
}

/** What each column becomes, computed independently of row-masking's fast paths (a fresh stream masker per value). */
function reference(values: readonly (Buffer | null)[], findings: MaskingFindings): Buffer {
  const scan = (text: string, location: string): string => {
    const masker = createStreamMasker({ profile: policy.detection, location, findings });
    return masker.push(text) + masker.end();
  };
  const out = values.map((value, i): Buffer | null => {
    const f = FIELDS[i] as FieldDescription;
    if (value === null || f.name === 'id') return value;
    if (f.name === 'secret') {
      findings.add('public.people.secret', 'people-secret');
      return Buffer.from(policy.forColumn('public.people.secret')!.mask(value.toString('utf8')), 'utf8');
    }
    if (value.length > LIMIT) {
      findings.add(f.name, VALUE_LIMIT_RULE);
      return Buffer.from(VALUE_LIMIT_TEXT);
    }
    if (f.name === 'blob' && value.toString('latin1').startsWith('\\x')) {
      const hidden = Buffer.from(value.toString('latin1').slice(2), 'hex').toString('utf8');
      return scan(hidden, f.name) === hidden ? value : null;
    }
    const text = value.toString('utf8');
    const masked = scan(text, f.name);
    return masked === text ? value : Buffer.from(masked, 'utf8');
  });
  return encodeDataRow(out);
}

const TEXTS = [
  '',
  'plain',
  'user17@example.com',
  'mail: Zoë.Ünïcødé@example.com, ok',
  '4111 1111 1111 1111',
  'x'.repeat(80),
  'x'.repeat(90) + ' a@b.example.org',
  'é'.repeat(50) + 'DE89370400440532013000',
  '🔐 '.repeat(30),
  'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln and more',
  `${'y'.repeat(LIMIT - 20)} z@example.com`,
  'w'.repeat(LIMIT + 1),
];

function rowValues(rnd: () => number): (Buffer | null)[] {
  const pick = (): string => TEXTS[Math.floor(rnd() * TEXTS.length)] as string;
  const maybeNull = (make: () => Buffer): Buffer | null => (rnd() < 0.15 ? null : make());
  return [
    maybeNull(() => Buffer.from(String(Math.floor(rnd() * 1e9)))),
    maybeNull(() => Buffer.from(pick(), 'utf8')),
    maybeNull(() => Buffer.from(pick(), 'utf8')),
    maybeNull(() => (rnd() < 0.5 ? Buffer.from(`\\x${Buffer.from(pick(), 'utf8').toString('hex')}`, 'latin1') : Buffer.from(pick(), 'utf8'))),
    maybeNull(() => Buffer.from(pick(), 'utf8')),
    // Invalid UTF-8 too: kept byte for byte unless a detector finds something.
    maybeNull(() => (rnd() < 0.3 ? Buffer.concat([Buffer.from([0xff, 0xc3]), Buffer.from(pick(), 'utf8'), Buffer.from([0xe2, 0x82])]) : Buffer.from(pick(), 'utf8'))),
  ];
}

function seeded(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('maskDataRow', () => {
  const plan = planRows(FIELDS, policy, catalog, true);
  const limits = { maxScannedValueBytes: LIMIT };

  it('gives every row the bytes and findings of masking each value on its own, and forwards unchanged rows as they are', () => {
    const rnd = seeded(3);
    let unchanged = 0;
    for (let n = 0; n < 3000; n++) {
      const values = rowValues(rnd);
      const frame = frameOf(values);
      const findings = new MaskingFindings();
      const expectedFindings = new MaskingFindings();
      const out = maskDataRow(frame, plan, policy, findings, limits);
      expect(out.equals(reference(values, expectedFindings)), JSON.stringify(values.map((v) => v?.toString('utf8')))).toBe(true);
      expect(findings.toArray()).toEqual(expectedFindings.toArray());
      if (out === frame.raw) unchanged++;
    }
    expect(unchanged).toBeGreaterThan(10);
  });

  it('keeps every value of a wide row in place (more columns than the offsets it keeps between rows)', () => {
    const fields = Array.from({ length: 300 }, (_, i) => field(`c${i}`, 25, 0));
    const widePlan = planRows(fields, policy, catalog, false);
    const values = fields.map((_, i) => (i % 7 === 0 ? null : Buffer.from(i % 5 === 0 ? `c${i}@example.com` : `value ${i}`)));
    const out = maskDataRow(frameOf(values), widePlan, policy, new MaskingFindings());
    const decoded = decodeDataRow({ type: out[0] as number, raw: out, body: out.subarray(5) });
    expect(decoded.map((v) => (v === null ? null : v.toString()))).toEqual(values.map((v, i) => (v === null ? null : i % 5 === 0 ? '[REDACTED:email]' : v.toString())));
  });

  it('hands the scanner only values that can hold a candidate, and the same ones on every pass (long values off the event loop)', () => {
    const seen: string[] = [];
    const scanner: ValueScanner = {
      text: (text, location, into) => {
        seen.push(text);
        return policy.maskText(text, location, into);
      },
      json: (text) => text,
    };
    const values = [Buffer.from('1'), Buffer.from('no candidate'), Buffer.from('a@example.com'), null, Buffer.from('s'), Buffer.from('x'.repeat(100))];
    const findings = new MaskingFindings();
    const out = maskDataRow(frameOf(values), plan, policy, findings, limits, scanner);
    expect(seen).toEqual(['a@example.com']);
    expect(out.equals(reference(values, new MaskingFindings()))).toBe(true);
  });

  it('refuses a malformed DataRow (WIRE_MALFORMED) instead of forwarding it', () => {
    const good = frameOf([Buffer.from('1'), Buffer.from('a@example.com'), null, null, null, null]).raw;
    const withBody = (raw: Buffer): Frame => ({ type: raw[0] as number, raw, body: raw.subarray(5) });
    const truncated = withBody(good.subarray(0, good.length - 3));
    const trailing = withBody(Buffer.concat([good, Buffer.from([0])]));
    const negative = Buffer.from(good);
    negative.writeInt32BE(-2, 7);
    const tooMany = Buffer.from(good);
    tooMany.writeUInt16BE(60000, 5);
    for (const frame of [truncated, trailing, withBody(negative), withBody(tooMany), withBody(good.subarray(0, 6))]) {
      expect(() => maskDataRow(frame, plan, policy, new MaskingFindings(), limits)).toThrow(expect.objectContaining({ code: 'WIRE_MALFORMED' }));
    }
  });
});
