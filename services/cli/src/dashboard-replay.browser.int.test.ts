// Replays in a real browser (Debian's Chromium through playwright-core) against `custodian start`
// with the SSH gateway in front of a real OpenSSH server and the MCP gateway in front of the
// filesystem MCP server: the terminal replay of an SSH session in asciinema-player, recorded and
// live (server-sent events), and the transcript of an MCP session (tool call, tool result). With
// CUSTODIAN_SCREENSHOTS=<dir> (scripts/dashboard-screenshots.sh) it saves those pages too.
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, startOidcProvider, startSshd, type StartedOidcProvider, type StartedSshd } from '@custodian/test-harness';
import { runCli, type CliIo } from './index.js';
import { buildDashboard, chromiumAvailable, launchChromium, signIn } from './testing/dashboard-browser.js';

const SSHD = '/usr/sbin/sshd';
const SSHPASS = '/usr/bin/sshpass';
const available = existsSync(SSHD) && existsSync(SSHPASS) && chromiumAvailable();
if (!available) console.warn(`dashboard replay browser tests skipped: need ${SSHD} (openssh-server), ${SSHPASS} (sshpass) and /usr/bin/chromium`);
const SCREENSHOTS = process.env['CUSTODIAN_SCREENSHOTS'];

const POLICY = `
name: dashboard-replay-e2e
version: 1
defaults:
  decision: block
  message: Not permitted through the gateway.
rules:
  - id: plain-tools
    match: { shell: { programs: [echo, sleep] } }
    decision: allow
  - id: file-reads
    match: { mcp: { servers: [files], tools: [read_text_file, list_allowed_directories] } }
    decision: allow
`;

let dir: string;
let sshd: StartedSshd;
let idp: StartedOidcProvider;
let browser: Browser;
let dashboard: string;
let sshPort: number;
let mcpPort: number;
let stop: (signal: string) => void = () => undefined;
let exited: Promise<number> | undefined;
let stderr = '';
let agentToken = '';

beforeAll(async () => {
  if (!available) return;
  await buildDashboard();
  dir = mkdtempSync(join(tmpdir(), 'custodian-dashboard-replay-'));
  [sshd, idp] = await Promise.all([
    startSshd(),
    startOidcProvider({ clients: [{ clientId: 'agent-7', kind: 'agent', groups: ['ops'] }], users: [{ subject: 'amy', groups: ['auditors'] }] }),
  ]);
  const apiPort = await freePort();
  sshPort = await freePort();
  mcpPort = await freePort();
  dashboard = `http://127.0.0.1:${apiPort}`;
  idp.registerPublicClient({ clientId: 'custodian-dashboard', redirectUris: [`${dashboard}/auth/callback`] });
  writeFileSync(join(dir, 'policy.yaml'), POLICY);
  // The gateway's own host key, pinned by the test's ssh client.
  await promisify(execFile)('/usr/bin/ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'custodian-gateway', '-f', join(dir, 'gateway-host-key')]);
  const gatewayHostKey = readFileSync(join(dir, 'gateway-host-key.pub'), 'utf8').trim().split(' ').slice(0, 2).join(' ');
  writeFileSync(join(dir, 'gateway_known_hosts'), `[127.0.0.1]:${sshPort} ${gatewayHostKey}\n`);
  mkdirSync(join(dir, 'shared'));
  writeFileSync(join(dir, 'shared', 'note.txt'), 'hello from the transcript\n');
  const filesystemServer = join(dirname(createRequire(import.meta.url).resolve('@modelcontextprotocol/server-filesystem/package.json')), 'dist/index.js');
  writeFileSync(join(dir, 'files-token'), 'held-by-the-gateway-only', { mode: 0o600 });
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
        ssh: {
          enabled: true,
          listen: { host: '127.0.0.1', port: sshPort },
          hostKey: { fromFile: join(dir, 'gateway-host-key') },
          connections: [
            {
              name: 'bastion',
              upstream: { host: sshd.host, port: sshd.port, username: sshd.user, credential: { kind: 'private-key', secret: { fromFile: sshd.clientPrivateKeyPath } }, knownHosts: { fromFile: sshd.knownHostsPath } },
            },
          ],
        },
        mcp: {
          enabled: true,
          listen: { host: '127.0.0.1', port: mcpPort },
          connections: [
            { name: 'files', upstream: { command: process.execPath, args: [filesystemServer, join(dir, 'shared')], credential: { fromFile: join(dir, 'files-token') }, credentialEnv: 'FILES_TOKEN' } },
          ],
        },
      },
      evidence: { checkpoint: { everySeconds: 1 } },
      services: { api: { http: { host: '127.0.0.1', port: apiPort } }, gateway: { http: { port: 0 } }, ingest: { http: { port: 0 } }, projector: { http: { port: 0 } } },
    }),
  );
  const stopped = new Promise<string>((resolve) => (stop = resolve));
  const io: CliIo = { stdout: () => undefined, stderr: (t) => (stderr += t), env: {}, cwd: dir, waitForStop: () => stopped };
  exited = runCli(['start', '--config', configFile], io);
  for (let i = 0; i < 600 && !stderr.includes('Press Ctrl-C'); i++) await new Promise((r) => setTimeout(r, 100));
  if (!stderr.includes('Press Ctrl-C')) throw new Error(`custodian did not start:\n${stderr}`);
  agentToken = (await idp.issueToken({ clientId: 'agent-7' })).accessToken;
  browser = await launchChromium();
}, 240_000);

afterAll(async () => {
  await browser?.close();
  stop('SIGTERM');
  await exited;
  await Promise.all([sshd?.stop(), idp?.stop()]);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** OpenSSH `ssh` through the gateway as agent-7 (its access token as the password, via sshpass). */
function sshThroughGateway(command: string): { done: Promise<{ code: number | null; stdout: string; stderr: string }> } {
  const args = ['-e', '/usr/bin/ssh', '-p', String(sshPort), '-o', `UserKnownHostsFile=${join(dir, 'gateway_known_hosts')}`, '-o', 'StrictHostKeyChecking=yes', '-o', 'PreferredAuthentications=password', '-o', 'PubkeyAuthentication=no', 'bastion@127.0.0.1', command];
  const child = spawn(SSHPASS, args, { env: { ...process.env, SSHPASS: agentToken } });
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

/** Opens the newest session of `protocol` from the sessions list (filtered on the page, as a user would). */
async function openNewestSession(page: Page, protocol: string, state?: 'live'): Promise<void> {
  await page.goto(`${dashboard}/sessions?protocol=${protocol}${state ? `&state=${state}` : ''}`);
  const row = page.getByRole('table', { name: 'Sessions' }).getByRole('row').filter({ hasText: 'agent-7' }).first();
  await row.waitFor({ timeout: 30_000 });
  await row.getByRole('link').click();
  await page.getByRole('heading', { name: /Session on / }).waitFor();
}

describe.skipIf(!available)('replays in Chromium', () => {
  it('an SSH session through the gateway is replayed in asciinema-player: the command and its output', async () => {
    const run = sshThroughGateway('echo replayed-through-custodian');
    const result = await run.done;
    expect(result.stderr).toBe('');
    expect(result).toMatchObject({ code: 0, stdout: 'replayed-through-custodian\n' });
    const { context, page } = await signIn(browser, dashboard, '/sessions', 'amy');
    await openNewestSession(page, 'ssh');
    const replay = page.getByRole('region', { name: 'Terminal replay' });
    await expect(replay.getByRole('button', { name: 'Recording' }).getAttribute('aria-pressed')).resolves.toBe('true');
    // The recording is paused on its first frame until played: start it, as a user would.
    const player = replay.getByTestId('terminal-player');
    await player.getByRole('button', { name: 'Play' }).click({ timeout: 30_000 });
    await expect.poll(() => player.locator('.ap-term').textContent(), { timeout: 30_000 }).toContain('replayed-through-custodian');
    await expect(replay.getByRole('link', { name: /Download the recording/ }).getAttribute('href')).resolves.toMatch(/^\/v1\/sessions\/[0-9a-f-]{36}\/replay$/);
    // The command timeline every session shows: the command and its decision.
    const command = page.getByRole('table', { name: 'Commands' }).getByRole('row').filter({ hasText: 'echo replayed-through-custodian' });
    await command.waitFor({ timeout: 30_000 });
    await expect(command.textContent()).resolves.toContain('allow (plain-tools)');
    await screenshot(page, 'session-terminal');
    await context.close();
  });

  it('a running SSH session is followed live: output appears in the player as the gateway records it', async () => {
    const run = sshThroughGateway('echo first-live-line; sleep 8; echo second-live-line');
    const { context, page } = await signIn(browser, dashboard, '/sessions', 'amy');
    await openNewestSession(page, 'ssh', 'live');
    const replay = page.getByRole('region', { name: 'Terminal replay' });
    await expect(replay.getByRole('button', { name: /^Live/ }).getAttribute('aria-pressed')).resolves.toBe('true');
    const terminal = replay.getByTestId('terminal-player').locator('.ap-term');
    await expect.poll(() => terminal.textContent(), { timeout: 30_000 }).toContain('first-live-line');
    await expect.poll(() => terminal.textContent(), { timeout: 30_000 }).toContain('second-live-line');
    expect((await run.done).code).toBe(0);
    await context.close();
  });

  it('an MCP session shows its transcript: the tool call and the tool result', async () => {
    const transport = new StreamableHTTPClientTransport(new URL(`http://127.0.0.1:${mcpPort}/mcp/files`), { requestInit: { headers: { authorization: `Bearer ${agentToken}` } } });
    const client = new Client({ name: 'dashboard-replay-test', version: '1.0.0' });
    await client.connect(transport);
    const result = await client.callTool({ name: 'read_text_file', arguments: { path: join(dir, 'shared', 'note.txt') } });
    expect(JSON.stringify(result.content)).toContain('hello from the transcript');
    await client.close();
    const { context, page } = await signIn(browser, dashboard, '/sessions', 'amy');
    await openNewestSession(page, 'mcp');
    const transcript = page.getByRole('list', { name: 'Transcript' });
    const call = transcript.getByRole('listitem').filter({ hasText: 'Tool call' }).filter({ hasText: 'read_text_file' });
    await call.first().waitFor({ timeout: 30_000 });
    await expect(call.first().textContent()).resolves.toContain('note.txt');
    const toolResult = transcript.getByRole('listitem').filter({ hasText: 'Tool result' }).filter({ hasText: 'hello from the transcript' });
    await toolResult.first().waitFor({ timeout: 30_000 });
    await screenshot(page, 'session-transcript');
    await context.close();
  });
});
