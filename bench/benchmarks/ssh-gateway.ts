// The SSH gateway against the same sshd reached directly, in one run (ssh2 as the client both
// ways; through the gateway with recording on: every channel byte becomes a frame.recorded event
// in a SQLite store, strict mode):
// - exec round trips per second over one reused connection (`true`, one channel per command);
// - SFTP upload throughput (ssh2 fastPut: 64 requests of 32 KiB in flight, in a child process so
//   the client's work is not on the gateway's thread), through the gateway decided at open,
//   recorded and hashed;
// - keystroke echo latency in a pty shell (bash/readline echoes each key): p50 and p99, through the
//   gateway each key goes through the line gate.
// Blocks alternate direct/gateway so that the load of the shared machine falls on both alike.
import { execFile } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { StoreEvidencePipeline } from '@custodian/evidence-pipeline';
import { SqliteEventStore } from '@custodian/event-store-sqlite';
import { OidcAccessTokenVerifier } from '@custodian/identity-oidc';
import { parsePolicy } from '@custodian/policy';
import { readyPolicyLanguages } from '@custodian/policy-languages';
import { SessionPipeline } from '@custodian/session-pipeline';
import { readOrCreateSshHostKey, SshGateway } from '@custodian/ssh-gateway';
import { startOidcProvider, startSshd } from '@custodian/test-harness';
import ssh2 from 'ssh2';
import { BenchmarkError, figure, type Benchmark, type Figure } from '../benchmark.ts';
import { interleavedBlockRates, MIB, nowNs, percentile, secondsSince } from '../measurement.ts';

const NAME = 'ssh-gateway';
const SFTP_PROBE = fileURLToPath(new URL('../probes/sftp-upload.ts', import.meta.url));
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

export const sshGateway: Benchmark = {
  name: NAME,
  description: 'SSH gateway vs direct sshd: exec round trips, SFTP upload, pty keystroke echo (recording on)',
  async run(context): Promise<Figure[]> {
    await readyPolicyLanguages();
    const sshd = await startSshd();
    const oidc = await startOidcProvider({ clients: [{ clientId: 'bench-agent', kind: 'agent', groups: ['bench'] }] });
    const store = await SqliteEventStore.open({ path: join(context.workDir, 'events.sqlite') });
    const evidence = new StoreEvidencePipeline({ store, instance: 'bench' });
    const hostKey = await readOrCreateSshHostKey(join(context.workDir, 'ssh-host-ed25519.key'));
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
    const clients: ssh2.Client[] = [];
    try {
      const key = await readFile(sshd.clientPrivateKeyPath);
      const token = (await oidc.issueToken({ clientId: 'bench-agent' })).accessToken;
      const direct = await connect({ host: sshd.host, port: sshd.port, username: sshd.user, privateKey: key });
      const through = await connect({ host: '127.0.0.1', port: gateway.port, username: 'bench', password: token });
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

      // SFTP upload (the client in a child process: bench/probes/sftp-upload.ts).
      const fileMiB = context.quick ? 2 : 64;
      const local = join(context.workDir, 'upload.bin');
      await writeFile(local, randomBytes(fileMiB * MIB));
      const remoteDir = sshd.dir;
      const sftpRounds = context.quick ? 1 : 2;
      context.log(`sftp: ${sftpRounds} × ${fileMiB} MiB per side, each upload from a child process`);
      const upload = async (config: object): Promise<{ operations: number; seconds: number }> => {
        const { stdout } = await runFile(process.execPath, [SFTP_PROBE, JSON.stringify(config), local, join(remoteDir, `upload-${randomUUID()}.bin`)], { timeout: 600_000 });
        return { operations: fileMiB, seconds: (JSON.parse(stdout.trim().split('\n').at(-1)!) as { seconds: number }).seconds };
      };
      const sftpRates = await interleavedBlockRates(sftpRounds, {
        direct: () => upload({ host: sshd.host, port: sshd.port, username: sshd.user, privateKeyPath: sshd.clientPrivateKeyPath }),
        gateway: () => upload({ host: '127.0.0.1', port: gateway.port, username: 'bench', password: token }),
      });

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

      const baseline = (value: number): { name: string; value: number } => ({ name: 'direct sshd (same run)', value });
      return [
        figure(NAME, { metric: 'exec round trips (reused connection)', unit: 'exec/s', better: 'higher', subject: 'through the gateway', value: execRates.gateway, baseline: baseline(execRates.direct), notes: 'aim ≥ 0.5× direct' }),
        figure(NAME, { metric: `SFTP upload (${fileMiB} MiB, recording on)`, unit: 'MiB/s', better: 'higher', subject: 'through the gateway', value: sftpRates.gateway, baseline: baseline(sftpRates.direct), notes: 'aim ≥ 0.5× direct; every byte recorded as frame.recorded in SQLite' }),
        figure(NAME, { metric: 'keystroke echo p50 (pty shell)', unit: 'ms', better: 'lower', subject: 'through the gateway', value: p('gateway', 50), baseline: baseline(p('direct', 50)), notes: `added ${(p('gateway', 50) - p('direct', 50)).toFixed(3)} ms` }),
        figure(NAME, { metric: 'keystroke echo p99 (pty shell)', unit: 'ms', better: 'lower', subject: 'through the gateway', value: p('gateway', 99), baseline: baseline(p('direct', 99)), notes: `added ${(p('gateway', 99) - p('direct', 99)).toFixed(3)} ms; aim ≤ 1 ms added` }),
      ];
    } finally {
      for (const c of clients) c.end();
      await gateway.close();
      await evidence.close();
      await store.close();
      await oidc.stop();
      await sshd.stop();
    }
  },
};
