// SFTP reads masked by the policy's detectors, transfers bounded by a rule's
// `limits.transferBytes`, and legacy `scp -O` decided file by file, with real clients (OpenSSH
// `sftp -b` and `scp -O` through sshpass, ssh2's SFTP client) in front of the harness's real sshd. The masked file keeps its size and offsets (length-preserving
// masking), values split across READ boundaries are masked, random access restarts the masked
// stream (bounded), and a transfer over its limit is refused naming the rule with an event.
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventSourcedApprovalGate } from '@custodian/approvals';
import type { CustodianEvent, FrameRecorded } from '@custodian/event-contracts';
import { StoreEvidencePipeline } from '@custodian/evidence-pipeline';
import { SqliteEventStore } from '@custodian/event-store-sqlite';
import { OidcAccessTokenVerifier } from '@custodian/identity-oidc';
import { parsePolicy } from '@custodian/policy';
import { SessionPipeline } from '@custodian/session-pipeline';
import { startOidcProvider, startSshd, type StartedOidcProvider, type StartedSshd } from '@custodian/test-harness';
import type ssh2 from 'ssh2';
import { readOrCreateSshHostKey, type SshHostKey } from './host-key.js';
import { MASKED_READ_CHUNK, MASKED_READ_MAX_RESTARTS } from './masked-file-reader.js';
import { SshGateway } from './ssh-gateway.js';
import { GatewaySshClient } from './testing/ssh-client.js';

let sshd: StartedSshd;
let oidc: StartedOidcProvider;
let store: SqliteEventStore;
let approvals: EventSourcedApprovalGate;
let dir: string;
let files: string;
let hostKey: SshHostKey;
let gateway: SshGateway;

const LIMIT = 100_000;

function policyFor(root: string): string {
  return `name: sftp-masking-test
rules:
  - id: no-blocked
    match: { shell: { programs: [cat, tee, mkdir, ls], arguments: [${JSON.stringify(`${root}/**/blocked*`)}] } }
    decision: block
    message: blocked files stay where they are
  - id: small-files-only
    match: { shell: { programs: [cat, tee], arguments: [${JSON.stringify(`${root}/limited/**`)}] } }
    decision: allow
    limits: { transferBytes: ${LIMIT} }
  - id: file-transfer
    match: { shell: { programs: [cat, tee, ls, rm, mv, mkdir, rmdir, chmod, touch, truncate, scp] } }
    decision: allow
masking:
  - { id: pii, detectors: [card, email, private-key], strategy: redact }
`;
}

// The values and what a length-preserving mask makes of them (every letter and digit → `*`).
const EMAIL = 'jane.doe@example.com';
const EMAIL_MASKED = '****.***@*******.***';
const CARD = '4111 1111 1111 1111';
const CARD_MASKED = '**** **** **** ****';

/** ~300 KB: text lines, PII straddling the 32 KiB (OpenSSH) and 64 KiB (gateway) READ boundaries, and non-UTF-8 bytes. */
function fixture(): { original: Buffer; masked: Buffer; count: number } {
  const parts: { plain: Buffer; masked: Buffer }[] = [];
  let size = 0;
  let count = 0;
  const add = (plain: string | Buffer, masked?: string): void => {
    const p = typeof plain === 'string' ? Buffer.from(plain, 'latin1') : plain;
    const m = masked === undefined ? p : Buffer.from(masked, 'latin1');
    parts.push({ plain: p, masked: m });
    size += p.length;
  };
  const filler = (upTo: number): void => {
    while (size < upTo) {
      const line = `line ${size} of the report, nothing sensitive here\n`.slice(0, upTo - size);
      add(line);
    }
  };
  const straddle = (boundary: number, value: string, masked: string): void => {
    filler(boundary - Math.floor(value.length / 2) - 1);
    add(' ');
    add(value, masked);
    add('\n');
    count++;
  };
  for (const boundary of [32_768, 65_536, 98_304]) straddle(boundary, EMAIL, EMAIL_MASKED);
  for (const boundary of [131_072, 4 * MASKED_READ_CHUNK]) straddle(boundary, CARD, CARD_MASKED);
  filler(200_000);
  // Bytes that are not UTF-8 (a binary section) pass unchanged: masking works byte for byte.
  add(Buffer.from(Array.from({ length: 4096 }, (_, i) => 0x80 + (i % 0x7f))));
  filler(300_000);
  add(`last line with ${EMAIL}\n`, `last line with ${EMAIL_MASKED}\n`);
  count++;
  return { original: Buffer.concat(parts.map((p) => p.plain)), masked: Buffer.concat(parts.map((p) => p.masked)), count };
}

async function sftpBatch(token: string, commands: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const knownHosts = join(dir, 'gateway_known_hosts');
  await writeFile(knownHosts, `[127.0.0.1]:${gateway.port} ${hostKey.publicKey}\n`);
  const batch = join(dir, `batch-${randomBytes(4).toString('hex')}`);
  await writeFile(batch, `${commands.join('\n')}\n`);
  const args = ['-e', '/usr/bin/sftp', '-P', String(gateway.port), '-o', 'BatchMode=no', '-o', `UserKnownHostsFile=${knownHosts}`, '-o', 'StrictHostKeyChecking=yes', '-o', 'PreferredAuthentications=password', '-o', 'PubkeyAuthentication=no', '-b', batch, 'bastion@127.0.0.1'];
  try {
    const { stdout, stderr } = await promisify(execFile)('sshpass', args, { env: { ...process.env, SSHPASS: token }, timeout: 60_000 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

async function scpLegacy(token: string, args: string[]): Promise<{ code: number; stderr: string }> {
  const knownHosts = join(dir, 'gateway_known_hosts');
  await writeFile(knownHosts, `[127.0.0.1]:${gateway.port} ${hostKey.publicKey}\n`);
  const all = ['-e', '/usr/bin/scp', '-O', '-P', String(gateway.port), '-o', `UserKnownHostsFile=${knownHosts}`, '-o', 'StrictHostKeyChecking=yes', '-o', 'PreferredAuthentications=password', '-o', 'PubkeyAuthentication=no', ...args];
  return promisify(execFile)('sshpass', all, { env: { ...process.env, SSHPASS: token }, timeout: 60_000 }).then(
    ({ stderr }) => ({ code: 0, stderr }),
    (e: { code?: number; stderr?: string }) => ({ code: e.code ?? -1, stderr: e.stderr ?? '' }),
  );
}

/** The decided texts (command.issued) with their decisions and rules, in order. */
async function decisions(): Promise<{ text: string; decision: string; ruleId: string | undefined }[]> {
  const all = await events();
  const texts = new Map<string, string>();
  for (const e of all) if (e.type === 'command.issued') texts.set(e.payload.commandId, e.payload.text);
  return all.filter((e) => e.type === 'policy.decided').map((e) => ({ text: texts.get(e.payload.commandId!) ?? '', decision: e.payload.decision, ruleId: e.payload.ruleId ?? undefined }));
}

function scpOps(all: CustodianEvent[]): { op: string; path: string; direction: string; bytes: number; sha256: string; how: string }[] {
  return all
    .filter((e): e is Extract<CustodianEvent, { type: 'frame.recorded' }> => e.type === 'frame.recorded' && e.payload.messageType === 'scp-op')
    .map((e) => JSON.parse(Buffer.from((e.payload as FrameRecorded).data, 'base64').toString('utf8')) as { op: string; path: string; direction: string; bytes: number; sha256: string; how: string });
}

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

function controlOps(all: CustodianEvent[]): { op: string; path: string; [key: string]: unknown }[] {
  return all
    .filter((e): e is Extract<CustodianEvent, { type: 'frame.recorded' }> => e.type === 'frame.recorded' && e.payload.messageType === 'sftp-op')
    .map((e) => JSON.parse(Buffer.from((e.payload as FrameRecorded).data, 'base64').toString('utf8')) as { op: string; path: string });
}

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

async function sftpSession(token: string): Promise<{ client: GatewaySshClient; sftp: ssh2.SFTPWrapper }> {
  const client = await GatewaySshClient.connect({ host: '127.0.0.1', port: gateway.port, connection: 'bastion', token, gatewayHostKey: hostKey.publicKey });
  const sftp = await new Promise<ssh2.SFTPWrapper>((resolve, reject) => client.client.sftp((error, s) => (error ? reject(error) : resolve(s))));
  return { client, sftp };
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'custodian-sftp-masking-'));
  files = join(dir, 'upstream');
  for (const sub of ['work', 'limited']) await mkdir(join(files, sub), { recursive: true });
  sshd = await startSshd();
  oidc = await startOidcProvider({ clients: [{ clientId: 'agent-7', kind: 'agent', groups: ['ops'] }] });
  store = await SqliteEventStore.open({ path: join(dir, 'events.sqlite'), pollIntervalMs: 20 });
  approvals = new EventSourcedApprovalGate({ eventStore: store, instance: 'sftp-masking-test', pollIntervalMs: 50 });
  await approvals.start();
  hostKey = await readOrCreateSshHostKey(join(dir, 'gateway', 'ssh-host-ed25519.key'));
  const pipeline = new SessionPipeline({
    verifier: new OidcAccessTokenVerifier({ issuers: [{ issuer: oidc.issuer, audiences: [oidc.defaultAudience] }] }),
    policy: { policy: parsePolicy(policyFor(files), 'policy.yaml') },
    evidence: new StoreEvidencePipeline({ store, instance: 'sftp-masking-test' }),
    approvals,
    approvalWaitSeconds: 60,
    strict: true,
    source: { service: 'gateway', instance: 'sftp-masking-test' },
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

describe('SFTP reads masked by the detectors', () => {
  it('OpenSSH sftp get: PII across READ boundaries is masked, the size and every other byte are unchanged, the masking is an event', async () => {
    const { original, masked, count } = fixture();
    expect(masked.length).toBe(original.length);
    const path = join(files, 'work', 'report.txt');
    await writeFile(path, original);
    const token = (await oidc.issueToken({ clientId: 'agent-7' })).accessToken;
    const back = join(dir, 'report.back');
    const result = await sftpBatch(token, [`get ${path} ${back}`]);
    expect(result, result.stderr).toMatchObject({ code: 0 });
    const received = await readFile(back);
    expect(received.length).toBe(original.length);
    expect(received.includes(Buffer.from(EMAIL))).toBe(false);
    expect(received.includes(Buffer.from(CARD))).toBe(false);
    expect(received.equals(masked)).toBe(true);

    const all = await events();
    const transfer = controlOps(all).find((op) => op.op === 'transfer' && op.path === path);
    expect(transfer).toMatchObject({ read: { bytes: original.length, sha256: sha256(masked), sequential: true }, masked: { restarts: 0, findings: count } });
    const maskedEvent = all.find((e) => e.type === 'data.masked');
    expect(JSON.stringify(maskedEvent?.payload)).toMatch(/sftp\.read/);
    // What was recorded is what the client received: no value in any event.
    for (const e of all) {
      const text = JSON.stringify(e);
      expect(text.includes(EMAIL)).toBe(false);
      if (e.type === 'frame.recorded') expect(Buffer.from(e.payload.data, 'base64').includes(Buffer.from(EMAIL))).toBe(false);
    }
  });

  it('ssh2 client: reads out of order are served from the restarted masked stream (same bytes), until the restart bound refuses them', async () => {
    // Twice the fixture (~600 KB): far enough apart that the start is no longer kept (MASKED_READ_RETAIN).
    const one = fixture();
    const original = Buffer.concat([one.original, one.original]);
    const masked = Buffer.concat([one.masked, one.masked]);
    const path = join(files, 'work', 'random.txt');
    await writeFile(path, original);
    const token = (await oidc.issueToken({ clientId: 'agent-7' })).accessToken;
    const { client, sftp } = await sftpSession(token);
    const handle = await new Promise<Buffer>((resolve, reject) => sftp.open(path, 'r', (error, h) => (error ? reject(error) : resolve(h))));
    const readAt = (offset: number, length: number): Promise<Buffer | string> =>
      new Promise((resolve) => sftp.read(handle, Buffer.alloc(length), 0, length, offset, (error, n, buffer) => resolve(error ? error.message : buffer.subarray(0, n))));
    // Far ahead first, then back to the start (one restart), then a card straddling 131072.
    expect(await readAt(250_000, 4096)).toEqual(masked.subarray(250_000, 254_096));
    expect(await readAt(0, 4096)).toEqual(masked.subarray(0, 4096));
    expect(await readAt(131_060, 40)).toEqual(masked.subarray(131_060, 131_100));
    let refusal: Buffer | string = Buffer.alloc(0);
    for (let i = 0; i < MASKED_READ_MAX_RESTARTS + 1 && typeof refusal !== 'string'; i++) {
      expect(await readAt(590_000, 10)).toEqual(masked.subarray(590_000, 590_010));
      refusal = await readAt(0, 10);
    }
    expect(refusal).toMatch(/reads of a masked file must go forward/);
    sftp.end();
    await client.close();
    const ops = controlOps(await events());
    expect(ops.find((op) => op.op === 'read-refused' && op.path === path)).toBeDefined();
  });

  it('a file opened for reading and writing cannot be read while masking applies', async () => {
    const path = join(files, 'work', 'rw.txt');
    await writeFile(path, `contact ${EMAIL}\n`);
    const token = (await oidc.issueToken({ clientId: 'agent-7' })).accessToken;
    const { client, sftp } = await sftpSession(token);
    const handle = await new Promise<Buffer>((resolve, reject) => sftp.open(path, 'r+', (error, h) => (error ? reject(error) : resolve(h))));
    const read = await new Promise<string>((resolve) => sftp.read(handle, Buffer.alloc(64), 0, 64, 0, (error, n, b) => resolve(error ? error.message : b.subarray(0, n).toString())));
    expect(read).toMatch(/opened for writing cannot be read while masking rules apply/);
    sftp.end();
    await client.close();
  });
});

describe('SFTP transfer limits from the policy (limits.transferBytes)', () => {
  it('an upload and a download over the rule limit are refused naming the rule, with a custodian:transfer-limit decision; a smaller file passes', async () => {
    const token = (await oidc.issueToken({ clientId: 'agent-7' })).accessToken;
    const limited = join(files, 'limited');
    const small = join(dir, 'small.bin');
    const big = join(dir, 'big.bin');
    await writeFile(small, randomBytes(LIMIT));
    await writeFile(big, randomBytes(LIMIT * 3));
    await writeFile(join(limited, 'big-remote.bin'), randomBytes(LIMIT * 3));
    const result = await sftpBatch(token, [`put ${small} ${limited}/small.bin`, `-put ${big} ${limited}/big.bin`, `-get ${limited}/big-remote.bin ${dir}/big-remote.back`]);
    expect(result.code).toBe(0);
    expect((await readFile(join(limited, 'small.bin'))).length).toBe(LIMIT);
    expect(result.stderr).toContain(`custodian: the transfer of ${limited}/big.bin is over the ${LIMIT}-byte limit of rule small-files-only (rule custodian:transfer-limit)`);
    expect(result.stderr).toContain(`custodian: the transfer of ${limited}/big-remote.bin is over the ${LIMIT}-byte limit of rule small-files-only`);
    const uploaded = await readFile(join(limited, 'big.bin')).catch(() => Buffer.alloc(0));
    expect(uploaded.length).toBeLessThanOrEqual(LIMIT);

    const all = await events();
    const texts = new Map<string, string>();
    for (const e of all) if (e.type === 'command.issued') texts.set(e.payload.commandId, e.payload.text);
    const refusals = all.filter((e) => e.type === 'policy.decided' && e.payload.ruleId === 'custodian:transfer-limit').map((e) => texts.get((e.payload as { commandId: string }).commandId));
    expect(refusals).toEqual([`tee -- '${limited}/big.bin'`, `cat -- '${limited}/big-remote.bin'`]);
  });
});

describe('legacy scp (scp -O): every file and directory decided like the SFTP operation', () => {
  it('a recursive upload: allowed files arrive hashed per file, blocked ones (file and directory) are skipped naming the rule, scp exits 1', async () => {
    const token = (await oidc.issueToken({ clientId: 'agent-7' })).accessToken;
    const tree = join(dir, 'tree');
    await mkdir(join(tree, 'sub'), { recursive: true });
    await mkdir(join(tree, 'blockeddir'), { recursive: true });
    const ok = Buffer.from(`uploaded as is: ${EMAIL}\n`);
    const deep = randomBytes(70_000);
    await writeFile(join(tree, 'ok.txt'), ok);
    await writeFile(join(tree, 'blocked.txt'), 'must not arrive');
    await writeFile(join(tree, 'sub', 'deep.bin'), deep);
    await writeFile(join(tree, 'blockeddir', 'x.txt'), 'must not arrive');
    const work = join(files, 'work');
    const result = await scpLegacy(token, ['-r', tree, `bastion@127.0.0.1:${work}`]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('custodian: blocked files stay where they are (rule no-blocked)');
    await expect(readFile(join(work, 'tree', 'ok.txt'))).resolves.toEqual(ok);
    await expect(readFile(join(work, 'tree', 'sub', 'deep.bin'))).resolves.toEqual(deep);
    await expect(readFile(join(work, 'tree', 'blocked.txt'))).rejects.toThrow(/ENOENT/);
    await expect(readFile(join(work, 'tree', 'blockeddir', 'x.txt'))).rejects.toThrow(/ENOENT/);

    const decided = await decisions();
    const q = (p: string): string => `'${join(work, 'tree', p)}'`;
    expect(decided).toContainEqual({ text: `mkdir -- '${join(work, 'tree')}'`, decision: 'allow', ruleId: 'file-transfer' });
    expect(decided).toContainEqual({ text: `tee -- ${q('ok.txt')}`, decision: 'allow', ruleId: 'file-transfer' });
    expect(decided).toContainEqual({ text: `tee -- ${q('sub/deep.bin')}`, decision: 'allow', ruleId: 'file-transfer' });
    expect(decided).toContainEqual({ text: `tee -- ${q('blocked.txt')}`, decision: 'block', ruleId: 'no-blocked' });
    expect(decided).toContainEqual({ text: `mkdir -- ${q('blockeddir')}`, decision: 'block', ruleId: 'no-blocked' });
    const ops = scpOps(await events());
    expect(ops).toContainEqual(expect.objectContaining({ op: 'transfer', path: join(work, 'tree', 'ok.txt'), direction: 'upload', bytes: ok.length, sha256: sha256(ok), how: 'complete' }));
    expect(ops).toContainEqual(expect.objectContaining({ op: 'transfer', path: join(work, 'tree', 'sub', 'deep.bin'), direction: 'upload', bytes: deep.length, sha256: sha256(deep) }));
  });

  it('downloads: a file is masked length-preserving and hashed; a blocked file never reaches the client; a file over the rule limit is refused', async () => {
    const token = (await oidc.issueToken({ clientId: 'agent-7' })).accessToken;
    const { original, masked } = fixture();
    const work = join(files, 'work');
    await writeFile(join(work, 'download.txt'), original);
    await writeFile(join(work, 'blocked-remote.txt'), 'secret');
    await writeFile(join(files, 'limited', 'large.bin'), randomBytes(LIMIT + 1));
    const local = join(dir, 'downloads');
    await mkdir(local, { recursive: true });
    const allowed = await scpLegacy(token, [`bastion@127.0.0.1:${work}/download.txt`, join(local, 'download.txt')]);
    expect(allowed, allowed.stderr).toMatchObject({ code: 0 });
    await expect(readFile(join(local, 'download.txt'))).resolves.toEqual(masked);

    const blocked = await scpLegacy(token, [`bastion@127.0.0.1:${work}/blocked-remote.txt`, join(local, 'blocked.txt')]);
    expect(blocked.code).toBe(1);
    expect(blocked.stderr).toContain('custodian: blocked files stay where they are (rule no-blocked)');
    await expect(readFile(join(local, 'blocked.txt'))).rejects.toThrow(/ENOENT/);

    const large = await scpLegacy(token, [`bastion@127.0.0.1:${files}/limited/large.bin`, join(local, 'large.bin')]);
    expect(large.code).toBe(1);
    expect(large.stderr).toContain(`is over the ${LIMIT}-byte limit of rule small-files-only`);
    await expect(readFile(join(local, 'large.bin'))).rejects.toThrow(/ENOENT/);

    const decided = await decisions();
    expect(decided).toContainEqual({ text: `cat -- '${work}/download.txt'`, decision: 'allow', ruleId: 'file-transfer' });
    expect(decided).toContainEqual({ text: `cat -- '${work}/blocked-remote.txt'`, decision: 'block', ruleId: 'no-blocked' });
    expect(decided).toContainEqual({ text: `cat -- '${files}/limited/large.bin'`, decision: 'block', ruleId: 'custodian:transfer-limit' });
    const ops = scpOps(await events());
    expect(ops).toContainEqual(expect.objectContaining({ path: `${work}/download.txt`, direction: 'download', bytes: original.length, sha256: sha256(masked) }));
  });
});
