// pgbench against the harness PostgreSQL, directly and through PgBouncer (transaction pooling):
// TPS and per-transaction latency percentiles (from pgbench's per-transaction log) at several
// client counts. The Custodian gateway column stays "pending" until the gateway exists (issue 5).
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { runCommand } from '@custodian/test-harness';
import { BenchmarkError, figure, type Benchmark, type Figure, type PendingColumn } from '../benchmark.ts';
import { percentile } from '../measurement.ts';

const NAME = 'postgres-pooling';
/** pgbench scale: 100,000 accounts (~15 MB), cached; the figures are about connections and round trips, not I/O. */
const SCALE = 1;
const PENDING: readonly PendingColumn[] = [{ name: 'Custodian gateway', status: 'pending (issue 5)' }];

interface Endpoint {
  readonly label: string;
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly password: string;
  readonly database: string;
}

interface Workload {
  readonly key: string;
  readonly label: string;
  readonly args: readonly string[];
}

const SELECT_ONLY: Workload = { key: 'select-only', label: 'select-only (-S)', args: ['-b', 'select-only'] };
/** BEGIN; UPDATE pgbench_accounts; SELECT abalance; INSERT INTO pgbench_history; END — no teller/branch hot rows. */
const READ_WRITE: Workload = { key: 'simple-update', label: 'read/write (-N simple-update)', args: ['-b', 'simple-update'] };
/** TPS includes connecting; the per-transaction log does not (pgbench starts a transaction's clock once connected). */
const SELECT_ONLY_RECONNECT: Workload = { key: 'select-only-connect', label: 'select-only, new connection per transaction (-S -C)', args: ['-b', 'select-only', '-C'] };

interface PgbenchResult {
  readonly tps: number;
  readonly transactions: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
}

/** libpq environment without ambient PG* settings that could point pgbench elsewhere. */
function libpqEnv(password: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) if (!key.startsWith('PG')) env[key] = value;
  return { ...env, PGPASSWORD: password, PGCONNECT_TIMEOUT: '10' };
}

function connectionArgs(endpoint: Endpoint): string[] {
  return ['-h', endpoint.host, '-p', String(endpoint.port), '-U', endpoint.user];
}

/** Per-transaction latencies (µs, third column) from every log file pgbench wrote for this prefix. */
function readLatenciesMicros(dir: string, prefixName: string): number[] {
  const latencies: number[] = [];
  let failed = 0;
  for (const file of readdirSync(dir).filter((f) => f.startsWith(`${prefixName}.`))) {
    for (const line of readFileSync(join(dir, file), 'utf8').split('\n')) {
      // client_id transaction_no time script_no time_epoch time_us [schedule_lag] [retries]
      const time = line.split(' ')[2];
      if (time === undefined) continue;
      const micros = Number(time);
      if (Number.isFinite(micros)) latencies.push(micros);
      else failed++;
    }
  }
  if (failed > 0) throw new BenchmarkError('BENCH_MEASUREMENT_FAILED', `${failed} failed or skipped transactions in pgbench log ${prefixName}`);
  return latencies.sort((a, b) => a - b);
}

export const postgresPooling: Benchmark = {
  name: NAME,
  description: 'pgbench TPS and per-transaction latency, PostgreSQL direct vs through PgBouncer (transaction pooling); Custodian gateway pending (issue 5)',
  async run({ quick, harness, workDir, log }): Promise<Figure[]> {
    const postgres = await harness.postgres();
    const pgbouncer = await harness.pgbouncer();
    const pgbench = join(postgres.binDir, 'pgbench');
    // Per endpoint and configuration: quick 1 × 3 s, full 3 × 5 s.
    const segments = quick ? 1 : 3;
    const segmentSeconds = quick ? 3 : 5;
    const threads = (clients: number) => Math.min(clients, 2);
    const clientCounts = quick ? [1, 8] : [1, 8, 32];
    const direct: Endpoint = { label: 'direct', host: postgres.host, port: postgres.port, user: postgres.user, password: postgres.password, database: postgres.database };
    const pooled: Endpoint = { label: 'pgbouncer', host: pgbouncer.host, port: pgbouncer.port, user: pgbouncer.user, password: pgbouncer.password, database: pgbouncer.database };

    log(`pgbench -i -s ${SCALE} on ${postgres.database}`);
    await runCommand(pgbench, ['-i', '-q', '-s', String(SCALE), ...connectionArgs(direct), direct.database], { env: libpqEnv(direct.password), timeoutMs: 300_000 });

    /** One pgbench run; returns its reported TPS and the per-transaction latencies (µs) from its log. */
    const runPgbench = async (endpoint: Endpoint, workload: Workload, clients: number, segment: number): Promise<{ tps: number; latencies: number[] }> => {
      const prefixName = `${workload.key}-c${clients}-${endpoint.label}-${segment}`;
      const args = [
        '-n', // no vacuum between runs: the same for both endpoints, and the pooler could not run it per transaction
        ...workload.args,
        '-c', String(clients),
        '-j', String(threads(clients)),
        '-T', String(segmentSeconds),
        '-l', `--log-prefix=${join(workDir, prefixName)}`,
        ...connectionArgs(endpoint),
        endpoint.database,
      ];
      const result = await runCommand(pgbench, args, { env: libpqEnv(endpoint.password), cwd: workDir, timeoutMs: (segmentSeconds + 120) * 1000, allowFailure: true });
      if (result.exitCode !== 0) {
        throw new BenchmarkError('BENCH_COMMAND_FAILED', `pgbench ${args.join(' ')} exited ${result.exitCode}: ${result.stderr.slice(-2000)}`);
      }
      const tps = Number(/^tps = ([0-9.]+)/m.exec(result.stdout)?.[1]);
      return { tps, latencies: readLatenciesMicros(workDir, prefixName) };
    };

    /** Segments alternate between the endpoints (direct first, then pooled first, …) so both see the same neighbours' load. */
    const measurePair = async (workload: Workload, clients: number): Promise<Record<'direct' | 'pooled', PgbenchResult>> => {
      const runs = { direct: { tps: [] as number[], latencies: [] as number[] }, pooled: { tps: [] as number[], latencies: [] as number[] } };
      for (let segment = 0; segment < segments; segment++) {
        const order = segment % 2 === 0 ? (['direct', 'pooled'] as const) : (['pooled', 'direct'] as const);
        for (const which of order) {
          const run = await runPgbench(which === 'direct' ? direct : pooled, workload, clients, segment);
          runs[which].tps.push(run.tps);
          // A loop, not push(...): hundreds of thousands of arguments overflow the stack.
          for (const latency of run.latencies) runs[which].latencies.push(latency);
        }
      }
      const summarize = (label: string, r: { tps: number[]; latencies: number[] }): PgbenchResult => {
        const latencies = r.latencies.sort((a, b) => a - b);
        const result = {
          tps: r.tps.reduce((a, b) => a + b, 0) / r.tps.length,
          transactions: latencies.length,
          p50Ms: percentile(latencies, 50) / 1000,
          p99Ms: percentile(latencies, 99) / 1000,
        };
        log(`${workload.key}, ${clients} clients, ${label}: ${result.tps.toFixed(0)} tps, p50 ${result.p50Ms.toFixed(3)} ms, p99 ${result.p99Ms.toFixed(3)} ms (${result.transactions} transactions)`);
        return result;
      };
      return { direct: summarize('direct', runs.direct), pooled: summarize('pgbouncer', runs.pooled) };
    };

    const plan: [Workload, number][] = [
      ...clientCounts.map((c): [Workload, number] => [SELECT_ONLY, c]),
      ...clientCounts.map((c): [Workload, number] => [READ_WRITE, c]),
      [SELECT_ONLY_RECONNECT, 8],
    ];
    const figures: Figure[] = [];
    for (const [workload, clients] of plan) {
      const { direct: baseline, pooled: value } = await measurePair(workload, clients);
      const common = {
        subject: `PgBouncer (${pgbouncer.poolMode} pooling)`,
        pending: PENDING,
      };
      const label = `${workload.label}, ${clients} client${clients === 1 ? '' : 's'}`;
      figures.push(
        figure(NAME, {
          ...common,
          metric: `${label}: throughput`,
          unit: 'tx/s',
          better: 'higher',
          value: value.tps,
          baseline: { name: 'PostgreSQL direct', value: baseline.tps },
          notes: `${segments} × ${segmentSeconds} s per endpoint, alternating; -j ${threads(clients)}; ${baseline.transactions} / ${value.transactions} transactions`,
        }),
        figure(NAME, {
          ...common,
          metric: `${label}: latency p50`,
          unit: 'ms',
          better: 'lower',
          value: value.p50Ms,
          baseline: { name: 'PostgreSQL direct', value: baseline.p50Ms },
          ...(workload === SELECT_ONLY_RECONNECT ? { notes: 'latencies exclude connecting (pgbench starts the clock once connected): the first transaction on a new connection' } : {}),
        }),
        figure(NAME, { ...common, metric: `${label}: latency p99`, unit: 'ms', better: 'lower', value: value.p99Ms, baseline: { name: 'PostgreSQL direct', value: baseline.p99Ms } }),
      );
    }
    return figures;
  },
};
