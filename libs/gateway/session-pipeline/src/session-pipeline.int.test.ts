// The protocol-neutral pipeline without any wire: a real OpenID Provider, a real SQLite event store
// behind the store evidence pipeline, a real policy. What every protocol adapter relies on.
import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuthenticationFailed, CustodianEvent } from '@custodian/event-contracts';
import { verifyCustodyAttestation, type CustodySigningKey } from '@custodian/custody';
import { SqliteEventStore } from '@custodian/event-store-sqlite';
import { PipelineRefusedError, StoreEvidencePipeline, type EvidencePipeline } from '@custodian/evidence-pipeline';
import { OidcAccessTokenVerifier } from '@custodian/identity-oidc';
import { parsePolicy, type PolicyContext } from '@custodian/policy';
import { decideSql, sqlClassificationSummary, sqlLanguage } from '@custodian/policy-languages';
import { startOidcProvider, type StartedOidcProvider } from '@custodian/test-harness';
import type { ApprovalGate, ApprovalOutcome, ApprovalRequest } from './approval-gate.js';
import { maskingPolicyFromRules } from './masking-configuration.js';
import { SessionRefusal } from './session-errors.js';
import { SessionPipeline, type PipelineSession, type SessionCommand } from './session-pipeline.js';

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
  /** A granted outcome answers with the request's own digest. */
  constructor(private readonly outcome: Exclude<ApprovalOutcome, { outcome: 'granted' }> | Omit<Extract<ApprovalOutcome, { outcome: 'granted' }>, 'commandDigest'>) {}
  async activeGrant(): Promise<null> {
    return null;
  }
  async request(request: ApprovalRequest): Promise<ApprovalOutcome> {
    this.requests.push(request);
    const { outcome } = this;
    return outcome.outcome === 'granted' ? { ...outcome, commandDigest: request.commandDigest } : outcome;
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
  await sqlLanguage.ready();
});
afterAll(async () => {
  await store?.close();
  await oidc?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const custodyKeyPair = generateKeyPairSync('ed25519');
const CUSTODY_KEY: CustodySigningKey = { keyId: 'gateway-test', privateKey: custodyKeyPair.privateKey, publicKeyPem: custodyKeyPair.publicKey.export({ type: 'spki', format: 'pem' }).toString() };

/** authentication.failed payloads the pipelines recorded (the sink a gateway wires to the event store). */
const recordedFailures: AuthenticationFailed[] = [];

function pipeline(approvals?: ApprovalGate, options: { strict?: boolean } = {}): SessionPipeline {
  return new SessionPipeline({
    authenticationFailures: { failed: async (payload) => void recordedFailures.push(payload) },
    custodyKey: CUSTODY_KEY,
    verifier: new OidcAccessTokenVerifier({ issuers: [{ issuer: oidc.issuer, audiences: [oidc.defaultAudience], claims: { defaultKind: 'agent' } }] }),
    policy: { policy: POLICY },
    evidence,
    strict: options.strict ?? true,
    source: { service: 'gateway', instance: 'pipeline-test' },
    maskingKey: randomBytes(32),
    ...(approvals ? { approvals } : {}),
  });
}

async function open(p: SessionPipeline, client = 'reader-agent', connection = 'orders-prod', protocol: 'postgres' | 'ssh' = 'postgres'): Promise<PipelineSession> {
  const token = (await oidc.issueToken({ clientId: client })).accessToken;
  const authorized = await p.authenticate({ protocol, presentedAs: 'password', connection, connectionExists: true, token, clientAddress: '127.0.0.1:5000' });
  return p.openSession(authorized, { address: '127.0.0.1:5000', tls: true });
}

async function streamOf(session: PipelineSession): Promise<CustodianEvent[]> {
  const out: CustodianEvent[] = [];
  for await (const recorded of store.readStream(session.stream)) out.push(recorded.event);
  return out;
}

/** What a SQL adapter hands the pipeline (here without a wire: the text as events show it). */
async function sqlCommand(session: PipelineSession, sql: string): Promise<SessionCommand> {
  const context: PolicyContext = session.policyContext;
  const decision = await decideSql(session.policy, context, sql);
  return { language: 'sql', kind: 'sql', text: sql, summary: sqlClassificationSummary(decision.classification), decision };
}

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
    await expect(p.authenticate({ protocol: 'postgres', presentedAs: 'password', connection: 'orders-prod', connectionExists: true, token: 'nope', clientAddress: '127.0.0.1:1' })).rejects.toMatchObject({
      code: 'AUTHENTICATION_FAILED',
      reasonCode: 'TOKEN_MALFORMED',
    });
    const token = (await oidc.issueToken({ clientId: 'ops-agent' })).accessToken;
    const refusal = await p.authenticate({ protocol: 'postgres', presentedAs: 'password', connection: 'orders-prod', connectionExists: true, token, clientAddress: '127.0.0.1:1' }).catch((e: unknown) => e);
    expect(refusal).toBeInstanceOf(SessionRefusal);
    expect((refusal as SessionRefusal).code).toBe('CONNECTION_NOT_PERMITTED');
    // Both refusals name the connection asked for as a field (evidence filters select them by it), and the subject claimed.
    expect(recordedFailures.slice(-2)).toEqual([
      expect.objectContaining({ reasonCode: 'TOKEN_MALFORMED', connection: { name: 'orders-prod', protocol: 'postgres' } }),
      expect.objectContaining({ reasonCode: 'CONNECTION_NOT_PERMITTED', connection: { name: 'orders-prod', protocol: 'postgres' }, claimedSubject: expect.any(String) }),
    ]);
  });

  it('allow: durable command.issued and policy.decided before forwarding; block: a message naming the rule', async () => {
    const session = await open(pipeline());
    const read = await sqlCommand(session, "SELECT * FROM users WHERE email = '[REDACTED:email]'");
    const allowed = await session.issue(read);
    expect(allowed).toMatchObject({ forward: true, via: 'policy' });
    // Strict mode: already in the store when issue() resolved.
    const events = await streamOf(session);
    expect(events.map((e) => e.type)).toEqual(['authentication.succeeded', 'session.opened', 'command.issued', 'policy.decided']);
    expect(events[2]).toMatchObject({ type: 'command.issued', payload: { text: "SELECT * FROM users WHERE email = '[REDACTED:email]'", classification: { language: 'sql', ok: true, kind: 'read' } } });
    expect(events[0]).toMatchObject({ type: 'authentication.succeeded', payload: { presentedAs: 'password', connection: { name: 'orders-prod', protocol: 'postgres' } } });
    const blocked = await session.issue(await sqlCommand(session, 'DROP TABLE users'));
    expect(blocked).toMatchObject({ forward: false, code: 'POLICY_BLOCKED', message: 'No DDL here. (rule no-drops)', ruleId: 'no-drops' });
    await session.close('client-closed');
    const closed = await streamOf(session);
    expect(closed.map((e) => e.sequence)).toEqual(closed.map((_, i) => i));
    expect(closed.at(-1)?.type).toBe('session.closed');
  });

  it('whenRecorded: a block is answered at once; after whenRecorded() its events and the frames before it are durable', async () => {
    const session = await open(pipeline());
    session.recordFrame('client-to-upstream', 'Query', Buffer.from('DROP TABLE users'));
    const blocked = await session.issue(await sqlCommand(session, 'DROP TABLE users'));
    expect(blocked).toMatchObject({ forward: false, code: 'POLICY_BLOCKED' });
    expect(await session.whenRecorded(5_000)).toBe(true);
    expect((await streamOf(session)).map((e) => e.type)).toEqual(['authentication.succeeded', 'session.opened', 'frame.recorded', 'command.issued', 'policy.decided']);
    await session.close('client-closed');
  });

  it('require-approval: waits on the gate; granted forwards, denied refuses with the approver, no gate refuses', async () => {
    const granted = new TestOnlyApprovalGate({ outcome: 'granted', approvers: [{ subject: 'dba-1', issuer: 'https://idp', groups: ['dba'] }] });
    const session = await open(pipeline(granted));
    const write = { ...(await sqlCommand(session, 'UPDATE users SET name = $1 WHERE id = 102')), parameters: ['Ada'] };
    const outcome = await session.issue(write);
    expect(outcome).toMatchObject({ forward: true, via: 'approval' });
    // The outcome names the approval that granted it (adapters link what follows to it).
    expect(outcome.forward && outcome.approvalId).toBe(granted.requests[0]!.approvalId);
    // Approvers see the literal values and the bound parameters, and the request is bound to them.
    expect(granted.requests[0]).toMatchObject({
      ruleId: 'writers-wait',
      approverGroups: ['dba'],
      required: 1,
      timeoutSeconds: 60,
      grantScope: { kind: 'once' },
      command: 'UPDATE users SET name = $1 WHERE id = 102',
      language: 'sql',
      parameters: ['Ada'],
      policy: POLICY.ref,
    });
    expect(granted.requests[0]?.commandDigest).toMatch(/^sha256:[0-9a-f]{64}$/);
    const denied = await open(pipeline(new TestOnlyApprovalGate({ outcome: 'denied', approver: { subject: 'dba-2', issuer: 'https://idp', groups: ['dba'] }, justification: 'no' })));
    expect(await denied.issue(write)).toMatchObject({ forward: false, code: 'APPROVAL_DENIED', message: 'Approval denied by dba-2 (rule writers-wait): no' });
    const ungated = await open(pipeline());
    expect(await ungated.issue(write)).toMatchObject({ forward: false, code: 'APPROVAL_UNAVAILABLE' });
    // A grant for another command (another digest) never lets this one through.
    const elsewhere = await open(pipeline({ activeGrant: async () => null, request: async () => ({ outcome: 'granted', approvers: [{ subject: 'dba-1', issuer: 'https://idp', groups: ['dba'] }], commandDigest: `sha256:${'0'.repeat(64)}` }) }));
    expect(await elsewhere.issue(write)).toMatchObject({ forward: false, code: 'APPROVAL_DENIED' });
  });

  it('recordToolUse: a tool-use.emitted event tied to its command, the input cut at 65,536 characters', async () => {
    const session = await open(pipeline());
    const issued = await session.issue(await sqlCommand(session, 'SELECT 1'));
    const commandId = issued.forward ? issued.commandId : undefined;
    session.recordToolUse(commandId, { id: 'toolu_01', name: 'send_mail', maskedInput: '{"to":"[REDACTED:pii]"}' });
    session.recordToolUse(commandId, { id: 'toolu_02', name: 'Write', maskedInput: `"${'x'.repeat(70_000)}"` });
    await session.close('client-closed');
    const uses = (await streamOf(session)).filter((e) => e.type === 'tool-use.emitted').map((e) => e.payload as { commandId?: string; toolUseId: string; name: string; input: string; truncated?: boolean });
    expect(uses).toHaveLength(2);
    expect(uses[0]).toEqual({ sessionId: session.id, commandId, toolUseId: 'toolu_01', name: 'send_mail', input: '{"to":"[REDACTED:pii]"}' });
    expect(uses[1]).toMatchObject({ toolUseId: 'toolu_02', name: 'Write', truncated: true });
    expect(uses[1]!.input).toHaveLength(65_536);
  });

  it('strict mode fails closed when the pipeline refuses, and the stream keeps its sequence after recovery', async () => {
    const session = await open(pipeline());
    const read = await sqlCommand(session, 'SELECT 1');
    refusing = true;
    const refused = await session.issue(read);
    expect(refused).toMatchObject({ forward: false, code: 'EVIDENCE_UNAVAILABLE' });
    expect(refused.forward === false && refused.message).toContain('test outage');
    refusing = false;
    expect(await session.issue(read)).toMatchObject({ forward: true });
    const events = await streamOf(session);
    expect(events.map((e) => e.sequence)).toEqual(events.map((_, i) => i));
    expect(events.filter((e) => e.type === 'command.issued')).toHaveLength(2);
  });

  it('relaxed mode: a session opened while the pipeline refuses is served, and nothing is left unhandled', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown): void => void unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      refusing = true;
      const session = await open(pipeline(undefined, { strict: false }));
      const outcome = await session.issue(await sqlCommand(session, 'SELECT 1'));
      expect(outcome).toMatchObject({ forward: true, via: 'policy' });
      await new Promise((resolve) => setTimeout(resolve, 50));
      refusing = false;
      await session.close('client-closed');
      // Once the pipeline accepts again the recorder delivers the session's events, in order.
      const events = await streamOf(session);
      expect(events.map((e) => e.type)).toEqual(['authentication.succeeded', 'session.opened', 'command.issued', 'policy.decided', 'session.closed']);
      expect(unhandled).toEqual([]);
    } finally {
      refusing = false;
      process.off('unhandledRejection', onUnhandled);
    }
  });

  it('frames carry their channel; the custody statement covers every client-bound byte and says whether the credential appeared', async () => {
    const secret = 'upstream-Pa55word-for-custody';
    const clean = await open(pipeline());
    clean.credentialInjected('env:PGPASSWORD', 'scram-sha-256', secret);
    clean.recordFrame('upstream-to-client', 'DataRow', Buffer.from('hello'), { channel: 3 });
    clean.recordFrame('upstream-to-client', 'DataRow', Buffer.from(' world'));
    // Control frames (protocol metadata the adapter describes, e.g. an SSH exit status) are recorded but not digested.
    clean.recordFrame('upstream-to-client', 'exit-status', Buffer.from('{"code":0}'), { channel: 3, control: true });
    await clean.close('client-closed');
    const events = await streamOf(clean);
    expect(events.at(-2)?.type).toBe('session.closed');
    const frame = events.find((e) => e.type === 'frame.recorded');
    expect(frame?.payload).toMatchObject({ channel: 3, direction: 'upstream-to-client' });
    expect(events.filter((e) => e.type === 'frame.recorded' && e.payload.messageType === 'exit-status')).toHaveLength(1);
    const attested = events.at(-1)!;
    expect(attested.type).toBe('custody.attested');
    if (attested.type !== 'custody.attested') throw new Error('no statement');
    expect(attested.payload).toMatchObject({ exposed: false, credentialRef: 'env:PGPASSWORD', keyId: 'gateway-test' });
    expect(JSON.stringify(events)).not.toContain(secret);
    const verified = verifyCustodyAttestation(attested.payload, { trustedKeys: [CUSTODY_KEY.publicKeyPem], identity: attested.identity });
    expect(verified.statement.subject[0]?.digest.sha256).toBe(createHash('sha256').update('hello world').digest('hex'));

    // The credential leaks into a client-bound byte (base64 of it, at an odd offset): stated, never hidden.
    const leaky = await open(pipeline());
    leaky.credentialInjected('env:PGPASSWORD', 'scram-sha-256', secret);
    leaky.recordFrame('upstream-to-client', 'DataRow', Buffer.from(`xy${Buffer.from(`ab${secret}`).toString('base64')}`));
    await leaky.close('client-closed');
    const leaked = (await streamOf(leaky)).at(-1)!;
    expect(leaked.type === 'custody.attested' && leaked.payload.exposed).toBe(true);
  });
});
