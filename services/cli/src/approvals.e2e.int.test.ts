// The full loop through the real PostgreSQL gateway: the real psql waits on a held statement, a
// second identity approves (or denies) through the API — with the CLI or plain HTTP — and the
// statement runs (or psql gets a clear error). Also: expiry, self-approval refused, 2-of-3, a window
// grant, the gateway restarted while a client waits (crash and graceful), and webhook delivery with
// retries against a local receiver that fails twice. Real PostgreSQL, real OIDC provider, one
// SQLite event store shared by the gateway and the API (as in the embedded deployment).
import 'reflect-metadata';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiModule, configuredApprovals, type ApprovalListResponse, type ApprovalView } from '@custodian/api-service';
import { EventSourcedApprovalGate, approvalStream, notificationId, notificationStream, verifyWebhookSignature } from '@custodian/approvals';
import type { CustodianEvent } from '@custodian/event-contracts';
import { SqliteEventStore } from '@custodian/event-store-sqlite';
import { StoreEvidencePipeline } from '@custodian/evidence-pipeline';
import { OidcAccessTokenVerifier } from '@custodian/identity-oidc';
import { createLogger } from '@custodian/observability';
import { startNestService, type RunningNestService } from '@custodian/observability/nest';
import { loadPolicyFile } from '@custodian/policy';
import { PostgresGateway } from '@custodian/postgres-gateway';
import { loadConfig } from '@custodian/runtime-config';
import { configuredIdentity } from '@custodian/service-host';
import { SessionPipeline } from '@custodian/session-pipeline';
import { freePort, startOidcProvider, startPostgres, type StartedOidcProvider, type StartedPostgres } from '@custodian/test-harness';
import { APPROVALS_EXIT, runCli } from './index.js';

const PSQL = '/usr/lib/postgresql/15/bin/psql';
const available = existsSync(PSQL);
if (!available) console.warn(`approvals e2e skipped: ${PSQL} is missing (Debian package postgresql-client-15)`);

const POLICY = `
name: approvals-e2e
version: 1
defaults:
  decision: block
  message: Not permitted through the gateway.
rules:
  - id: reads
    match: { sql: { kinds: [read, transaction] } }
    decision: allow
  - id: hold-deletes
    match:
      identity: { groups: [analysts] }
      sql: { commands: [DELETE], objects: ["public.orders"] }
    decision: require-approval
    approval: { approverGroups: [dba], required: 1, timeoutSeconds: 60, grant: once }
  - id: two-person-accounts
    match: { sql: { kinds: [write], objects: ["public.accounts"] } }
    decision: require-approval
    approval: { approverGroups: [dba, security], required: 2, timeoutSeconds: 60, grant: once }
  - id: quick-notes
    match: { sql: { kinds: [write], objects: ["public.notes"] } }
    decision: require-approval
    approval: { approverGroups: [dba], required: 1, timeoutSeconds: 2, grant: once }
  - id: scratch-window
    match: { sql: { kinds: [write], objects: ["public.scratch"] } }
    decision: require-approval
    approval: { approverGroups: [dba], required: 1, timeoutSeconds: 60, grant: window, windowSeconds: 600 }
`;

const SEED = `
CREATE TABLE orders (id int PRIMARY KEY, amount numeric(10,2));
INSERT INTO orders SELECT g, g * 1.5 FROM generate_series(1, 20) g;
CREATE TABLE accounts (id int PRIMARY KEY, balance numeric(10,2));
INSERT INTO accounts VALUES (1, 100), (2, 200);
CREATE TABLE notes (id int, body text);
CREATE TABLE scratch (id int, payload text);
`;

const dir = mkdtempSync(join(tmpdir(), 'custodian-approvals-e2e-'));
const eventsPath = join(dir, 'events.sqlite');
const webhookSecret = 'whsec-e2e';
let postgres: StartedPostgres;
let idp: StartedOidcProvider;
let store: SqliteEventStore;
let evidence: StoreEvidencePipeline;
let api: RunningNestService;
let apiUrl: string;
let hook: Server;
const hookRequests: { headers: IncomingHttpHeaders; body: string; status: number }[] = [];
const hookAttempts = new Map<string, number>();
let upstreamPassword: string;

interface GatewayInstance {
  readonly gateway: PostgresGateway;
  readonly gate: EventSourcedApprovalGate;
  /** The gate's own connection to the store: closing it first makes a stop look like a crash to the log. */
  readonly gateStore: SqliteEventStore;
  /** Approvals the gate cancelled when it started (left pending by a previous instance). */
  readonly cancelledAtStart: readonly string[];
}
let current: GatewayInstance;

async function startGatewayInstance(): Promise<GatewayInstance> {
  const gateStore = await SqliteEventStore.open({ path: eventsPath, pollIntervalMs: 50 });
  const gate = new EventSourcedApprovalGate({ eventStore: gateStore, instance: 'gw-e2e', readModelPath: join(dir, 'approvals-gateway.sqlite'), pollIntervalMs: 50 });
  const cancelledAtStart = await gate.start();
  const pipeline = new SessionPipeline({
    verifier: new OidcAccessTokenVerifier({ issuers: [{ issuer: idp.issuer, audiences: [idp.defaultAudience] }] }),
    policy: { policy: loadPolicyFile(join(dir, 'policy.yaml')) },
    evidence,
    strict: true,
    source: { service: 'gateway', instance: 'gw-e2e' },
    maskingKey: randomBytes(32),
    approvals: gate,
  });
  const gateway = new PostgresGateway({
    host: '127.0.0.1',
    port: 0,
    requireTls: 'never',
    pipeline,
    connections: [
      {
        name: 'orders-prod',
        upstream: { host: postgres.host, port: postgres.port, database: postgres.database, user: 'gateway_svc', password: () => upstreamPassword, credentialRef: 'env:GATEWAY_SVC_PASSWORD', tls: { mode: 'disable' } },
      },
    ],
  });
  await gateway.listen();
  return { gateway, gate, gateStore, cancelledAtStart };
}

beforeAll(async () => {
  if (!available) return;
  postgres = await startPostgres();
  upstreamPassword = randomBytes(12).toString('base64url');
  await postgres.psql(SEED);
  await postgres.psql(`CREATE ROLE gateway_svc LOGIN PASSWORD '${upstreamPassword}'; GRANT ALL ON ALL TABLES IN SCHEMA public TO gateway_svc;`);
  idp = await startOidcProvider({
    clients: [
      { clientId: 'agent-7', kind: 'agent', groups: ['analysts'] },
      { clientId: 'dana', kind: 'human', groups: ['analysts', 'dba'] },
      { clientId: 'bob', kind: 'human', groups: ['dba'] },
      { clientId: 'carol', kind: 'human', groups: ['dba'] },
      { clientId: 'dave', kind: 'human', groups: ['security'] },
    ],
  });
  writeFileSync(join(dir, 'policy.yaml'), POLICY);

  hook = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const delivery = String(req.headers['custodian-delivery']);
      const attempt = (hookAttempts.get(delivery) ?? 0) + 1;
      hookAttempts.set(delivery, attempt);
      res.statusCode = attempt <= 2 ? 500 : 200;
      hookRequests.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8'), status: res.statusCode });
      res.end();
    });
  });
  await new Promise<void>((resolve) => hook.listen(0, '127.0.0.1', resolve));

  const port = await freePort();
  apiUrl = `http://127.0.0.1:${port}`;
  const configFile = join(dir, 'custodian.yaml');
  writeFileSync(
    configFile,
    JSON.stringify({
      dataDir: join(dir, 'data'),
      identity: { issuers: [{ issuer: idp.issuer, audiences: [idp.defaultAudience] }] },
      approvals: {
        publicUrl: apiUrl,
        notifications: {
          retry: { maxAttempts: 5, initialDelaySeconds: 0.05, maxDelaySeconds: 0.2 },
          webhooks: [{ name: 'ops', url: `http://127.0.0.1:${(hook.address() as AddressInfo).port}/hooks`, secret: { fromEnv: 'OPS_WEBHOOK_SECRET' }, events: ['approval.requested'] }],
        },
      },
    }),
  );
  const loaded = loadConfig({ file: configFile, env: {}, cwd: dir });
  store = await SqliteEventStore.open({ path: eventsPath, pollIntervalMs: 50 });
  evidence = new StoreEvidencePipeline({ store, instance: 'gw-e2e' });
  const logger = createLogger({ service: 'api', level: 'warn', destination: { write: () => undefined } });
  api = await startNestService({
    module: ApiModule.register({ eventStore: store, logger, identity: configuredIdentity(loaded, { logger }), approvals: configuredApprovals(loaded, { env: { OPS_WEBHOOK_SECRET: webhookSecret } }), listenHost: '127.0.0.1', instance: 'api-e2e' }),
    logger,
    listen: { host: '127.0.0.1', port },
    shutdownHooks: false,
  });
  current = await startGatewayInstance();
});

afterAll(async () => {
  await current?.gate.close();
  await current?.gateway.close();
  await current?.gateStore.close();
  await api?.close();
  await evidence?.close();
  await store?.close();
  await Promise.all([postgres?.stop(), idp?.stop()]);
  await new Promise((resolve) => (hook ? hook.close(resolve) : resolve(undefined)));
  rmSync(dir, { recursive: true, force: true });
});

interface RunningPsql {
  readonly done: Promise<{ stdout: string; stderr: string; exitCode: number }>;
  exited(): boolean;
}

/** The real psql through the gateway, with an access token as password. */
async function psql(clientId: string, script: string): Promise<RunningPsql> {
  const { accessToken } = await idp.issueToken({ clientId });
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) if (!key.startsWith('PG')) env[key] = value;
  Object.assign(env, { PGPASSWORD: accessToken, PGCONNECT_TIMEOUT: '10', PGSSLMODE: 'disable' });
  const child = spawn(PSQL, ['-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-h', current.gateway.host, '-p', String(current.gateway.port), '-U', clientId, '-d', 'orders-prod', '-f', '-'], { env, stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  let exited = false;
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  const timer = setTimeout(() => child.kill('SIGKILL'), 90_000);
  const done = new Promise<{ stdout: string; stderr: string; exitCode: number }>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => {
      exited = true;
      clearTimeout(timer);
      resolve({ stdout, stderr, exitCode: code ?? -1 });
    });
  });
  child.stdin.end(script);
  return { done, exited: () => exited };
}

async function token(clientId: string): Promise<string> {
  return (await idp.issueToken({ clientId })).accessToken;
}

async function apiCall(clientId: string, method: 'GET' | 'POST', path: string, body?: unknown): Promise<Response> {
  return fetch(`${apiUrl}${path}`, {
    method,
    headers: { authorization: `Bearer ${await token(clientId)}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
}

/** Approvals a test already took from the queue. */
const taken = new Set<string>();

/**
 * Waits until the approver queue (as `approver` sees it) holds a new pending approval for this
 * command (the text is the statement as sent, masked where a detector finds something).
 */
async function pendingFor(approver: string, commandPart: string, status: 'pending' | 'all' = 'pending'): Promise<ApprovalView> {
  for (let i = 0; i < 400; i++) {
    const list = (await (await apiCall(approver, 'GET', `/v1/approvals?status=${status}`)).json()) as ApprovalListResponse;
    const found = list.approvals.find((a) => a.command.includes(commandPart) && !taken.has(a.approvalId));
    if (found) {
      taken.add(found.approvalId);
      return found;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`no pending approval for ${commandPart}`);
}

async function approvalEvents(approvalId: string): Promise<CustodianEvent[]> {
  const events: CustodianEvent[] = [];
  for await (const r of store.readStream(approvalStream(approvalId))) events.push(r.event);
  return events;
}

function cli(clientToken: string): { io: Parameters<typeof runCli>[1]; out: () => string; err: () => string } {
  const out: string[] = [];
  const err: string[] = [];
  return {
    io: { stdout: (t) => void out.push(t), stderr: (t) => void err.push(t), env: { CUSTODIAN_TOKEN: clientToken, CUSTODIAN_API_URL: apiUrl }, cwd: dir, waitForStop: () => new Promise(() => undefined) },
    out: () => out.join(''),
    err: () => err.join(''),
  };
}

describe.skipIf(!available)('approvals through the PostgreSQL gateway', () => {
  it('psql waits on a held DELETE; a second identity approves through the API (CLI); the statement runs', async () => {
    const client = await psql('agent-7', 'DELETE FROM orders WHERE id = 1 RETURNING id;\n');
    const held = await pendingFor('bob', 'DELETE FROM orders');
    // Approvers see what will run: the statement with its literal values (masked only where a detector says so).
    expect(held.command).toBe('DELETE FROM orders WHERE id = 1 RETURNING id;');
    expect(held.commandDigest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(held).toMatchObject({ ruleId: 'hold-deletes', requester: { subject: 'agent-7', kind: 'agent' }, connection: { name: 'orders-prod', protocol: 'postgres' }, canDecide: true });
    // Held, not run: psql is still waiting and the row is still there.
    expect(client.exited()).toBe(false);
    expect(await postgres.psql('SELECT count(*) FROM orders WHERE id = 1')).toBe('1');

    const show = cli(await token('bob'));
    expect(await runCli(['approvals', 'show', held.approvalId], show.io)).toBe(APPROVALS_EXIT.ok);
    expect(show.out()).toContain('policy.decided');
    const approve = cli(await token('bob'));
    expect(await runCli(['approvals', 'approve', held.approvalId, '--justification', 'ticket OPS-1: duplicate order'], approve.io)).toBe(APPROVALS_EXIT.ok);
    expect(approve.out()).toContain('granted (1 of 1)');

    const result = await client.done;
    expect(result.stderr).toBe('');
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toBe('1\n');
    expect(await postgres.psql('SELECT count(*) FROM orders WHERE id = 1')).toBe('0');
    const events = await approvalEvents(held.approvalId);
    expect(events.map((e) => e.type)).toEqual(['approval.requested', 'approval.granted']);
    expect(events[1]).toMatchObject({ identity: { subject: 'bob', kind: 'human' }, payload: { justification: 'ticket OPS-1: duplicate order', final: true } });
  });

  it('denial: psql gets a clear error naming the approver and the reason; nothing ran', async () => {
    const client = await psql('agent-7', 'DELETE FROM orders WHERE id = 2;\n');
    const held = await pendingFor('carol', 'DELETE FROM orders');
    const denied = await apiCall('carol', 'POST', `/v1/approvals/${held.approvalId}/deny`, { justification: 'orders are never deleted by hand' });
    expect(denied.status).toBe(200);
    const result = await client.done;
    expect(result.exitCode).not.toBe(0);
    expect(result.stderr).toContain('Approval denied by carol (rule hold-deletes): orders are never deleted by hand');
    expect(await postgres.psql('SELECT count(*) FROM orders WHERE id = 2')).toBe('1');
    expect((await approvalEvents(held.approvalId)).map((e) => e.type)).toEqual(['approval.requested', 'approval.denied']);
  });

  it('expiry: nobody decides in time; psql is told, the expiry is recorded, a late approval is refused', async () => {
    const client = await psql('agent-7', "INSERT INTO notes VALUES (1, 'late');\n");
    // Any status: under load the 2-second deadline may pass before the queue is read.
    const held = await pendingFor('bob', 'INSERT INTO notes', 'all');
    const result = await client.done;
    expect(result.stderr).toContain('Approval was not granted within 2 s (rule quick-notes)');
    expect(await postgres.psql('SELECT count(*) FROM notes')).toBe('0');
    const events = await approvalEvents(held.approvalId);
    expect(events.map((e) => e.type)).toEqual(['approval.requested', 'approval.expired']);
    expect(events[1]?.identity).toMatchObject({ subject: 'custodian-gateway/gw-e2e', kind: 'service' });
    expect((await apiCall('bob', 'POST', `/v1/approvals/${held.approvalId}/approve`, { justification: 'sorry, late' })).status).toBe(409);
  });

  it('self-approval is refused (even with a fresh token); another approver releases it', async () => {
    const client = await psql('dana', 'DELETE FROM orders WHERE id = 3 RETURNING id;\n');
    const held = await pendingFor('bob', 'DELETE FROM orders');
    expect(held.requester.subject).toBe('dana');
    const self = cli(await token('dana'));
    expect(await runCli(['approvals', 'approve', held.approvalId, '-j', 'my own change'], self.io)).toBe(APPROVALS_EXIT.refused);
    expect(self.err()).toContain('403 APPROVAL_SELF_DECISION_FORBIDDEN');
    const again = await apiCall('dana', 'POST', `/v1/approvals/${held.approvalId}/approve`, { justification: 'second token' });
    expect(again.status).toBe(403);
    expect(client.exited()).toBe(false);
    expect((await apiCall('bob', 'POST', `/v1/approvals/${held.approvalId}/approve`, { justification: 'reviewed' })).status).toBe(200);
    const result = await client.done;
    expect(result.stdout).toBe('3\n');
    expect((await approvalEvents(held.approvalId)).map((e) => e.identity?.subject)).toEqual(['dana', 'bob']);
  });

  it('2-of-3: one approval keeps psql waiting; the second distinct approver releases it', async () => {
    const client = await psql('agent-7', 'UPDATE accounts SET balance = 0 WHERE id = 1;\nSELECT balance FROM accounts WHERE id = 1;\n');
    const held = await pendingFor('bob', 'UPDATE accounts');
    expect(held.required).toBe(2);
    expect((await apiCall('bob', 'POST', `/v1/approvals/${held.approvalId}/approve`, { justification: 'ok from dba' })).status).toBe(200);
    // The gateway saw the first approval and keeps holding.
    await new Promise((r) => setTimeout(r, 300));
    expect(client.exited()).toBe(false);
    expect(await postgres.psql('SELECT balance FROM accounts WHERE id = 1')).toBe('100.00');
    expect((await apiCall('dave', 'POST', `/v1/approvals/${held.approvalId}/approve`, { justification: 'ok from security' })).status).toBe(200);
    const result = await client.done;
    expect(result.stdout).toBe('0.00\n');
    const granted = (await approvalEvents(held.approvalId)).filter((e) => e.type === 'approval.granted');
    expect(granted.map((e) => [e.identity?.subject, e.type === 'approval.granted' && e.payload.final])).toEqual([
      ['bob', false],
      ['dave', true],
    ]);
  });

  it('a window grant lets the same identity write again on this connection without asking', async () => {
    const first = await psql('agent-7', "INSERT INTO scratch VALUES (1, 'a');\n");
    const held = await pendingFor('bob', 'INSERT INTO scratch');
    expect(held.grantScope).toEqual({ kind: 'window', windowSeconds: 600 });
    expect((await apiCall('bob', 'POST', `/v1/approvals/${held.approvalId}/approve`, { justification: 'data fix window' })).status).toBe(200);
    expect((await first.done).exitCode).toBe(0);
    const before = (await (await apiCall('bob', 'GET', '/v1/approvals?status=all&limit=1000')).json()) as ApprovalListResponse;
    const second = await (await psql('agent-7', "INSERT INTO scratch VALUES (2, 'b');\nSELECT count(*) FROM scratch;\n")).done;
    expect(second.stderr).toBe('');
    expect(second.stdout).toBe('2\n');
    const after = (await (await apiCall('bob', 'GET', '/v1/approvals?status=all&limit=1000')).json()) as ApprovalListResponse;
    expect(after.approvals.length).toBe(before.approvals.length);
  });

  it('the gateway crashes while psql waits: the client fails, the held DELETE never runs, the restarted gateway cancels the approval', async () => {
    const client = await psql('agent-7', 'DELETE FROM orders WHERE id = 4;\n');
    const held = await pendingFor('bob', 'DELETE FROM orders');
    // A crash as the log sees it: the gate can no longer write anything, then the connections drop.
    const crashed = current;
    await crashed.gateStore.close();
    await crashed.gateway.close();
    const result = await client.done;
    expect(result.exitCode).not.toBe(0);
    expect(result.stderr).toMatch(/gateway is shutting down|server closed the connection/);
    expect((await approvalEvents(held.approvalId)).map((e) => e.type)).toEqual(['approval.requested']);
    await crashed.gate.close();

    current = await startGatewayInstance();
    expect(current.cancelledAtStart).toEqual([held.approvalId]);
    const events = await approvalEvents(held.approvalId);
    expect(events.at(-1)).toMatchObject({ type: 'approval.cancelled', payload: { reason: 'gateway-restarted' }, source: { service: 'gateway', instance: 'gw-e2e' } });
    const late = await apiCall('bob', 'POST', `/v1/approvals/${held.approvalId}/approve`, { justification: 'too late' });
    expect(late.status).toBe(409);
    expect(await postgres.psql('SELECT count(*) FROM orders WHERE id = 4')).toBe('1');
    // The restarted gateway serves new sessions.
    expect((await (await psql('agent-7', 'SELECT count(*) FROM orders;\n')).done).stdout).toBe('18\n');
  });

  it('a graceful restart while psql waits: the client is told the approval was cancelled (gateway-restarted)', async () => {
    const client = await psql('agent-7', 'DELETE FROM orders WHERE id = 5;\n');
    const held = await pendingFor('bob', 'DELETE FROM orders');
    const stopping = current;
    await stopping.gate.close();
    const result = await client.done;
    await stopping.gateway.close();
    await stopping.gateStore.close();
    expect(result.stderr).toContain('The approval request was cancelled (gateway-restarted); the command was not run.');
    expect(await postgres.psql('SELECT count(*) FROM orders WHERE id = 5')).toBe('1');
    expect((await approvalEvents(held.approvalId)).map((e) => e.type)).toEqual(['approval.requested', 'approval.cancelled']);
    current = await startGatewayInstance();
    expect(current.cancelledAtStart).toEqual([]);
  });

  it('every request was sent to the webhook, signed, and retried after the receiver failed twice; each attempt is an event', async () => {
    const requested: CustodianEvent[] = [];
    for await (const r of store.readAll()) if (r.event.type === 'approval.requested') requested.push(r.event);
    expect(requested.length).toBeGreaterThanOrEqual(8);
    for (const event of requested) {
      const id = notificationId(event.id, 'ops');
      let attempts: CustodianEvent[] = [];
      for (let i = 0; i < 200; i++) {
        attempts = [];
        for await (const r of store.readStream(notificationStream(id))) attempts.push(r.event);
        if (attempts.some((e) => e.type === 'notification.delivered')) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      expect(attempts.map((e) => e.type)).toEqual(['notification.failed', 'notification.failed', 'notification.delivered']);
      const received = hookRequests.filter((r) => r.headers['custodian-delivery'] === id);
      expect(received.map((r) => r.status)).toEqual([500, 500, 200]);
      for (const r of received) verifyWebhookSignature({ secret: webhookSecret, signature: String(r.headers['custodian-signature']), deliveryId: id, body: r.body });
    }
  });
});
