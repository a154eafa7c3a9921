// The protocol-neutral pipeline without any wire: a real OpenID Provider, a real SQLite event store
// behind the store evidence pipeline, a real policy. What every protocol adapter relies on.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CustodianEvent } from '@custodian/event-contracts';
import { SqliteEventStore } from '@custodian/event-store-sqlite';
import { PipelineRefusedError, StoreEvidencePipeline, type EvidencePipeline } from '@custodian/evidence-pipeline';
import { OidcAccessTokenVerifier } from '@custodian/identity-oidc';
import { parsePolicy } from '@custodian/policy';
import { startOidcProvider, type StartedOidcProvider } from '@custodian/test-harness';
import type { ApprovalGate, ApprovalOutcome, ApprovalRequest } from './approval-gate.js';
import { authorizeConnection } from './connection-authorization.js';
import { maskingPolicyFromRules } from './masking-configuration.js';
import { SessionRefusal } from './session-errors.js';
import { SessionPipeline, type PipelineSession } from './session-pipeline.js';

const POLICY = parsePolicy(
  `
name: pipeline-test
rules:
  - id: no-drops
    match: { sql: { kinds: [ddl] } }
    decision: block
    message: No DDL here.
  - id: readers
    match: { identity: { groups: [readers] }, connections: ["orders-*"], sql: { kinds: [read] } }
    decision: allow
  - id: writers-wait
    match: { identity: { groups: [readers] }, connections: ["orders-*"], sql: { kinds: [write] } }
    decision: require-approval
    approval: { approverGroups: [dba], required: 1, timeoutSeconds: 60, grant: once }
  - id: ops-shell
    match: { identity: { groups: [ops] }, protocols: [ssh], shell: { programs: [ls] } }
    decision: allow
masking:
  - { id: emails, columns: ["public.users.email"], strategy: partial, keepLast: 4 }
  - { id: cards, detectors: [card], strategy: redact }
`,
  'pipeline-test.yaml',
);

/** Test-only ApprovalGate: answers every request with the outcome the test set. */
class TestOnlyApprovalGate implements ApprovalGate {
  readonly requests: ApprovalRequest[] = [];
  constructor(private readonly outcome: ApprovalOutcome) {}
  async activeGrant(): Promise<null> {
    return null;
  }
  async request(request: ApprovalRequest): Promise<ApprovalOutcome> {
    this.requests.push(request);
    return this.outcome;
  }
}

let oidc: StartedOidcProvider;
let store: SqliteEventStore;
let dir: string;
let refusing = false;
let evidence: EvidencePipeline;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'custodian-session-pipeline-'));
  oidc = await startOidcProvider({ clients: [{ clientId: 'reader-agent', groups: ['readers'] }, { clientId: 'ops-agent', groups: ['ops'] }] });
  store = await SqliteEventStore.open({ path: join(dir, 'events.sqlite') });
  const inner = new StoreEvidencePipeline({ store, instance: 'pipeline-test' });
  evidence = {
    accept: (events) => (refusing ? Promise.reject(new PipelineRefusedError('PIPELINE_STORE_UNWRITABLE', 'test outage')) : inner.accept(events)),
    status: () => inner.status(),
    close: () => inner.close(),
  };
  await SessionPipeline.ready();
});
afterAll(async () => {
  await store?.close();
  await oidc?.stop();
  rmSync(dir, { recursive: true, force: true });
});

function pipeline(approvals?: ApprovalGate): SessionPipeline {
  return new SessionPipeline({
    verifier: new OidcAccessTokenVerifier({ issuers: [{ issuer: oidc.issuer, audiences: [oidc.defaultAudience], claims: { defaultKind: 'agent' } }] }),
    policy: { policy: POLICY },
    evidence,
    strict: true,
    source: { service: 'gateway', instance: 'pipeline-test' },
    maskingKey: randomBytes(32),
    ...(approvals ? { approvals } : {}),
  });
}

async function open(p: SessionPipeline, client = 'reader-agent', connection = 'orders-prod'): Promise<PipelineSession> {
  const token = (await oidc.issueToken({ clientId: client })).accessToken;
  const authorized = await p.authenticate({ protocol: 'postgres', connection, connectionExists: true, token, clientAddress: '127.0.0.1:5000' });
  return p.openSession(authorized, { address: '127.0.0.1:5000', tls: true });
}

async function streamOf(session: PipelineSession): Promise<CustodianEvent[]> {
  const out: CustodianEvent[] = [];
  for await (const recorded of store.readStream(session.stream)) out.push(recorded.event);
  return out;
}

describe('connection authorization', () => {
  const identity = (groups: string[]) => ({ subject: 'x', issuer: 'https://idp', groups, kind: 'agent' as const });
  it('a connection is usable when an allow or require-approval rule covers identity, connection and protocol', () => {
    expect(authorizeConnection(POLICY, { identity: identity(['readers']), connection: 'orders-prod', protocol: 'postgres' })).toMatchObject({ permitted: true, ruleId: 'readers' });
    expect(authorizeConnection(POLICY, { identity: identity(['readers']), connection: 'billing', protocol: 'postgres' }).permitted).toBe(false);
    // Block rules and shell rules never open a SQL session.
    expect(authorizeConnection(POLICY, { identity: identity(['ops']), connection: 'orders-prod', protocol: 'postgres' }).permitted).toBe(false);
    expect(authorizeConnection(POLICY, { identity: identity(['ops']), connection: 'orders-prod', protocol: 'ssh' })).toMatchObject({ permitted: true, ruleId: 'ops-shell' });
  });
});

describe('masking from the policy', () => {
  it('column rules by name; only the detectors a rule names, under that rule id', () => {
    const masking = maskingPolicyFromRules(POLICY.masking, randomBytes(32));
    expect(masking.forColumn('public.users.email')?.id).toBe('emails');
    expect(masking.forColumn('public.users.name')).toBeUndefined();
    expect(masking.maskText('card 4111 1111 1111 1111, mail a@b.example', 'notes')).toBe('card [REDACTED:cards], mail a@b.example');
  });
});

describe('session pipeline', () => {
  it('a refused token and a connection nobody may use are SessionRefusals with codes', async () => {
    const p = pipeline();
    await expect(p.authenticate({ protocol: 'postgres', connection: 'orders-prod', connectionExists: true, token: 'nope', clientAddress: '127.0.0.1:1' })).rejects.toMatchObject({
      code: 'AUTHENTICATION_FAILED',
      reasonCode: 'TOKEN_MALFORMED',
    });
    const token = (await oidc.issueToken({ clientId: 'ops-agent' })).accessToken;
    const refusal = await p.authenticate({ protocol: 'postgres', connection: 'orders-prod', connectionExists: true, token, clientAddress: '127.0.0.1:1' }).catch((e: unknown) => e);
    expect(refusal).toBeInstanceOf(SessionRefusal);
    expect((refusal as SessionRefusal).code).toBe('CONNECTION_NOT_PERMITTED');
  });

  it('allow: durable command.issued and policy.decided before forwarding; block: a message naming the rule', async () => {
    const session = await open(pipeline());
    const read = session.decideSql("SELECT * FROM users WHERE email = 'a@b.example'");
    const allowed = await session.issue({ kind: 'sql', text: read.normalized, decision: read.decision });
    expect(allowed).toMatchObject({ forward: true, via: 'policy' });
    // Strict mode: already in the store when issue() resolved.
    const events = await streamOf(session);
    expect(events.map((e) => e.type)).toEqual(['authentication.succeeded', 'session.opened', 'command.issued', 'policy.decided']);
    expect(JSON.stringify(events)).not.toContain('a@b.example');
    const drop = session.decideSql('DROP TABLE users');
    const blocked = await session.issue({ kind: 'sql', text: drop.normalized, decision: drop.decision });
    expect(blocked).toMatchObject({ forward: false, code: 'POLICY_BLOCKED', message: 'No DDL here. (rule no-drops)', ruleId: 'no-drops' });
    await session.close('client-closed');
    const closed = await streamOf(session);
    expect(closed.map((e) => e.sequence)).toEqual(closed.map((_, i) => i));
    expect(closed.at(-1)?.type).toBe('session.closed');
  });

  it('require-approval: waits on the gate; granted forwards, denied refuses with the approver, no gate refuses', async () => {
    const granted = new TestOnlyApprovalGate({ outcome: 'granted', approvers: [{ subject: 'dba-1', issuer: 'https://idp', groups: ['dba'] }] });
    const session = await open(pipeline(granted));
    const write = session.decideSql('UPDATE users SET name = $1 WHERE id = 2');
    expect(await session.issue({ kind: 'sql', text: write.normalized, decision: write.decision })).toMatchObject({ forward: true, via: 'approval' });
    expect(granted.requests[0]).toMatchObject({ ruleId: 'writers-wait', approverGroups: ['dba'], required: 1, timeoutSeconds: 60, grantScope: { kind: 'once' }, command: 'UPDATE users SET name = $1 WHERE id = $2' });
    const denied = await open(pipeline(new TestOnlyApprovalGate({ outcome: 'denied', approver: { subject: 'dba-2', issuer: 'https://idp', groups: ['dba'] }, justification: 'no' })));
    expect(await denied.issue({ kind: 'sql', text: write.normalized, decision: write.decision })).toMatchObject({ forward: false, code: 'APPROVAL_DENIED', message: 'Approval denied by dba-2 (rule writers-wait): no' });
    const ungated = await open(pipeline());
    expect(await ungated.issue({ kind: 'sql', text: write.normalized, decision: write.decision })).toMatchObject({ forward: false, code: 'APPROVAL_UNAVAILABLE' });
  });

  it('strict mode fails closed when the pipeline refuses, and the stream keeps its sequence after recovery', async () => {
    const session = await open(pipeline());
    const read = session.decideSql('SELECT 1');
    refusing = true;
    const refused = await session.issue({ kind: 'sql', text: read.normalized, decision: read.decision });
    expect(refused).toMatchObject({ forward: false, code: 'EVIDENCE_UNAVAILABLE' });
    expect(refused.forward === false && refused.message).toContain('test outage');
    refusing = false;
    expect(await session.issue({ kind: 'sql', text: read.normalized, decision: read.decision })).toMatchObject({ forward: true });
    const events = await streamOf(session);
    expect(events.map((e) => e.sequence)).toEqual(events.map((_, i) => i));
    expect(events.filter((e) => e.type === 'command.issued')).toHaveLength(2);
  });
});
