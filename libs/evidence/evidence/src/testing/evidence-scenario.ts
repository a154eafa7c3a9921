// Test fixtures: realistic gateway activity (sessions, commands, decisions, approvals, masking,
// authentication) written to a real event store, with known findings planted in it.
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { CredentialExposureScanner, attestCustody, type CustodySigningKey } from '@custodian/custody';
import { ManualClock, streamName, type CustodianEvent, type EventFactory, type EventType, type Identity, type NewEvent } from '@custodian/event-contracts';
import type { EventStore } from '@custodian/event-store';

export const AGENT: Identity = { subject: 'agent-orders-reporter', issuer: 'https://idp.example.com', groups: ['agents'], kind: 'agent' };
export const ALICE: Identity = { subject: 'alice', issuer: 'https://idp.example.com', groups: ['dba', 'approvers'], kind: 'human' };
const POLICY = { name: 'orders', version: 3, digest: 'b'.repeat(64) };

/** The gateway's custody signing key in this scenario (as the gateway keeps it in its data directory). */
export const SCENARIO_GATEWAY_KEY: CustodySigningKey = (() => {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return { keyId: 'scenario-gateway-1', privateKey, publicKeyPem: publicKey.export({ format: 'pem', type: 'spki' }).toString() };
})();
/** The credential the scenario's gateway injects (env:ORDERS_DB_PASSWORD). */
export const SCENARIO_SECRET = Buffer.from('orders-db-password-Zq7!', 'utf8');

/** A clock starting 2026-03-01T00:00:00Z, one millisecond per event. */
export function scenarioClock(): ManualClock {
  return new ManualClock(new Date('2026-03-01T00:00:00.000Z'), 1000n);
}

class SessionWriter {
  readonly sessionId = randomUUID();
  readonly stream: string;
  #sequence = 0;
  readonly specs: NewEvent<EventType>[] = [];
  constructor(
    readonly identity: Identity | null,
    readonly connection = 'orders-prod',
  ) {
    this.stream = streamName('session', this.sessionId);
  }
  add<T extends EventType>(type: T, payload: NewEvent<T>['payload']): void {
    this.specs.push({ type, stream: this.stream, sequence: this.#sequence++, identity: this.identity, payload } as NewEvent<EventType>);
  }
  open(): void {
    this.add('session.opened', { sessionId: this.sessionId, connection: { name: this.connection, protocol: 'postgres' }, client: { address: '127.0.0.1:50000', application: 'psql', tls: true } });
  }
  command(text: string, decision: 'allow' | 'block' | 'require-approval' | 'mask', flags: string[] = [], ruleId: string | null = 'r1'): string {
    const commandId = randomUUID();
    this.add('command.issued', { sessionId: this.sessionId, commandId, kind: 'sql', text, classification: { language: 'sql', result: { ok: true, statements: [{ kind: 'select', flags }] } } });
    this.add('policy.decided', { sessionId: this.sessionId, commandId, decision, policy: POLICY, ruleId, reason: `decided ${decision}` });
    return commandId;
  }
  /** The custody statement the gateway signs at session end, after scanning `clientBytes` and this session's events. */
  attest(clientBytes: readonly Buffer[]): void {
    const scanner = new CredentialExposureScanner([SCENARIO_SECRET]);
    for (const chunk of clientBytes) scanner.scanClientBytes(chunk);
    for (const spec of this.specs) scanner.scanEvent(JSON.stringify(spec));
    const { payload } = attestCustody(
      {
        sessionId: this.sessionId,
        identity: this.identity ?? { subject: 'unknown', issuer: 'unknown', kind: 'agent' },
        connection: { name: this.connection, protocol: 'postgres' },
        credentialRef: 'env:ORDERS_DB_PASSWORD',
        method: 'scram-sha-256',
        scan: scanner.finish(),
        window: { openedAt: '2026-03-01T00:00:00.000000Z', closedAt: '2026-03-01T00:00:01.000000Z' },
        gateway: { instance: 'scenario-gw' },
      },
      SCENARIO_GATEWAY_KEY,
    );
    this.add('custody.attested', payload);
  }
  close(): void {
    this.add('session.closed', { sessionId: this.sessionId, reason: 'client-closed', durationMs: 10, frames: { clientToUpstream: 1, upstreamToClient: 1 }, bytes: { clientToUpstream: 10, upstreamToClient: 10 } });
  }
}

export interface Scenario {
  readonly specs: readonly NewEvent<EventType>[];
  /** Session ids with a planted finding, by finding kind. */
  readonly planted: {
    readonly privilegedWithoutApproval: string;
    readonly sessionWithoutIdentity: string;
    readonly credentialExposed: string;
  };
}

/**
 * Sessions in the order they are appended: a masked read, a privileged command held for approval
 * and approved, a privileged command executed without approval (finding), a blocked command, a
 * session without identity (finding), a session whose injected credential leaked to the client
 * (custody statement with exposed: true, finding), authentication events and a policy activation.
 * Sessions with an injected credential carry a custody statement signed by SCENARIO_GATEWAY_KEY.
 */
export function buildScenario(): Scenario {
  const specs: NewEvent<EventType>[] = [];
  specs.push({ type: 'policy.activated', stream: 'policy-orders', sequence: 0, identity: ALICE, payload: { policyName: 'orders', version: 3, digest: 'b'.repeat(64), source: 'policies/orders.yaml', rules: 4 } });
  specs.push({ type: 'authentication.succeeded', stream: streamName('auth', randomUUID()), sequence: 0, identity: AGENT, payload: { method: 'oidc-client-credentials', clientAddress: '127.0.0.1:50000', tokenExpiresAt: '2026-03-01T01:00:00.000000Z' } });
  specs.push({ type: 'authentication.failed', stream: streamName('auth', randomUUID()), sequence: 0, identity: null, payload: { method: 'oidc-access-token', clientAddress: '127.0.0.1:50001', reasonCode: 'TOKEN_EXPIRED', reason: 'token expired' } });

  const masked = new SessionWriter(AGENT);
  masked.open();
  masked.add('credential.injected', { sessionId: masked.sessionId, connection: { name: 'orders-prod', protocol: 'postgres' }, credentialRef: 'env:ORDERS_DB_PASSWORD', method: 'scram-sha-256' });
  const read = masked.command('SELECT email FROM customers LIMIT 5', 'mask');
  masked.add('data.masked', { sessionId: masked.sessionId, commandId: read, maskings: [{ field: 'email', rule: 'pii-email', detector: 'email', count: 5 }] });
  masked.attest([Buffer.from('T\0\0\0\x1a\0\x01email'), Buffer.from('D\0\0\0\x10\0\x01\0\0\0\x06***@**')]);
  masked.close();

  const approved = new SessionWriter(ALICE);
  approved.open();
  const held = approved.command('ALTER SYSTEM SET work_mem = 64', 'require-approval', ['alter-system']);
  const approvalId = randomUUID();
  const approvalStream = streamName('approval', approvalId);
  approved.close();

  const unapproved = new SessionWriter(AGENT, 'billing-prod');
  unapproved.open();
  unapproved.command('SET ROLE postgres', 'allow', ['set-role']);
  unapproved.command('SELECT 1', 'block', [], null);
  unapproved.close();

  const anonymous = new SessionWriter(null);
  anonymous.open();
  anonymous.close();

  // The upstream's error message echoed the injected password (base64) to the client: stated, a finding.
  const leaked = new SessionWriter(AGENT);
  leaked.open();
  leaked.add('credential.injected', { sessionId: leaked.sessionId, connection: { name: 'orders-prod', protocol: 'postgres' }, credentialRef: 'env:ORDERS_DB_PASSWORD', method: 'scram-sha-256' });
  leaked.attest([Buffer.from(`E\0\0\0\x40SERROR\0Mpassword ${SCENARIO_SECRET.toString('base64')} rejected\0\0`)]);
  leaked.close();

  specs.push(...masked.specs, ...approved.specs);
  specs.push(
    {
      type: 'approval.requested',
      stream: approvalStream,
      sequence: 0,
      identity: ALICE,
      payload: {
        approvalId,
        sessionId: approved.sessionId,
        commandId: held,
        command: 'ALTER SYSTEM SET work_mem = 64',
        language: 'sql',
        connection: { name: 'orders-prod', protocol: 'postgres' },
        ruleId: 'r-approval',
        approverGroups: ['approvers'],
        required: 1,
        expiresAt: '2026-03-01T01:00:00.000000Z',
        grantScope: { kind: 'once' },
      },
    },
    {
      type: 'approval.granted',
      stream: approvalStream,
      sequence: 1,
      identity: ALICE,
      payload: { approvalId, approver: { subject: 'bob', issuer: 'https://idp.example.com', groups: ['approvers'] }, justification: 'maintenance window', approvals: 1, required: 1, final: true },
    },
  );
  specs.push(...unapproved.specs, ...anonymous.specs, ...leaked.specs);
  return { specs, planted: { privilegedWithoutApproval: unapproved.sessionId, sessionWithoutIdentity: anonymous.sessionId, credentialExposed: leaked.sessionId } };
}

/** Appends specs one stream batch at a time, in order, stamped by `factory`. */
export async function appendSpecs(store: EventStore, factory: EventFactory, specs: readonly NewEvent<EventType>[]): Promise<void> {
  for (const spec of specs) {
    await store.append(spec.stream, [factory.create(spec) as CustodianEvent], { expectedRevision: 'any' });
  }
}

/** `count` small policy.activated events on fresh streams (bulk leaves for tree tests). */
export function bulkSpecs(count: number, prefix = 'bulk'): NewEvent<'policy.activated'>[] {
  return Array.from({ length: count }, (_, i) => ({
    type: 'policy.activated' as const,
    stream: `policy-${prefix}${i}`,
    sequence: 0,
    identity: ALICE,
    payload: { policyName: `${prefix}${i}`, version: 1, digest: 'c'.repeat(64), source: 'p.yaml', rules: i },
  }));
}
