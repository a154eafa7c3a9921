// Micro-benchmark: µs per classifySqlSync call against a bare libpg-query parseSync on the same
// statements. Not a test. Build the library first, then run with Node 24 (type stripping):
//   scripts/node24 npx tsc -b libs/sql-classification/tsconfig.lib.json
//   scripts/node24 node libs/sql-classification/bench/classify.bench.ts
import { fingerprintSync, parseSync, scanSync } from 'libpg-query';
// The built library (tsc -b above): plain Node cannot import the TypeScript sources' .js specifiers.
import { classifySqlSync, loadSqlClassifier } from '../dist/index.js';

const STATEMENTS = [
  'SELECT id, email FROM public.users WHERE id = 42',
  "SELECT u.id, count(o.id) FROM users u LEFT JOIN orders o ON o.user_id = u.id WHERE u.created_at > now() - interval '7 days' GROUP BY u.id ORDER BY 2 DESC LIMIT 50",
  "INSERT INTO audit_log (actor, action, payload) VALUES ('agent-1', 'login', '{\"ip\": \"10.0.0.1\"}') RETURNING id",
  "UPDATE accounts SET balance = balance - 10 WHERE id = 7 AND status = 'active'",
  'DELETE FROM sessions WHERE expires_at < now()',
  'WITH x AS (DELETE FROM users WHERE last_login < now() RETURNING *) SELECT count(*) FROM x',
  "SELECT pg_read_file('/etc/passwd')",
  'BEGIN; UPDATE t SET a = 1 WHERE id = 2; COMMIT',
  'CREATE TABLE IF NOT EXISTS t (id bigint PRIMARY KEY, name text NOT NULL DEFAULT \'x\', created_at timestamptz DEFAULT now())',
  "EXPLAIN ANALYZE SELECT * FROM big WHERE payload @> '{\"a\": 1}'",
  `SELECT * FROM t WHERE id IN (${Array.from({ length: 200 }, (_, i) => i).join(',')})`,
  "COPY users TO PROGRAM 'gzip > /tmp/u.gz'",
];

const ITERATIONS = 2_000;

function measure(fn: (sql: string) => unknown): number[] {
  const samples: number[] = [];
  for (let i = 0; i < ITERATIONS; i += 1) {
    for (const sql of STATEMENTS) {
      const start = process.hrtime.bigint();
      fn(sql);
      samples.push(Number(process.hrtime.bigint() - start) / 1_000);
    }
  }
  return samples.sort((a, b) => a - b);
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

await loadSqlClassifier();
// Warm up the JIT and the WebAssembly heap.
for (let i = 0; i < 200; i += 1) for (const sql of STATEMENTS) classifySqlSync(sql);

const rows: Array<[string, number[]]> = [
  ['parseSync (bare libpg-query)', measure((sql) => parseSync(sql))],
  ['parse + scan + fingerprint (the three WASM calls)', measure((sql) => [parseSync(sql), scanSync(sql), fingerprintSync(sql)])],
  ['classifySqlSync (full classification)', measure((sql) => classifySqlSync(sql))],
];
console.log(`${STATEMENTS.length} statements × ${ITERATIONS} iterations, node ${process.version}`);
for (const [label, samples] of rows) {
  console.log(`${label.padEnd(52)} p50 ${percentile(samples, 50).toFixed(1).padStart(7)} µs   p99 ${percentile(samples, 99).toFixed(1).padStart(7)} µs`);
}
