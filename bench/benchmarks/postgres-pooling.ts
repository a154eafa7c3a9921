// pgbench against the harness PostgreSQL directly, through PgBouncer (transaction pooling) and
// through the Custodian PostgreSQL gateway (OIDC login, recording in strict mode, classification
// and masking on): TPS and per-transaction latency percentiles (from pgbench's per-transaction
// log) at several client counts, in one run; plus a 1,000,000-row SELECT streamed through the
// gateway with masking (throughput and the gateway process's peak RSS).
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { StoreEvidencePipeline } from '@custodian/evidence-pipeline';
import { SqliteEventStore } from '@custodian/event-store-sqlite';
import { OidcAccessTokenVerifier } from '@custodian/identity-oidc';
import { loadPolicyFile } from '@custodian/policy';
import { PostgresGateway } from '@custodian/postgres-gateway';
import { SessionPipeline } from '@custodian/session-pipeline';
import { runCommand, startOidcProvider, type StartedOidcProvider, type StartedPostgres } from '@custodian/test-harness';
import { BenchmarkError, figure, type Benchmark, type Figure } from '../benchmark.ts';
import { nowNs, percentile, secondsSince } from '../measurement.ts';

const NAME = 'postgres-pooling';
/** pgbench scale: 100,000 accounts (~15 MB), cached; the figures are about connections and round trips, not I/O. */
const SCALE = 1;
const STREAM_ROWS = 1_000_000;

/** What the gateway decides pgbench's statements under: reads, the read/write script, transactions; masking on. */
export const BENCH_POLICY = `
name: bench
rules:
  - id: bench-block-code
    match: { sql: { flags: [dangerous-function, copy-program, copy-to-file, copy-from-file, do-block] } }
    decision: block
  - id: bench-read
    match: { identity: { groups: [bench] }, sql: { kinds: [read], objects: ["public.*", "pg_catalog.*"] } }
    decision: allow
  - id: bench-write
    match: { identity: { groups: [bench] }, sql: { kinds: [write], objects: ["public.pgbench_*"] } }
    decision: allow
  - id: bench-transactions
    match: { identity: { groups: [bench] }, sql: { kinds: [transaction] } }
    decision: allow
masking:
  - { id: bench-filler, columns: ["public.pgbench_accounts.filler"], strategy: redact }
  - { id: bench-detectors, detectors: [card, email], strategy: redact }
`;

export interface RunningGateway {
  readonly endpoint: Endpoint;
  token(): Promise<string>;
  stop(): Promise<void>;
}

/**
 * The gateway in this process, in front of the harness PostgreSQL, recording into a SQLite store
 * in workDir. Strict: each statement waits until its events are durable (SQLite commit with
 * fsync, group-committed across clients); relaxed: events are written behind the statement.
 */
export async function startBenchGateway(postgres: StartedPostgres, workDir: string, strict: boolean, oidc: StartedOidcProvider): Promise<RunningGateway> {
  const label = strict ? 'gateway' : 'gateway-relaxed';
  const store = await SqliteEventStore.open({ path: join(workDir, `${label}-events.sqlite`) });
  const evidence = new StoreEvidencePipeline({ store, instance: label });
  const policyPath = join(workDir, `${label}-policy.yaml`);
  writeFileSync(policyPath, BENCH_POLICY);
  const pipeline = new SessionPipeline({
    verifier: new OidcAccessTokenVerifier({ issuers: [{ issuer: oidc.issuer, audiences: [oidc.defaultAudience], maxTokenLifetimeSeconds: 3600 }] }),
    policy: { policy: loadPolicyFile(policyPath) },
    evidence,
    strict,
    source: { service: 'gateway', instance: label },
    maskingKey: randomBytes(32),
  });
  const gateway = new PostgresGateway({
    host: '127.0.0.1',
    port: 0,
    requireTls: 'non-loopback',
    pipeline,
    // pgbench's clients all log in as one identity: 32 of them exceed the default per-identity limit (10).
    limits: { maxSessionsPerIdentity: 64, maxSessionsPerConnection: 64 },
    connections: [
      {
        name: 'bench',
        upstream: { host: postgres.host, port: postgres.port, database: postgres.database, user: postgres.user, password: () => postgres.password, credentialRef: 'env:BENCH_PASSWORD', tls: { mode: 'disable' } },
      },
    ],
  });
  const port = await gateway.listen();
  let cached: { token: string; at: number } | undefined;
  return {
    endpoint: { label, host: '127.0.0.1', port, user: 'bench-agent', password: '', database: 'bench' },
    async token() {
      // A fresh token per run: pgbench -C logs in once per transaction and tokens live 15 minutes.
      if (!cached || Date.now() - cached.at > 300_000) cached = { token: (await oidc.issueToken({ clientId: 'bench-agent' })).accessToken, at: Date.now() };
      return cached.token;
    },
    async stop() {
      await gateway.close();
      await evidence.close();
      await store.close();
    },
  };
}

/** Runs psql streaming a query's result to /dev/null; resolves with seconds taken. */
export function streamThroughPsql(binDir: string, endpoint: Endpoint, password: string, sql: string): Promise<number> {
  const start = nowNs();
  return new Promise((resolve, reject) => {
    const child = spawn(join(binDir, 'psql'), ['-X', '-q', '-A', '-t', '-o', '/dev/null', '-v', 'ON_ERROR_STOP=1', '-h', endpoint.host, '-p', String(endpoint.port), '-U', endpoint.user, '-d', endpoint.database, '-c', sql], {
      env: libpqEnv(password),
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(secondsSince(start)) : reject(new BenchmarkError('BENCH_COMMAND_FAILED', `psql exited ${code}: ${stderr.slice(-2000)}`))));
  });
}

/** The masked SELECT: one e-mail per row for the detectors, ~110 bytes per row. */
export function maskedStreamSql(rows: number): string {
  return `SELECT g, 'user' || g || '@example.com' AS email, repeat('x', 80) AS filler FROM generate_series(1, ${rows}) g`;
}

export interface Endpoint {
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
  /** False when PgBouncer cannot serve the workload (then it is not measured through it). */
  readonly viaPooler?: false;
}

const SELECT_ONLY: Workload = { key: 'select-only', label: 'select-only (-S)', args: ['-b', 'select-only'] };
/**
 * The extended protocol with named prepared statements (Parse once, Bind/Execute per transaction).
 * PgBouncer 1.18 in transaction pooling does not track protocol-level prepared statements (1.21
 * added max_prepared_statements): a statement prepared on one server connection is missing on the
 * next, so PgBouncer is not measured here.
 */
const SELECT_ONLY_PREPARED: Workload = { key: 'select-only-prepared', label: 'select-only (-S -M prepared)', args: ['-b', 'select-only', '-M', 'prepared'], viaPooler: false };
/** BEGIN; UPDATE pgbench_accounts; SELECT abalance; INSERT INTO pgbench_history; END — no teller/branch hot rows. */
const READ_WRITE: Workload = { key: 'simple-update', label: 'read/write (-N simple-update)', args: ['-b', 'simple-update'] };
/** TPS includes connecting; the per-transaction log does not (pgbench starts a transaction's clock once connected). */
const SELECT_ONLY_RECONNECT: Workload = { key: 'select-only-connect', label: 'select-only, new connection per transaction (-S -C)', args: ['-b', 'select-only', '-C'] };

export interface PgbenchResult {
  readonly tps: number;
  readonly transactions: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
}

/** libpq environment without ambient PG* settings that could point pgbench elsewhere. */
export function libpqEnv(password: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) if (!key.startsWith('PG')) env[key] = value;
  return { ...env, PGPASSWORD: password, PGCONNECT_TIMEOUT: '10' };
}

export function connectionArgs(endpoint: Endpoint): string[] {
  return ['-h', endpoint.host, '-p', String(endpoint.port), '-U', endpoint.user];
}

/** Per-transaction latencies (µs, third column) from every log file pgbench wrote for this prefix. */
export function readLatenciesMicros(dir: string, prefixName: string): number[] {
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
  description:
    'pgbench TPS and per-transaction latency: PostgreSQL direct vs PgBouncer (transaction pooling) vs the Custodian gateway (recording in strict mode, classification, masking); 1,000,000-row SELECT through the gateway',
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
    const oidc = await startOidcProvider({ clients: [{ clientId: 'bench-agent', kind: 'agent', groups: ['bench'], accessTokenTtlSeconds: 900 }] });
    const gateway = await startBenchGateway(postgres, workDir, true, oidc);
    const relaxed = await startBenchGateway(postgres, workDir, false, oidc);
    const tokenFor = (endpoint: Endpoint): Promise<string> | string =>
      endpoint === gateway.endpoint ? gateway.token() : endpoint === relaxed.endpoint ? relaxed.token() : endpoint.password;
    try {
      /** One pgbench run; returns its reported TPS and the per-transaction latencies (µs) from its log. */
      const runPgbench = async (endpoint: Endpoint, workload: Workload, clients: number, segment: number): Promise<{ tps: number; latencies: number[] }> => {
        const prefixName = `${workload.key}-c${clients}-${endpoint.label}-${segment}`;
        const password = await tokenFor(endpoint);
        const args = [
          '-n', // no vacuum between runs: the same for every endpoint, and neither the pooler nor the gateway's policy would run it
          ...workload.args,
          '-c', String(clients),
          '-j', String(threads(clients)),
          '-T', String(segmentSeconds),
          '-l', `--log-prefix=${join(workDir, prefixName)}`,
          ...connectionArgs(endpoint),
          endpoint.database,
        ];
        const result = await runCommand(pgbench, args, { env: libpqEnv(password), cwd: workDir, timeoutMs: (segmentSeconds + 120) * 1000, allowFailure: true });
        if (result.exitCode !== 0) {
          throw new BenchmarkError('BENCH_COMMAND_FAILED', `pgbench ${args.join(' ')} exited ${result.exitCode}: ${result.stderr.slice(-2000)}`);
        }
        const tps = Number(/^tps = ([0-9.]+)/m.exec(result.stdout)?.[1]);
        return { tps, latencies: readLatenciesMicros(workDir, prefixName) };
      };

      /** Segments rotate the order of the endpoints so that all see the same neighbours' load. */
      const measureAll = async (workload: Workload, clients: number): Promise<PgbenchResult[]> => {
        const endpoints = workload.viaPooler === false ? [direct, gateway.endpoint, relaxed.endpoint] : [direct, pooled, gateway.endpoint, relaxed.endpoint];
        const runs = endpoints.map(() => ({ tps: [] as number[], latencies: [] as number[] }));
        for (let segment = 0; segment < segments; segment++) {
          for (let k = 0; k < endpoints.length; k++) {
            const index = (segment + k) % endpoints.length;
            const run = await runPgbench(endpoints[index]!, workload, clients, segment);
            runs[index]!.tps.push(run.tps);
            // A loop, not push(...): hundreds of thousands of arguments overflow the stack.
            for (const latency of run.latencies) runs[index]!.latencies.push(latency);
          }
        }
        return runs.map((r, index) => {
          const latencies = r.latencies.sort((a, b) => a - b);
          const result = {
            tps: r.tps.reduce((a, b) => a + b, 0) / r.tps.length,
            transactions: latencies.length,
            p50Ms: percentile(latencies, 50) / 1000,
            p99Ms: percentile(latencies, 99) / 1000,
          };
          log(`${workload.key}, ${clients} clients, ${endpoints[index]!.label}: ${result.tps.toFixed(0)} tps, p50 ${result.p50Ms.toFixed(3)} ms, p99 ${result.p99Ms.toFixed(3)} ms (${result.transactions} transactions)`);
          return result;
        });
      };

      const plan: [Workload, number][] = [
        ...clientCounts.map((c): [Workload, number] => [SELECT_ONLY, c]),
        // Quick: one client only, to keep --quick within its budget.
        ...(quick ? [1] : clientCounts).map((c): [Workload, number] => [SELECT_ONLY_PREPARED, c]),
        ...clientCounts.map((c): [Workload, number] => [READ_WRITE, c]),
        [SELECT_ONLY_RECONNECT, 8],
      ];
      const figures: Figure[] = [];
      for (const [workload, clients] of plan) {
        const measured = await measureAll(workload, clients);
        const [baseline, viaPooler, viaGateway, viaRelaxed] = (workload.viaPooler === false ? [measured[0], undefined, measured[1], measured[2]] : measured) as [PgbenchResult, PgbenchResult | undefined, PgbenchResult, PgbenchResult];
        const label = `${workload.label}, ${clients} client${clients === 1 ? '' : 's'}`;
        const notes = `${segments} × ${segmentSeconds} s per endpoint, rotating; -j ${threads(clients)}; ${[baseline, viaPooler, viaGateway, viaRelaxed].map((r) => r?.transactions ?? 'no PgBouncer').join(' / ')} transactions`;
        const subjects: (readonly [string, PgbenchResult])[] = [
          ...(viaPooler ? [[`PgBouncer (${pgbouncer.poolMode} pooling)`, viaPooler] as const] : []),
          ['Custodian gateway (strict recording, classification, masking)', viaGateway],
          ['Custodian gateway (relaxed recording, classification, masking)', viaRelaxed],
        ];
        for (const [subject, value] of subjects) {
          const vsPooler = viaPooler && value !== viaPooler ? `; ${(value.tps / viaPooler.tps).toFixed(2)}× PgBouncer's TPS` : workload.viaPooler === false ? '; PgBouncer 1.18 (transaction pooling) cannot serve protocol-level prepared statements' : '';
          figures.push(
            figure(NAME, { subject, metric: `${label}: throughput`, unit: 'tx/s', better: 'higher', value: value.tps, baseline: { name: 'PostgreSQL direct', value: baseline.tps }, notes: notes + vsPooler }),
            figure(NAME, { subject, metric: `${label}: latency p50`, unit: 'ms', better: 'lower', value: value.p50Ms, baseline: { name: 'PostgreSQL direct', value: baseline.p50Ms } }),
            figure(NAME, { subject, metric: `${label}: latency p99`, unit: 'ms', better: 'lower', value: value.p99Ms, baseline: { name: 'PostgreSQL direct', value: baseline.p99Ms } }),
          );
        }
      }

      // 1,000,000 rows through the gateway, masked (an e-mail column the detectors rewrite), to psql
      // discarding them; peak RSS of this process (which hosts the gateway) sampled meanwhile.
      const rows = quick ? STREAM_ROWS / 4 : STREAM_ROWS;
      const streamSql = maskedStreamSql(rows);
      log(`streaming ${rows} rows direct and through the gateway`);
      const directSeconds = await streamThroughPsql(postgres.binDir, direct, direct.password, streamSql);
      const idleRss = process.memoryUsage().rss;
      let peakRss = idleRss;
      const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 25);
      let gatewaySeconds: number;
      try {
        gatewaySeconds = await streamThroughPsql(postgres.binDir, gateway.endpoint, await gateway.token(), streamSql);
      } finally {
        clearInterval(sampler);
      }
      log(`stream: direct ${directSeconds.toFixed(2)} s, gateway ${gatewaySeconds.toFixed(2)} s, RSS ${(idleRss / 2 ** 20).toFixed(0)} → peak ${(peakRss / 2 ** 20).toFixed(0)} MiB`);
      figures.push(
        figure(NAME, {
          subject: 'Custodian gateway (masking every row)',
          metric: `${rows.toLocaleString('en')}-row SELECT: throughput`,
          unit: 'rows/s',
          better: 'higher',
          value: rows / gatewaySeconds,
          baseline: { name: 'PostgreSQL direct', value: rows / directSeconds },
          notes: 'psql -o /dev/null; ~110 bytes per row; one e-mail per row masked by the detectors',
        }),
        figure(NAME, {
          subject: 'Custodian gateway (masking every row)',
          metric: `${rows.toLocaleString('en')}-row SELECT: peak RSS of the gateway process`,
          unit: 'MiB',
          better: 'lower',
          value: peakRss / 2 ** 20,
          baseline: { name: 'the same process idle before the query', value: idleRss / 2 ** 20 },
          notes: 'flat RSS = the result is streamed, never buffered (the benchmark runner shares the process)',
        }),
      );
      return figures;
    } finally {
      await gateway.stop();
      await relaxed.stop();
      await oidc.stop();
    }
  },
};
