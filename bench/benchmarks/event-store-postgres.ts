// Appends/s of the PostgreSQL event store (the distributed one) against, in the same run: plain
// autocommit INSERTs of the same JSON rows into a plain table on the same server (PostgreSQL's own
// commit rate, the physical limit of one commit per append), and the embedded SQLite store under
// the same workload. One awaited append at a time, 10 in flight, and 500 in flight (group commit).
import { join } from 'node:path';
import type { EventStore } from '@custodian/event-store';
import { PostgresEventStore } from '@custodian/event-store-postgres';
import { SqliteEventStore } from '@custodian/event-store-sqlite';
import pg from 'pg';
import { BenchmarkError, figure, type Benchmark, type Figure } from '../benchmark.ts';
import { interleavedBlockRates, timeAsync, type TimedBlock } from '../measurement.ts';
import { appendInGroups, appendSequentially, makeAppends, type SingleEventAppend } from './append-workload.ts';

const NAME = 'event-store-postgres';

export const eventStorePostgres: Benchmark = {
  name: NAME,
  description: 'PostgreSQL event store appends/s, sequential vs 10 vs 500 in flight (group commit), vs autocommit INSERTs on the same server and vs the SQLite store, same run',
  async run({ quick, harness, workDir, log }): Promise<Figure[]> {
    const iterations = quick ? 4 : 20;
    const blockSize = 50;
    const groupSize = 500;
    const server = await harness.postgres();
    const schema = `bench_${Date.now().toString(36)}`;
    const postgres = await PostgresEventStore.open({ connectionString: server.connectionString(), schema });
    const sqlite = await SqliteEventStore.open({ path: join(workDir, 'events-compare.db') });
    const raw = new pg.Client({ connectionString: server.connectionString() });
    await raw.connect();
    await raw.query(`CREATE TABLE ${schema}.raw_events (position bigserial PRIMARY KEY, json text NOT NULL)`);
    const expected = { postgres: 0, raw: 0 };
    try {
      const block = async (store: EventStore, count: number, append: (s: EventStore, a: SingleEventAppend[]) => Promise<unknown>, countIt: boolean): Promise<TimedBlock> => {
        const appends = makeAppends(count);
        if (countIt) expected.postgres += count;
        return { operations: count, seconds: await timeAsync(() => append(store, appends)) };
      };
      const blocks = {
        raw: async (): Promise<TimedBlock> => {
          const jsons = makeAppends(blockSize).map((a) => JSON.stringify(a.event));
          expected.raw += jsons.length;
          return {
            operations: jsons.length,
            seconds: await timeAsync(async () => {
              for (const json of jsons) await raw.query(`INSERT INTO ${schema}.raw_events (json) VALUES ($1)`, [json]);
            }),
          };
        },
        sequential: () => block(postgres, blockSize, (s, a) => appendSequentially(s, a), true),
        tenInFlight: () => block(postgres, blockSize, (s, a) => appendInGroups(s, a, 10), true),
        groupInFlight: () => block(postgres, groupSize, (s, a) => appendInGroups(s, a, groupSize), true),
        sqliteGroupInFlight: () => block(sqlite, groupSize, (s, a) => appendInGroups(s, a, groupSize), false),
      };
      log(`${iterations} interleaved blocks: ${blockSize} raw INSERTs / sequential / 10-in-flight appends, ${groupSize} appends all in flight (PostgreSQL and SQLite stores)`);
      const r = await interleavedBlockRates(iterations, blocks);
      log(
        `raw ${Math.round(r.raw)} rows/s; PostgreSQL store sequential ${Math.round(r.sequential)}, 10 in flight ${Math.round(r.tenInFlight)}, ${groupSize} in flight ${Math.round(r.groupInFlight)}; SQLite ${groupSize} in flight ${Math.round(r.sqliteGroupInFlight)} appends/s`,
      );
      const stored = Number((await raw.query<{ n: string }>(`SELECT count(*) AS n FROM ${schema}.events`)).rows[0]?.n);
      if (stored !== expected.postgres) throw new BenchmarkError('BENCH_MEASUREMENT_FAILED', `PostgreSQL store holds ${stored} events, expected ${expected.postgres}`);
      const rawBaseline = { name: 'autocommit INSERT of the same JSON rows, one transaction per row, same server', value: r.raw };
      return [
        figure(NAME, { metric: 'appends/s, sequential (each awaited)', unit: 'appends/s', better: 'higher', value: r.sequential, baseline: rawBaseline, notes: 'one session.opened event per append on a fresh stream; checks, lock, triggers included' }),
        figure(NAME, { metric: 'appends/s, 10 in flight (group commit)', unit: 'appends/s', better: 'higher', value: r.tenInFlight, baseline: rawBaseline }),
        figure(NAME, { metric: `appends/s, ${groupSize} in flight (group commit)`, unit: 'appends/s', better: 'higher', value: r.groupInFlight, baseline: rawBaseline }),
        figure(NAME, {
          metric: `appends/s, ${groupSize} in flight: PostgreSQL store vs SQLite store`,
          unit: 'appends/s',
          better: 'higher',
          value: r.groupInFlight,
          baseline: { name: `SQLite event store, ${groupSize} in flight`, value: r.sqliteGroupInFlight },
        }),
      ];
    } finally {
      await raw.end().catch(() => undefined);
      await postgres.close();
      await sqlite.close();
    }
  },
};
