// RFC 8785 (JSON Canonicalization Scheme) vectors from the RFC itself (§3.2.2, §3.2.3, Appendix B),
// checked against the `canonicalize` package the leaf encoding uses.
import { EventFactory } from '@custodian/event-contracts';
import { hashLeaf } from '@custodian/transparency-log';
import { describe, expect, it } from 'vitest';
import { canonicalJson, eventLeaf, eventLeafHash } from './canonical-leaf.js';

const float = (hex: string): number => Buffer.from(hex, 'hex').readDoubleBE(0);

describe('RFC 8785 canonical JSON', () => {
  it('serializes the §3.2.2 example: whitespace, literals, numbers and string escapes', () => {
    const input = JSON.parse(
      '{\n  "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],\n  "string": "\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/",\n  "literals": [null, true, false]\n}',
    ) as unknown;
    expect(canonicalJson(input)).toBe('{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}');
  });

  it('sorts properties by UTF-16 code units (§3.2.3)', () => {
    const input = JSON.parse('{"\\u20ac":"Euro Sign","\\r":"Carriage Return","\\ufb33":"Hebrew Letter Dalet With Dagesh","1":"One","\\ud83d\\ude00":"Emoji: Grinning Face","\\u0080":"Control","\\u00f6":"Latin Small Letter O With Diaeresis"}') as Record<string, string>;
    // Keys in text order (Object.keys would put the integer-like "1" first).
    const keys = [...canonicalJson(input).matchAll(/"((?:[^"\\]|\\.)*)":/g)].map((m) => JSON.parse(`"${m[1]!}"`) as string);
    expect(canonicalJson(input).startsWith('{"\\r":"Carriage Return","1":"One","\u0080":"Control","ö":')).toBe(true);
    expect(keys).toEqual(['\r', '1', '\u0080', 'ö', '€', '😀', '\ufb33']);
  });

  it.each([
    ['0000000000000000', '0'],
    ['8000000000000000', '0'],
    ['0000000000000001', '5e-324'],
    ['8000000000000001', '-5e-324'],
    ['7fefffffffffffff', '1.7976931348623157e+308'],
    ['ffefffffffffffff', '-1.7976931348623157e+308'],
    ['4340000000000000', '9007199254740992'],
    ['c340000000000000', '-9007199254740992'],
    ['4430000000000000', '295147905179352830000'],
    ['44b52d02c7e14af5', '9.999999999999997e+22'],
    ['44b52d02c7e14af6', '1e+23'],
    ['44b52d02c7e14af7', '1.0000000000000001e+23'],
    ['444b1ae4d6e2ef4e', '999999999999999700000'],
    ['444b1ae4d6e2ef50', '1e+21'],
    ['3eb0c6f7a0b5ed8c', '9.999999999999997e-7'],
    ['3eb0c6f7a0b5ed8d', '0.000001'],
    ['41b3de4355555553', '333333333.3333332'],
    ['41b3de4355555555', '333333333.3333333'],
  ])('serializes the IEEE 754 double %s as %s (Appendix B)', (hex, text) => {
    expect(canonicalJson(float(hex))).toBe(text);
  });

  it('refuses values JSON cannot represent', () => {
    expect(() => canonicalJson(Number.NaN)).toThrow(expect.objectContaining({ code: 'EVIDENCE_CANONICALIZATION_FAILED' }));
    expect(() => canonicalJson(Number.POSITIVE_INFINITY)).toThrow(expect.objectContaining({ code: 'EVIDENCE_CANONICALIZATION_FAILED' }));
    expect(() => canonicalJson(undefined)).toThrow(expect.objectContaining({ code: 'EVIDENCE_CANONICALIZATION_FAILED' }));
  });
});

describe('event leaves', () => {
  const factory = new EventFactory({ service: 'projector', instance: 'test' });
  const event = factory.create({ type: 'policy.activated', stream: 'policy-orders', sequence: 0, identity: null, payload: { policyName: 'orders', version: 1, digest: 'a'.repeat(64), source: 'p.yaml', rules: 3 } });

  it('is the same bytes whatever the key order of the envelope', () => {
    const shuffled = JSON.parse(JSON.stringify(Object.fromEntries(Object.entries(event).reverse()))) as typeof event;
    expect(eventLeaf(shuffled).equals(eventLeaf(event))).toBe(true);
    expect(eventLeaf(event).toString('utf8').startsWith('{"causationId":null,"correlationId":')).toBe(true);
    expect(eventLeafHash(event).equals(hashLeaf(eventLeaf(event)))).toBe(true);
  });
});
