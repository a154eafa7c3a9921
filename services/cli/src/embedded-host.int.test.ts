// `custodian start`'s two threads (embedded-host.ts): the gateway on the main thread, ingest,
// projector and api in the services thread, each with its own event store instance on one SQLite
// file. Through the real PostgreSQL gateway with the real psql: a held DELETE is released by an
// approval decided through the API (services thread → gateway); the API's sessions read model and
// the evidence log see the gateway's events (gateway → services thread); and the services thread
// ending unexpectedly stops the gateway too (fail closed).
import 'reflect-metadata';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Worker } from 'node:worker_threads';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApprovalListResponse } from '@custodian/api-service';
import { loadConfig } from '@custodian/runtime-config';
import { freePort, startOidcProvider, startPostgres, type StartedOidcProvider, type StartedPostgres } from '@custodian/test-harness';
import { startEmbedded, type EmbeddedHost } from './embedded-host.js';

const PSQL = '/usr/lib/postgresql/15/bin/psql';
const available = existsSync(PSQL);
if (!available) console.warn(`embedded host psql tests skipped: ${PSQL} is missing (Debian package postgresql-client-15)`);

const POLICY = `
name: embedded-threads
version: 1
defaults:
  decision: block
  message: Not permitted through the gateway.
rules:
  - id: reads
    match: { sql: { kinds: [read, transaction] } }
    decision: allow
  - id: hold-deletes
    match: { sql: { commands: [DELETE], objects: ["public.orders"] } }
    decision: require-approval
    approval: { approverGroups: [dba], required: 1, timeoutSeconds: 120, grant: once }
`;

const dir = mkdtempSync(join(tmpdir(), 'custodian-embedded-threads-'));
const logLines: string[] = [];
let postgres: StartedPostgres;
let idp: StartedOidcProvider;
let host: EmbeddedHost;
let gatewayPort: number;

async function token(clientId: string): Promise<string> {
  return (await idp.issueToken({ clientId })).accessToken;
}

function apiUrl(): string {
  return host.services.find((s) => s.name === 'api')!.url;
}

async function apiCall<T>(clientId: string, method: 'GET' | 'POST', path: string, body?: unknown): Promise<{ status: number; body: T }> {
  const response = await fetch(`${apiUrl()}${path}`, {
    method,
    headers: { authorization: `Bearer ${await token(clientId)}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  return { status: response.status, body: (await response.json()) as T };
}

async function until<T>(what: string, probe: () => Promise<T | undefined>): Promise<T> {
  for (let i = 0; i < 600; i++) {
    const value = await probe();
    if (value !== undefined) return value;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** The real psql through the gateway, with an access token as password. */
async function psql(clientId: string, sql: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) if (!key.startsWith('PG')) env[key] = value;
  Object.assign(env, { PGPASSWORD: await token(clientId), PGCONNECT_TIMEOUT: '10' });
  const child = spawn(PSQL, ['-X', '-A', '-t', '-v', 'ON_ERROR_STOP=1', `host=127.0.0.1 port=${gatewayPort} dbname=shop user=${clientId} sslmode=disable`, '-c', sql], { env });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe.skipIf(!available)('custodian start: the gateway thread and the services thread', () => {
  beforeAll(async () => {
    postgres = await startPostgres();
    await postgres.psql(`CREATE TABLE orders (id int PRIMARY KEY, amount numeric(10,2)); INSERT INTO orders SELECT g, g * 1.5 FROM generate_series(1, 20) g;`);
    await postgres.psql(`CREATE ROLE gateway_svc LOGIN PASSWORD 'held-by-the-gateway-only'; GRANT ALL ON ALL TABLES IN SCHEMA public TO gateway_svc;`);
    idp = await startOidcProvider({
      clients: [
        { clientId: 'agent-7', kind: 'agent', groups: ['analysts'] },
        { clientId: 'bob', kind: 'human', groups: ['dba'] },
        { clientId: 'amy', kind: 'human', groups: ['auditors'] },
      ],
    });
    gatewayPort = await freePort();
    writeFileSync(join(dir, 'policy.yaml'), POLICY);
    writeFileSync(join(dir, 'shop-password'), 'held-by-the-gateway-only', { mode: 0o600 });
    const configFile = join(dir, 'custodian.json');
    writeFileSync(
      configFile,
      JSON.stringify({
        dataDir: join(dir, 'data'),
        log: { level: 'info' },
        identity: { issuers: [{ issuer: idp.issuer, audiences: [idp.defaultAudience] }] },
        gateways: {
          policyFile: join(dir, 'policy.yaml'),
          postgres: {
            enabled: true,
            listen: { host: '127.0.0.1', port: gatewayPort },
            connections: [{ name: 'shop', upstream: { host: postgres.host, port: postgres.port, database: postgres.database, user: 'gateway_svc', credential: { fromFile: join(dir, 'shop-password') }, tls: { mode: 'disable' } } }],
          },
        },
        evidence: { auditorGroups: ['auditors'], checkpoint: { everySeconds: 1 } },
        services: { gateway: { http: { port: 0 } }, ingest: { http: { port: 0 } }, projector: { http: { port: 0 } }, api: { http: { port: 0 } } },
      }),
    );
    host = await startEmbedded(loadConfig({ file: configFile, cwd: dir, env: {} }), { logDestination: { write: (line: string) => void logLines.push(line) } });
  });

  afterAll(async () => {
    await host?.stop();
    await Promise.all([postgres?.stop(), idp?.stop()]);
    rmSync(dir, { recursive: true, force: true });
  });

  it('runs the gateway on the main thread and the other services in the services thread, their log lines whole in one destination', () => {
    expect(host.services.map((s) => s.name)).toEqual(['gateway', 'ingest', 'projector', 'api']);
    const listening = logLines.map((line) => JSON.parse(line) as { service: string; msg: string }).filter((l) => l.msg.startsWith(`${l.service} listening on `));
    expect(listening.map((l) => l.service)).toEqual(['gateway', 'ingest', 'projector', 'api']);
  });

  it('a held DELETE (gateway thread) is released by an approval decided through the API (services thread)', async () => {
    const held = psql('agent-7', 'DELETE FROM orders WHERE id = 1');
    const pending = await until('the held DELETE in the approver queue', async () => {
      const { body } = await apiCall<ApprovalListResponse>('bob', 'GET', '/v1/approvals?status=pending');
      return body.approvals.find((a) => a.requester.subject === 'agent-7');
    });
    const approved = await apiCall<unknown>('bob', 'POST', `/v1/approvals/${pending.approvalId}/approve`, { justification: 'ticket OPS-1' });
    expect(approved.status).toBe(200);
    const result = await held;
    expect(result, result.stderr).toMatchObject({ code: 0 });
    expect(await postgres.psql('SELECT count(*) FROM orders WHERE id = 1')).toMatch(/\b0\b/);
  });

  it("the API's sessions read model and the evidence log (services thread) see the gateway's sessions", async () => {
    const read = await psql('agent-7', 'SELECT count(*) FROM orders');
    expect(read, read.stderr).toMatchObject({ code: 0 });
    const sessions = await until('the sessions in the read model', async () => {
      const { body } = await apiCall<{ sessions: { sessionId: string; identity: { subject: string } | null; connection: { name: string } }[] }>('amy', 'GET', '/v1/sessions?connection=shop');
      return body.sessions.length >= 2 ? body.sessions : undefined;
    });
    expect(sessions.every((s) => s.identity?.subject === 'agent-7')).toBe(true);
    // Every event the gateway recorded is a leaf of the evidence log, under a signed checkpoint.
    let eventCount = 0;
    for await (const _ of host.eventStore.readAll()) eventCount += 1;
    const log = await until('the evidence log under a checkpoint of the gateway events', async () => {
      const { body } = await apiCall<{ treeSize: number; latestCheckpoint: { treeSize: number } | null }>('amy', 'GET', '/v1/evidence/log');
      return body.latestCheckpoint !== null && body.latestCheckpoint.treeSize >= eventCount ? body : undefined;
    });
    expect(log.treeSize).toBeGreaterThanOrEqual(eventCount);
  });
});

describe('custodian start: a service of the services thread cannot start', () => {
  it("rejects with that service's error (code kept across the threads) and stops the gateway it had started", async () => {
    const failDir = mkdtempSync(join(tmpdir(), 'custodian-embedded-fail-'));
    const busy = createServer();
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
    const busyPort = (busy.address() as AddressInfo).port;
    const gatewayHttpPort = await freePort();
    const loaded = loadConfig({
      cwd: failDir,
      env: {
        CUSTODIAN_DATA_DIR: join(failDir, 'data'),
        CUSTODIAN_SERVICES__GATEWAY__HTTP__PORT: String(gatewayHttpPort),
        CUSTODIAN_SERVICES__INGEST__HTTP__PORT: '0',
        CUSTODIAN_SERVICES__PROJECTOR__HTTP__PORT: '0',
        CUSTODIAN_SERVICES__API__HTTP__HOST: '127.0.0.1',
        CUSTODIAN_SERVICES__API__HTTP__PORT: String(busyPort),
      },
    });
    try {
      await expect(startEmbedded(loaded, { logDestination: { write: () => undefined } })).rejects.toMatchObject({ code: 'EADDRINUSE' });
      // The gateway had started before the services thread: it was stopped.
      await expect(fetch(`http://127.0.0.1:${gatewayHttpPort}/health/live`)).rejects.toThrow();
    } finally {
      await new Promise<void>((resolve) => busy.close(() => resolve()));
      rmSync(failDir, { recursive: true, force: true });
    }
  });
});

describe('custodian start: the services thread ends unexpectedly', () => {
  it('the host stops the gateway too and says why (fail closed)', async () => {
    const crashDir = mkdtempSync(join(tmpdir(), 'custodian-embedded-crash-'));
    const lines: string[] = [];
    let thread: Worker | undefined;
    const loaded = loadConfig({
      cwd: crashDir,
      env: {
        CUSTODIAN_DATA_DIR: join(crashDir, 'data'),
        CUSTODIAN_SERVICES__GATEWAY__HTTP__PORT: '0',
        CUSTODIAN_SERVICES__INGEST__ENABLED: 'false',
        CUSTODIAN_SERVICES__PROJECTOR__ENABLED: 'false',
        CUSTODIAN_SERVICES__API__HTTP__PORT: '0',
      },
    });
    const crashing = await startEmbedded(loaded, { logDestination: { write: (line: string) => void lines.push(line) }, onServicesThread: (worker) => (thread = worker) });
    try {
      const gateway = crashing.services.find((s) => s.name === 'gateway')!;
      expect((await fetch(`${gateway.url}/health/ready`)).status).toBe(200);
      // As if the thread died: it ends without having been asked to stop.
      await thread!.terminate();
      const error = await crashing.failed;
      expect(error).toMatchObject({ name: 'ServicesThreadError', code: 'SERVICES_THREAD_EXITED' });
      expect(error.message).toMatch(/the services thread \(api\) ended unexpectedly/);
      // The gateway stopped with it: nothing listens there any more.
      await expect(fetch(`${gateway.url}/health/live`)).rejects.toThrow();
      const fatal = lines.map((l) => JSON.parse(l) as { level: string; service: string; msg: string }).filter((l) => l.level === 'fatal');
      expect(fatal).toEqual([expect.objectContaining({ service: 'custodian', msg: expect.stringContaining('fail closed') })]);
      await crashing.stop();
    } finally {
      await crashing.stop();
      rmSync(crashDir, { recursive: true, force: true });
    }
  });
});
