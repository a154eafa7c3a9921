// The binding digest approvals are bound to (approvalBindingDigest, the session pipeline's port):
// stable, recomputable from the RFC 8785 text by anyone, and different whenever anything an
// approver sees or the policy version differs.
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { approvalBindingDigest, type ApprovalBindingInput } from '@custodian/session-pipeline';

const base: ApprovalBindingInput = {
  identity: { issuer: 'https://idp.test', subject: 'agent-7' },
  connection: { name: 'orders-prod', protocol: 'postgres' },
  language: 'sql',
  command: 'UPDATE orders SET status = $1 WHERE id = 102',
  parameters: ['shipped', null],
  policy: { name: 'orders', version: 3, digest: 'a'.repeat(64) },
};

describe('approvalBindingDigest', () => {
  it('is sha256 of the RFC 8785 canonical JSON (sorted keys, no whitespace), whatever the key order or extra identity fields', () => {
    const canonical =
      '{"command":"UPDATE orders SET status = $1 WHERE id = 102","connection":{"name":"orders-prod","protocol":"postgres"},' +
      '"identity":{"issuer":"https://idp.test","subject":"agent-7"},"language":"sql","parameters":["shipped",null],' +
      `"policy":{"digest":"${'a'.repeat(64)}","name":"orders","version":3}}`;
    const expected = `sha256:${createHash('sha256').update(canonical, 'utf8').digest('hex')}`;
    expect(approvalBindingDigest(base)).toBe(expected);
    const reordered = {
      policy: { digest: 'a'.repeat(64), version: 3, name: 'orders' },
      parameters: ['shipped', null],
      command: base.command,
      language: 'sql',
      connection: { protocol: 'postgres', name: 'orders-prod' },
      identity: { subject: 'agent-7', issuer: 'https://idp.test', groups: ['agents'], kind: 'agent' },
    };
    expect(approvalBindingDigest(reordered)).toBe(expected);
    expect(approvalBindingDigest(base)).toBe(approvalBindingDigest({ ...base }));
  });

  it.each<[string, Partial<ApprovalBindingInput>]>([
    ['identity subject', { identity: { issuer: 'https://idp.test', subject: 'agent-8' } }],
    ['identity issuer', { identity: { issuer: 'https://other-idp.test', subject: 'agent-7' } }],
    ['connection name', { connection: { name: 'billing-prod', protocol: 'postgres' } }],
    ['connection protocol', { connection: { name: 'orders-prod', protocol: 'ssh' } }],
    ['language', { language: 'shell' }],
    ['command text', { command: 'UPDATE orders SET status = $1 WHERE id = 103' }],
    ['command whitespace', { command: 'UPDATE orders SET status = $1 WHERE id = 102 ' }],
    ['first parameter', { parameters: ['cancelled', null] }],
    ['second parameter', { parameters: ['shipped', 'null'] }],
    ['parameter order', { parameters: [null, 'shipped'] }],
    ['one more parameter', { parameters: ['shipped', null, '1'] }],
    ['no parameters', { parameters: undefined }],
    ['empty parameters', { parameters: [] }],
    ['policy version', { policy: { name: 'orders', version: 4, digest: 'a'.repeat(64) } }],
    ['policy digest', { policy: { name: 'orders', version: 3, digest: 'b'.repeat(64) } }],
    ['policy name', { policy: { name: 'billing', version: 3, digest: 'a'.repeat(64) } }],
  ])('changes with the %s', (_what, change) => {
    const changed = { ...base, ...change };
    if ('parameters' in change && change.parameters === undefined) delete (changed as { parameters?: unknown }).parameters;
    expect(approvalBindingDigest(changed)).not.toBe(approvalBindingDigest(base));
    expect(approvalBindingDigest(changed)).toMatch(/^sha256:[0-9a-f]{64}$/);
  });

  it('no parameters and an empty list are different bindings', () => {
    const { parameters: _parameters, ...none } = base;
    expect(approvalBindingDigest(none)).not.toBe(approvalBindingDigest({ ...none, parameters: [] }));
  });
});
