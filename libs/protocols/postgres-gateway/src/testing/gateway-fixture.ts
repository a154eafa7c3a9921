// Test-only: a real PostgreSQL (SCRAM and md5 roles, TLS with a test CA), a real OpenID Provider
// issuing client-credentials tokens with groups, a SQLite event store behind the store evidence
// pipeline, and the gateway in front of it all. One per test file.
import { spawn } from 'node:child_process';
import { chownSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKeyPairSync, randomBytes, randomUUID } from 'node:crypto';
import { EventFactory, type CustodianEvent } from '@custodian/event-contracts';
import { StoreEvidencePipeline, type EvidencePipeline } from '@custodian/evidence-pipeline';
import { SqliteEventStore } from '@custodian/event-store-sqlite';
import { OidcAccessTokenVerifier } from '@custodian/identity-oidc';
import { loadPolicyFile } from '@custodian/policy';
import { SessionPipeline, type ApprovalGate } from '@custodian/session-pipeline';
import { runCommand, serviceIdentity, startOidcProvider, startPostgres, type StartedOidcProvider, type StartedPostgres } from '@custodian/test-harness';
import type { CustodySigningKey } from '@custodian/custody';
import { PostgresGateway } from '../postgres-gateway.js';
import type { ClientTlsRequirement, PostgresConnection, PostgresGatewayOptions } from '../gateway-options.js';

const fixtureKeys = generateKeyPairSync('ed25519');
/** The test gateway's custody key: every session that logs in upstream ends with a statement signed by it. */
export const FIXTURE_CUSTODY_KEY: CustodySigningKey = {
  keyId: 'test-gateway',
  privateKey: fixtureKeys.privateKey,
  publicKeyPem: fixtureKeys.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
};

export const PSQL = '/usr/lib/postgresql/15/bin/psql';

/** The policy the gateway tests decide under. */
export const TEST_POLICY = `
name: gateway-test
version: 1
defaults:
  decision: block
  message: Not permitted through the gateway.
rules:
  - id: block-code-execution
    match:
      sql:
        flags: [dangerous-function, copy-program, copy-to-file, copy-from-file, do-block, load-library, alter-system]
    decision: block
    message: Server-side code execution and file access are blocked.
  - id: block-delete-without-where
    match:
      sql:
        flags: [delete-without-where, update-without-where]
    decision: block
    message: DELETE and UPDATE without WHERE are blocked.
  - id: block-ddl
    match:
      sql:
        kinds: [ddl, dcl, utility]
    decision: block
    message: Schema and privilege changes are not allowed.
  - id: analysts-sleep
    match:
      identity: { groups: [analysts] }
      sql:
        functions: [pg_sleep]
        flags: [side-effect-function]
    decision: allow
  - id: analysts-read
    match:
      identity: { groups: [analysts] }
      sql:
        kinds: [read]
        objects: ["public.*", "pg_catalog.*"]
    decision: allow
  - id: analysts-transactions
    match:
      identity: { groups: [analysts] }
      sql:
        kinds: [transaction]
    decision: allow
  - id: analysts-scratch-writes
    match:
      identity: { groups: [analysts] }
      sql:
        kinds: [write]
        objects: ["public.scratch"]
    decision: allow
  - id: analysts-writes-need-dba
    match:
      identity: { groups: [analysts] }
      sql:
        kinds: [write]
        objects: ["public.*"]
    decision: require-approval
    approval:
      approverGroups: [dba]
      required: 1
      timeoutSeconds: 30
      grant: once
masking:
  - id: customer-email
    columns: ["public.customers.email"]
    strategy: partial
    keepLast: 4
  - id: pii-detectors
    detectors: [card, email]
    strategy: redact
`;

export const SEED_SQL = `
CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL, email text, notes text);
INSERT INTO customers VALUES
  (1, 'Alice', 'alice@example.com', 'paid with 4111 1111 1111 1111, contact alice.backup@example.org'),
  (2, 'Bob', 'bob@example.net', 'no card on file'),
  (3, 'Carol', NULL, NULL);
CREATE TABLE orders (id int PRIMARY KEY, customer_id int, amount numeric(10,2));
INSERT INTO orders SELECT g, 1 + g % 3, g * 1.5 FROM generate_series(1, 20) g;
CREATE TABLE scratch (id int, payload text);
CREATE TABLE big (id int, email text, filler text);
`;

export interface GatewayFixtureOptions {
  readonly strict?: boolean;
  readonly requireTls?: ClientTlsRequirement;
  readonly maxFrameBytes?: number;
  readonly maxMessageBytes?: number;
  readonly approvals?: ApprovalGate | ((store: SqliteEventStore) => ApprovalGate);
  readonly approvalWaitSeconds?: number;
  readonly policy?: string;
  /** Gateway settings beyond the fixture's (limits, timeouts). */
  readonly gateway?: Partial<Omit<PostgresGatewayOptions, 'host' | 'port' | 'pipeline' | 'connections' | 'tls' | 'requireTls'>>;
  /** Wraps the evidence pipeline (to make it refuse in tests). */
  readonly evidence?: (inner: EvidencePipeline) => EvidencePipeline;
}

export interface GatewayFixture {
  readonly postgres: StartedPostgres;
  readonly oidc: StartedOidcProvider;
  readonly store: SqliteEventStore;
  readonly gateway: PostgresGateway;
  readonly pipeline: SessionPipeline;
  readonly dir: string;
  /** The gateway's TLS certificate (PEM), for psql `sslrootcert`. */
  readonly certPath: string;
  /** Passwords of the upstream roles the gateway holds (what must never reach a client). */
  readonly upstreamSecrets: readonly string[];
  token(client: 'agent' | 'outsider' | 'approver', options?: { audience?: string; ttlSeconds?: number }): Promise<string>;
  events(): Promise<CustodianEvent[]>;
  stop(): Promise<void>;
}

async function openssl(args: readonly string[], cwd: string): Promise<void> {
  await runCommand('openssl', args, { cwd, timeoutMs: 60_000 });
}

/** A CA and a server certificate for 127.0.0.1 / localhost, signed by it. */
async function makeCertificates(dir: string): Promise<{ caCert: string; cert: string; key: string }> {
  await openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=custodian-test-ca'], dir);
  await openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=localhost'], dir);
  writeFileSync(join(dir, 'san.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  await openssl(['x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.crt', '-days', '2', '-extfile', 'san.ext'], dir);
  return { caCert: join(dir, 'ca.crt'), cert: join(dir, 'server.crt'), key: join(dir, 'server.key') };
}

export async function startGatewayFixture(options: GatewayFixtureOptions = {}): Promise<GatewayFixture> {
  const dir = mkdtempSync(join(tmpdir(), 'custodian-pg-gateway-'));
  const certs = await makeCertificates(dir);
  // PostgreSQL insists that its key belongs to the user it runs as.
  const pgDir = mkdtempSync(join(tmpdir(), 'custodian-pg-tls-'));
  const identity = await serviceIdentity('postgres');
  for (const [from, to] of [
    [certs.cert, 'server.crt'],
    [certs.key, 'server.key'],
  ] as const) {
    writeFileSync(join(pgDir, to), readFileSync(from), { mode: 0o600 });
    if (identity.switchUser) chownSync(join(pgDir, to), identity.uid, identity.gid);
  }
  if (identity.switchUser) chownSync(pgDir, identity.uid, identity.gid);
  const md5Password = randomBytes(12).toString('base64url');
  const postgres = await startPostgres({
    md5Users: [{ user: 'legacy_svc', password: md5Password }],
    settings: { ssl: 'on', ssl_cert_file: join(pgDir, 'server.crt'), ssl_key_file: join(pgDir, 'server.key') },
  });
  const scramPassword = randomBytes(12).toString('base64url');
  const readerPassword = randomBytes(12).toString('base64url');
  await postgres.psql(SEED_SQL);
  await postgres.psql(
    `CREATE ROLE gateway_svc LOGIN PASSWORD '${scramPassword}'; GRANT ALL ON ALL TABLES IN SCHEMA public TO gateway_svc, legacy_svc; GRANT ALL ON SCHEMA public TO gateway_svc, legacy_svc;`,
  );
  // A per-identity upstream role (connection orders-per-identity maps identity agent-7 to it).
  await postgres.psql(`CREATE ROLE reader_svc LOGIN PASSWORD '${readerPassword}'; GRANT SELECT ON ALL TABLES IN SCHEMA public TO reader_svc; GRANT USAGE ON SCHEMA public TO reader_svc;`);

  const oidc = await startOidcProvider({
    clients: [
      { clientId: 'agent-7', kind: 'agent', groups: ['analysts'] },
      { clientId: 'outsider', kind: 'agent', groups: ['marketing'] },
      { clientId: 'dba-1', kind: 'human', groups: ['dba'] },
    ],
  });
  const store = await SqliteEventStore.open({ path: join(dir, 'events.sqlite') });
  const inner = new StoreEvidencePipeline({ store, instance: 'test-gateway' });
  const evidence = options.evidence ? options.evidence(inner) : inner;
  const policyPath = join(dir, 'policy.yaml');
  writeFileSync(policyPath, options.policy ?? TEST_POLICY);
  const policy = loadPolicyFile(policyPath);
  const failures = new EventFactory({ service: 'gateway', instance: 'test-gateway' });
  const pipeline = new SessionPipeline({
    verifier: new OidcAccessTokenVerifier({ issuers: [{ issuer: oidc.issuer, audiences: [oidc.defaultAudience] }] }),
    policy: { policy },
    evidence,
    strict: options.strict ?? true,
    source: { service: 'gateway', instance: 'test-gateway' },
    maskingKey: randomBytes(32),
    custodyKey: FIXTURE_CUSTODY_KEY,
    authenticationFailures: {
      failed: async (payload) => {
        const stream = `auth-${randomUUID()}`;
        await store.append(stream, [failures.create({ type: 'authentication.failed', stream, sequence: 0, identity: null, payload })], { expectedRevision: 'no-stream' });
      },
    },
    ...(options.approvals ? { approvals: typeof options.approvals === 'function' ? options.approvals(store) : options.approvals } : {}),
    ...(options.approvalWaitSeconds ? { approvalWaitSeconds: options.approvalWaitSeconds } : {}),
    ...(options.maxFrameBytes ? { maxFrameBytes: options.maxFrameBytes } : {}),
  });
  const upstream = (user: string, password: string, tls: PostgresConnection['upstream']['tls'] = { mode: 'disable' }): PostgresConnection['upstream'] => ({
    host: postgres.host,
    port: postgres.port,
    database: postgres.database,
    user,
    password: () => password,
    credentialRef: `env:${user.toUpperCase()}_PASSWORD`,
    tls,
  });
  const gateway = new PostgresGateway({
    host: '127.0.0.1',
    port: 0,
    tls: { cert: readFileSync(certs.cert), key: readFileSync(certs.key) },
    requireTls: options.requireTls ?? 'non-loopback',
    pipeline,
    ...(options.maxMessageBytes ? { maxMessageBytes: options.maxMessageBytes } : {}),
    ...options.gateway,
    connections: [
      { name: 'orders-prod', upstream: upstream('gateway_svc', scramPassword) },
      { name: 'orders-legacy', upstream: upstream('legacy_svc', md5Password) },
      {
        name: 'orders-per-identity',
        upstream: upstream('gateway_svc', scramPassword),
        roles: [{ subjects: ['agent-7'], user: 'reader_svc', password: () => readerPassword, credentialRef: 'env:READER_SVC_PASSWORD' }],
      },
      { name: 'orders-tls', upstream: upstream('gateway_svc', scramPassword, { mode: 'verify-full', ca: readFileSync(certs.caCert) }) },
      { name: 'orders-untrusted-tls', upstream: upstream('gateway_svc', scramPassword, { mode: 'verify-full' }) },
      // A short connect deadline: sessions must outlive it (it covers connecting only).
      { name: 'orders-short-deadline', upstream: { ...upstream('gateway_svc', scramPassword, { mode: 'verify-full', ca: readFileSync(certs.caCert) }), connectTimeoutMs: 1000 } },
    ],
  });
  await gateway.listen();
  const tokens = new Map<string, string>();
  return {
    postgres,
    oidc,
    store,
    gateway,
    pipeline,
    dir,
    certPath: certs.cert,
    upstreamSecrets: [scramPassword, md5Password, readerPassword],
    async token(client, tokenOptions = {}) {
      const key = `${client}|${tokenOptions.audience ?? ''}|${tokenOptions.ttlSeconds ?? ''}`;
      if (!tokenOptions.ttlSeconds && tokens.has(key)) return tokens.get(key)!;
      const issued = await oidc.issueToken({ clientId: client === 'agent' ? 'agent-7' : client === 'approver' ? 'dba-1' : 'outsider', ...tokenOptions });
      tokens.set(key, issued.accessToken);
      return issued.accessToken;
    },
    async events() {
      // Recording is asynchronous (the store commits in its writer thread): a session's last
      // events (session.closed, custody.attested) may be committed after its client has gone.
      // Read until the sessions have ended and the log stopped growing (or, with a session still
      // open on purpose, until it has not grown for half a second).
      const readAll = async (): Promise<CustodianEvent[]> => {
        const out: CustodianEvent[] = [];
        for await (const recorded of store.readAll()) out.push(recorded.event);
        return out;
      };
      const deadline = Date.now() + 10_000;
      let events = await readAll();
      let stableReads = 0;
      while (Date.now() < deadline && stableReads < (gateway.sessionCount === 0 ? 2 : 10)) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        const next = await readAll();
        stableReads = next.length === events.length ? stableReads + 1 : 0;
        events = next;
      }
      return events;
    },
    async stop() {
      await gateway.close();
      await evidence.close();
      await store.close();
      await Promise.all([postgres.stop(), oidc.stop()]);
      rmSync(dir, { recursive: true, force: true });
      rmSync(pgDir, { recursive: true, force: true });
    },
  };
}

export interface PsqlResult {
  readonly stdout: string;
  readonly stderr: string;
  readonly exitCode: number;
  /** Every byte the client received is what psql printed; for scans, both streams together. */
  readonly all: string;
}

/** Runs the real psql against the gateway with the token as password. */
export function psql(
  fixture: Pick<GatewayFixture, 'gateway'>,
  token: string,
  script: string,
  options: { database?: string; sslmode?: string; sslrootcert?: string; user?: string; extraArgs?: readonly string[]; env?: Record<string, string> } = {},
): Promise<PsqlResult> {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) if (!key.startsWith('PG')) env[key] = value;
  Object.assign(env, { PGPASSWORD: token, PGCONNECT_TIMEOUT: '10', PGSSLMODE: options.sslmode ?? 'disable', ...(options.sslrootcert ? { PGSSLROOTCERT: options.sslrootcert } : {}), ...options.env });
  const args = ['-X', '-A', '-t', '-v', 'ON_ERROR_STOP=0', '-h', fixture.gateway.host, '-p', String(fixture.gateway.port), '-U', options.user ?? 'agent-7', '-d', options.database ?? 'orders-prod', ...(options.extraArgs ?? []), '-f', '-'];
  return new Promise((resolve, reject) => {
    const child = spawn(PSQL, args, { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ stdout, stderr, exitCode: code ?? -1, all: stdout + stderr });
    });
    child.stdin.end(script);
  });
}

/** Events of one session stream, by type. */
export function sessionEvents(events: readonly CustodianEvent[], sessionId: string): CustodianEvent[] {
  return events.filter((e) => e.stream === `session-${sessionId}`);
}
