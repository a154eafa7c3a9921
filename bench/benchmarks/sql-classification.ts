// µs per classifySqlSync call (the policy engine's view of a statement) against a bare
// libpg-query parseSync of the same statements: how much the classification adds to the parse.
import { classifySqlSync, loadSqlClassifier } from '@custodian/sql-classification';
import { fingerprintSync, parseSync, scanSync } from 'libpg-query';
import { figure, type Benchmark, type Figure } from '../benchmark.ts';
import { nowNs, percentile } from '../measurement.ts';

const NAME = 'sql-classification';

/** A mix of what agents send: point reads, joins, writes, DDL, and the statements policy must catch. */
export const STATEMENTS: readonly string[] = [
  'SELECT id, email FROM public.users WHERE id = 42',
  "SELECT u.id, count(o.id) FROM users u LEFT JOIN orders o ON o.user_id = u.id WHERE u.created_at > now() - interval '7 days' GROUP BY u.id ORDER BY 2 DESC LIMIT 50",
  "INSERT INTO audit_log (actor, action, payload) VALUES ('agent-1', 'login', '{\"ip\": \"10.0.0.1\"}') RETURNING id",
  "UPDATE accounts SET balance = balance - 10 WHERE id = 7 AND status = 'active'",
  'DELETE FROM sessions WHERE expires_at < now()',
  'WITH x AS (DELETE FROM users WHERE last_login < now() RETURNING *) SELECT count(*) FROM x',
  "SELECT pg_read_file('/etc/passwd')",
  'BEGIN; UPDATE t SET a = 1 WHERE id = 2; COMMIT',
  "CREATE TABLE IF NOT EXISTS t (id bigint PRIMARY KEY, name text NOT NULL DEFAULT 'x', created_at timestamptz DEFAULT now())",
  "EXPLAIN ANALYZE SELECT * FROM big WHERE payload @> '{\"a\": 1}'",
  `SELECT * FROM t WHERE id IN (${Array.from({ length: 200 }, (_, i) => i).join(',')})`,
  "COPY users TO PROGRAM 'gzip > /tmp/u.gz'",
];

type Candidate = 'parse' | 'threeCalls' | 'classify' | 'classifyNoLineage';

const CANDIDATES: Readonly<Record<Candidate, (sql: string) => unknown>> = {
  parse: (sql) => parseSync(sql),
  threeCalls: (sql) => [parseSync(sql), scanSync(sql), fingerprintSync(sql)],
  classify: (sql) => classifySqlSync(sql),
  // What the PostgreSQL gateway asks for when its policy masks no column by name.
  classifyNoLineage: (sql) => classifySqlSync(sql, { columnLineage: false }),
};

export const sqlClassification: Benchmark = {
  name: NAME,
  description: 'µs per classifySqlSync call (p50/p99) vs a bare libpg-query parseSync of the same statements',
  async run({ quick, log }): Promise<Figure[]> {
    await loadSqlClassifier();
    // Warm up the JIT and the WebAssembly heap.
    for (let i = 0; i < 200; i++) for (const sql of STATEMENTS) for (const fn of Object.values(CANDIDATES)) fn(sql);

    const rounds = quick ? 2 : 5;
    const iterationsPerRound = quick ? 150 : 400;
    const samples: Record<Candidate, number[]> = { parse: [], threeCalls: [], classify: [], classifyNoLineage: [] };
    log(`${rounds} interleaved rounds × ${iterationsPerRound} iterations × ${STATEMENTS.length} statements`);
    for (let round = 0; round < rounds; round++) {
      for (const name of Object.keys(CANDIDATES) as Candidate[]) {
        const fn = CANDIDATES[name];
        const into = samples[name];
        for (let i = 0; i < iterationsPerRound; i++) {
          for (const sql of STATEMENTS) {
            const start = nowNs();
            fn(sql);
            into.push(Number(nowNs() - start) / 1_000);
          }
        }
      }
    }
    for (const s of Object.values(samples)) s.sort((a, b) => a - b);
    const p = (name: Candidate, q: number) => percentile(samples[name], q);
    const notes = `${STATEMENTS.length} statements (reads, joins, writes, DDL, dangerous functions, multi-statement), ${samples.classify.length} samples each`;
    return [
      figure(NAME, {
        metric: 'classifySqlSync p50',
        unit: 'µs/statement',
        better: 'lower',
        value: p('classify', 50),
        baseline: { name: 'libpg-query parseSync p50', value: p('parse', 50) },
        notes,
      }),
      figure(NAME, {
        metric: 'classifySqlSync p50, without the column-lineage walk (a policy with no column rule)',
        unit: 'µs/statement',
        better: 'lower',
        value: p('classifyNoLineage', 50),
        baseline: { name: 'libpg-query parseSync p50', value: p('parse', 50) },
        notes: 'columnLineage: false, as the PostgreSQL gateway classifies when no masking rule names a column',
      }),
      figure(NAME, {
        metric: 'classifySqlSync p99',
        unit: 'µs/statement',
        better: 'lower',
        value: p('classify', 99),
        baseline: { name: 'libpg-query parseSync p99', value: p('parse', 99) },
      }),
      figure(NAME, {
        metric: 'parseSync + scanSync + fingerprintSync p50 (the WebAssembly calls alone)',
        unit: 'µs/statement',
        better: 'lower',
        value: p('threeCalls', 50),
        baseline: { name: 'libpg-query parseSync p50', value: p('parse', 50) },
      }),
    ];
  },
};
