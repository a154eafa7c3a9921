// The gateway service with `gateways.postgres` enabled over the shared `gateways.*` settings, built
// from a YAML config exactly as the embedded host and the standalone process build it: psql logs in
// with a token, reads masked rows, gets a block; readiness includes the listener; the held
// credential comes from an env reference; the policy activation is recorded; a connection with
// per-identity roles logs the identity in as its mapped role, with that role's credential reference.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SqliteEventStore } from '@custodian/event-store-sqlite';
import { createLogger } from '@custodian/observability';
import { startNestService, type RunningNestService } from '@custodian/observability/nest';
import { parseConfig } from '@custodian/runtime-config';
import { startOidcProvider, startPostgres, type StartedOidcProvider, type StartedPostgres } from '@custodian/test-harness';
import { GatewayModule } from './index.js';

const PSQL = '/usr/lib/postgresql/15/bin/psql';
let dir: string;
let postgres: StartedPostgres;
let oidc: StartedOidcProvider;
let store: SqliteEventStore;
let service: RunningNestService;
let port = 0;

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return typeof address === 'object' && address ? address.port : 0;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'custodian-gateway-pg-'));
  [postgres, oidc] = await Promise.all([startPostgres(), startOidcProvider({ clients: [{ clientId: 'agent-1', groups: ['analysts'], kind: 'agent' }] })]);
  await postgres.psql("CREATE TABLE people (id int, email text); INSERT INTO people VALUES (1, 'ann@example.com')");
  await postgres.psql("CREATE ROLE people_reader LOGIN PASSWORD 'reader-secret-9'; GRANT SELECT ON people TO people_reader");
  port = await freePort();
  writeFileSync(
    join(dir, 'policy.yaml'),
    `name: service-test
rules:
  - id: no-ddl
    match: { sql: { kinds: [ddl] } }
    decision: block
  - id: read
    match: { identity: { groups: [analysts] }, sql: { kinds: [read] } }
    decision: allow
masking:
  - { id: emails, columns: ["public.people.email"], strategy: redact }
`,
  );
  const loaded = parseConfig(
    `
identity:
  issuers:
    - issuer: ${oidc.issuer}
      audiences: [${oidc.defaultAudience}]
dataDir: data
gateways:
  policyFile: policy.yaml
  postgres:
    enabled: true
    listen: { host: 127.0.0.1, port: ${port} }
    connections:
      - name: people-db
        upstream:
          host: ${postgres.host}
          port: ${postgres.port}
          database: ${postgres.database}
          user: ${postgres.user}
          credential: { fromEnv: PEOPLE_DB_PASSWORD }
          tls: { mode: disable }
      - name: people-db-roles
        upstream:
          host: ${postgres.host}
          port: ${postgres.port}
          database: ${postgres.database}
          user: ${postgres.user}
          credential: { fromEnv: PEOPLE_DB_PASSWORD }
          tls: { mode: disable }
        roles:
          - { groups: [analysts], user: people_reader, credential: { fromEnv: PEOPLE_READER_PASSWORD } }
    limits:
      maxCopyInApprovalBytes: 65536
`,
    { file: join(dir, 'custodian.yaml'), env: {}, cwd: dir },
  );
  process.env['PEOPLE_DB_PASSWORD'] = postgres.password;
  process.env['PEOPLE_READER_PASSWORD'] = 'reader-secret-9';
  store = await SqliteEventStore.open({ path: join(dir, 'events.sqlite') });
  const logger = createLogger({ service: 'gateway', level: 'silent' });
  service = await startNestService({ module: GatewayModule.register({ eventStore: store, logger, loaded }), logger, listen: { host: '127.0.0.1', port: 0 }, shutdownHooks: false });
});

afterAll(async () => {
  await service?.close();
  await store?.close();
  await Promise.all([postgres?.stop(), oidc?.stop()]);
  delete process.env['PEOPLE_DB_PASSWORD'];
  delete process.env['PEOPLE_READER_PASSWORD'];
  rmSync(dir, { recursive: true, force: true });
});

function psql(token: string, script: string, database = 'people-db'): Promise<{ stdout: string; stderr: string }> {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) if (!key.startsWith('PG')) env[key] = value;
  return new Promise((resolve) => {
    const child = spawn(PSQL, ['-X', '-A', '-t', '-h', '127.0.0.1', '-p', String(port), '-U', 'agent-1', '-d', database, '-f', '-'], { env: { ...env, PGPASSWORD: token, PGSSLMODE: 'disable' } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', () => resolve({ stdout, stderr }));
    child.stdin.end(script);
  });
}

describe('gateway service: gateways.postgres', () => {
  it('serves PostgreSQL clients as configured and reports ready', async () => {
    const ready = await fetch(`${service.url}/health/ready`);
    expect(ready.status).toBe(200);
    const token = (await oidc.issueToken({ clientId: 'agent-1' })).accessToken;
    const result = await psql(token, 'SELECT id, email FROM people;\nDROP TABLE people;\n');
    expect(result.stdout).toBe('1|[REDACTED:emails]\n');
    expect(result.stderr).toContain('(rule no-ddl)');
    // The store commits in its writer thread: session.closed may land just after psql has exited.
    const types = async (): Promise<string[]> => {
      const out: string[] = [];
      for await (const recorded of store.readAll()) out.push(recorded.event.type);
      return out;
    };
    await expect
      .poll(types, { timeout: 10_000 })
      .toEqual(expect.arrayContaining(['policy.activated', 'session.opened', 'credential.injected', 'command.issued', 'policy.decided', 'data.masked', 'session.closed']));
    const injected = [];
    for await (const recorded of store.readAll()) if (recorded.event.type === 'credential.injected') injected.push(recorded.event.payload);
    expect(injected[0]).toMatchObject({ credentialRef: 'env:PEOPLE_DB_PASSWORD', method: 'scram-sha-256' });
  });

  it('connections[].roles: the identity logs in as its mapped role (credential by reference), named custodian/<session id>', async () => {
    const token = (await oidc.issueToken({ clientId: 'agent-1' })).accessToken;
    const result = await psql(token, "SELECT current_user, current_setting('application_name') LIKE 'custodian/%/psql';\n", 'people-db-roles');
    expect(result.stderr).toBe('');
    expect(result.stdout).toBe('people_reader|t\n');
    const refs = async (): Promise<string[]> => {
      const out: string[] = [];
      for await (const recorded of store.readAll()) if (recorded.event.type === 'credential.injected') out.push(recorded.event.payload.credentialRef);
      return out;
    };
    await expect.poll(refs, { timeout: 10_000 }).toContain('env:PEOPLE_READER_PASSWORD');
  });
});
