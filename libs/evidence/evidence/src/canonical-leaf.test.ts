// RFC 8785 (JSON Canonicalization Scheme) vectors from the RFC itself (§3.2.2, §3.2.3, Appendix B),
// checked against the `canonicalize` package the leaf encoding uses.
import { createHash } from 'node:crypto';
import { EventFactory } from '@custodian/event-contracts';
import { hashLeaf } from '@custodian/transparency-log';
import { describe, expect, it } from 'vitest';
import { canonicalJson, eventLeaf, eventLeafHash, headerOf } from './canonical-leaf.js';
import { HeaderSelection, headerLeafOfLine, headerValueAt, instantKey, isHeaderLeaf, leafBytes, leafFormatAt, rulesDecidableOnHeaders, type EventHeader } from './leaf-format.js';

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

  it('format 1 is the canonical envelope, the same bytes whatever the key order', () => {
    const shuffled = JSON.parse(JSON.stringify(Object.fromEntries(Object.entries(event).reverse()))) as typeof event;
    expect(eventLeaf(shuffled, 1).equals(eventLeaf(event, 1))).toBe(true);
    expect(eventLeaf(event, 1).toString('utf8').startsWith('{"causationId":null,"correlationId":')).toBe(true);
    expect(eventLeafHash(event, 1).equals(hashLeaf(eventLeaf(event, 1)))).toBe(true);
  });

  it('format 2 is the canonical header: the envelope without payload, the payload digest, the selector values', () => {
    // Shaped like a session.opened envelope (the header does not validate payloads).
    const opened = { ...event, type: 'session.opened', stream: 'session-s1', payload: { sessionId: 's1', connection: { name: 'orders-prod', protocol: 'postgres' }, client: { address: '10.0.0.1', tls: false } } } as unknown as typeof event;
    const leaf = eventLeaf(opened, 2).toString('utf8');
    const header = JSON.parse(leaf) as EventHeader;
    expect(isHeaderLeaf(header)).toBe(true);
    expect(leaf).not.toContain('10.0.0.1');
    expect(header.payloadSha256).toBe(createHash('sha256').update(canonicalJson(opened.payload)).digest('hex'));
    expect(header.selectors).toEqual({ 'payload.client.tls': false, 'payload.connection.name': 'orders-prod', 'payload.sessionId': 's1' });
    expect(canonicalJson(headerOf(opened))).toBe(leaf);
    const { payload: _payload, ...envelope } = opened;
    for (const [key, value] of Object.entries(envelope)) expect(header[key as keyof EventHeader]).toEqual(value);
    // Any change to the payload changes the leaf.
    const altered = { ...opened, payload: { ...opened.payload, client: { address: '10.0.0.2', tls: false } } } as typeof opened;
    expect(eventLeafHash(altered, 2).equals(eventLeafHash(opened, 2))).toBe(false);
    expect(headerValueAt(header, 'payload.client.tls')).toBe(false);
    expect(headerValueAt(header, 'payload.exposed')).toBeNull();
    expect(headerValueAt(header, 'payload.client.address')).toBeUndefined();
    expect(headerValueAt(header, 'type')).toBe('session.opened');
    expect(rulesDecidableOnHeaders([{ id: 'r', event: 'session.opened', where: { 'payload.client.tls': [true] } }])).toBe(true);
    expect(rulesDecidableOnHeaders([{ id: 'r', event: 'session.opened', where: { 'payload.client.address': ['x'] } }])).toBe(false);
  });

  it('derives the same header from an events.jsonl line, taking a canonical payload as written and canonicalizing any other', () => {
    const line = canonicalJson(event);
    expect(headerLeafOfLine(line, JSON.parse(line) as Record<string, unknown>).equals(eventLeaf(event, 2))).toBe(true);
    // Keys out of order: not the bytes the log hashed; the payload is canonicalized instead.
    const shuffled = JSON.stringify({ ...event, payload: Object.fromEntries(Object.entries(event.payload).reverse()) });
    expect(headerLeafOfLine(shuffled, JSON.parse(shuffled) as Record<string, unknown>).equals(eventLeaf(event, 2))).toBe(true);
    // Two payload members: the parsed (last) one is what is hashed.
    const doubled = line.replace(',"payload":{', ',"payload":{"rules":99},"payload":{');
    const parsed = JSON.parse(doubled) as Record<string, unknown>;
    expect(headerLeafOfLine(doubled, parsed).equals(leafBytes(parsed, 2))).toBe(true);
  });

  it('switches from format 1 to 2 at the recorded leaf', () => {
    expect([0, 4, 5, 9].map((i) => leafFormatAt(i, 5))).toEqual([1, 1, 2, 2]);
    expect(leafFormatAt(9, undefined)).toBe(1);
  });

  it('selects on headers as the views select on events: connection through the session, a refused attempt by its claimed subject', () => {
    const h = (type: string, selectors: Record<string, string | boolean>, subject?: string): EventHeader =>
      ({ leafFormat: 2, id: type, type, occurredAt: '2026-03-01T10:00:00.000000Z', identity: subject ? { subject } : null, selectors }) as unknown as EventHeader;
    const window = [instantKey('2026-03-01T00:00:00Z')!, instantKey('2026-03-02T00:00:00Z')!] as const;
    const byConnection = new HeaderSelection({ connection: 'orders-prod' }, ...window);
    expect(byConnection.selects(h('command.issued', { 'payload.sessionId': 's1' }))).toBe(false);
    expect(byConnection.selects(h('session.opened', { 'payload.sessionId': 's1', 'payload.connection.name': 'orders-prod' }))).toBe(true);
    expect(byConnection.selects(h('command.issued', { 'payload.sessionId': 's1' }))).toBe(true);
    expect(byConnection.selects(h('approval.requested', { 'payload.approvalId': 'a1', 'payload.connection.name': 'other' }))).toBe(false);
    expect(byConnection.selects(h('approval.granted', { 'payload.approvalId': 'a1' }))).toBe(false);
    const byIdentity = new HeaderSelection({ identity: 'alice' }, ...window);
    expect(byIdentity.selects(h('authentication.failed', { 'payload.claimedSubject': 'alice' }))).toBe(true);
    expect(byIdentity.selects(h('command.issued', {}, 'bob'))).toBe(false);
    const byControl = new HeaderSelection({ controlRules: [{ id: 'tls', event: 'session.opened', where: { 'payload.client.tls': [true] } }] }, ...window);
    expect(byControl.selects(h('session.opened', { 'payload.client.tls': true }))).toBe(true);
    expect(byControl.selects(h('session.opened', { 'payload.client.tls': false }))).toBe(false);
    expect(byControl.selects({ ...h('session.opened', { 'payload.client.tls': true }), occurredAt: '2026-03-02T00:00:00.000000Z' })).toBe(false);
  });
});
