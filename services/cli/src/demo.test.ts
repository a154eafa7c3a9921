// `custodian start --demo`, in process: the printed psql line works as printed with the real psql:
// a masked column, a blocked DELETE without WHERE, and a held UPDATE that the demo approver
// approves through the API with `custodian approvals approve`.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, type CliIo } from './index.js';

const PSQL = '/usr/lib/postgresql/15/bin/psql';
let dir: string;
let stdout = '';
let stderr = '';
let stop: (signal: string) => void = () => undefined;
let exited: Promise<number>;
let gatewayPort = 0;
let apiPort = 0;

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return typeof address === 'object' && address ? address.port : 0;
}

function env(extra: Record<string, string> = {}): Record<string, string> {
  return {
    CUSTODIAN_SERVICES__GATEWAY__HTTP__PORT: '0',
    CUSTODIAN_SERVICES__INGEST__HTTP__PORT: '0',
    CUSTODIAN_SERVICES__PROJECTOR__HTTP__PORT: '0',
    CUSTODIAN_SERVICES__API__HTTP__PORT: String(apiPort),
    CUSTODIAN_GATEWAYS__POSTGRES__LISTEN__PORT: String(gatewayPort),
    CUSTODIAN_LOG__LEVEL: 'warn',
    ...extra,
  };
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'custodian-demo-'));
  gatewayPort = await freePort();
  apiPort = await freePort();
  const stopped = new Promise<string>((resolve) => (stop = resolve));
  const io: CliIo = { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t), env: env(), cwd: dir, waitForStop: () => stopped };
  exited = runCli(['start', '--demo'], io);
  for (let i = 0; i < 600 && !stdout.includes('psql "host='); i++) await new Promise((r) => setTimeout(r, 100));
  if (!stdout.includes('psql "host=')) throw new Error(`the demo did not start:\n${stderr}`);
});

afterAll(async () => {
  stop('SIGTERM');
  await exited;
  rmSync(dir, { recursive: true, force: true });
});

/** Runs the printed psql line (its PGPASSWORD and connection string) with a script on stdin. */
function runPrintedPsql(script: string): Promise<{ stdout: string; stderr: string }> {
  const line = stdout.split('\n').find((l) => l.includes('psql "host='))!;
  const password = /PGPASSWORD='([^']+)'/.exec(line)![1]!;
  const conninfo = /psql "([^"]+)"/.exec(line)![1]!;
  const childEnv: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) if (!key.startsWith('PG')) childEnv[key] = value;
  return new Promise((resolve) => {
    const child = spawn(PSQL, ['-X', '-A', '-t', '-q', conninfo, '-f', '-'], { env: { ...childEnv, PGPASSWORD: password } });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('close', () => resolve({ stdout: out, stderr: err }));
    child.stdin.end(script);
  });
}

async function approverToken(): Promise<string> {
  const issuer = /issuer: (http:\/\/127\.0\.0\.1:\d+)/.exec(stdout)![1]!;
  const response = await fetch(`${issuer}/token`, {
    method: 'POST',
    headers: { authorization: `Basic ${Buffer.from('demo-approver:demo-approver-secret').toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
    body: 'grant_type=client_credentials',
  });
  return ((await response.json()) as { access_token: string }).access_token;
}

describe('custodian start --demo', () => {
  it('prints a psql line that shows a masked column and a blocked DELETE without WHERE', async () => {
    const result = await runPrintedPsql('SELECT name, email, notes FROM customers ORDER BY id;\nDELETE FROM orders;\nSELECT count(*) FROM orders;\n');
    const rows = result.stdout.trim().split('\n');
    expect(rows[0]).toBe('Ada Lovelace|***@**********.***mple|VIP; prefers invoices by e-mail');
    expect(rows[1]).toContain('paid with card [REDACTED:pii-in-text] last time');
    expect(rows[2]).toContain('backup contact: [REDACTED:pii-in-text]');
    expect(result.stdout).not.toContain('ada@analytical.example');
    expect(result.stderr).toContain('DELETE and UPDATE without WHERE are blocked. (rule no-unbounded-deletes)');
    expect(rows.at(-1)).toBe('4');
  });

  it('holds an UPDATE until the demo approver approves it with `custodian approvals approve`', async () => {
    const held = runPrintedPsql("UPDATE orders SET status = 'shipped' WHERE id = 102;\nSELECT status FROM orders WHERE id = 102;\n");
    const token = await approverToken();
    const approvalsIo = (): CliIo & { out: () => string } => {
      let out = '';
      return { stdout: (t) => (out += t), stderr: (t) => (out += t), env: env({ CUSTODIAN_TOKEN: token, CUSTODIAN_API_URL: `http://127.0.0.1:${apiPort}` }), cwd: dir, waitForStop: () => new Promise(() => undefined), out: () => out };
    };
    let id: string | undefined;
    for (let i = 0; i < 100 && !id; i++) {
      const io = approvalsIo();
      await runCli(['approvals', 'list'], io);
      id = /([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})/.exec(io.out())?.[1];
      if (!id) await new Promise((r) => setTimeout(r, 200));
    }
    expect(id).toBeDefined();
    const approve = approvalsIo();
    expect(await runCli(['approvals', 'approve', id!, '-j', 'demo approval'], approve)).toBe(0);
    const result = await held;
    expect(result.stderr).toBe('');
    expect(result.stdout.trim()).toBe('shipped');
  });
});
