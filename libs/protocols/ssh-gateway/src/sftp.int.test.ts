// SFTP through the gateway, per operation, with real clients (OpenSSH `sftp -b` through sshpass,
// ssh2's SFTP client) in front of the harness's real sshd (internal-sftp): each open/remove/
// rename/mkdir is decided by the shell language as its equivalent command with `shell.arguments`
// path globs, refused with PERMISSION_DENIED naming the rule or held for an approver; file data is
// recorded and every transferred file's SHA-256 is in its transfer record.
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApproveApprovalCommand, DenyApprovalCommand, EventSourcedApprovalGate } from '@custodian/approvals';
import type { CustodianEvent, FrameRecorded, Identity } from '@custodian/event-contracts';
import { StoreEvidencePipeline, type EvidencePipeline } from '@custodian/evidence-pipeline';
import { SqliteEventStore } from '@custodian/event-store-sqlite';
import { OidcAccessTokenVerifier } from '@custodian/identity-oidc';
import { parsePolicy } from '@custodian/policy';
import { SessionPipeline } from '@custodian/session-pipeline';
import { startOidcProvider, startSshd, type StartedOidcProvider, type StartedSshd } from '@custodian/test-harness';
import type ssh2 from 'ssh2';
import { readOrCreateSshHostKey, type SshHostKey } from './host-key.js';
import { MAX_SFTP_HANDLES } from './sftp-bridge.js';
import { SFTP_LIMITS } from './sftp-limits.js';
import { SshGateway } from './ssh-gateway.js';
import { GatewaySshClient } from './testing/ssh-client.js';

let sshd: StartedSshd;
let oidc: StartedOidcProvider;
let store: SqliteEventStore;
let approvals: EventSourcedApprovalGate;
let dir: string;
/** The upstream's files (sshd runs as this user, so the test reads them directly). */
let files: string;
let hostKey: SshHostKey;
let gateway: SshGateway;
let approver: Identity;

function policyFor(root: string): string {
  return `name: sftp-test
rules:
  - id: keep-is-kept
    match: { shell: { programs: [rm, mv, tee, rmdir, scp], arguments: [${JSON.stringify(`${root}/keep/**`)}] } }
    decision: block
    message: files under keep/ cannot be changed
  - id: release-removal-needs-approval
    match: { shell: { programs: [rm], arguments: [${JSON.stringify(`${root}/releases/*`)}] } }
    decision: require-approval
    approval: { approverGroups: [release-managers], required: 1, timeoutSeconds: 60, grant: once }
  - id: file-transfer
    match: { shell: { programs: [cat, tee, ls, rm, mv, mkdir, rmdir, chmod, touch, truncate, scp] } }
    decision: allow
`;
}

async function sftpBatch(token: string, commands: string[], sftpOptions: string[] = []): Promise<{ code: number; stdout: string; stderr: string }> {
  const knownHosts = join(dir, 'gateway_known_hosts');
  await writeFile(knownHosts, `[127.0.0.1]:${gateway.port} ${hostKey.publicKey}\n`);
  const batch = join(dir, `batch-${randomBytes(4).toString('hex')}`);
  await writeFile(batch, `${commands.join('\n')}\n`);
  // BatchMode=no before -b: sftp's own "-oBatchMode yes" comes later and ssh keeps the first value.
  const args = ['-e', '/usr/bin/sftp', '-P', String(gateway.port), '-o', 'BatchMode=no', '-o', `UserKnownHostsFile=${knownHosts}`, '-o', 'StrictHostKeyChecking=yes', '-o', 'PreferredAuthentications=password', '-o', 'PubkeyAuthentication=no', ...sftpOptions, '-b', batch, 'bastion@127.0.0.1'];
  try {
    const { stdout, stderr } = await promisify(execFile)('sshpass', args, { env: { ...process.env, SSHPASS: token }, timeout: 20_000 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

/**
 * Every stored event, once the store has stopped growing: the store commits in its writer thread,
 * so a session's last events can land after the client has exited.
 */
async function events(): Promise<CustodianEvent[]> {
  let previous = -1;
  let out: CustodianEvent[] = [];
  for (let stable = 0, i = 0; stable < 3 && i < 100; i++) {
    out = [];
    for await (const r of store.readAll()) out.push(r.event);
    stable = out.length === previous ? stable + 1 : 0;
    previous = out.length;
    if (stable < 3) await new Promise((r) => setTimeout(r, 50));
  }
  return out;
}

/** The decided texts (command.issued of the SFTP operations) and their decisions, in order. */
async function decisions(): Promise<{ text: string; decision: string; ruleId: string | undefined }[]> {
  const all = await events();
  const texts = new Map<string, string>();
  for (const e of all) if (e.type === 'command.issued') texts.set(e.payload.commandId, e.payload.text);
  return all.filter((e) => e.type === 'policy.decided').map((e) => ({ text: texts.get(e.payload.commandId!) ?? '', decision: e.payload.decision, ruleId: e.payload.ruleId ?? undefined }));
}

async function transfers(): Promise<{ path: string; how: string; read: { bytes: number; sha256: string }; written: { bytes: number; sha256: string } }[]> {
  return (await events())
    .filter((e): e is Extract<CustodianEvent, { type: 'frame.recorded' }> => e.type === 'frame.recorded' && e.payload.messageType === 'sftp-op')
    .map((e) => JSON.parse(Buffer.from((e.payload as FrameRecorded).data, 'base64').toString('utf8')) as { op: string; path: string; how: string; read: { bytes: number; sha256: string }; written: { bytes: number; sha256: string } })
    .filter((op) => op.op === 'transfer');
}

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'custodian-sftp-test-'));
  files = join(dir, 'upstream');
  for (const sub of ['work', 'keep', 'releases']) await mkdir(join(files, sub), { recursive: true });
  sshd = await startSshd();
  oidc = await startOidcProvider({ clients: [{ clientId: 'agent-7', kind: 'agent', groups: ['ops'] }] });
  approver = { subject: 'rita', issuer: oidc.issuer, groups: ['release-managers'], kind: 'human' };
  store = await SqliteEventStore.open({ path: join(dir, 'events.sqlite'), pollIntervalMs: 20 });
  approvals = new EventSourcedApprovalGate({ eventStore: store, instance: 'sftp-test', pollIntervalMs: 50 });
  await approvals.start();
  hostKey = await readOrCreateSshHostKey(join(dir, 'gateway', 'ssh-host-ed25519.key'));
  const pipeline = new SessionPipeline({
    verifier: new OidcAccessTokenVerifier({ issuers: [{ issuer: oidc.issuer, audiences: [oidc.defaultAudience] }] }),
    policy: { policy: parsePolicy(policyFor(files), 'policy.yaml') },
    evidence: new StoreEvidencePipeline({ store, instance: 'sftp-test' }),
    approvals,
    approvalWaitSeconds: 60,
    strict: true,
    source: { service: 'gateway', instance: 'sftp-test' },
    maskingKey: randomBytes(32),
  });
  const logger = { info: () => undefined, warn: () => undefined, error: () => undefined };
  gateway = new SshGateway({
    host: '127.0.0.1',
    port: 0,
    hostKey,
    pipeline,
    logger,
    connections: [{ name: 'bastion', upstream: { host: sshd.host, port: sshd.port, username: sshd.user, knownHosts: () => readFile(sshd.knownHostsPath, 'utf8'), credential: { kind: 'private-key', read: () => readFile(sshd.clientPrivateKeyPath) }, credentialRef: `file:${sshd.clientPrivateKeyPath}` } }],
  });
  await gateway.listen();
}, 120_000);

afterAll(async () => {
  await gateway?.close();
  await approvals?.close();
  await store?.close();
  await oidc?.stop();
  await sshd?.stop();
  await rm(dir, { recursive: true, force: true });
});

describe('SFTP through the SSH gateway, operation by operation', () => {
  it('OpenSSH sftp: put, get, rename, mkdir and rm are each decided and recorded; transfers carry their SHA-256', async () => {
    const token = (await oidc.issueToken({ clientId: 'agent-7' })).accessToken;
    const local = join(dir, 'payload.bin');
    const payload = randomBytes(300_000);
    await writeFile(local, payload);
    const back = join(dir, 'payload.back');
    const work = join(files, 'work');
    const result = await sftpBatch(token, [`put ${local} ${work}/a.bin`, `get ${work}/a.bin ${back}`, `rename ${work}/a.bin ${work}/b.bin`, `mkdir ${work}/sub`, `rm ${work}/b.bin`, `ls ${work}`]);
    expect(result, result.stderr).toMatchObject({ code: 0 });
    expect(sha256(await readFile(back))).toBe(sha256(payload));
    await expect(stat(join(work, 'b.bin'))).rejects.toThrow(/ENOENT/);
    expect((await stat(join(work, 'sub'))).isDirectory()).toBe(true);

    const decided = await decisions();
    const q = (p: string): string => `'${p}'`;
    for (const text of [`tee -- ${q(`${work}/a.bin`)}`, `cat -- ${q(`${work}/a.bin`)}`, `mv -- ${q(`${work}/a.bin`)} ${q(`${work}/b.bin`)}`, `mkdir -- ${q(`${work}/sub`)}`, `rm -- ${q(`${work}/b.bin`)}`, `ls -- ${q(work)}`]) {
      expect(decided, text).toContainEqual({ text, decision: 'allow', ruleId: 'file-transfer' });
    }
    const moved = await transfers();
    const upload = moved.find((t) => t.path === `${work}/a.bin` && t.written.bytes > 0);
    const download = moved.find((t) => t.path === `${work}/a.bin` && t.read.bytes > 0);
    expect(upload?.written).toMatchObject({ bytes: payload.length, sha256: sha256(payload), sequential: true });
    expect(download?.read).toMatchObject({ bytes: payload.length, sha256: sha256(payload), sequential: true });
    // The file's bytes are in the recording, both ways.
    const data = (await events()).filter((e) => e.type === 'frame.recorded' && e.payload.messageType === 'sftp-data') as Extract<CustodianEvent, { type: 'frame.recorded' }>[];
    const uploaded = Buffer.concat(data.filter((e) => e.payload.direction === 'client-to-upstream').map((e) => Buffer.from(e.payload.data, 'base64')));
    expect(sha256(uploaded)).toBe(sha256(payload));
  });

  it('READ replies and WRITE data over the frame size (sftp -B 200000) are recorded whole: several frames, in order, every byte', async () => {
    const token = (await oidc.issueToken({ clientId: 'agent-7' })).accessToken;
    const local = join(dir, 'large.bin');
    const payload = randomBytes(1_000_000);
    await writeFile(local, payload);
    const back = join(dir, 'large.back');
    const remote = join(files, 'work', 'large.bin');
    // -B: sftp asks for 200,000 bytes per READ and sends 200,000 per WRITE (the default is 32,768).
    const result = await sftpBatch(token, [`put ${local} ${remote}`, `get ${remote} ${back}`], ['-B', '200000']);
    expect(result, result.stderr).toMatchObject({ code: 0 });
    expect(sha256(await readFile(back))).toBe(sha256(payload));

    const all = await events();
    const sessionOf = all.find((e) => e.type === 'frame.recorded' && e.payload.messageType === 'sftp-op' && Buffer.from(e.payload.data, 'base64').toString('utf8').includes(`"path":${JSON.stringify(remote)}`));
    expect(sessionOf).toBeDefined();
    const sessionId = (sessionOf!.payload as FrameRecorded).sessionId;
    const data = all.filter((e) => e.type === 'frame.recorded' && e.payload.sessionId === sessionId && e.payload.messageType === 'sftp-data') as Extract<CustodianEvent, { type: 'frame.recorded' }>[];
    for (const direction of ['client-to-upstream', 'upstream-to-client'] as const) {
      const frames = data.filter((e) => e.payload.direction === direction);
      expect(frames.filter((e) => e.payload.truncated === true), direction).toEqual([]);
      // A 200,000-byte message cut at the frame size (64 KiB): whole 65,536-byte pieces exist.
      expect(frames.some((e) => e.payload.byteLength === 65_536), direction).toBe(true);
      const recorded = Buffer.concat(frames.map((e) => Buffer.from(e.payload.data, 'base64')));
      expect(recorded.length, direction).toBe(payload.length);
      expect(sha256(recorded), direction).toBe(sha256(payload));
    }
  });

  it('limits@openssh.com is announced and answered: ssh2 and OpenSSH clients size their requests from it', async () => {
    const token = (await oidc.issueToken({ clientId: 'agent-7' })).accessToken;
    const client = await GatewaySshClient.connect({ host: '127.0.0.1', port: gateway.port, connection: 'bastion', token, gatewayHostKey: hostKey.publicKey });
    const sftp = await new Promise<ssh2.SFTPWrapper>((resolve, reject) => client.client.sftp((error, s) => (error ? reject(error) : resolve(s))));
    // ssh2 sets maxOpenHandles only from a limits reply (undefined otherwise); its write size then
    // comes from the reply too, instead of 31,952 bytes for a server it does not know as OpenSSH.
    expect((sftp as unknown as { maxOpenHandles?: number }).maxOpenHandles).toBe(MAX_SFTP_HANDLES);
    expect((sftp as unknown as { _maxWriteLen?: number })._maxWriteLen).toBe(SFTP_LIMITS.maxWriteLength);
    const local = join(dir, 'limits.bin');
    const payload = randomBytes(300_000);
    await writeFile(local, payload);
    const remote = join(files, 'work', 'limits.bin');
    await new Promise<void>((resolve, reject) => sftp.fastPut(local, remote, (error) => (error ? reject(error) : resolve())));
    expect(sha256(await readFile(remote))).toBe(sha256(payload));
    sftp.end();
    await client.close();

    const result = await sftpBatch(token, [`get ${remote} ${join(dir, 'limits.back')}`], ['-vv']);
    expect(result, result.stderr).toMatchObject({ code: 0 });
    expect(result.stderr).toMatch(/Server supports extension "limits@openssh.com" revision 1/);
    expect(sha256(await readFile(join(dir, 'limits.back')))).toBe(sha256(payload));
  });

  it('a download while the recorder is saturated (slow store, 256 KiB backlog limit): READs wait unanswered, the requests in flight stay bounded, the file arrives whole', async () => {
    // The store takes 100 ms per append, so the recorder's backlog passes its limit again and again.
    // Before READs waited ahead of the upstream read, a reply went out and then its request stayed
    // counted while the recorder drained: ssh2's fastGet (64 requests out) pushed the count past 256
    // and got FAILURE "too many outstanding requests".
    const slowStore = await SqliteEventStore.open({ path: join(dir, 'slow-events.sqlite') });
    const inner = new StoreEvidencePipeline({ store: slowStore, instance: 'sftp-slow' });
    const slow: EvidencePipeline = {
      accept: async (batch) => {
        await new Promise((resolve) => setTimeout(resolve, 100));
        return inner.accept(batch);
      },
      status: () => inner.status(),
      close: () => inner.close(),
    };
    const slowGateway = new SshGateway({
      host: '127.0.0.1',
      port: 0,
      hostKey,
      pipeline: new SessionPipeline({
        verifier: new OidcAccessTokenVerifier({ issuers: [{ issuer: oidc.issuer, audiences: [oidc.defaultAudience] }] }),
        policy: { policy: parsePolicy(policyFor(files), 'policy.yaml') },
        evidence: slow,
        strict: true,
        maxBacklogBytes: 256 * 1024,
        source: { service: 'gateway', instance: 'sftp-slow' },
        maskingKey: randomBytes(32),
      }),
      logger: { info: () => undefined, warn: () => undefined, error: () => undefined },
      connections: [{ name: 'bastion', upstream: { host: sshd.host, port: sshd.port, username: sshd.user, knownHosts: () => readFile(sshd.knownHostsPath, 'utf8'), credential: { kind: 'private-key', read: () => readFile(sshd.clientPrivateKeyPath) }, credentialRef: `file:${sshd.clientPrivateKeyPath}` } }],
    });
    await slowGateway.listen();
    try {
      const payload = randomBytes(8 * 1024 * 1024);
      const remote = join(files, 'work', 'slow.bin');
      await writeFile(remote, payload);
      const token = (await oidc.issueToken({ clientId: 'agent-7' })).accessToken;
      const client = await GatewaySshClient.connect({ host: '127.0.0.1', port: slowGateway.port, connection: 'bastion', token, gatewayHostKey: hostKey.publicKey });
      const sftp = await new Promise<ssh2.SFTPWrapper>((resolve, reject) => client.client.sftp((error, s) => (error ? reject(error) : resolve(s))));
      const local = join(dir, 'slow.back');
      // 16 KiB READs: the 8 MiB of READ credit alone would let 512 wait.
      await new Promise<void>((resolve, reject) => sftp.fastGet(remote, local, { concurrency: 64, chunkSize: 16 * 1024 }, (error) => (error ? reject(error) : resolve())));
      expect(sha256(await readFile(local))).toBe(sha256(payload));
      sftp.end();
      await client.close();
    } finally {
      await slowGateway.close();
      await slow.close();
      await slowStore.close();
    }
  });

  it('a blocked path: the write, the removal and the rename are refused naming the rule, and nothing changes upstream', async () => {
    const token = (await oidc.issueToken({ clientId: 'agent-7' })).accessToken;
    const keep = join(files, 'keep');
    await writeFile(join(keep, 'ledger.txt'), 'original');
    const local = join(dir, 'evil.txt');
    await writeFile(local, 'replaced');
    const result = await sftpBatch(token, [`-put ${local} ${keep}/ledger.txt`, `-rm ${keep}/ledger.txt`, `-rename ${keep}/ledger.txt ${dir}/stolen.txt`, `-rename ${local} ${keep}/new.txt`]);
    expect(result.code).toBe(0); // `-` lets the batch go on after a refusal
    expect(result.stderr).toMatch(/Permission denied/);
    // The reason, with the rule, on the channel's stderr (OpenSSH prints it).
    expect(result.stderr).toContain(`custodian: files under keep/ cannot be changed (rule keep-is-kept): rm -- '${keep}/ledger.txt'\n`);
    await expect(readFile(join(keep, 'ledger.txt'), 'utf8')).resolves.toBe('original');
    await expect(stat(join(keep, 'new.txt'))).rejects.toThrow(/ENOENT/);
    const blocked = (await decisions()).filter((d) => d.decision === 'block');
    expect(blocked.map((d) => d.ruleId)).toEqual(['keep-is-kept', 'keep-is-kept', 'keep-is-kept', 'keep-is-kept']);
    expect(blocked.map((d) => d.text.split(' ')[0])).toEqual(['tee', 'rm', 'mv', 'mv']);
  });

  it('a held removal (ssh2 SFTP client): runs only once approved; a denied one leaves the file and fails with PERMISSION_DENIED', async () => {
    const releases = join(files, 'releases');
    await writeFile(join(releases, 'v1.tar'), 'v1');
    await writeFile(join(releases, 'v2.tar'), 'v2');
    const token = (await oidc.issueToken({ clientId: 'agent-7' })).accessToken;
    const client = await GatewaySshClient.connect({ host: '127.0.0.1', port: gateway.port, connection: 'bastion', token, gatewayHostKey: hostKey.publicKey });
    const sftp = await new Promise<ssh2.SFTPWrapper>((resolve, reject) => client.client.sftp((error, s) => (error ? reject(error) : resolve(s))));
    const unlink = (path: string): Promise<string> => new Promise((resolve) => sftp.unlink(path, (error) => resolve(error ? `${(error as Error & { code?: number }).code}: ${error.message}` : 'ok')));
    const requested = async (): Promise<string> => {
      for (let i = 0; i < 200; i++) {
        const pending = (await events()).filter((e) => e.type === 'approval.requested');
        const decidedIds = new Set((await events()).filter((e) => e.type === 'approval.granted' || e.type === 'approval.denied').map((e) => (e.payload as { approvalId: string }).approvalId));
        const open = pending.map((e) => (e.payload as { approvalId: string }).approvalId).find((id) => !decidedIds.has(id));
        if (open) return open;
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new Error('no approval requested');
    };

    const first = unlink(join(releases, 'v1.tar'));
    const approvalId = await requested();
    await expect(readFile(join(releases, 'v1.tar'), 'utf8')).resolves.toBe('v1'); // held: not yet removed
    await approvals.handlers.approve.execute(new ApproveApprovalCommand(approvalId, approver, 'release rotated'));
    await expect(first).resolves.toBe('ok');
    await expect(stat(join(releases, 'v1.tar'))).rejects.toThrow(/ENOENT/);

    const second = unlink(join(releases, 'v2.tar'));
    await approvals.handlers.deny.execute(new DenyApprovalCommand(await requested(), approver, 'still in use'));
    const refused = await second;
    expect(refused).toMatch(/^3: .*release-removal-needs-approval/); // 3 = SSH_FX_PERMISSION_DENIED
    await expect(readFile(join(releases, 'v2.tar'), 'utf8')).resolves.toBe('v2');
    sftp.end();
    await client.close();
  });

  it('OpenSSH scp (SFTP protocol, the default since OpenSSH 9.0): a copy is decided as tee per path; one into a blocked path is refused', async () => {
    const token = (await oidc.issueToken({ clientId: 'agent-7' })).accessToken;
    const knownHosts = join(dir, 'gateway_known_hosts');
    await writeFile(knownHosts, `[127.0.0.1]:${gateway.port} ${hostKey.publicKey}\n`);
    const local = join(dir, 'scp-payload.txt');
    await writeFile(local, 'copied by scp');
    const scp = async (target: string, legacy = false): Promise<number> => {
      const args = ['-e', '/usr/bin/scp', ...(legacy ? ['-O'] : []), '-P', String(gateway.port), '-o', `UserKnownHostsFile=${knownHosts}`, '-o', 'StrictHostKeyChecking=yes', '-o', 'PreferredAuthentications=password', '-o', 'PubkeyAuthentication=no', local, `bastion@127.0.0.1:${target}`];
      return promisify(execFile)('sshpass', args, { env: { ...process.env, SSHPASS: token }, timeout: 20_000 }).then(
        () => 0,
        (e: { code?: number }) => e.code ?? -1,
      );
    };
    // scp's SFTP mode writes, then sets the size (decided as `truncate -s N`) and the mode.
    expect(await scp(join(files, 'work', 'scp.txt'))).toBe(0);
    await expect(readFile(join(files, 'work', 'scp.txt'), 'utf8')).resolves.toBe('copied by scp');
    expect(await scp(join(files, 'keep', 'scp.txt'))).not.toBe(0);
    await expect(stat(join(files, 'keep', 'scp.txt'))).rejects.toThrow(/ENOENT/);
    const decided = await decisions();
    expect(decided).toContainEqual({ text: `tee -- '${join(files, 'work', 'scp.txt')}'`, decision: 'allow', ruleId: 'file-transfer' });
    expect(decided).toContainEqual({ text: `tee -- '${join(files, 'keep', 'scp.txt')}'`, decision: 'block', ruleId: 'keep-is-kept' });

    // Legacy scp (-O) runs `scp -t <path>` as an exec command: decided as program scp, the path an argument.
    expect(await scp(join(files, 'work', 'legacy.txt'), true)).toBe(0);
    await expect(readFile(join(files, 'work', 'legacy.txt'), 'utf8')).resolves.toBe('copied by scp');
    expect(await scp(join(files, 'keep', 'legacy.txt'), true)).not.toBe(0);
    await expect(stat(join(files, 'keep', 'legacy.txt'))).rejects.toThrow(/ENOENT/);
    const legacy = (await decisions()).filter((d) => d.text.startsWith('scp '));
    expect(legacy.map((d) => [d.decision, d.ruleId])).toEqual([
      ['allow', 'file-transfer'],
      ['block', 'keep-is-kept'],
    ]);
  });

  it('hostile SFTP: more open handles than the cap and a forged handle are refused; the gateway stays up', async () => {
    const token = (await oidc.issueToken({ clientId: 'agent-7' })).accessToken;
    const client = await GatewaySshClient.connect({ host: '127.0.0.1', port: gateway.port, connection: 'bastion', token, gatewayHostKey: hostKey.publicKey });
    const sftp = await new Promise<ssh2.SFTPWrapper>((resolve, reject) => client.client.sftp((error, s) => (error ? reject(error) : resolve(s))));
    const target = join(files, 'work', 'many.txt');
    await writeFile(target, 'x');
    const opens: string[] = [];
    // In batches of 64 (below the in-flight cap, which is a different refusal).
    for (let done = 0; done < MAX_SFTP_HANDLES + 5; done += 64) {
      const batch = Math.min(64, MAX_SFTP_HANDLES + 5 - done);
      opens.push(...(await Promise.all(Array.from({ length: batch }, () => new Promise<string>((resolve) => sftp.open(target, 'r', (error) => resolve(error ? error.message : 'open')))))));
    }
    expect(opens.filter((r) => r === 'open')).toHaveLength(MAX_SFTP_HANDLES);
    expect(opens.filter((r) => r !== 'open').every((r) => /too many open handles/.test(r))).toBe(true);
    const forged = await new Promise<string>((resolve) => sftp.read(Buffer.from([0xff, 0xff, 0xff, 0xff]), Buffer.alloc(16), 0, 16, 0, (error) => resolve(error ? error.message : 'read')));
    expect(forged).toMatch(/invalid handle/);
    sftp.end();
    await client.close();
    // Another session works as before.
    const again = await sftpBatch(token, [`ls ${join(files, 'work')}`]);
    expect(again.code).toBe(0);
  });

  it('a client that disconnects mid-upload: the partial transfer is recorded with its size and hash, marked channel-closed', async () => {
    const token = (await oidc.issueToken({ clientId: 'agent-7' })).accessToken;
    const client = await GatewaySshClient.connect({ host: '127.0.0.1', port: gateway.port, connection: 'bastion', token, gatewayHostKey: hostKey.publicKey });
    const sftp = await new Promise<ssh2.SFTPWrapper>((resolve, reject) => client.client.sftp((error, s) => (error ? reject(error) : resolve(s))));
    const path = join(files, 'work', 'cut.bin');
    const handle = await new Promise<Buffer>((resolve, reject) => sftp.open(path, 'w', (error, h) => (error ? reject(error) : resolve(h))));
    const chunk = randomBytes(32 * 1024);
    for (let i = 0; i < 4; i++) await new Promise<void>((resolve, reject) => sftp.write(handle, chunk, 0, chunk.length, i * chunk.length, (error) => (error ? reject(error) : resolve())));
    client.client.destroy(); // gone without closing the handle
    const expected = createHash('sha256');
    for (let i = 0; i < 4; i++) expected.update(chunk);
    let record: Awaited<ReturnType<typeof transfers>>[number] | undefined;
    for (let i = 0; i < 100 && !record; i++) {
      record = (await transfers()).find((t) => t.path === path);
      if (!record) await new Promise((r) => setTimeout(r, 50));
    }
    expect(record).toMatchObject({ how: 'channel-closed', written: { bytes: 4 * chunk.length, sha256: expected.digest('hex'), sequential: true } });
  });

  it('the upstream key appears in no event', async () => {
    const key = (await readFile(sshd.clientPrivateKeyPath, 'utf8')).split('\n').slice(1, 3).join('');
    for (const e of await events()) expect(JSON.stringify(e).includes(key)).toBe(false);
  });
});
