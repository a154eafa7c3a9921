// pgbench select-only through Custodian as users run it: `custodian start` (the embedded host:
// gateway, projector with the evidence Merkle log and SIEM work, ingest and API in one process:
// the gateway on the main thread, the others in one worker thread, one SQLite database), against
// PostgreSQL direct and the gateway alone (no projector) in the same run. The difference between
// the last two is what the projection costs the gateway.
import { createServer } from 'node:net';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import 'reflect-metadata';
import { loadConfig } from '@custodian/runtime-config';
import { startEmbedded } from '@custodian/cli';
import { runCommand, startOidcProvider, type StartedOidcProvider, type StartedPostgres } from '@custodian/test-harness';
import { BenchmarkError, figure, type Benchmark, type Figure } from '../benchmark.ts';
import { percentile } from '../measurement.ts';
import { BENCH_POLICY, connectionArgs, libpqEnv, readLatenciesMicros, startBenchGateway, type Endpoint, type PgbenchResult } from './postgres-pooling.ts';

const NAME = 'custodian-start';

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export interface StartedCustodian {
  readonly endpoint: Endpoint;
  token(): Promise<string>;
  /** Log lines at level error or fatal so far. */
  errorLines(): string[];
  stop(): Promise<void>;
}

/** `custodian start` in this process (startEmbedded, as the CLI calls it), its PostgreSQL gateway in front of `postgres`, strict recording. */
export async function startCustodianStart(postgres: StartedPostgres, oidc: StartedOidcProvider, workDir: string): Promise<StartedCustodian> {
  const passwordFile = join(workDir, 'upstream-password');
  writeFileSync(passwordFile, postgres.password, { mode: 0o600 });
  const policyFile = join(workDir, 'start-policy.yaml');
  writeFileSync(policyFile, BENCH_POLICY);
  const gatewayPort = await freePort();
  const configFile = join(workDir, 'custodian.json');
  writeFileSync(
    configFile,
    JSON.stringify({
      dataDir: join(workDir, 'start-data'),
      log: { level: 'warn' },
      identity: { issuers: [{ issuer: oidc.issuer, audiences: [oidc.defaultAudience], algorithms: ['RS256'], clockSkewSeconds: 30, maxTokenLifetimeSeconds: 3600 }] },
      pipeline: { strict: true },
      services: { gateway: { http: { port: 0 } }, ingest: { http: { port: 0 } }, projector: { http: { port: 0 } }, api: { http: { port: 0 } } },
      gateways: {
        policyFile,
        postgres: {
          enabled: true,
          listen: { host: '127.0.0.1', port: gatewayPort },
          // pgbench's clients all log in as one identity: 32 of them exceed the default per-identity limit (10).
          limits: { maxSessionsPerIdentity: 64, maxSessionsPerConnection: 64 },
          connections: [{ name: 'bench', upstream: { host: postgres.host, port: postgres.port, database: postgres.database, user: postgres.user, credential: { fromFile: passwordFile }, tls: { mode: 'disable' } } }],
        },
      },
    }),
  );
  const loaded = loadConfig({ file: configFile, cwd: workDir, env: {} });
  const logLines: string[] = [];
  const host = await startEmbedded(loaded, { logDestination: { write: (line: string) => void logLines.push(line) } });
  const endpoint: Endpoint = { label: 'custodian-start', host: '127.0.0.1', port: gatewayPort, user: 'bench-agent', password: '', database: 'bench' };
  let token: { value: string; at: number } | undefined;
  return {
    endpoint,
    async token() {
      if (!token || Date.now() - token.at > 300_000) token = { value: (await oidc.issueToken({ clientId: 'bench-agent' })).accessToken, at: Date.now() };
      return token.value;
    },
    errorLines: () => logLines.filter((line) => /"level":"(error|fatal)"/.test(line)),
    stop: () => host.stop(),
  };
}

export const custodianStart: Benchmark = {
  name: NAME,
  description:
    'pgbench select-only through `custodian start` (embedded: gateway + projector with the evidence log, one SQLite store, strict recording) vs the gateway alone (no projector) vs PostgreSQL direct, same run',
  async run({ quick, harness, workDir, log }): Promise<Figure[]> {
    const postgres = await harness.postgres();
    const pgbench = join(postgres.binDir, 'pgbench');
    const segments = quick ? 1 : 3;
    const segmentSeconds = quick ? 3 : 5;
    const clientCounts = quick ? [8] : [1, 8, 32];
    const direct: Endpoint = { label: 'direct', host: postgres.host, port: postgres.port, user: postgres.user, password: postgres.password, database: postgres.database };
    log(`pgbench -i -s 1 on ${postgres.database}`);
    await runCommand(pgbench, ['-i', '-q', '-s', '1', ...connectionArgs(direct), direct.database], { env: libpqEnv(direct.password), timeoutMs: 300_000 });
    const oidc = await startOidcProvider({ clients: [{ clientId: 'bench-agent', kind: 'agent', groups: ['bench'], accessTokenTtlSeconds: 900 }] });
    const alone = await startBenchGateway(postgres, workDir, true, oidc);
    const started = await startCustodianStart(postgres, oidc, workDir);
    const embedded = started.endpoint;
    const passwordFor = async (endpoint: Endpoint): Promise<string> => {
      if (endpoint === direct) return direct.password;
      if (endpoint === alone.endpoint) return alone.token();
      return started.token();
    };
    try {
      const endpoints = [direct, alone.endpoint, embedded];
      const measure = async (clients: number): Promise<PgbenchResult[]> => {
        const runs = endpoints.map(() => ({ tps: [] as number[], latencies: [] as number[] }));
        for (let segment = 0; segment < segments; segment++) {
          for (let k = 0; k < endpoints.length; k++) {
            const index = (segment + k) % endpoints.length;
            const endpoint = endpoints[index]!;
            const prefixName = `start-c${clients}-${endpoint.label}-${segment}`;
            const args = ['-n', '-b', 'select-only', '-c', String(clients), '-j', String(Math.min(clients, 2)), '-T', String(segmentSeconds), '-l', `--log-prefix=${join(workDir, prefixName)}`, ...connectionArgs(endpoint), endpoint.database];
            const result = await runCommand(pgbench, args, { env: libpqEnv(await passwordFor(endpoint)), cwd: workDir, timeoutMs: (segmentSeconds + 120) * 1000, allowFailure: true });
            if (result.exitCode !== 0) throw new BenchmarkError('BENCH_COMMAND_FAILED', `pgbench ${args.join(' ')} exited ${result.exitCode}: ${result.stderr.slice(-2000)}`);
            runs[index]!.tps.push(Number(/^tps = ([0-9.]+)/m.exec(result.stdout)?.[1]));
            for (const latency of readLatenciesMicros(workDir, prefixName)) runs[index]!.latencies.push(latency);
          }
        }
        return runs.map((r, index) => {
          const latencies = r.latencies.sort((a, b) => a - b);
          const result = { tps: r.tps.reduce((a, b) => a + b, 0) / r.tps.length, transactions: latencies.length, p50Ms: percentile(latencies, 50) / 1000, p99Ms: percentile(latencies, 99) / 1000 };
          log(`select-only, ${clients} clients, ${endpoints[index]!.label}: ${result.tps.toFixed(0)} tps, p50 ${result.p50Ms.toFixed(3)} ms, p99 ${result.p99Ms.toFixed(3)} ms (${result.transactions} transactions)`);
          return result;
        });
      };
      const figures: Figure[] = [];
      for (const clients of clientCounts) {
        const [baseline, viaAlone, viaStart] = (await measure(clients)) as [PgbenchResult, PgbenchResult, PgbenchResult];
        const label = `select-only (-S), ${clients} client${clients === 1 ? '' : 's'}`;
        const notes = `${segments} × ${segmentSeconds} s per endpoint, rotating; ${baseline.transactions} / ${viaAlone.transactions} / ${viaStart.transactions} transactions`;
        for (const [subject, value] of [
          ['Custodian gateway alone (strict, no projector)', viaAlone],
          ['custodian start (strict; projector, evidence log, SIEM work in the same process)', viaStart],
        ] as const) {
          const vsAlone = value === viaStart ? `; ${(viaStart.tps / viaAlone.tps).toFixed(2)}× the gateway alone` : '';
          figures.push(
            figure(NAME, { subject, metric: `${label}: throughput`, unit: 'tx/s', better: 'higher', value: value.tps, baseline: { name: 'PostgreSQL direct', value: baseline.tps }, notes: notes + vsAlone }),
            figure(NAME, { subject, metric: `${label}: latency p50`, unit: 'ms', better: 'lower', value: value.p50Ms, baseline: { name: 'PostgreSQL direct', value: baseline.p50Ms } }),
            figure(NAME, { subject, metric: `${label}: latency p99`, unit: 'ms', better: 'lower', value: value.p99Ms, baseline: { name: 'PostgreSQL direct', value: baseline.p99Ms } }),
          );
        }
      }
      const errors = started.errorLines();
      if (errors.length > 0) throw new BenchmarkError('BENCH_MEASUREMENT_FAILED', `custodian start logged ${errors.length} error(s), e.g. ${errors[0]!.slice(0, 500)}`);
      return figures;
    } finally {
      await started.stop();
      await alone.stop();
      await oidc.stop();
    }
  },
};
