// The SSH gateway with real clients: OpenSSH `ssh` (token as the password through sshpass) and
// ssh2 (keyboard-interactive), in front of the harness's real sshd; the upstream host key pinned.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StoreEvidencePipeline } from '@custodian/evidence-pipeline';
import { SqliteEventStore } from '@custodian/event-store-sqlite';
import { OidcAccessTokenVerifier } from '@custodian/identity-oidc';
import { parsePolicy } from '@custodian/policy';
import { SessionPipeline } from '@custodian/session-pipeline';
import { startOidcProvider, startSshd, type StartedOidcProvider, type StartedSshd } from '@custodian/test-harness';
import type ssh2 from 'ssh2';
import { readOrCreateSshHostKey, type SshHostKey } from './host-key.js';
import { SshGateway } from './ssh-gateway.js';
import { GatewaySshClient } from './testing/ssh-client.js';

const POLICY = `name: ssh-test
rules:
  - id: no-rm
    match: { shell: { programs: [rm] } }
    decision: block
  - id: plain-tools
    match: { shell: { programs: [echo, cat, 'true', hostname] } }
    decision: allow
  - id: no-zsh
    match: { shell: { programs: [zsh] } }
    decision: block
`;

let sshd: StartedSshd;
let oidc: StartedOidcProvider;
let store: SqliteEventStore;
let dir: string;
let hostKey: SshHostKey;
let gateway: SshGateway;
const logLines: string[] = [];
const authenticationFailures: { presentedAs?: string; protocol?: string }[] = [];

function startGateway(knownHosts: () => Promise<string>): Promise<SshGateway> {
  const pipeline = new SessionPipeline({
    // No clock skew, so that a token with a 2 s lifetime is expired 3 s later.
    verifier: new OidcAccessTokenVerifier({ issuers: [{ issuer: oidc.issuer, audiences: [oidc.defaultAudience], clockSkewSeconds: 0 }] }),
    policy: { policy: parsePolicy(POLICY, 'policy.yaml') },
    evidence: new StoreEvidencePipeline({ store, instance: 'ssh-test' }),
    strict: true,
    source: { service: 'gateway', instance: 'ssh-test' },
    maskingKey: randomBytes(32),
    authenticationFailures: { failed: async (payload) => void authenticationFailures.push(payload) },
  });
  const logger = { info: (f: object, m: string) => logLines.push(JSON.stringify({ f, m })), warn: (f: object, m: string) => logLines.push(JSON.stringify({ f, m })), error: (f: object, m: string) => logLines.push(JSON.stringify({ f, m })) };
  const gw = new SshGateway({
    host: '127.0.0.1',
    port: 0,
    hostKey,
    pipeline,
    logger,
    connections: [{ name: 'bastion', upstream: { host: sshd.host, port: sshd.port, username: sshd.user, knownHosts, credential: { kind: 'private-key', read: () => readFile(sshd.clientPrivateKeyPath) }, credentialRef: `file:${sshd.clientPrivateKeyPath}` } }],
  });
  return gw.listen().then(() => gw);
}

async function sshpass(token: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const knownHosts = join(dir, 'gateway_known_hosts');
  await writeFile(knownHosts, `[127.0.0.1]:${gateway.port} ${hostKey.publicKey}\n`);
  try {
    const { stdout, stderr } = await promisify(execFile)('sshpass', ['-e', '/usr/bin/ssh', '-p', String(gateway.port), '-o', `UserKnownHostsFile=${knownHosts}`, '-o', 'StrictHostKeyChecking=yes', '-o', 'PreferredAuthentications=password', '-o', 'PubkeyAuthentication=no', 'bastion@127.0.0.1', ...args], { env: { ...process.env, SSHPASS: token }, timeout: 30_000 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'custodian-ssh-test-'));
  sshd = await startSshd();
  oidc = await startOidcProvider({ clients: [{ clientId: 'agent-7', kind: 'agent', groups: ['ops'] }] });
  store = await SqliteEventStore.open({ path: join(dir, 'events.sqlite') });
  hostKey = await readOrCreateSshHostKey(join(dir, 'gateway', 'ssh-host-ed25519.key'));
  gateway = await startGateway(() => readFile(sshd.knownHostsPath, 'utf8'));
}, 120_000);

afterAll(async () => {
  await gateway?.close();
  await store?.close();
  await oidc?.stop();
  await sshd?.stop();
  await rm(dir, { recursive: true, force: true });
});

describe('SSH gateway with OpenSSH and ssh2 clients', () => {
  it('the host key is generated once, 0600, and reused', async () => {
    const path = join(dir, 'gateway', 'ssh-host-ed25519.key');
    const again = await readOrCreateSshHostKey(path);
    expect(again.created).toBe(false);
    expect(again.fingerprint).toBe(hostKey.fingerprint);
    expect(hostKey.fingerprint).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
    const { stat } = await import('node:fs/promises');
    expect((await stat(path)).mode & 0o777).toBe(0o600);
  });

  it('OpenSSH ssh: an allowed command runs, a blocked one exits 126 naming the rule and never runs', async () => {
    const token = (await oidc.issueToken({ clientId: 'agent-7' })).accessToken;
    const allowed = await sshpass(token, ['echo', 'hello-through-gateway']);
    expect(allowed).toMatchObject({ code: 0, stdout: 'hello-through-gateway\n' });
    const marker = join(dir, 'must-survive');
    await writeFile(marker, 'x');
    const blocked = await sshpass(token, ['rm', '-f', marker]);
    expect(blocked.code).toBe(126);
    expect(blocked.stderr).toContain('no-rm');
    await expect(readFile(marker, 'utf8')).resolves.toBe('x');
  });

  it('OpenSSH ssh -T with commands on stdin (a shell without a pty): each line decided; a blocked line never runs, the next ones do', async () => {
    const token = (await oidc.issueToken({ clientId: 'agent-7' })).accessToken;
    const knownHosts = join(dir, 'gateway_known_hosts');
    await writeFile(knownHosts, `[127.0.0.1]:${gateway.port} ${hostKey.publicKey}\n`);
    const marker = join(dir, 'stdin-must-survive');
    await writeFile(marker, 'x');
    const { spawn } = await import('node:child_process');
    const child = spawn('sshpass', ['-e', '/usr/bin/ssh', '-T', '-p', String(gateway.port), '-o', `UserKnownHostsFile=${knownHosts}`, '-o', 'StrictHostKeyChecking=yes', '-o', 'PreferredAuthentications=password', '-o', 'PubkeyAuthentication=no', 'bastion@127.0.0.1'], { env: { ...process.env, SSHPASS: token } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
    child.stdin.end(`echo first-line\nrm -f ${marker}\necho after-the-refusal\n`);
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect(stdout).toContain('first-line');
    expect(stdout).toContain('after-the-refusal');
    expect(stderr).toContain('(rule no-rm)');
    await expect(readFile(marker, 'utf8')).resolves.toBe('x');
    expect(code).toBe(0);
  });

  it('a shell started through exec (ssh host bash -i, no pty) reading commands from stdin: each line decided under custodian:stdin-lines; a shell a rule blocks stays blocked', async () => {
    const token = (await oidc.issueToken({ clientId: 'agent-7' })).accessToken;
    const knownHosts = join(dir, 'gateway_known_hosts');
    await writeFile(knownHosts, `[127.0.0.1]:${gateway.port} ${hostKey.publicKey}\n`);
    const marker = join(dir, 'exec-shell-must-survive');
    await writeFile(marker, 'x');
    const { spawn } = await import('node:child_process');
    const run = async (command: string[], input: string): Promise<{ code: number | null; stdout: string; stderr: string }> => {
      const child = spawn('sshpass', ['-e', '/usr/bin/ssh', '-T', '-p', String(gateway.port), '-o', `UserKnownHostsFile=${knownHosts}`, '-o', 'StrictHostKeyChecking=yes', '-o', 'PreferredAuthentications=password', '-o', 'PubkeyAuthentication=no', 'bastion@127.0.0.1', ...command], { env: { ...process.env, SSHPASS: token } });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
      child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
      child.stdin.end(input);
      const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
      return { code, stdout, stderr };
    };
    for (const shell of [['bash', '-i'], ['bash'], ['sh', '-s']]) {
      const result = await run(shell, `echo first-line\nrm -f ${marker}\necho after-the-refusal\n`);
      expect(result.stdout, shell.join(' ')).toContain('first-line');
      expect(result.stdout).toContain('after-the-refusal');
      expect(result.stderr).toContain('(rule no-rm)');
      await expect(readFile(marker, 'utf8')).resolves.toBe('x');
    }
    const blocked = await run(['zsh'], `rm -f ${marker}\n`);
    expect(blocked.code).toBe(126);
    expect(blocked.stderr).toContain('(rule no-zsh)');
    await expect(readFile(marker, 'utf8')).resolves.toBe('x');
    let decided: { text: string; ruleId: string | null }[] = [];
    // The store commits in its writer thread: the last decision can land after the client exited.
    for (let i = 0; i < 100 && !decided.some((d) => d.text === 'zsh'); i++) {
      if (i > 0) await new Promise((r) => setTimeout(r, 50));
      decided = [];
      const texts = new Map<string, string>();
      for await (const r of store.readAll()) {
        if (r.event.type === 'command.issued') texts.set(r.event.payload.commandId, r.event.payload.text);
        if (r.event.type === 'policy.decided') decided.push({ text: texts.get(r.event.payload.commandId!) ?? '', ruleId: r.event.payload.ruleId ?? null });
      }
    }
    expect(decided).toContainEqual({ text: 'bash -i', ruleId: 'custodian:stdin-lines' });
    expect(decided).toContainEqual({ text: 'sh -s', ruleId: 'custodian:stdin-lines' });
    expect(decided).toContainEqual({ text: 'zsh', ruleId: 'no-zsh' });
    expect(decided.filter((d) => d.text === `rm -f ${marker}`).map((d) => d.ruleId)).toEqual(['no-rm', 'no-rm', 'no-rm']);
  });

  it('token expiry: an expired token is refused at login (TOKEN_EXPIRED); a session opened before expiry goes on (as for PostgreSQL)', async () => {
    const { accessToken } = await oidc.issueToken({ clientId: 'agent-7', ttlSeconds: 2 });
    const open = await GatewaySshClient.connect({ host: '127.0.0.1', port: gateway.port, connection: 'bastion', token: accessToken, gatewayHostKey: hostKey.publicKey });
    await new Promise((r) => setTimeout(r, 3_000));
    const before = authenticationFailures.length;
    await expect(GatewaySshClient.connect({ host: '127.0.0.1', port: gateway.port, connection: 'bastion', token: accessToken, gatewayHostKey: hostKey.publicKey })).rejects.toThrow(/authentication/i);
    expect(authenticationFailures.length).toBeGreaterThan(before);
    expect(JSON.stringify(authenticationFailures.slice(before))).toContain('TOKEN_EXPIRED');
    const still = await open.exec('echo still-open');
    expect(still).toMatchObject({ code: 0, stdout: 'still-open\n' });
    await open.close();
  });

  it('a wrong token is refused the standard way and recorded as authentication.failed', async () => {
    const refused = await sshpass('not-a-token', ['true']);
    expect(refused.code).toBe(5); // sshpass: invalid password
    expect(authenticationFailures.length).toBeGreaterThan(0);
    expect(authenticationFailures[0]).toMatchObject({ protocol: 'ssh', presentedAs: 'password' });
  });

  it('ssh2 with keyboard-interactive: exec with exit status bridged; port forwarding refused with an event', async () => {
    const token = (await oidc.issueToken({ clientId: 'agent-7' })).accessToken;
    const client = await GatewaySshClient.connect({ host: '127.0.0.1', port: gateway.port, connection: 'bastion', token, keyboardInteractive: true, gatewayHostKey: hostKey.publicKey });
    const result = await client.exec('cat /nonexistent-file');
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('No such file');
    const forwarded = await new Promise<string>((resolve) => client.client.forwardOut('127.0.0.1', 0, '127.0.0.1', sshd.port, (error) => resolve(error ? error.message : 'opened')));
    expect(forwarded).not.toBe('opened');
    await client.close();
    // The store commits in its writer thread: the refusal's events may land just after the client is gone.
    let refusals: unknown[] = [];
    for (let i = 0; i < 100 && refusals.length === 0; i++) {
      refusals = [];
      for await (const r of store.readAll()) if (r.event.type === 'policy.decided' && (r.event.payload as { ruleId?: string }).ruleId === 'custodian:port-forwarding-refused') refusals.push(r);
      if (refusals.length === 0) await new Promise((r) => setTimeout(r, 50));
    }
    expect(refusals.length).toBe(1);
  });

  it('a channel flood: at most 10 session channels per connection, the 11th refused; the open ones still work', async () => {
    const token = (await oidc.issueToken({ clientId: 'agent-7' })).accessToken;
    const client = await GatewaySshClient.connect({ host: '127.0.0.1', port: gateway.port, connection: 'bastion', token, gatewayHostKey: hostKey.publicKey });
    const opened: ssh2.ClientChannel[] = [];
    const results: string[] = [];
    for (let i = 0; i < 11; i++) {
      results.push(
        await new Promise<string>((resolve) =>
          client.client.shell(false, (error, stream) => {
            if (error) return resolve(error.message);
            opened.push(stream);
            resolve('open');
          }),
        ),
      );
    }
    expect(results.slice(0, 10).every((r) => r === 'open')).toBe(true);
    expect(results[10]).not.toBe('open');
    const echoed = await new Promise<string>((resolve) => {
      let out = '';
      opened[0]!.on('data', (chunk: Buffer) => {
        out += chunk.toString('utf8');
        if (out.includes('still-here')) resolve(out);
      });
      opened[0]!.write('echo still-here\n');
    });
    expect(echoed).toContain('still-here');
    // A flood of 200 more opens: each refused, one event for the connection.
    const flood = await Promise.all(Array.from({ length: 200 }, () => new Promise<string>((resolve) => client.client.exec('true', (error) => resolve(error ? 'refused' : 'open')))));
    expect(flood.every((r) => r === 'refused')).toBe(true);
    await client.close();
    let refusals = 0;
    for (let i = 0; i < 100 && refusals === 0; i++) {
      if (i > 0) await new Promise((r) => setTimeout(r, 50));
      refusals = 0;
      for await (const r of store.readAll()) if (r.event.type === 'policy.decided' && (r.event.payload as { ruleId?: string }).ruleId === 'custodian:channel-limit') refusals++;
    }
    expect(refusals).toBe(1);
  });

  it('an upstream whose host key does not match the pinned key is refused with a clear message', async () => {
    const other = await startSshd();
    try {
      // Pin sshd's key for a different server: the gateway must refuse, never connect unverified.
      const wrong = await startGateway(async () => `[${other.host}]:${sshd.port} ${other.hostPublicKey}\n`);
      const token = (await oidc.issueToken({ clientId: 'agent-7' })).accessToken;
      const client = await GatewaySshClient.connect({ host: '127.0.0.1', port: wrong.port, connection: 'bastion', token, gatewayHostKey: hostKey.publicKey });
      const result = await client.exec('echo should-not-run');
      expect(result.code).toBe(255);
      expect(result.stdout).toBe('');
      expect(result.stderr).toContain('does not match the key configured');
      await client.close();
      await wrong.close();
      expect(logLines.some((l) => l.includes('UPSTREAM_HOST_KEY_MISMATCH'))).toBe(true);
    } finally {
      await other.stop();
    }
  });

  it('neither the token nor the upstream key appears in a log line or an event', async () => {
    const key = (await readFile(sshd.clientPrivateKeyPath, 'utf8')).split('\n').slice(1, 3).join('');
    const events: string[] = [];
    for await (const r of store.readAll()) events.push(JSON.stringify(r.event));
    for (const text of [...logLines, ...events]) expect(text.includes(key)).toBe(false);
    expect(logLines.some((l) => /eyJ[A-Za-z0-9_-]{20,}\./.test(l))).toBe(false);
  });
});
