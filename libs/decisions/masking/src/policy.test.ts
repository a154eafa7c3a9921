import { EventFactory } from '@custodian/event-contracts';
import { describe, expect, it } from 'vitest';
import { MaskingFindings } from './findings.js';
import { formatJsonPath, jsonPathMatches, parseJsonPath } from './json-path.js';
import { MaskingPolicy } from './policy.js';

const policy = MaskingPolicy.create({
  hmacKey: Buffer.from('0123456789abcdef0123456789abcdef'),
  columns: [
    { column: '*.users.email', id: 'pii-email', strategy: { kind: 'hmac' } },
    { column: 'public.users.email', id: 'pii-email-public', strategy: { kind: 'partial', keepLast: 4 } },
    { column: '*.*.ssn', id: 'pii-ssn', strategy: { kind: 'redact' } },
    { column: 'card_*', id: 'pci-card', strategy: { kind: 'partial' } },
  ],
  jsonPaths: [
    { path: '$.user.ssn', id: 'pii-ssn', strategy: { kind: 'redact' } },
    { path: '$.items[*].card', id: 'pci-card', strategy: { kind: 'partial' } },
    { path: '$..password', id: 'credential', strategy: { kind: 'redact', label: 'secret' } },
    { path: "$.meta['raw body']", id: 'raw', strategy: { kind: 'redact' } },
  ],
});

describe('column rules', () => {
  it('resolves the most specific matching pattern', () => {
    expect(policy.forColumn('public.users.email')?.id).toBe('pii-email-public');
    expect(policy.forColumn('crm.users.email')?.id).toBe('pii-email');
    expect(policy.forColumn('crm.USERS.Email')?.id).toBe('pii-email');
    expect(policy.forColumn('hr.people.ssn')?.id).toBe('pii-ssn');
    expect(policy.forColumn('billing.orders.card_number')?.id).toBe('pci-card');
    expect(policy.forColumn('crm.users.name')).toBeUndefined();
  });

  it('masks a row by column rule and free-text cells by detectors, counting per field', () => {
    const findings = new MaskingFindings();
    const row = policy.maskRow('crm.users', { id: 7, email: 'John@Example.com', note: 'call +1 212 555 0123', ssn: '219-45-6789' }, findings);
    expect(row['id']).toBe(7);
    expect(row['email']).toMatch(/^tok_[a-z2-7]{16}$/);
    expect(row['note']).toBe('call [REDACTED:phone]');
    expect(row['ssn']).toBe('[REDACTED:pii-ssn]');
    expect(findings.toArray()).toEqual([
      { field: 'crm.users.email', rule: 'pii-email', count: 1 },
      { field: 'crm.users.note', rule: 'detector:phone', detector: 'phone', count: 1 },
      { field: 'crm.users.ssn', rule: 'pii-ssn', count: 1 },
    ]);
  });
});

describe('JSON paths', () => {
  it('parses and matches the supported subset', () => {
    expect(jsonPathMatches(parseJsonPath('$.items[*].card'), ['items', 3, 'card'])).toBe(true);
    expect(jsonPathMatches(parseJsonPath('$..password'), ['a', 0, 'b', 'password'])).toBe(true);
    expect(jsonPathMatches(parseJsonPath('$.items[1]'), ['items', 2])).toBe(false);
    expect(formatJsonPath(['items', 2, 'a b'], { wildcardIndices: true })).toBe("$.items[*]['a b']");
    expect(() => parseJsonPath('items')).toThrow(expect.objectContaining({ code: 'MASKING_INVALID_PATTERN' }));
    expect(policy.forJsonPath('$.items[4].card')?.id).toBe('pci-card');
    expect(policy.forJsonPath("$.meta['raw body']")?.id).toBe('raw');
  });

  it('answers a path lookup by its shape, the same every time, and keeps indices when a rule names one', () => {
    const byShape = MaskingPolicy.create({ jsonPaths: [{ id: 'card', path: '$.items[*].card', strategy: { kind: 'redact' } }, { id: 'deep', path: '$..secret', strategy: { kind: 'redact' } }] });
    for (let i = 0; i < 3; i++) {
      expect(byShape.forJsonPath(['items', i, 'card'])?.id).toBe('card');
      expect(byShape.forJsonPath(['items', i, 'qty'])).toBeUndefined();
      expect(byShape.forJsonPath(['items', i, 'x', 'secret'])?.id).toBe('deep');
    }
    // A key that looks like two keys is not the same shape.
    expect(byShape.forJsonPath(['items.0', 'card'])).toBeUndefined();
    expect(byShape.forJsonPath(['items', 'x.card'])).toBeUndefined();
    const byIndex = MaskingPolicy.create({ jsonPaths: [{ id: 'first', path: '$.items[0].card', strategy: { kind: 'redact' } }] });
    for (let round = 0; round < 2; round++) {
      expect(byIndex.forJsonPath(['items', 0, 'card'])?.id).toBe('first');
      expect(byIndex.forJsonPath(['items', 1, 'card'])).toBeUndefined();
    }
  });

  it('masks by path and by detectors, reporting paths with [*] indices', () => {
    const doc = {
      user: { ssn: '219-45-6789', name: 'Maria', contact: 'maria@example.com' },
      items: [{ card: '4111111111111111', qty: 1 }, { card: '5500 0055 5555 5559', qty: 2 }],
      auth: { nested: { password: 'hunter2' } },
      big: 4111111111111111,
      ok: true,
    };
    const { value, findings } = policy.maskJson(doc, { location: 'response.body' });
    expect(value).toEqual({
      user: { ssn: '[REDACTED:pii-ssn]', name: 'Maria', contact: '[REDACTED:email]' },
      items: [{ card: '************1111', qty: 1 }, { card: '**** **** **** 5559', qty: 2 }],
      auth: { nested: { password: '[REDACTED:secret]' } },
      big: '[REDACTED:card]',
      ok: true,
    });
    expect(findings.toArray()).toEqual([
      { field: 'response.body$.auth.nested.password', rule: 'credential', count: 1 },
      { field: 'response.body$.big', rule: 'detector:card', detector: 'card', count: 1 },
      { field: 'response.body$.items[*].card', rule: 'pci-card', count: 2 },
      { field: 'response.body$.user.contact', rule: 'detector:email', detector: 'email', count: 1 },
      { field: 'response.body$.user.ssn', rule: 'pii-ssn', count: 1 },
    ]);
  });
});

describe('data.masked facts', () => {
  it('produces a maskings array that validates as a data.masked v1 payload', () => {
    const findings = new MaskingFindings();
    const stream = policy.createStreamMasker('content[0].text', findings);
    stream.push('mail maria@exa');
    stream.push('mple.com and 4111 1111 1111 1111');
    stream.end();
    const maskings = findings.toDataMaskedMaskings();
    expect(maskings).toBeDefined();
    const event = new EventFactory({ service: 'gateway', instance: 'test' }).create({
      type: 'data.masked',
      stream: 'session-0190f0f0-0000-7000-8000-000000000001',
      sequence: 1,
      identity: null,
      payload: { sessionId: '0190f0f0-0000-7000-8000-000000000001', maskings: maskings! },
    });
    expect(event.payload.maskings).toEqual([
      { field: 'content[0].text', rule: 'detector:card', detector: 'card', count: 1 },
      { field: 'content[0].text', rule: 'detector:email', detector: 'email', count: 1 },
    ]);
    expect(JSON.stringify(event)).not.toMatch(/maria|4111/);
    expect(new MaskingFindings().toDataMaskedMaskings()).toBeUndefined();
  });
});
