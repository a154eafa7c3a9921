// The raw SQLite ceiling under the embedded event store: how many events/s one thread inserting
// straight into the store's exact schema (libs/events/event-store-sqlite/src/schema.ts: UNIQUE id,
// UNIQUE (stream, revision), CHECK json_valid(json), the append-only triggers) can commit with the
// store's durability (WAL, synchronous=FULL, a fsync per COMMIT), in transactions the size of the
// pipeline's groups. No worker, no messages, no decisions, no readers: the most the store's single
// writer could reach on this machine. The events are the pipeline benchmark's (command.issued +
// policy.decided, ~640 bytes of JSON, UUIDv7 ids), one pair per stream and transaction slot.
//
// Variants (each on a fresh database file; `rounds` rounds of every variant in turn, in this one
// process, medians reported: the machine's other load moves single runs a lot):
//   schema       the store's schema and pragmas, one prepared INSERT per event (what the writer does)
//   lookups      + the writer's per-group lookup (last revision of each stream, one index seek
//                per stream; event ids are looked up only for an append its revisions refuse)
//   lookups-scan + the per-group lookups as the writer made them before: stored ids, and
//                MAX(revision) … GROUP BY over `stream IN (…)` (reads every revision of each
//                stream, so it slows as streams grow)
//   cache        schema, with a 64 MiB page cache (cache_size) instead of SQLite's 2 MiB default
//   checkpoint   schema, checkpointing the WAL every 10000 pages instead of every 1000 (wal_autocheckpoint)
//   tuned        schema with both
//   no-guards    reference only: the same table without CHECK json_valid and without the triggers
//   no-fsync     reference only: the store's schema with synchronous=OFF (what the fsyncs cost)
//
// Ids are minted in publish order (as the pipeline benchmark's workload does), or with `session`
// as the last argument, session by session (the ids of one transaction then scatter over the id
// index, as random ids would).
//
//   scripts/node24 node bench/probes/sqlite-insert-ceiling.ts [events=40000] [per transaction=400] [rounds=3] [variants,…|all] [publish|session]
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { registerWorkspaceSources } from '../workspace-sources.ts';

registerWorkspaceSources();
const { default: BetterSqlite3 } = await import('better-sqlite3');
const { migrate } = await import('../../libs/events/event-store-sqlite/src/schema.ts');
const { buildWorkload } = await import('../benchmarks/pipeline.ts');

const ALL_VARIANTS = ['schema', 'lookups', 'lookups-scan', 'cache', 'checkpoint', 'tuned', 'no-guards', 'no-fsync'] as const;
type Variant = (typeof ALL_VARIANTS)[number];

const [countText = '40000', perTxText = '400', roundsText = '3', variantsText = 'all', idOrderText = 'publish'] = process.argv.slice(2);
const idOrder = idOrderText as 'publish' | 'session';
const count = Number(countText);
const perTransaction = Number(perTxText);
const rounds = Number(roundsText);
const variants = (variantsText === 'all' ? [...ALL_VARIANTS] : variantsText.split(',')) as Variant[];
if (!(count >= 2) || !(perTransaction >= 2) || !Number.isSafeInteger(rounds) || rounds < 1 || variants.some((v) => !ALL_VARIANTS.includes(v)) || (idOrder !== 'publish' && idOrder !== 'session')) {
  process.stderr.write(`usage: sqlite-insert-ceiling.ts [events] [events per transaction] [dir|-] [rounds] [${ALL_VARIANTS.join(',')}|all] [publish|session]\n`);
  process.exit(2);
}

interface Row {
  readonly id: string;
  readonly stream: string;
  readonly revision: number;
  readonly type: string;
  readonly schemaVersion: number;
  readonly occurredAt: string;
  readonly json: string;
}

/** Transactions as the pipeline's groups are: each holds one command (2 events) of perTransaction/2 sessions. */
function transactions(): Row[][] {
  const sessions = perTransaction / 2;
  const commands = Math.ceil(count / perTransaction);
  const workload = buildWorkload(sessions, commands, idOrder);
  const out: Row[][] = [];
  for (let c = 0; c < commands; c++) {
    const tx: Row[] = [];
    for (const session of workload) {
      for (const event of session[c]!) {
        tx.push({ id: event.id, stream: event.stream, revision: event.sequence, type: event.type, schemaVersion: event.schemaVersion, occurredAt: event.occurredAt, json: JSON.stringify(event) });
      }
    }
    out.push(tx);
  }
  return out;
}

const NO_GUARDS_SCHEMA = `
  CREATE TABLE events (
    position INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, stream TEXT NOT NULL,
    revision INTEGER NOT NULL CHECK (revision >= 0), type TEXT NOT NULL, schema_version INTEGER NOT NULL,
    occurred_at TEXT NOT NULL, recorded_at TEXT NOT NULL, json TEXT NOT NULL, UNIQUE (stream, revision));`;

interface Measured {
  readonly eventsPerSecond: number;
  readonly cpuMicrosPerEvent: number;
  readonly commitMs: number;
  /** Bytes this process caused to be written to storage (/proc/self/io), per event: WAL frames and checkpoints. */
  readonly bytesWrittenPerEvent: number;
}

/** Bytes this process caused to be sent to storage so far (Linux); NaN elsewhere. */
function bytesWritten(): number {
  try {
    return Number(/^write_bytes: (\d+)$/m.exec(readFileSync('/proc/self/io', 'utf8'))?.[1] ?? Number.NaN);
  } catch {
    return Number.NaN;
  }
}

function run(variant: Variant, path: string, txs: readonly Row[][]): Measured {
  const db = new BetterSqlite3(path);
  db.pragma('journal_mode = WAL');
  db.pragma(`synchronous = ${variant === 'no-fsync' ? 'OFF' : 'FULL'}`);
  db.pragma('foreign_keys = ON');
  db.pragma('recursive_triggers = ON');
  if (variant === 'cache' || variant === 'tuned') db.pragma('cache_size = -65536');
  if (variant === 'checkpoint' || variant === 'tuned') db.pragma('wal_autocheckpoint = 10000');
  if (variant === 'no-guards') db.exec(NO_GUARDS_SCHEMA);
  else migrate(db, () => new Date().toISOString());
  const insert = db.prepare('INSERT INTO events (id, stream, revision, type, schema_version, occurred_at, recorded_at, json) VALUES (?, ?, ?, ?, ?, ?, ?, ?)');
  const storedIds = db.prepare('SELECT id FROM events WHERE id IN (SELECT value FROM json_each(?))');
  const lastRevisions = db.prepare(
    variant === 'lookups-scan'
      ? 'SELECT stream, MAX(revision) AS revision FROM events WHERE stream IN (SELECT value FROM json_each(?)) GROUP BY stream'
      : 'SELECT j.value AS stream, (SELECT MAX(revision) FROM events WHERE stream = j.value) AS revision FROM json_each(?) AS j',
  );
  const begin = db.prepare('BEGIN IMMEDIATE');
  const commit = db.prepare('COMMIT');
  const recordedAt = new Date().toISOString();
  let events = 0;
  let commitMs = 0;
  const writtenBefore = bytesWritten();
  const cpuBefore = process.cpuUsage();
  const start = performance.now();
  for (const tx of txs) {
    begin.run();
    if (variant === 'lookups-scan') storedIds.all(JSON.stringify(tx.map((r) => r.id)));
    if (variant === 'lookups' || variant === 'lookups-scan') lastRevisions.all(JSON.stringify([...new Set(tx.map((r) => r.stream))]));
    for (const r of tx) insert.run(r.id, r.stream, r.revision, r.type, r.schemaVersion, r.occurredAt, recordedAt, r.json);
    const c = performance.now();
    commit.run();
    commitMs += performance.now() - c;
    events += tx.length;
  }
  const seconds = (performance.now() - start) / 1000;
  const cpu = process.cpuUsage(cpuBefore);
  const written = bytesWritten() - writtenBefore;
  db.close();
  return { eventsPerSecond: events / seconds, cpuMicrosPerEvent: (cpu.user + cpu.system) / events, commitMs: commitMs / txs.length, bytesWrittenPerEvent: written / events };
}

const median = (values: readonly number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

const dir = mkdtempSync(join(tmpdir(), 'custodian-sqlite-ceiling-'));
try {
  const txs = transactions();
  const total = txs.reduce((n, tx) => n + tx.length, 0);
  const jsonBytes = Math.round(txs.flat().reduce((n, r) => n + Buffer.byteLength(r.json), 0) / total);
  process.stdout.write(`${total} events (~${jsonBytes} bytes of JSON each) in transactions of ${perTransaction}, ids minted in ${idOrder} order, WAL, one thread; median of ${rounds} rounds [min–max]\n`);
  const results = new Map<Variant, Measured[]>(variants.map((v) => [v, []]));
  for (let round = 0; round < rounds; round++) {
    for (const variant of variants) {
      results.get(variant)!.push(run(variant, join(dir, `${variant}-${round}.db`), txs));
      rmSync(join(dir, `${variant}-${round}.db`), { force: true });
      rmSync(join(dir, `${variant}-${round}.db-wal`), { force: true });
      rmSync(join(dir, `${variant}-${round}.db-shm`), { force: true });
    }
  }
  for (const [variant, runs] of results) {
    const rates = runs.map((r) => r.eventsPerSecond);
    const line =
      `${variant.padEnd(12)} ${String(Math.round(median(rates))).padStart(7)} events/s [${Math.round(Math.min(...rates))}–${Math.round(Math.max(...rates))}]  ` +
      `${median(runs.map((r) => r.cpuMicrosPerEvent)).toFixed(1).padStart(5)} µs CPU/event  ${(median(runs.map((r) => r.bytesWrittenPerEvent)) / 1024).toFixed(1).padStart(5)} KiB written/event  ` +
      `COMMIT ${median(runs.map((r) => r.commitMs)).toFixed(2)} ms/transaction (WAL write + fsync + checkpoints)`;
    process.stdout.write(`${line}\n`);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
