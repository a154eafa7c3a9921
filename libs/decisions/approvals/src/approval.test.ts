// The aggregate's rules, decided on events alone (no store, no clock of its own).
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { EventFactory, ManualClock, formatRfc3339Micros, type CustodianEvent, type GrantScope, type Identity } from '@custodian/event-contracts';
import type { ApprovalRequest } from '@custodian/session-pipeline';
import { TEST_POLICY, boundApprovalRequest } from './testing/index.js';
import { ApprovalError } from './approval-error.js';
import { Approval, approvalRequestedPayload, approvalStream, type ApprovalDecision } from './approval.js';

const T0 = 1_900_000_000_000_000n;
const SECOND = 1_000_000n;
const agent: Identity = { subject: 'agent-7', issuer: 'https://idp.test', groups: ['agents'], kind: 'agent' };
const bob: Identity = { subject: 'bob', issuer: 'https://idp.test', groups: ['dba-approvers'], kind: 'human' };
const carol: Identity = { subject: 'carol', issuer: 'https://idp.test', groups: ['security'], kind: 'human' };
const dave: Identity = { subject: 'dave', issuer: 'https://idp.test', groups: ['dba-approvers', 'oncall'], kind: 'human' };

function request(overrides: Partial<ApprovalRequest> = {}): ApprovalRequest {
  return boundApprovalRequest({
    approvalId: randomUUID(),
    sessionId: randomUUID(),
    commandId: randomUUID(),
    requester: agent,
    connection: { name: 'orders-prod', protocol: 'postgres' },
    command: 'DELETE FROM orders WHERE id = $1',
    ruleId: 'hold-deletes',
    approverGroups: ['dba-approvers', 'security'],
    required: 1,
    timeoutSeconds: 60,
    grantScope: { kind: 'once' },
    language: 'sql',
    policy: TEST_POLICY,
    ...overrides,
  });
}

/** An approval replayed from its own events: each decision's events are stamped and folded in, like the repository does. */
class Harness {
  readonly events: CustodianEvent[] = [];
  private readonly factory = new EventFactory({ service: 'api', instance: 'test' }, new ManualClock(T0));
  approval: Approval;

  constructor(readonly req: ApprovalRequest) {
    const payload = approvalRequestedPayload(req, T0);
    this.events.push(this.factory.create({ type: 'approval.requested', stream: approvalStream(req.approvalId), sequence: 0, identity: req.requester, payload }));
    this.approval = Approval.replay(this.events);
  }

  commit(decision: ApprovalDecision): ApprovalError | undefined {
    for (const e of decision.events) {
      const event = this.factory.create({ ...e, stream: approvalStream(this.req.approvalId), sequence: this.events.length, identity: e.identity ?? agent } as Parameters<EventFactory['create']>[0]) as CustodianEvent;
      this.events.push(event);
    }
    this.approval = Approval.replay(this.events);
    return decision.refusal;
  }
}

function codeOf(error: unknown): string | undefined {
  return error instanceof ApprovalError ? error.code : undefined;
}

function thrownCode(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (error) {
    return codeOf(error);
  }
  return undefined;
}

describe('approval.requested', () => {
  it('carries the masked command, rule, connection, deadline and grant scope', () => {
    const req = request({ timeoutSeconds: 90, grantScope: { kind: 'window', windowSeconds: 1800 } });
    const payload = approvalRequestedPayload(req, T0);
    expect(payload).toMatchObject({ approvalId: req.approvalId, command: req.command, ruleId: 'hold-deletes', required: 1, grantScope: { kind: 'window', windowSeconds: 1800 } });
    expect(payload.expiresAt).toBe(formatRfc3339Micros(T0 + 90n * SECOND));
  });

  it('carries the full command, its language, parameters, policy version and binding digest', () => {
    const req = request({ command: "UPDATE orders SET status = $1 WHERE id = 102 AND note = 'x'", parameters: ['shipped', null] });
    const payload = approvalRequestedPayload(req, T0);
    expect(payload).toMatchObject({ command: req.command, language: 'sql', parameters: ['shipped', null], policy: TEST_POLICY, commandDigest: req.commandDigest });
  });

  it.each<[string, (req: ApprovalRequest) => ApprovalRequest]>([
    ['a digest of something else', (req) => ({ ...req, commandDigest: `sha256:${'0'.repeat(64)}` })],
    ['a command changed after it was bound', (req) => ({ ...req, command: 'DELETE FROM orders' })],
    ['a parameter changed after it was bound', (req) => ({ ...req, parameters: ['103'] })],
    ['another requester than the one bound', (req) => ({ ...req, requester: { ...agent, subject: 'agent-8' } })],
    ['another policy version than the one bound', (req) => ({ ...req, policy: { ...TEST_POLICY, version: 4 } })],
    ['a digest that is not sha256:<hex>', (req) => ({ ...req, commandDigest: 'md5:abc' })],
  ])('refuses a request whose digest does not bind what it shows (%s)', (_why, alter) => {
    expect(thrownCode(() => approvalRequestedPayload(alter(request({ parameters: ['102'] })), T0))).toBe('APPROVAL_REQUEST_INVALID');
  });

  it('refuses rather than clips a command approvers could not see in full', () => {
    expect(thrownCode(() => approvalRequestedPayload(request({ command: 'x'.repeat(65_537) }), T0))).toBe('APPROVAL_REQUEST_INVALID');
    expect(thrownCode(() => approvalRequestedPayload(request({ parameters: Array.from({ length: 20 }, () => 'y'.repeat(60_000)) }), T0))).toBe('APPROVAL_REQUEST_INVALID');
    expect(thrownCode(() => approvalRequestedPayload(request({ parameters: ['z'.repeat(65_537)] }), T0))).toBe('APPROVAL_REQUEST_INVALID');
    expect(approvalRequestedPayload(request({ command: 'x'.repeat(65_536), parameters: ['y'.repeat(65_536)] }), T0).command).toHaveLength(65_536);
  });

  it.each<[string, Partial<ApprovalRequest>]>([
    ['no approver group', { approverGroups: [] }],
    ['required 0', { required: 0 }],
    ['timeout 0', { timeoutSeconds: 0 }],
    ['a window without its length', { grantScope: { kind: 'window' } as GrantScope }],
    ['a window over a day', { grantScope: { kind: 'window', windowSeconds: 86401 } }],
    ['an unknown language', { language: 'cobol' }],
    ['no policy version', { policy: { name: 'orders', version: 0, digest: 'a'.repeat(64) } }],
    ['a policy digest that is not hex SHA-256', { policy: { name: 'orders', version: 3, digest: 'abc' } }],
  ])('refuses a malformed request (%s): the gateway fails closed', (_why, overrides) => {
    expect(thrownCode(() => approvalRequestedPayload(request(overrides), T0))).toBe('APPROVAL_REQUEST_INVALID');
  });
});

describe('deciding', () => {
  it('one approval of a 1-of-M request grants it, once', () => {
    const h = new Harness(request());
    expect(h.commit(h.approval.approve(bob, 'ticket OPS-1', T0 + SECOND, { newId: () => 'ab1e0000-0000-4000-8000-000000000001' }))).toBeUndefined();
    expect(h.approval.status).toBe('granted');
    expect(h.approval.toOutcome()).toEqual({
      outcome: 'granted',
      approvers: [{ subject: 'bob', issuer: 'https://idp.test', groups: ['dba-approvers'] }],
      commandDigest: h.req.commandDigest,
      grantId: 'ab1e0000-0000-4000-8000-000000000001',
    });
    const granted = h.events.at(-1);
    expect(granted?.type).toBe('approval.granted');
    expect(granted?.identity).toEqual(bob);
    expect(granted?.payload).toMatchObject({ approvals: 1, required: 1, final: true, justification: 'ticket OPS-1', grant: { scope: { kind: 'once' } } });
  });

  it('2-of-3: the first approval is recorded but not final; a second distinct approver grants', () => {
    const h = new Harness(request({ required: 2 }));
    h.commit(h.approval.approve(bob, 'looks right', T0 + SECOND));
    expect(h.approval.status).toBe('pending');
    expect(h.events.at(-1)?.payload).toMatchObject({ approvals: 1, required: 2, final: false });
    expect(h.events.at(-1)?.payload).not.toHaveProperty('grant');
    expect(codeOf(h.commit(h.approval.approve(bob, 'again', T0 + 2n * SECOND)))).toBe('APPROVAL_ALREADY_APPROVED');
    h.commit(h.approval.approve(carol, 'ok from security', T0 + 3n * SECOND));
    expect(h.approval.status).toBe('granted');
    expect(h.approval.toOutcome()).toMatchObject({ outcome: 'granted', approvers: [{ subject: 'bob' }, { subject: 'carol' }] });
  });

  it('each approval names the digest approved; a window grant names what it covers, a once grant nothing more', () => {
    const once = new Harness(request());
    once.commit(once.approval.approve(bob, 'ok', T0 + SECOND));
    expect(once.events.at(-1)?.payload).toMatchObject({ commandDigest: once.req.commandDigest });
    expect(once.approval.resolution?.status === 'granted' && once.approval.resolution.grant?.covers).toBeUndefined();
    const windowed = new Harness(request({ required: 2, grantScope: { kind: 'window', windowSeconds: 600 } }));
    windowed.commit(windowed.approval.approve(bob, 'ok', T0 + SECOND));
    expect(windowed.events.at(-1)?.payload).toMatchObject({ commandDigest: windowed.req.commandDigest, final: false });
    windowed.commit(windowed.approval.approve(carol, 'ok', T0 + 2n * SECOND));
    expect(windowed.events.at(-1)?.payload).toMatchObject({
      commandDigest: windowed.req.commandDigest,
      final: true,
      grant: { covers: { identity: { issuer: agent.issuer, subject: agent.subject }, connection: { name: 'orders-prod', protocol: 'postgres' }, ruleId: 'hold-deletes', policy: TEST_POLICY } },
    });
  });

  it('a window grant lasts windowSeconds from the final approval', () => {
    const h = new Harness(request({ grantScope: { kind: 'window', windowSeconds: 1800 } }));
    h.commit(h.approval.approve(dave, 'migration window', T0 + 5n * SECOND));
    expect(h.events.at(-1)?.payload).toMatchObject({ grant: { scope: { kind: 'window', windowSeconds: 1800 }, expiresAt: formatRfc3339Micros(T0 + 1805n * SECOND) } });
  });

  it('the requester never decides their own request: not with another token, not from another issuer, not even to deny', () => {
    const h = new Harness(request({ requester: { ...bob, groups: ['dba-approvers'] } }));
    const secondToken: Identity = { ...bob, groups: ['dba-approvers', 'security'] };
    const otherIssuer: Identity = { ...bob, issuer: 'https://other-idp.test' };
    expect(codeOf(h.commit(h.approval.approve(secondToken, 'mine', T0 + SECOND)))).toBe('APPROVAL_SELF_DECISION_FORBIDDEN');
    expect(codeOf(h.commit(h.approval.approve(otherIssuer, 'mine', T0 + SECOND)))).toBe('APPROVAL_SELF_DECISION_FORBIDDEN');
    expect(codeOf(h.commit(h.approval.deny(secondToken, 'mine', T0 + SECOND)))).toBe('APPROVAL_SELF_DECISION_FORBIDDEN');
    expect(h.events).toHaveLength(1);
    expect(h.approval.status).toBe('pending');
  });

  it('approvers must hold an approver group in the identity presented now, and be human', () => {
    const h = new Harness(request());
    expect(codeOf(h.commit(h.approval.approve({ ...bob, groups: ['developers'] }, 'trust me', T0 + SECOND)))).toBe('APPROVAL_NOT_AN_APPROVER');
    expect(codeOf(h.commit(h.approval.approve({ ...bob, subject: 'ci-bot', kind: 'service' }, 'automated', T0 + SECOND)))).toBe('APPROVAL_APPROVER_NOT_HUMAN');
    expect(codeOf(h.commit(h.approval.approve({ ...bob, subject: 'agent-9', kind: 'agent' }, 'automated', T0 + SECOND)))).toBe('APPROVAL_APPROVER_NOT_HUMAN');
    expect(h.events).toHaveLength(1);
  });

  it('a justification is required (blank is none) and bounded', () => {
    const h = new Harness(request());
    expect(thrownCode(() => h.approval.approve(bob, '   ', T0 + SECOND))).toBe('APPROVAL_JUSTIFICATION_REQUIRED');
    expect(thrownCode(() => h.approval.deny(bob, '', T0 + SECOND))).toBe('APPROVAL_JUSTIFICATION_REQUIRED');
    expect(thrownCode(() => h.approval.approve(bob, 'x'.repeat(4097), T0 + SECOND))).toBe('APPROVAL_JUSTIFICATION_REQUIRED');
  });

  it('one denial denies, and nothing follows an outcome', () => {
    const h = new Harness(request({ required: 2 }));
    h.commit(h.approval.approve(bob, 'fine by me', T0 + SECOND));
    h.commit(h.approval.deny(carol, 'not during the freeze', T0 + 2n * SECOND));
    expect(h.approval.toOutcome()).toEqual({ outcome: 'denied', approver: { subject: 'carol', issuer: 'https://idp.test', groups: ['security'] }, justification: 'not during the freeze' });
    expect(codeOf(h.commit(h.approval.approve(dave, 'late', T0 + 3n * SECOND)))).toBe('APPROVAL_NOT_PENDING');
    expect(h.approval.expire(T0 + 100n * SECOND, null).events).toHaveLength(0);
    expect(h.approval.cancel('client-disconnected', agent).events).toHaveLength(0);
  });

  it('deny after approve is refused (the approval is granted)', () => {
    const h = new Harness(request());
    h.commit(h.approval.approve(bob, 'ok', T0 + SECOND));
    expect(codeOf(h.commit(h.approval.deny(carol, 'no', T0 + 2n * SECOND)))).toBe('APPROVAL_NOT_PENDING');
    expect(h.approval.status).toBe('granted');
  });

  it('approve after the deadline records the expiry and refuses', () => {
    const h = new Harness(request({ timeoutSeconds: 10 }));
    expect(codeOf(h.commit(h.approval.approve(bob, 'sorry, late', T0 + 10n * SECOND)))).toBe('APPROVAL_EXPIRED');
    expect(h.events.map((e) => e.type)).toEqual(['approval.requested', 'approval.expired']);
    expect(h.approval.toOutcome()).toEqual({ outcome: 'expired' });
  });

  it('expire before the deadline is refused; after it, recorded once', () => {
    const h = new Harness(request({ timeoutSeconds: 10 }));
    expect(codeOf(h.commit(h.approval.expire(T0 + 9n * SECOND, null)))).toBe('APPROVAL_NOT_EXPIRED');
    expect(h.commit(h.approval.expire(T0 + 10n * SECOND, null))).toBeUndefined();
    expect(h.approval.expire(T0 + 11n * SECOND, null).events).toHaveLength(0);
    expect(h.events.filter((e) => e.type === 'approval.expired')).toHaveLength(1);
  });

  it('cancellation names why and is bound to who went away', () => {
    const h = new Harness(request());
    h.commit(h.approval.cancel('client-disconnected', agent));
    expect(h.approval.toOutcome()).toEqual({ outcome: 'cancelled', reason: 'client-disconnected' });
    expect(h.events.at(-1)?.identity).toEqual(agent);
  });
});
