// Appends/s of the embedded SQLite event store (WAL, synchronous=FULL: a commit is durable when
// acknowledged), one awaited append at a time versus many in flight (group commit), against raw
// better-sqlite3 INSERTs of the same JSON rows with the same durability; and the disk's own
// sync rate, the physical limit of one-commit-per-append. Plus peak RSS while appending.
import { execFile } from 'node:child_process';
import { closeSync, fdatasyncSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { SqliteEventStore } from '@custodian/event-store-sqlite';
import { BenchmarkError, figure, type Benchmark, type Figure } from '../benchmark.ts';
import { interleavedBlockRates, MIB, nowNs, secondsSince, timeAsync, timeSync, type TimedBlock } from '../measurement.ts';
import { appendInGroups, appendSequentially, countStoredEvents, makeAppends, RawSqliteTable, type SingleEventAppend } from './append-workload.ts';

const NAME = 'event-store-append';
const PROBE = fileURLToPath(new URL('../probes/append-peak-rss.ts', import.meta.url));
const runFile = promisify(execFile);

/**
 * 4 KiB writes cycling over a 4 MiB file, each followed by fdatasync: the least a WAL commit with
 * synchronous=FULL costs the disk. Measured in blocks interleaved with the SQLite candidates.
 */
class SyncProbe {
  private readonly fd: number;
  private readonly page = Buffer.alloc(4096, 0x5a);
  private writes = 0;

  constructor(path: string) {
    this.fd = openSync(path, 'w');
    for (let i = 0; i < 1024; i++) writeSync(this.fd, this.page, 0, this.page.length, i * this.page.length);
    fdatasyncSync(this.fd);
  }

  syncs(count: number): TimedBlock {
    const start = nowNs();
    for (let i = 0; i < count; i++, this.writes++) {
      writeSync(this.fd, this.page, 0, this.page.length, (this.writes % 1024) * this.page.length);
      fdatasyncSync(this.fd);
    }
    return { operations: count, seconds: secondsSince(start) };
  }

  close(): void {
    closeSync(this.fd);
  }
}

interface PeakRss {
  readonly appended: number;
  readonly peakRssBytes: number;
  readonly rssBeforeAppendBytes: number;
}

async function probePeakRss(mode: 'store' | 'raw', count: number, path: string): Promise<PeakRss> {
  const { stdout } = await runFile(process.execPath, [PROBE, mode, String(count), path], { timeout: 300_000, maxBuffer: 1024 * 1024 });
  const result = JSON.parse(stdout.trim().split('\n').at(-1) ?? '') as PeakRss;
  if (result.appended !== count) throw new BenchmarkError('BENCH_MEASUREMENT_FAILED', `${mode} probe appended ${result.appended} of ${count} events`);
  return result;
}

export const eventStoreAppend: Benchmark = {
  name: NAME,
  description:
    'SQLite event store appends/s (synchronous=FULL), sequential vs concurrent (group commit), vs raw better-sqlite3 INSERTs of the same JSON rows; disk sync rate; peak RSS',
  async run({ quick, workDir, log }): Promise<Figure[]> {
    const iterations = quick ? 6 : 40;
    const blockSize = 50;
    const groupSize = 500;
    const memoryCount = quick ? 5_000 : 50_000;

    const storePath = join(workDir, 'events.db');
    const store = await SqliteEventStore.open({ path: storePath });
    const raw = new RawSqliteTable(join(workDir, 'raw.db'));
    const disk = new SyncProbe(join(workDir, 'sync-probe.dat'));
    let expectedStored = 0;
    let expectedRaw = 0;
    try {
      // Fresh events (and streams) for every block, built outside the timed region.
      const storeBlock = async (count: number, append: (appends: SingleEventAppend[]) => Promise<unknown>): Promise<TimedBlock> => {
        const appends = makeAppends(count);
        expectedStored += count;
        return { operations: count, seconds: await timeAsync(() => append(appends)) };
      };
      const blocks = {
        sync: () => disk.syncs(blockSize),
        raw: () => {
          const jsons = makeAppends(blockSize).map((a) => JSON.stringify(a.event));
          expectedRaw += jsons.length;
          return { operations: jsons.length, seconds: timeSync(() => jsons.forEach((j) => raw.insert(j))) };
        },
        sequential: () => storeBlock(blockSize, (appends) => appendSequentially(store, appends)),
        tenInFlight: () => storeBlock(blockSize, (appends) => appendInGroups(store, appends, 10)),
        groupInFlight: () => storeBlock(groupSize, (appends) => appendInGroups(store, appends, groupSize)),
      };
      log(`${iterations} interleaved blocks: ${blockSize} syncs / raw rows / sequential / 10-in-flight appends, ${groupSize} appends all in flight`);
      const r = await interleavedBlockRates(iterations, blocks);
      log(`disk ${Math.round(r.sync)} syncs/s, raw ${Math.round(r.raw)} rows/s, store sequential ${Math.round(r.sequential)}, 10 in flight ${Math.round(r.tenInFlight)}, ${groupSize} in flight ${Math.round(r.groupInFlight)} appends/s`);
      if (raw.count() !== expectedRaw) throw new BenchmarkError('BENCH_MEASUREMENT_FAILED', `raw table holds ${raw.count()} rows, expected ${expectedRaw}`);
      await store.close();
      const stored = countStoredEvents(storePath);
      if (stored !== expectedStored) throw new BenchmarkError('BENCH_MEASUREMENT_FAILED', `store holds ${stored} events, expected ${expectedStored}`);

      log(`peak RSS probes: ${memoryCount} events each`);
      const storeRss = await probePeakRss('store', memoryCount, join(workDir, 'rss-store.db'));
      const rawRss = await probePeakRss('raw', memoryCount, join(workDir, 'rss-raw.db'));

      const rawBaseline = { name: 'raw better-sqlite3 INSERT, one transaction per row (WAL, synchronous=FULL)', value: r.raw };
      const mib = (bytes: number) => bytes / MIB;
      return [
        figure(NAME, {
          metric: 'appends/s, sequential (each awaited: 1 in flight)',
          unit: 'appends/s',
          better: 'higher',
          value: r.sequential,
          baseline: rawBaseline,
          notes: 'one session.opened event per append on a fresh stream; validation, stream revision check and append-only triggers included',
        }),
        figure(NAME, {
          metric: 'appends/s, 10 in flight (group commit)',
          unit: 'appends/s',
          better: 'higher',
          value: r.tenInFlight,
          baseline: rawBaseline,
        }),
        figure(NAME, {
          metric: `appends/s, ${groupSize} in flight (group commit)`,
          unit: 'appends/s',
          better: 'higher',
          value: r.groupInFlight,
          baseline: rawBaseline,
        }),
        figure(NAME, {
          metric: 'raw better-sqlite3 INSERTs/s, one transaction per row (the baseline above)',
          unit: 'rows/s',
          better: 'higher',
          value: r.raw,
          baseline: { name: 'disk: 4 KiB write + fdatasync', value: r.sync },
          notes: `the physical limit of one durable commit per append is the disk's sync rate (here ${(1e6 / r.sync).toFixed(0)} µs per sync)`,
        }),
        figure(NAME, {
          metric: `peak RSS, ${memoryCount} appends all in flight (fresh process)`,
          unit: 'MiB',
          better: 'lower',
          value: mib(storeRss.peakRssBytes),
          baseline: { name: `raw better-sqlite3 INSERT of the same ${memoryCount} JSON rows, 1000 per transaction (fresh process)`, value: mib(rawRss.peakRssBytes) },
          notes: `RSS before appending (events built): store ${mib(storeRss.rssBeforeAppendBytes).toFixed(0)} MiB, raw ${mib(rawRss.rssBeforeAppendBytes).toFixed(0)} MiB`,
        }),
      ];
    } finally {
      await store.close();
      raw.close();
      disk.close();
    }
  },
};
