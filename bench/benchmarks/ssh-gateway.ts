// The SSH gateway against the same sshd reached directly, in one run (ssh2 as the client both
// ways; through the gateway with recording on: every channel byte becomes a frame.recorded event
// in a SQLite store, strict mode):
// - exec round trips per second over one reused connection (`true`, one channel per command);
// - SFTP upload and download throughput (ssh2 fastPut/fastGet: 64 requests of 32 KiB in flight,
//   in a child process so the client's work is not on the gateway's thread; 256 MiB, 4 MiB in
//   --quick), through the gateway decided at open, recorded and hashed;
// - keystroke echo latency in a pty shell (bash/readline echoes each key): p50 and p99, through the
//   gateway each key goes through the line gate.
// Blocks alternate direct/gateway so that the load of the shared machine falls on both alike.
import { execFile } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { StoreEvidencePipeline } from '@custodian/evidence-pipeline';
import { SqliteEventStore } from '@custodian/event-store-sqlite';
import { OidcAccessTokenVerifier } from '@custodian/identity-oidc';
import { parsePolicy } from '@custodian/policy';
import { readyPolicyLanguages } from '@custodian/policy-languages';
import { SessionPipeline } from '@custodian/session-pipeline';
import { readOrCreateSshHostKey, SshGateway, sshNativeCrypto } from '@custodian/ssh-gateway';
import { startOidcProvider, startSshd, type StartedSshd } from '@custodian/test-harness';
import ssh2 from 'ssh2';
import { BenchmarkError, figure, type Benchmark, type Figure } from '../benchmark.ts';
import { interleavedBlockRates, MIB, nowNs, percentile, secondsSince } from '../measurement.ts';

const NAME = 'ssh-gateway';
const SFTP_PROBE = fileURLToPath(new URL('../probes/sftp-transfer.ts', import.meta.url));
const runFile = promisify(execFile);

const POLICY = `name: bench
rules:
  - id: bench
    match: { shell: { programs: ['true', tee, cat, truncate, chmod, touch, ls] } }
    decision: allow
`;

function connect(config: ssh2.ConnectConfig): Promise<ssh2.Client> {
  const client = new ssh2.Client();
  return new Promise((resolve, reject) => {
    client.once('ready', () => {
      client.setNoDelay(true); // as OpenSSH does for interactive sessions, on both sides of the comparison
      resolve(client);
    });
    client.once('error', reject);
    client.connect({ readyTimeout: 30_000, ...config });
  });
}

function execTrue(client: ssh2.Client): Promise<void> {
  return new Promise((resolve, reject) =>
    client.exec('true', (error, stream) => {
      if (error) return reject(error);
      let code: number | null = null;
      stream.on('exit', (c: number | null) => (code = c));
      stream.on('close', () => (code === 0 ? resolve() : reject(new BenchmarkError('BENCH_MEASUREMENT_FAILED', `true exited ${code}`))));
      stream.resume();
      stream.stderr.resume();
    }),
  );
}

/** A pty shell: `key(c)` sends one printable key and resolves when its echo arrives. */
async function shellOf(client: ssh2.Client): Promise<{ key(c: string): Promise<number>; close(): void }> {
  const stream = await new Promise<ssh2.ClientChannel>((resolve, reject) => client.shell({ term: 'xterm', cols: 200, rows: 50 }, { env: { PS1: 'bench$ ' } }, (error, s) => (error ? reject(error) : resolve(s))));
  let output = '';
  let waiting: { text: string; resolve: () => void } | undefined;
  stream.on('data', (chunk: Buffer) => {
    output += chunk.toString('latin1');
    if (output.length > 4096) output = output.slice(-1024);
    if (waiting && output.endsWith(waiting.text)) {
      const w = waiting;
      waiting = undefined;
      w.resolve();
    }
  });
  const until = (text: string): Promise<void> => {
    if (output.endsWith(text)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new BenchmarkError('BENCH_MEASUREMENT_FAILED', `no echo of ${JSON.stringify(text)} within 10 s (last output ${JSON.stringify(output.slice(-80))})`)), 10_000);
      waiting = {
        text,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      };
    });
  };
  // The prompt: whatever bash prints first (its rc files may set their own).
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new BenchmarkError('BENCH_MEASUREMENT_FAILED', 'the shell printed no prompt within 10 s')), 10_000);
    const check = (): void => {
      if (output.length > 0) {
        clearTimeout(timer);
        setTimeout(resolve, 300);
      } else setTimeout(check, 20);
    };
    check();
  });
  let typed = 0;
  return {
    async key(c: string): Promise<number> {
      // Kill the line every 60 keys so that readline never has to wrap.
      if (typed > 0 && typed % 60 === 0) {
        stream.write('\u0015');
        await new Promise((r) => setTimeout(r, 5));
      }
      typed++;
      const start = nowNs();
      const echoed = until(c);
      stream.write(c);
      await echoed;
      return secondsSince(start) * 1000;
    },
    close: () => {
      stream.write('\u0015');
      stream.close();
    },
  };
}


/** The harness's sshd, an OIDC provider and the gateway in front of the sshd (recording into SQLite, strict). */
export interface SshBenchTarget {
  readonly sshd: StartedSshd;
  readonly gateway: SshGateway;
  readonly token: string;
  /** ssh2 ConnectConfig of the direct side (privateKeyPath instead of the key itself, for the child probe). */
  readonly direct: { host: string; port: number; username: string; privateKeyPath: string };
  readonly through: { host: string; port: number; username: string; password: string };
  stop(): Promise<void>;
}

export async function startSshBenchTarget(workDir: string): Promise<SshBenchTarget> {
  await readyPolicyLanguages();
  const sshd = await startSshd();
  const oidc = await startOidcProvider({ clients: [{ clientId: 'bench-agent', kind: 'agent', groups: ['bench'], accessTokenTtlSeconds: 3600 }] });
  const store = await SqliteEventStore.open({ path: join(workDir, 'events.sqlite') });
  const evidence = new StoreEvidencePipeline({ store, instance: 'bench' });
  const hostKey = await readOrCreateSshHostKey(join(workDir, 'ssh-host-ed25519.key'));
  const pipeline = new SessionPipeline({
    verifier: new OidcAccessTokenVerifier({ issuers: [{ issuer: oidc.issuer, audiences: [oidc.defaultAudience] }] }),
    policy: { policy: parsePolicy(POLICY, 'bench-policy.yaml') },
    evidence,
    strict: true,
    source: { service: 'gateway', instance: 'bench' },
    maskingKey: randomBytes(32),
  });
  const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };
  const gateway = new SshGateway({
    host: '127.0.0.1',
    port: 0,
    hostKey,
    pipeline,
    logger: quiet,
    connections: [{ name: 'bench', upstream: { host: sshd.host, port: sshd.port, username: sshd.user, knownHosts: () => readFile(sshd.knownHostsPath, 'utf8'), credential: { kind: 'private-key', read: () => readFile(sshd.clientPrivateKeyPath) }, credentialRef: 'file:bench-key' } }],
  });
  await gateway.listen();
  const token = (await oidc.issueToken({ clientId: 'bench-agent' })).accessToken;
  return {
    sshd,
    gateway,
    token,
    direct: { host: sshd.host, port: sshd.port, username: sshd.user, privateKeyPath: sshd.clientPrivateKeyPath },
    through: { host: '127.0.0.1', port: gateway.port, username: 'bench', password: token },
    async stop() {
      await gateway.close();
      await evidence.close();
      await store.close();
      await oidc.stop();
      await sshd.stop();
    },
  };
}

/** One SFTP transfer by the child probe (bench/probes/sftp-transfer.ts): its seconds and the client's CPU seconds, connection setup excluded. */
export async function sftpTransfer(direction: 'put' | 'get', config: object, local: string, remote: string): Promise<{ seconds: number; clientCpuSeconds: number }> {
  const { stdout } = await runFile(process.execPath, [SFTP_PROBE, direction, JSON.stringify(config), local, remote], { timeout: 900_000, maxBuffer: 1024 * 1024 });
  const { seconds, cpuSeconds } = JSON.parse(stdout.trim().split('\n').at(-1)!) as { seconds: number; cpuSeconds: number };
  return { seconds, clientCpuSeconds: cpuSeconds };
}

export const sshGateway: Benchmark = {
  name: NAME,
  description: 'SSH gateway vs direct sshd: exec round trips, SFTP upload and download, pty keystroke echo (recording on)',
  async run(context): Promise<Figure[]> {
    const target = await startSshBenchTarget(context.workDir);
    const { sshd } = target;
    const clients: ssh2.Client[] = [];
    try {
      const key = await readFile(sshd.clientPrivateKeyPath);
      const direct = await connect({ host: sshd.host, port: sshd.port, username: sshd.user, privateKey: key });
      const through = await connect({ host: target.through.host, port: target.through.port, username: target.through.username, password: target.token });
      clients.push(direct, through);

      // Exec round trips.
      const execBlock = context.quick ? 5 : 50;
      const execRounds = context.quick ? 2 : 4;
      context.log(`exec: ${execRounds} × ${execBlock} per side`);
      const execRates = await interleavedBlockRates(execRounds, {
        direct: async () => {
          const start = nowNs();
          for (let i = 0; i < execBlock; i++) await execTrue(direct);
          return { operations: execBlock, seconds: secondsSince(start) };
        },
        gateway: async () => {
          const start = nowNs();
          for (let i = 0; i < execBlock; i++) await execTrue(through);
          return { operations: execBlock, seconds: secondsSince(start) };
        },
      });

      // SFTP upload and download (the client in a child process: bench/probes/sftp-transfer.ts).
      const fileMiB = context.quick ? 4 : 256;
      const local = join(context.workDir, 'upload.bin');
      await writeFile(local, randomBytes(fileMiB * MIB));
      const source = join(sshd.dir, 'download.bin');
      await writeFile(source, randomBytes(fileMiB * MIB));
      const sftpRounds = context.quick ? 1 : 2;
      context.log(`sftp: ${sftpRounds} × ${fileMiB} MiB per side and direction, each transfer from a child process`);
      const upload = async (config: object): Promise<{ operations: number; seconds: number }> => {
        const remote = join(sshd.dir, `upload-${randomUUID()}.bin`);
        try {
          return { operations: fileMiB, seconds: (await sftpTransfer('put', config, local, remote)).seconds };
        } finally {
          await rm(remote, { force: true });
        }
      };
      const download = async (config: object): Promise<{ operations: number; seconds: number }> => {
        const copy = join(context.workDir, `download-${randomUUID()}.bin`);
        try {
          return { operations: fileMiB, seconds: (await sftpTransfer('get', config, copy, source)).seconds };
        } finally {
          await rm(copy, { force: true });
        }
      };
      const uploadRates = await interleavedBlockRates(sftpRounds, { direct: () => upload(target.direct), gateway: () => upload(target.through) });
      const downloadRates = await interleavedBlockRates(sftpRounds, { direct: () => download(target.direct), gateway: () => download(target.through) });
      await rm(local, { force: true });
      await rm(source, { force: true });

      // Keystroke echo.
      const keys = context.quick ? 40 : 600;
      context.log(`keystrokes: ${keys} per side, alternating`);
      const shellDirect = await shellOf(direct);
      const shellThrough = await shellOf(through);
      const latencies = { direct: [] as number[], gateway: [] as number[] };
      const alphabet = 'abcdefghijklmnopqrstuvwxyz';
      for (let i = 0; i < keys; i++) {
        const c = alphabet[i % alphabet.length]!;
        if (i % 2 === 0) {
          latencies.direct.push(await shellDirect.key(c));
          latencies.gateway.push(await shellThrough.key(c));
        } else {
          latencies.gateway.push(await shellThrough.key(c));
          latencies.direct.push(await shellDirect.key(c));
        }
      }
      shellDirect.close();
      shellThrough.close();
      const sorted = { direct: latencies.direct.sort((a, b) => a - b), gateway: latencies.gateway.sort((a, b) => a - b) };
      const p = (side: 'direct' | 'gateway', q: number): number => percentile(sorted[side], q);

      const crypto = sshNativeCrypto() ? 'ssh2 native crypto binding in use' : 'ssh2 native crypto binding NOT built (pure-JS AES-GCM)';
      const baseline = (value: number): { name: string; value: number } => ({ name: 'direct sshd (same run)', value });
      return [
        figure(NAME, { metric: 'exec round trips (reused connection)', unit: 'exec/s', better: 'higher', subject: 'through the gateway', value: execRates.gateway, baseline: baseline(execRates.direct), notes: 'aim ≥ 0.5× direct' }),
        figure(NAME, { metric: `SFTP upload (${fileMiB} MiB, recording on)`, unit: 'MiB/s', better: 'higher', subject: 'through the gateway', value: uploadRates.gateway, baseline: baseline(uploadRates.direct), notes: `aim ≥ 0.5× direct; every byte recorded as frame.recorded in SQLite; ${crypto}` }),
        figure(NAME, { metric: `SFTP download (${fileMiB} MiB, recording on)`, unit: 'MiB/s', better: 'higher', subject: 'through the gateway', value: downloadRates.gateway, baseline: baseline(downloadRates.direct), notes: `aim ≥ 0.5× direct; every byte recorded as frame.recorded in SQLite; ${crypto}` }),
        figure(NAME, { metric: 'keystroke echo p50 (pty shell)', unit: 'ms', better: 'lower', subject: 'through the gateway', value: p('gateway', 50), baseline: baseline(p('direct', 50)), notes: `added ${(p('gateway', 50) - p('direct', 50)).toFixed(3)} ms` }),
        figure(NAME, { metric: 'keystroke echo p99 (pty shell)', unit: 'ms', better: 'lower', subject: 'through the gateway', value: p('gateway', 99), baseline: baseline(p('direct', 99)), notes: `added ${(p('gateway', 99) - p('direct', 99)).toFixed(3)} ms; aim ≤ 1 ms added` }),
      ];
    } finally {
      for (const c of clients) c.end();
      await target.stop();
    }
  },
};
