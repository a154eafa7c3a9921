// The "done when", in a real browser: `custodian start --demo` prints the dashboard URL; a
// newcomer opens it, signs in as the demo approver (one click at the demo issuer), approves the held
// UPDATE that the printed psql line waits on, and watches the session's replay. Service logs went
// to a file, not to the screen.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, type CliIo } from './index.js';
import { buildDashboard, chromiumAvailable, launchChromium } from './testing/dashboard-browser.js';

const PSQL = '/usr/lib/postgresql/15/bin/psql';
const available = existsSync(PSQL) && chromiumAvailable();
if (!available) console.warn(`demo dashboard test skipped: need ${PSQL} and /usr/bin/chromium (scripts/setup.sh --services installs both)`);
let dir: string;
let stdout = '';
let stderr = '';
let stop: (signal: string) => void = () => undefined;
let exited: Promise<number> | undefined;
let browser: Browser;

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return typeof address === 'object' && address ? address.port : 0;
}

beforeAll(async () => {
  if (!available) return;
  await buildDashboard();
  dir = mkdtempSync(join(tmpdir(), 'custodian-demo-dashboard-'));
  const env = {
    CUSTODIAN_SERVICES__GATEWAY__HTTP__PORT: '0',
    CUSTODIAN_SERVICES__INGEST__HTTP__PORT: '0',
    CUSTODIAN_SERVICES__PROJECTOR__HTTP__PORT: '0',
    CUSTODIAN_SERVICES__API__HTTP__PORT: String(await freePort()),
    CUSTODIAN_GATEWAYS__POSTGRES__LISTEN__PORT: String(await freePort()),
  };
  const stopped = new Promise<string>((resolve) => (stop = resolve));
  const io: CliIo = { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t), env, cwd: dir, waitForStop: () => stopped };
  exited = runCli(['start', '--demo'], io);
  for (let i = 0; i < 600 && !stdout.includes('psql "host='); i++) await new Promise((r) => setTimeout(r, 100));
  if (!stdout.includes('psql "host=')) throw new Error(`the demo did not start:\n${stderr}`);
  browser = await launchChromium();
});

afterAll(async () => {
  await browser?.close();
  stop('SIGTERM');
  await exited;
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function runPrintedPsql(sql: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const line = stdout.split('\n').find((l) => l.includes('psql "host='))!;
  const password = /PGPASSWORD='([^']+)'/.exec(line)![1]!;
  const conninfo = /psql "([^"]+)"/.exec(line)![1]!;
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) if (!key.startsWith('PG')) env[key] = value;
  return new Promise((resolve) => {
    const child = spawn(PSQL, ['-X', '-A', '-t', conninfo, '-c', sql], { env: { ...env, PGPASSWORD: password } });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('close', (code) => resolve({ code, stdout: out, stderr: err }));
  });
}

describe.skipIf(!available)('custodian start --demo, first five minutes', () => {
  it('prints the dashboard URL and the psql line, and keeps service logs off the screen', () => {
    expect(stdout).toMatch(/^Dashboard: http:\/\/127\.0\.0\.1:\d+\/ /m);
    expect(stdout).toContain('psql "host=');
    // stdout holds the instructions only: no JSON log line.
    expect(stdout.split('\n').filter((l) => l.startsWith('{'))).toEqual([]);
    const logLine = /logs: (\S+)/.exec(stderr);
    expect(logLine).not.toBeNull();
    expect(readFileSync(logLine![1]!, 'utf8')).toMatch(/"service":"api"/);
  });

  it('a newcomer signs in as the demo approver, approves the held UPDATE on the page and watches the replay', async () => {
    const url = /^Dashboard: (\S+)/m.exec(stdout)![1]!;
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const page = await context.newPage();
    await page.goto(url);
    await page.getByRole('link', { name: 'Sign in' }).click();
    await page.getByRole('button', { name: 'Sign in as demo-approver' }).click();
    await page.getByRole('heading', { name: 'Approvals' }).waitFor();
    const held = runPrintedPsql("UPDATE orders SET status = 'shipped' WHERE id = 102");
    const card = page.locator('article.approval', { hasText: "UPDATE orders SET status = 'shipped' WHERE id = 102" });
    await card.waitFor({ timeout: 30_000 });
    await card.getByLabel(/Justification/).fill('looks right');
    await card.getByRole('button', { name: 'Approve' }).click();
    const result = await held;
    expect(result.stderr).toBe('');
    expect(result.stdout).toContain('UPDATE 1');
    await page.getByLabel('Show').selectOption('granted');
    await page.locator('article.approval', { hasText: 'id = 102' }).getByRole('link').click();
    const row = page.getByRole('table', { name: 'Query timeline' }).getByRole('row').filter({ hasText: 'id = 102' });
    await row.getByText('UPDATE 1').waitFor({ timeout: 30_000 });
    await context.close();
  });
});
