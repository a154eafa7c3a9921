// The suite's side of a conformance run: a real SQLite event store (behind a switch that makes it
// unwritable, so that the real StoreEvidencePipeline refuses and records its refusals as it would
// in an outage), the real approvals workflow over the same store, a real OpenID Provider, a
// logger that keeps every line, and the policy document built around the fixture's matches.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { stringify } from 'yaml';
import { EventSourcedApprovalGate } from '@custodian/approvals';
import type { CustodySigningKey } from '@custodian/custody';
import type { CustodianEvent, Identity } from '@custodian/event-contracts';
import { EventStoreUnavailableError, type AppendOptions, type AppendResult, type EventStore, type RecordedEvent } from '@custodian/event-store';
import { SqliteEventStore } from '@custodian/event-store-sqlite';
import { StoreEvidencePipeline } from '@custodian/evidence-pipeline';
import { startOidcProvider, type StartedOidcProvider } from '@custodian/test-harness';
import type { ConformanceEnvironment, ConformanceLogger, ConformancePolicyFragment } from './conformance-fixture.js';

const custodyKeyPair = generateKeyPairSync('ed25519');
/** The gateway's custody key in the suite: statements must verify under exactly this key. */
export const CUSTODY_KEY: CustodySigningKey = {
  keyId: 'conformance-gateway',
  privateKey: custodyKeyPair.privateKey,
  publicKeyPem: custodyKeyPair.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
};

export const RULES = { blocked: 'conformance-blocked', held: 'conformance-held', allowed: 'conformance-allowed', pii: 'conformance-pii' } as const;
export const BLOCK_MESSAGE = 'Blocked by the conformance policy.';
/** The policy's and the gateway's approval wait: an unanswered request expires after this long. */
export const APPROVAL_SECONDS = 5;
export const APPROVER_GROUP = 'conformance-approvers';
export const AGENT_CLIENT_ID = 'conformance-agent';
export const CREDENTIAL_REF = 'env:CONFORMANCE_UPSTREAM_SECRET';
export const PIPELINE_INSTANCE = 'conformance-gateway';

/** The whole policy document for a fixture's matches: blocked, held, allowed, default deny; an e-mail detector masks results. */
export function conformancePolicyYaml(fragment: ConformancePolicyFragment): string {
  return stringify({
    name: 'gateway-conformance',
    version: 1,
    defaults: { decision: 'block', message: 'Not permitted by the conformance policy (default deny).' },
    rules: [
      { id: RULES.blocked, match: fragment.blocked, decision: 'block', message: BLOCK_MESSAGE },
      {
        id: RULES.held,
        match: fragment.held,
        decision: 'require-approval',
        approval: { approverGroups: [APPROVER_GROUP], required: 1, timeoutSeconds: APPROVAL_SECONDS, grant: 'once' },
      },
      { id: RULES.allowed, match: fragment.allowed, decision: 'allow' },
    ],
    masking: [{ id: RULES.pii, detectors: ['email'], strategy: 'redact' }],
  });
}

/** The event store, except that appends fail as an unreachable store's do while `refusing` is set. */
export class SwitchableEventStore implements EventStore {
  refusing = false;

  constructor(private readonly inner: EventStore) {}

  get checkpoints(): EventStore['checkpoints'] {
    return this.inner.checkpoints;
  }

  append(stream: string, events: readonly CustodianEvent[], options: AppendOptions): Promise<AppendResult> {
    if (this.refusing) return Promise.reject(new EventStoreUnavailableError('the conformance suite made the event store unwritable (simulated outage)'));
    return this.inner.append(stream, events, options);
  }

  readStream(...args: Parameters<EventStore['readStream']>): ReturnType<EventStore['readStream']> {
    return this.inner.readStream(...args);
  }

  readAll(...args: Parameters<EventStore['readAll']>): ReturnType<EventStore['readAll']> {
    return this.inner.readAll(...args);
  }

  subscribeToAll(...args: Parameters<EventStore['subscribeToAll']>): ReturnType<EventStore['subscribeToAll']> {
    return this.inner.subscribeToAll(...args);
  }

  streamRevision(stream: string): ReturnType<EventStore['streamRevision']> {
    return this.inner.streamRevision(stream);
  }

  ping(): Promise<void> {
    return this.refusing ? Promise.reject(new EventStoreUnavailableError('simulated outage')) : this.inner.ping();
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

export interface ConformanceWorld {
  readonly dir: string;
  /** The store itself (reads and the approvals workflow never see the outage switch). */
  readonly store: SqliteEventStore;
  /** The store as the evidence pipeline sees it: set `refusing` for an outage. */
  readonly outage: SwitchableEventStore;
  readonly evidence: StoreEvidencePipeline;
  readonly approvals: EventSourcedApprovalGate;
  readonly oidc: StartedOidcProvider;
  /** Every line the gateways logged. */
  readonly logLines: string[];
  readonly logger: ConformanceLogger;
  /** Every access token handed to a client (what must never leak). */
  readonly tokens: string[];
  readonly upstreamCredential: string;
  readonly piiValue: string;
  readonly approver: Identity;
  environment(policyYaml: string, strict: boolean): ConformanceEnvironment;
  token(): Promise<string>;
  recorded(): Promise<RecordedEvent[]>;
  events(): Promise<CustodianEvent[]>;
  stop(): Promise<void>;
}

export async function startConformanceWorld(): Promise<ConformanceWorld> {
  const dir = mkdtempSync(join(tmpdir(), 'custodian-conformance-'));
  const store = await SqliteEventStore.open({ path: join(dir, 'events.sqlite'), pollIntervalMs: 20 });
  const outage = new SwitchableEventStore(store);
  const evidence = new StoreEvidencePipeline({ store: outage, instance: PIPELINE_INSTANCE, recoveryProbeMs: 100 });
  const approvals = new EventSourcedApprovalGate({ eventStore: store, instance: 'conformance-gateway', pollIntervalMs: 50 });
  await approvals.start();
  const oidc = await startOidcProvider({ clients: [{ clientId: AGENT_CLIENT_ID, kind: 'agent', groups: ['conformance-agents'] }] });
  const logLines: string[] = [];
  const line = (level: string) => (fields: object, message: string) => {
    logLines.push(`${level} ${message} ${inspect(fields, { depth: 8, breakLength: Infinity })}`);
  };
  const logger: ConformanceLogger = { info: line('info'), warn: line('warn'), error: line('error') };
  const tokens: string[] = [];
  const world: ConformanceWorld = {
    dir,
    store,
    outage,
    evidence,
    approvals,
    oidc,
    logLines,
    logger,
    tokens,
    upstreamCredential: randomBytes(24).toString('base64url'),
    piiValue: `conformance.${randomBytes(4).toString('hex')}@example.com`,
    approver: { subject: 'conformance-approver', issuer: oidc.issuer, groups: [APPROVER_GROUP], kind: 'human' },
    environment: (policyYaml, strict) => ({
      policyYaml,
      strict,
      evidence,
      approvals,
      approvalWaitSeconds: APPROVAL_SECONDS,
      issuer: { issuer: oidc.issuer, audience: oidc.defaultAudience },
      logger,
      source: { service: 'gateway', instance: strict ? 'conformance-strict' : 'conformance-relaxed' },
      credentialRef: CREDENTIAL_REF,
      custodyKey: CUSTODY_KEY,
    }),
    async token() {
      const issued = await oidc.issueToken({ clientId: AGENT_CLIENT_ID });
      tokens.push(issued.accessToken);
      return issued.accessToken;
    },
    async recorded() {
      const out: RecordedEvent[] = [];
      for await (const recorded of store.readAll()) out.push(recorded);
      return out;
    },
    async events() {
      return (await world.recorded()).map((r) => r.event);
    },
    async stop() {
      outage.refusing = false;
      await approvals.close();
      await evidence.close();
      await store.close();
      await oidc.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return world;
}
