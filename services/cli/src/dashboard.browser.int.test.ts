// The dashboard in a real browser (Debian's Chromium through playwright-core) against
// `custodian start` with the real OIDC provider (test harness) and the PostgreSQL gateway in front
// of a real PostgreSQL: sign in through the provider's pages, see a statement psql waits on, approve
// or deny it on the page and watch psql finish or fail; 2-of-3; self-approval refused with the
// reason shown; an agent token cannot use the page. With CUSTODIAN_SCREENSHOTS=<dir>
// (scripts/dashboard-screenshots.sh) it also saves a screenshot of each page.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyEvidencePackFile } from '@custodian/evidence';
import { freePort, startOidcProvider, startPostgres, type StartedOidcProvider, type StartedPostgres } from '@custodian/test-harness';
import { runCli, type CliIo } from './index.js';
import { buildDashboard, chromiumAvailable, launchChromium, signIn } from './testing/dashboard-browser.js';

const PSQL = '/usr/lib/postgresql/15/bin/psql';
const available = existsSync(PSQL) && chromiumAvailable();
if (!available) console.warn(`dashboard browser tests skipped: need ${PSQL} (postgresql-client-15) and /usr/bin/chromium (Debian package chromium; scripts/setup.sh --services installs both)`);
const SCREENSHOTS = process.env['CUSTODIAN_SCREENSHOTS'];

const POLICY = `
name: dashboard-e2e
version: 1
defaults:
  decision: block
  message: Not permitted through the gateway.
rules:
  - id: reads
    match: { sql: { kinds: [read, transaction] } }
    decision: allow
  - id: two-person-accounts
    match: { sql: { kinds: [write], objects: ["public.accounts"] } }
    decision: require-approval
    approval: { approverGroups: [dba, security], required: 2, timeoutSeconds: 120, grant: once }
  - id: agents-writes-need-approval
    match: { sql: { kinds: [write], objects: ["public.orders"] } }
    decision: require-approval
    approval: { approverGroups: [dba], required: 1, timeoutSeconds: 120, grant: once }
`;

const SEED = `
CREATE TABLE orders (id int PRIMARY KEY, status text, email text);
INSERT INTO orders SELECT g, 'new', 'buyer' || g || '@example.com' FROM generate_series(100, 110) g;
CREATE TABLE accounts (id int PRIMARY KEY, balance numeric(10,2));
INSERT INTO accounts VALUES (1, 100), (2, 200);
`;

let dir: string;
let postgres: StartedPostgres;
let idp: StartedOidcProvider;
let browser: Browser;
let dashboard: string;
let gatewayPort: number;
let stop: (signal: string) => void = () => undefined;
let exited: Promise<number> | undefined;
let stderr = '';
const tokens = new Map<string, string>();

beforeAll(async () => {
  if (!available) return;
  // The page under test is the one `npm run build` produces from the sources as they are now.
  await buildDashboard();
  dir = mkdtempSync(join(tmpdir(), 'custodian-dashboard-'));
  postgres = await startPostgres();
  await postgres.psql(SEED);
  await postgres.psql(`CREATE ROLE gateway_svc LOGIN PASSWORD 'held-by-the-gateway-only'; GRANT ALL ON ALL TABLES IN SCHEMA public TO gateway_svc;`);
  idp = await startOidcProvider({
    clients: [
      { clientId: 'agent-7', kind: 'agent', groups: ['analysts'] },
      // A human's own token for psql: the same subject as the user dana below.
      { clientId: 'dana', kind: 'human', groups: ['analysts', 'dba'] },
    ],
    users: [
      { subject: 'bob', groups: ['dba'] },
      { subject: 'dave', groups: ['security'] },
      { subject: 'dana', groups: ['analysts', 'dba'] },
      { subject: 'amy', groups: ['auditors'] },
    ],
  });
  const apiPort = await freePort();
  gatewayPort = await freePort();
  dashboard = `http://127.0.0.1:${apiPort}`;
  idp.registerPublicClient({ clientId: 'custodian-dashboard', redirectUris: [`${dashboard}/auth/callback`] });
  writeFileSync(join(dir, 'policy.yaml'), POLICY);
  writeFileSync(join(dir, 'shop-password'), 'held-by-the-gateway-only', { mode: 0o600 });
  const configFile = join(dir, 'custodian.yaml');
  writeFileSync(
    configFile,
    JSON.stringify({
      dataDir: join(dir, 'data'),
      log: { level: 'warn' },
      identity: {
        issuers: [{ issuer: idp.issuer, audiences: [idp.defaultAudience] }],
        login: { issuer: idp.issuer, clientId: 'custodian-dashboard', redirectUri: `${dashboard}/auth/callback`, scope: `openid ${idp.scopes.join(' ')}`, resource: idp.defaultAudience },
      },
      gateways: {
        policyFile: join(dir, 'policy.yaml'),
        postgres: {
          enabled: true,
          listen: { host: '127.0.0.1', port: gatewayPort },
          connections: [
            {
              name: 'shop',
              upstream: { host: postgres.host, port: postgres.port, database: postgres.database, user: 'gateway_svc', credential: { fromFile: join(dir, 'shop-password') }, tls: { mode: 'disable' } },
            },
          ],
        },
      },
      // Checkpoints every second, so packs and the checkpoint view cover the sessions of this test soon.
      evidence: { checkpoint: { everySeconds: 1 } },
      services: { api: { http: { host: '127.0.0.1', port: apiPort } }, gateway: { http: { port: 0 } }, ingest: { http: { port: 0 } }, projector: { http: { port: 0 } } },
    }),
  );
  const stopped = new Promise<string>((resolve) => (stop = resolve));
  const io: CliIo = { stdout: () => undefined, stderr: (t) => (stderr += t), env: {}, cwd: dir, waitForStop: () => stopped };
  exited = runCli(['start', '--config', configFile], io);
  for (let i = 0; i < 600 && !stderr.includes('Press Ctrl-C'); i++) await new Promise((r) => setTimeout(r, 100));
  if (!stderr.includes('Press Ctrl-C')) throw new Error(`custodian did not start:\n${stderr}`);
  for (const clientId of ['agent-7', 'dana']) tokens.set(clientId, (await idp.issueToken({ clientId })).accessToken);
  browser = await launchChromium();
});

afterAll(async () => {
  await browser?.close();
  stop('SIGTERM');
  await exited;
  await Promise.all([postgres?.stop(), idp?.stop()]);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

interface PsqlRun {
  readonly done: Promise<{ code: number | null; stdout: string; stderr: string }>;
}

/** The real psql through the gateway as `clientId` (its OIDC access token is the password). */
function psqlAs(clientId: string, sql: string): PsqlRun {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) if (!key.startsWith('PG')) env[key] = value;
  const child = spawn(PSQL, ['-X', '-A', '-t', '-v', 'ON_ERROR_STOP=1', `host=127.0.0.1 port=${gatewayPort} dbname=shop user=${clientId} sslmode=disable`, '-c', sql], {
    env: { ...env, PGPASSWORD: tokens.get(clientId) ?? '' },
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  return { done: new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout: out, stderr: err }))) };
}

async function screenshot(page: Page, name: string): Promise<void> {
  if (!SCREENSHOTS) return;
  mkdirSync(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true });
}

/** The approval card showing `text` (live: the queue refreshes while the page is open). */
function card(page: Page, text: string) {
  return page.locator('article.approval', { hasText: text });
}

describe.skipIf(!available)('the dashboard in Chromium', () => {
  it('without a session the page offers the sign-in and shows nothing else', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${dashboard}/approvals`);
    await expect(page.getByRole('link', { name: 'Sign in' }).getAttribute('href')).resolves.toBe('/auth/login?returnTo=%2Fapprovals');
    expect(await page.locator('article').count()).toBe(0);
    await screenshot(page, 'sign-in');
    await context.close();
  });

  it('a held UPDATE appears in the approver queue and approving it on the page lets psql finish', async () => {
    const { context, page } = await signIn(browser, dashboard, '/approvals', 'bob');
    // Group-based views: an approver outside the auditor groups has no controls or evidence pages.
    const nav = page.getByRole('navigation', { name: 'Main' });
    expect(await nav.getByRole('link').allTextContents()).toEqual(['Approvals', 'Sessions']);
    const run = psqlAs('agent-7', "UPDATE orders SET status = 'shipped' WHERE id = 102");
    const held = card(page, "UPDATE orders SET status = 'shipped' WHERE id = 102");
    await held.waitFor({ timeout: 30_000 });
    await expect(held.textContent()).resolves.toContain('agent-7');
    await expect(held.textContent()).resolves.toContain('agents-writes-need-approval');
    await screenshot(page, 'approvals');
    await held.getByLabel(/Justification/).fill('customer asked; ticket 4711');
    await held.getByRole('button', { name: 'Approve' }).click();
    const result = await run.done;
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('UPDATE 1');
    // The approver follows the approval to its session and watches the replay: the statement ran.
    await page.getByLabel('Show').selectOption('granted');
    const granted = card(page, "UPDATE orders SET status = 'shipped' WHERE id = 102");
    await granted.getByRole('link').click();
    const timeline = page.getByRole('table', { name: 'Query timeline' });
    const row = timeline.getByRole('row').filter({ hasText: "UPDATE orders SET status = 'shipped' WHERE id = 102" });
    await row.getByText('UPDATE 1').waitFor({ timeout: 30_000 });
    await expect(row.textContent()).resolves.toContain('require-approval (agents-writes-need-approval)');
    await expect(row.textContent()).resolves.toContain('approval granted (1 of 1)');
    await screenshot(page, 'session');
    await context.close();
  });

  it('an auditor lists sessions with filters and opens one: its statements, decisions and row counts', async () => {
    const reads = psqlAs('agent-7', 'SELECT id, status FROM orders WHERE id BETWEEN 100 AND 104 ORDER BY id');
    expect((await reads.done).code).toBe(0);
    const blocked = psqlAs('agent-7', 'DROP TABLE orders');
    expect((await blocked.done).code).not.toBe(0);
    const { context, page } = await signIn(browser, dashboard, '/sessions', 'amy');
    const sessions = page.getByRole('table', { name: 'Sessions' });
    await sessions.getByRole('row').filter({ hasText: 'agent-7' }).first().waitFor({ timeout: 30_000 });
    await page.getByLabel('Decisions').selectOption('blocked');
    await page.getByRole('button', { name: 'Apply' }).click();
    await page.waitForURL(/decision=blocked/);
    const blockedRow = sessions.getByRole('row').filter({ hasText: 'agent-7' });
    await expect.poll(() => blockedRow.count(), { timeout: 30_000 }).toBe(1);
    await screenshot(page, 'sessions');
    // Has findings: every psql session here is unencrypted (sslmode=disable), a session-without-tls
    // finding of the evidence views once its events are checkpointed (every second here).
    await page.goto(`${dashboard}/sessions`);
    await page.getByLabel('Has findings').check();
    await page.getByRole('button', { name: 'Apply' }).click();
    await page.waitForURL(/findings=true/);
    await expect
      .poll(
        async () => {
          await page.reload();
          await sessions.waitFor();
          return sessions.getByRole('row').filter({ hasText: 'agent-7' }).count();
        },
        { timeout: 60_000 },
      )
      .toBeGreaterThan(0);
    await page.goto(`${dashboard}/sessions?decision=blocked`);
    await blockedRow.getByRole('link').click();
    const timeline = page.getByRole('table', { name: 'Query timeline' });
    const drop = timeline.getByRole('row').filter({ hasText: 'DROP TABLE orders' });
    await drop.waitFor({ timeout: 30_000 });
    await expect(drop.textContent()).resolves.toContain('block (default)');
    await page.goto(`${dashboard}/sessions?identity=agent-7&decision=allowed-only`);
    await sessions.getByRole('row').filter({ hasText: 'agent-7' }).first().getByRole('link').click();
    const select = page.getByRole('table', { name: 'Query timeline' }).getByRole('row').filter({ hasText: 'SELECT id, status FROM orders' });
    await select.waitFor({ timeout: 30_000 });
    await expect(select.textContent()).resolves.toMatch(/SELECT 5.*5/);
    await context.close();
  });

  it('denying on the page gives psql the error', async () => {
    const { context, page } = await signIn(browser, dashboard, '/approvals', 'bob');
    const run = psqlAs('agent-7', "UPDATE orders SET status = 'lost' WHERE id = 103");
    const held = card(page, "status = 'lost'");
    await held.waitFor({ timeout: 30_000 });
    await held.getByLabel(/Justification/).fill('not without a ticket');
    await held.getByRole('button', { name: 'Deny' }).click();
    const result = await run.done;
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(/denied/i);
    await context.close();
  });

  it('a newly held statement is pushed to the open queue by server-sent events: no polling, no reload', async () => {
    const { context, page } = await signIn(browser, dashboard, '/approvals', 'bob');
    await page.locator('[data-live="connected"]').waitFor({ timeout: 30_000 });
    let queueRequests = 0;
    page.on('request', (request) => {
      if (new URL(request.url()).pathname === '/v1/approvals') queueRequests++;
    });
    // Polling would ask for the queue every 2 s; with live updates connected nothing is asked until something changes.
    await page.waitForTimeout(5_000);
    expect(queueRequests).toBe(0);
    const run = psqlAs('agent-7', "UPDATE orders SET status = 'pushed' WHERE id = 105");
    const held = card(page, "status = 'pushed'");
    await held.waitFor({ timeout: 30_000 });
    expect(queueRequests).toBeGreaterThan(0);
    await held.getByLabel(/Justification/).fill('only here to show live updates');
    await held.getByRole('button', { name: 'Deny' }).click();
    expect((await run.done).code).not.toBe(0);
    await context.close();
  });

  it('a 2-of-3 rule needs a second approver: progress shown after the first, psql finishes after the second', async () => {
    const bob = await signIn(browser, dashboard, '/approvals', 'bob');
    const dave = await signIn(browser, dashboard, '/approvals', 'dave');
    const run = psqlAs('agent-7', 'UPDATE accounts SET balance = 150 WHERE id = 1');
    const first = card(bob.page, 'UPDATE accounts SET balance = 150');
    await first.waitFor({ timeout: 30_000 });
    await expect(first.getByRole('progressbar').getAttribute('aria-label')).resolves.toBe('0 of 2 approvals');
    await first.getByLabel(/Justification/).fill('month-end correction');
    await first.getByRole('button', { name: 'Approve' }).click();
    await first.getByText('Approved (1 of 2); waiting for more approvers.').waitFor();
    const second = card(dave.page, 'UPDATE accounts SET balance = 150');
    await second.getByRole('progressbar', { name: '1 of 2 approvals' }).waitFor({ timeout: 30_000 });
    await second.getByLabel(/Justification/).fill('second pair of eyes: fine');
    await second.getByRole('button', { name: 'Approve' }).click();
    const result = await run.done;
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('UPDATE 1');
    await Promise.all([bob.context.close(), dave.context.close()]);
  });

  it('self-approval is refused with the reason shown', async () => {
    const { context, page } = await signIn(browser, dashboard, '/approvals', 'dana');
    const run = psqlAs('dana', "UPDATE orders SET status = 'mine' WHERE id = 104");
    const held = card(page, "status = 'mine'");
    await held.waitFor({ timeout: 30_000 });
    await held.getByText('You asked for this command').waitFor();
    await held.getByLabel(/Justification/).fill('I am sure');
    await held.getByRole('button', { name: 'Approve' }).click();
    await expect(held.getByRole('alert').textContent()).resolves.toContain('APPROVAL_SELF_DECISION_FORBIDDEN');
    // Someone else ends it, so psql does not wait for the deadline.
    const bob = await signIn(browser, dashboard, '/approvals', 'bob');
    const other = card(bob.page, "status = 'mine'");
    await other.getByLabel(/Justification/).fill('self-approval attempt; denied');
    await other.getByRole('button', { name: 'Deny' }).click();
    expect((await run.done).code).not.toBe(0);
    await Promise.all([context.close(), bob.context.close()]);
  });

  it('the controls page lists findings with links to the sessions that raised them', async () => {
    const { context, page } = await signIn(browser, dashboard, '/controls', 'amy');
    expect(await page.getByRole('navigation', { name: 'Main' }).getByRole('link').allTextContents()).toEqual(['Approvals', 'Sessions', 'Controls', 'Evidence']);
    const coverage = page.getByRole('table', { name: 'Control coverage' });
    await coverage.getByRole('row').filter({ hasText: 'AC-3' }).first().waitFor({ timeout: 30_000 });
    const findings = page.getByRole('table', { name: 'Findings' });
    const linked = findings.getByRole('row').filter({ has: page.getByRole('link') }).first();
    await linked.waitFor({ timeout: 30_000 });
    await screenshot(page, 'controls');
    await linked.getByRole('link').click();
    await page.getByRole('heading', { name: /Session on shop/ }).waitFor();
    await context.close();
  });

  it('an exported pack downloads, verifies offline and by upload; the checkpoint is shown', async () => {
    const { context, page } = await signIn(browser, dashboard, '/evidence', 'amy');
    await page.getByLabel('Latest signed checkpoint note').waitFor({ timeout: 30_000 });
    await expect(page.getByLabel('Latest signed checkpoint note').textContent()).resolves.toContain('— ');
    const download = page.waitForEvent('download');
    await page.getByRole('button', { name: 'Export pack' }).click();
    const file = join(dir, 'pack.tar.gz');
    await (await download).saveAs(file);
    await page.getByText(/downloaded .*The export is recorded in the log/).waitFor();
    // Offline, with no keys pinned here: every check holds against the keys the pack carries (the
    // upload below pins this deployment's keys).
    const offline = await verifyEvidencePackFile(file);
    expect(offline.firstFailure).toBeUndefined();
    expect(offline.verdict).toBe('self-consistent');
    await page.getByLabel('Pack file (.tar.gz)').setInputFiles(file);
    await page.getByRole('button', { name: 'Verify' }).click();
    await page.getByText('OK: every signature, digest and proof holds').waitFor({ timeout: 30_000 });
    await screenshot(page, 'evidence');
    // A pack with one byte changed: the failure is named.
    const bytes = readFileSync(file);
    bytes[Math.floor(bytes.length / 2)]! ^= 0x01;
    writeFileSync(join(dir, 'changed.tar.gz'), bytes);
    await page.getByLabel('Pack file (.tar.gz)').setInputFiles(join(dir, 'changed.tar.gz'));
    await page.getByRole('button', { name: 'Verify' }).click();
    await page.getByText(/^FAILED: /).waitFor({ timeout: 30_000 });
    await context.close();
  });

  it('an agent token cannot use the page', async () => {
    const context = await browser.newContext({ extraHTTPHeaders: { authorization: `Bearer ${tokens.get('agent-7') ?? ''}` } });
    const page = await context.newPage();
    await page.goto(`${dashboard}/approvals`);
    await expect(page.getByRole('alert').textContent()).resolves.toContain('agent-7 is an agent identity');
    expect(await page.locator('article').count()).toBe(0);
    await context.close();
  });
});
