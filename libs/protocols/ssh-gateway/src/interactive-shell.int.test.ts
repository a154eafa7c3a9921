// The pty line gate end to end: OpenSSH `ssh -tt` run inside a local pty (util-linux `script`), so
// ssh puts the terminal in raw mode and sends keys as typed, through the gateway to the harness's
// real sshd and the user's bash. Lines are typed key by key (backspace, ^U, ^C, bracketed paste)
// and must be decided as assembled: allowed lines run, blocked lines are erased upstream and never
// run, the client sees the refusal, the evidence has the decision.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { access, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StoreEvidencePipeline } from '@custodian/evidence-pipeline';
import { SqliteEventStore } from '@custodian/event-store-sqlite';
import { OidcAccessTokenVerifier } from '@custodian/identity-oidc';
import { parsePolicy } from '@custodian/policy';
import { SessionPipeline } from '@custodian/session-pipeline';
import { startOidcProvider, startSshd, type StartedOidcProvider, type StartedSshd } from '@custodian/test-harness';
import { readOrCreateSshHostKey, type SshHostKey } from './host-key.js';
import { SshGateway } from './ssh-gateway.js';

const POLICY = `name: ssh-pty-test
rules:
  - id: no-rm
    match: { shell: { programs: [rm] } }
    decision: block
  - id: plain-tools
    match: { shell: { programs: [echo, 'true'] } }
    decision: allow
`;

let sshd: StartedSshd;
let oidc: StartedOidcProvider;
let store: SqliteEventStore;
let dir: string;
let hostKey: SshHostKey;
let gateway: SshGateway;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'custodian-ssh-pty-'));
  sshd = await startSshd();
  oidc = await startOidcProvider({ clients: [{ clientId: 'agent-pty', kind: 'agent', groups: ['ops'] }] });
  store = await SqliteEventStore.open({ path: join(dir, 'events.sqlite') });
  hostKey = await readOrCreateSshHostKey(join(dir, 'gateway', 'ssh-host-ed25519.key'));
  const pipeline = new SessionPipeline({
    verifier: new OidcAccessTokenVerifier({ issuers: [{ issuer: oidc.issuer, audiences: [oidc.defaultAudience] }] }),
    policy: { policy: parsePolicy(POLICY, 'policy.yaml') },
    evidence: new StoreEvidencePipeline({ store, instance: 'ssh-pty-test' }),
    strict: true,
    source: { service: 'gateway', instance: 'ssh-pty-test' },
    maskingKey: randomBytes(32),
  });
  gateway = new SshGateway({
    host: '127.0.0.1',
    port: 0,
    hostKey,
    pipeline,
    connections: [{ name: 'bastion', upstream: { host: sshd.host, port: sshd.port, username: sshd.user, knownHosts: () => readFile(sshd.knownHostsPath, 'utf8'), credential: { kind: 'private-key', read: () => readFile(sshd.clientPrivateKeyPath) }, credentialRef: `file:${sshd.clientPrivateKeyPath}` } }],
  });
  await gateway.listen();
  await writeFile(join(dir, 'known_hosts'), `[127.0.0.1]:${gateway.port} ${hostKey.publicKey}\n`);
}, 120_000);

afterAll(async () => {
  await gateway?.close();
  await store?.close();
  await oidc?.stop();
  await sshd?.stop();
  await rm(dir, { recursive: true, force: true });
});

/** `ssh -tt` in a pty (`script`), typing into it as a person would, reading what the terminal shows. */
class PtySsh {
  output = '';
  private constructor(private readonly child: ChildProcessWithoutNullStreams) {
    child.stdout.on('data', (d: Buffer) => (this.output += d.toString('utf8')));
  }

  /** `command`: run through exec (`ssh -tt host bash -i`) instead of a login shell. */
  static async open(token: string, command: string[] = []): Promise<PtySsh> {
    const ssh = ['/usr/bin/ssh', '-tt', '-p', String(gateway.port), '-o', `UserKnownHostsFile=${join(dir, 'known_hosts')}`, '-o', 'StrictHostKeyChecking=yes', '-o', 'PreferredAuthentications=password', '-o', 'PubkeyAuthentication=no', 'bastion@127.0.0.1', ...command];
    const child = spawn('script', ['-qfec', ssh.join(' '), '/dev/null'], { env: { ...process.env, TERM: 'xterm' } });
    const pty = new PtySsh(child);
    await pty.waitFor(/password:/i);
    pty.type(`${token}\r`);
    await pty.waitFor(/[#$] $/);
    return pty;
  }

  type(keys: string): void {
    this.child.stdin.write(keys);
  }

  /** Types `keys` and waits for `until` in the output written after them. */
  async typeAndWait(keys: string, until: RegExp): Promise<string> {
    const from = this.output.length;
    this.type(keys);
    await this.waitFor(until, from);
    return this.output.slice(from);
  }

  async waitFor(pattern: RegExp, from = 0, timeoutMs = 15_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!pattern.test(this.output.slice(from))) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${pattern}; terminal shows: ${JSON.stringify(this.output.slice(from).slice(-600))}`);
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }

  async close(): Promise<void> {
    const exited = new Promise<void>((resolve) => this.child.once('close', () => resolve()));
    this.type('\x04');
    const timer = setTimeout(() => this.child.kill('SIGTERM'), 5_000);
    await exited;
    clearTimeout(timer);
  }
}

async function shellCommands(): Promise<{ text: string; decision?: string; ruleId?: string | null }[]> {
  const issued = new Map<string, { text: string; decision?: string; ruleId?: string | null }>();
  for await (const recorded of store.readAll()) {
    const { event } = recorded;
    if (event.type === 'command.issued' && event.payload.kind === 'shell') issued.set(event.payload.commandId, { text: event.payload.text });
    if (event.type === 'policy.decided' && event.payload.commandId) {
      const command = issued.get(event.payload.commandId);
      if (command) Object.assign(command, { decision: event.payload.decision, ruleId: event.payload.ruleId ?? null });
    }
  }
  return [...issued.values()];
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

describe('SSH gateway: interactive shell through a pty (OpenSSH ssh -tt)', () => {
  it('decides each line as typed: allowed runs, blocked is erased and refused, edits (backspace, ^U, ^C, paste) are decided as assembled', async () => {
    const marker = join(dir, `must-survive-${randomBytes(4).toString('hex')}`);
    await writeFile(marker, 'x');
    const token = (await oidc.issueToken({ clientId: 'agent-pty' })).accessToken;
    const pty = await PtySsh.open(token);
    try {
      // Allowed: `one""two` prints onetwo, which the echo of the typed line never shows.
      expect(await pty.typeAndWait('echo one""two\r', /onetwo\r\n[\s\S]*[#$] $/)).toContain('onetwo');

      // Blocked: the refusal is printed; the upstream line is erased, so the next line starts clean.
      const blocked = await pty.typeAndWait(`rm -f ${marker}\r`, /\(rule no-rm\)/);
      expect(blocked).toContain('custodian:');
      expect(await pty.typeAndWait('echo after""block\r', /afterblock\r\n/)).toContain('afterblock');
      expect(await exists(marker)).toBe(true);

      // Backspace: `echo bsX<DEL>Y""Z` is decided (and run) as `echo bsY""Z`.
      expect(await pty.typeAndWait('echo bsX\x7fY""Z\r', /bsYZ\r\n/)).toContain('bsYZ');

      // ^U kills the typed `rm` line; only the line typed after it is decided.
      expect(await pty.typeAndWait(`rm -f ${marker}\x15echo ku""ok\r`, /kuok\r\n/)).toContain('kuok');

      // ^C abandons the line (the shell prints a new prompt); the next line is decided on its own.
      await pty.typeAndWait(`rm -f ${marker}\x03`, /[#$] $/);
      expect(await pty.typeAndWait('echo cc""ok\r', /ccok\r\n/)).toContain('ccok');

      // A blocked line assembled with cursor keys: `echo -f M`, ^A (start), ^D×5 (delete `echo `), `rm `.
      await pty.typeAndWait(`echo -f ${marker}\x01\x04\x04\x04\x04\x04rm \r`, /\(rule no-rm\)/);

      // Bracketed paste: the pasted text is the line.
      await pty.typeAndWait(`\x1b[200~rm -f ${marker}\x1b[201~\r`, /\(rule no-rm\)/);
      expect(await pty.typeAndWait('echo still""here\r', /stillhere\r\n/)).toContain('stillhere');
      expect(await exists(marker)).toBe(true);
    } finally {
      await pty.close();
    }

    const commands = await shellCommands();
    const texts = commands.map((c) => c.text);
    expect(texts).toEqual(
      expect.arrayContaining(['echo one""two', `rm -f ${marker}`, 'echo after""block', 'echo bsY""Z', 'echo ku""ok', 'echo cc""ok', 'echo still""here']),
    );
    // Lines killed with ^U or ^C were never decided; every rm that was decided was blocked by no-rm.
    const rms = commands.filter((c) => c.text.startsWith('rm '));
    expect(rms.length).toBe(3);
    for (const rm of rms) expect(rm).toMatchObject({ decision: 'block', ruleId: 'no-rm' });
    for (const c of commands.filter((c) => c.text.startsWith('echo '))) expect(c.decision).toBe('allow');
  }, 90_000);
  it('a shell started through exec with a pty (ssh -tt host bash -i) is line-gated the same way, opened under custodian:stdin-lines', async () => {
    const marker = join(dir, `exec-must-survive-${randomBytes(4).toString('hex')}`);
    await writeFile(marker, 'x');
    const token = (await oidc.issueToken({ clientId: 'agent-pty' })).accessToken;
    const pty = await PtySsh.open(token, ['bash', '-i']);
    try {
      expect(await pty.typeAndWait('echo one""two\r', /onetwo\r\n[\s\S]*[#$] $/)).toContain('onetwo');
      const blocked = await pty.typeAndWait(`rm -f ${marker}\r`, /\(rule no-rm\)/);
      expect(blocked).toContain('custodian:');
      expect(await pty.typeAndWait('echo three""four\r', /threefour\r\n[\s\S]*[#$] $/)).toContain('threefour');
    } finally {
      await pty.close();
    }
    expect(await exists(marker)).toBe(true);
    const decided = await shellCommands();
    expect(decided).toContainEqual({ text: 'bash -i', decision: 'allow', ruleId: 'custodian:stdin-lines' });
    expect(decided).toContainEqual({ text: `rm -f ${marker}`, decision: 'block', ruleId: 'no-rm' });
  });
});
