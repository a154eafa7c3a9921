// The SQLite event store's single writer, in a worker thread, so that commits (fsync included)
// never block the event loop of the process that appends. The main thread sends checked batches;
// this thread group-commits everything that arrived since the last commit in one IMMEDIATE
// transaction (appends, and subscription checkpoints, which so cost no commit of their own) and
// answers only after COMMIT returned, i.e. after the WAL was fsynced (synchronous=FULL): an
// acknowledged append is durable.
//
// This file is also the worker's entry point: it imports only node: built-ins and better-sqlite3,
// because a worker loads it directly (dist/*.js, or src/*.ts with Node's type stripping), without
// the workspace's module resolution. So the append decision (idempotent retry, expected revision,
// sequence) is restated here in data form; the main thread turns refusals into the shared error
// classes, and the event-store contract suite checks both against every other adapter.
import { parentPort, workerData } from 'node:worker_threads';
import BetterSqlite3 from 'better-sqlite3';
import type { Database, Statement } from 'better-sqlite3';

export const WRITER_ROLE = 'custodian-sqlite-event-writer';

export type WriterExpectedRevision = 'any' | 'no-stream' | 'stream-exists' | number;

export interface WriterEvent {
  readonly id: string;
  readonly sequence: number;
  readonly type: string;
  readonly schemaVersion: number;
  readonly occurredAt: string;
  readonly json: string;
}

export interface WriterAppend {
  readonly id: number;
  readonly stream: string;
  readonly expected: WriterExpectedRevision;
  readonly recordedAt: string;
  readonly events: readonly WriterEvent[];
}

export interface WriterData {
  readonly role: typeof WRITER_ROLE;
  readonly path: string;
  readonly busyTimeoutMs: number;
  readonly maxGroupSize: number;
}

/**
 * A group of appends as one flat message: its strings in one array, its numbers in one
 * Float64Array that is transferred. Structured cloning an array of appends, each an object of
 * events that are objects of strings, cost the appending thread about a sixth of its time (an
 * object and a property name per field); an array of strings is cloned as a copy of each.
 * (Joining the strings into one text was tried: the joined text, often above V8's large-object
 * size, made garbage collection of the appending thread twice as expensive.)
 */
export interface FlatAppends {
  readonly strings: readonly string[];
  readonly numbers: Float64Array;
}

const EXPECTED_CODES = { any: -1, 'no-stream': -2, 'stream-exists': -3 } as const;

/** One append as the appending thread has it: its events (the fields the table indexes) and their JSON. */
export interface AppendToEncode {
  readonly id: number;
  readonly stream: string;
  readonly expected: WriterExpectedRevision;
  readonly events: readonly Omit<WriterEvent, 'json'>[];
  readonly jsons: readonly string[];
}

/**
 * Encodes appends that share `recordedAt`. Strings: recordedAt, then per append its stream and
 * per event its id, type, occurredAt and JSON. Numbers: the number of appends, then per append
 * its id, expected revision (a revision, or −1 any, −2 no-stream, −3 stream-exists) and number
 * of events, and per event its sequence and schema version.
 */
export function encodeAppends(recordedAt: string, appends: readonly AppendToEncode[]): FlatAppends {
  const strings: string[] = [recordedAt];
  let count = 1;
  for (const append of appends) count += 3 + 2 * append.events.length;
  const numbers = new Float64Array(count);
  let n = 0;
  numbers[n++] = appends.length;
  for (const append of appends) {
    const { expected } = append;
    numbers[n++] = append.id;
    numbers[n++] = typeof expected === 'number' ? expected : EXPECTED_CODES[expected];
    numbers[n++] = append.events.length;
    strings.push(append.stream);
    append.events.forEach((event, i) => {
      numbers[n++] = event.sequence;
      numbers[n++] = event.schemaVersion;
      strings.push(event.id, event.type, event.occurredAt, append.jsons[i]!);
    });
  }
  return { strings, numbers };
}

/** The appends of a FlatAppends, as encodeAppends was given them. */
export function decodeAppends(flat: FlatAppends): WriterAppend[] {
  const { strings, numbers } = flat;
  let n = 0;
  let s = 0;
  const recordedAt = strings[s++]!;
  const appends: WriterAppend[] = [];
  for (let remaining = numbers[n++]!; remaining > 0; remaining--) {
    const id = numbers[n++]!;
    const code = numbers[n++]!;
    const expected: WriterExpectedRevision = code >= 0 ? code : code === -1 ? 'any' : code === -2 ? 'no-stream' : 'stream-exists';
    const eventCount = numbers[n++]!;
    const stream = strings[s++]!;
    const events: WriterEvent[] = [];
    for (let e = 0; e < eventCount; e++) {
      const sequence = numbers[n++]!;
      const schemaVersion = numbers[n++]!;
      events.push({ id: strings[s++]!, type: strings[s++]!, occurredAt: strings[s++]!, json: strings[s++]!, sequence, schemaVersion });
    }
    appends.push({ id, stream, expected, recordedAt, events });
  }
  if (s !== strings.length || n !== numbers.length || strings.some((x) => typeof x !== 'string')) {
    throw new Error(`malformed append message (${s}/${strings.length} strings, ${n}/${numbers.length} numbers read)`);
  }
  return appends;
}

/**
 * The outcomes of a group, flat (see FlatAppends): the appended ones as six numbers each (id,
 * first revision, next expected revision, first position, position, deduplicated as 1/0), the
 * refused ones (rare) as objects. Positions above 2^53 cannot be numbers: a group with one is
 * answered with `outcomes` instead.
 */
export interface FlatOutcomes {
  readonly appended: Float64Array;
  /** With their index among the group's outcomes: answers are settled in the group's order. */
  readonly refused: readonly { readonly index: number; readonly outcome: WriterOutcome & { readonly ok: false } }[];
}

const MAX_EXACT = BigInt(Number.MAX_SAFE_INTEGER);

export function encodeOutcomes(outcomes: readonly WriterOutcome[]): FlatOutcomes | undefined {
  const appended = new Float64Array(6 * outcomes.filter((o) => o.ok).length);
  const refused: { index: number; outcome: WriterOutcome & { readonly ok: false } }[] = [];
  let n = 0;
  for (const [index, outcome] of outcomes.entries()) {
    if (!outcome.ok) {
      refused.push({ index, outcome });
      continue;
    }
    const { result } = outcome;
    if (result.position > MAX_EXACT || result.firstPosition > MAX_EXACT) return undefined;
    appended[n++] = outcome.id;
    appended[n++] = result.firstRevision;
    appended[n++] = result.nextExpectedRevision;
    appended[n++] = Number(result.firstPosition);
    appended[n++] = Number(result.position);
    appended[n++] = result.deduplicated ? 1 : 0;
  }
  return { appended, refused };
}

export function decodeOutcomes(flat: FlatOutcomes): WriterOutcome[] {
  const outcomes: WriterOutcome[] = [];
  const a = flat.appended;
  let r = 0;
  for (let n = 0; n < a.length || r < flat.refused.length; ) {
    if (r < flat.refused.length && flat.refused[r]!.index === outcomes.length) {
      outcomes.push(flat.refused[r++]!.outcome);
      continue;
    }
    if (n >= a.length) throw new Error('malformed outcomes message');
    outcomes.push({ id: a[n]!, ok: true, result: { firstRevision: a[n + 1]!, nextExpectedRevision: a[n + 2]!, firstPosition: BigInt(a[n + 3]!), position: BigInt(a[n + 4]!), deduplicated: a[n + 5] === 1 } });
    n += 6;
  }
  return outcomes;
}

export type WriterRequest =
  | { readonly type: 'append'; readonly appends: FlatAppends }
  | { readonly type: 'checkpoint'; readonly id: number; readonly subscriptionId: string; readonly position: string; readonly updatedAt: string }
  | { readonly type: 'close' };

/** Why an append was refused, as data (the main thread builds the error). */
export type WriterRefusal =
  | { readonly kind: 'wrong-expected-revision'; readonly stream: string; readonly expected: 'no-stream' | 'stream-exists' | number; readonly actual: number | 'no-stream' }
  | { readonly kind: 'sequence-mismatch'; readonly stream: string; readonly eventId: string; readonly expectedSequence: number; readonly actualSequence: number }
  | { readonly kind: 'idempotency-conflict'; readonly stream: string; readonly eventId: string; readonly detail: string }
  | { readonly kind: 'sqlite'; readonly name: string; readonly message: string; readonly code: string | undefined };

export interface WriterAppendResult {
  readonly firstRevision: number;
  readonly nextExpectedRevision: number;
  /** Position of the append's first event (its events are at consecutive positions); 0n when deduplicated. */
  readonly firstPosition: bigint;
  readonly position: bigint;
  readonly deduplicated: boolean;
}

export type WriterOutcome = { readonly id: number; readonly ok: true; readonly result: WriterAppendResult } | { readonly id: number; readonly ok: false; readonly refusal: WriterRefusal };

export type WriterReply =
  | { readonly type: 'ready' }
  | { readonly type: 'open-failed'; readonly message: string }
  | { readonly type: 'appended'; readonly outcomes: readonly WriterOutcome[]; readonly wrote: boolean }
  | { readonly type: 'appended-flat'; readonly outcomes: FlatOutcomes; readonly wrote: boolean }
  /** The whole group failed (I/O error, lock timeout): every append of it is refused. */
  | { readonly type: 'group-failed'; readonly ids: readonly number[]; readonly message: string }
  | { readonly type: 'checkpoint-saved'; readonly id: number; readonly error?: string }
  | { readonly type: 'closed' };

/** A refusal the decision raises inside the transaction; rolls back that append's savepoint only. */
class Refused extends Error {
  readonly refusal: WriterRefusal;
  constructor(refusal: WriterRefusal) {
    super(refusal.kind);
    this.refusal = refusal;
  }
}

/** JSON with object keys sorted (as event-store's canonicalJson), to compare a retried event with the stored one. */
function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return v;
    const sorted: Record<string, unknown> = {};
    for (const k of Object.keys(v).sort()) sorted[k] = (v as Record<string, unknown>)[k];
    return sorted;
  });
}

/** An insert failed with a SQLite error in the fast path: the group is rolled back and run again append by append. */
class FastPathAborted extends Error {}

/** A checkpoint to save, and, once the transaction it was saved in has committed, to acknowledge. */
interface CheckpointToSave {
  readonly id: number;
  readonly subscriptionId: string;
  readonly position: string;
  readonly updatedAt: string;
}

/** What one group transaction commits: appends (each answered with an outcome) and checkpoints (with an error or not). */
interface GroupWork {
  readonly appends: readonly WriterAppend[];
  readonly outcomes: WriterOutcome[];
  readonly checkpoints: readonly CheckpointToSave[];
  /** By checkpoint id: why its save was refused (its savepoint rolled back, the group's appends not). */
  readonly checkpointErrors: Map<number, string>;
}

interface Statements {
  readonly byId: Statement<[string], { position: number; stream: string; revision: number; json: string }>;
  readonly lastRevision: Statement<[string], { revision: number | null }>;
  /** Last revision of each of these streams (a JSON array); null for a stream with no events. */
  readonly lastRevisions: Statement<[string], { stream: string; revision: number | null }>;
  readonly insert: Statement<[string, string, number, string, number, string, string, string]>;
  readonly saveCheckpoint: Statement<[string, string, string]>;
}

class Writer {
  readonly #db: Database;
  readonly #statements: Statements;
  readonly #maxGroupSize: number;
  readonly #applyOne: (append: WriterAppend) => WriterAppendResult;
  readonly #saveOneCheckpoint: (checkpoint: CheckpointToSave) => void;
  readonly #commitGroup: { immediate: (work: GroupWork) => void };
  readonly #commitGroupFast: { immediate: (work: GroupWork) => void };
  #queue: WriterAppend[] = [];
  #checkpoints: CheckpointToSave[] = [];
  #flushScheduled = false;

  constructor(data: WriterData) {
    const db = new BetterSqlite3(data.path);
    this.#db = db;
    db.pragma('journal_mode = WAL');
    // FULL: the WAL is fsynced at every commit, so an acknowledged append survives power loss.
    db.pragma('synchronous = FULL');
    db.pragma('foreign_keys = ON');
    db.pragma(`busy_timeout = ${Math.trunc(data.busyTimeoutMs)}`);
    db.pragma('recursive_triggers = ON');
    // Copy the WAL into the database file every 10,000 pages (≈ 40 MiB) instead of SQLite's
    // 1,000: a page the groups keep changing (the hot index pages) is copied once per checkpoint,
    // not several times, and the checkpoint's own fsync of the database file comes a tenth as
    // often (bench/probes/sqlite-insert-ceiling.ts: ≈ 19 % fewer bytes written per event).
    // Durability is unchanged: a commit is durable once its WAL frames are fsynced; a checkpoint
    // only moves them.
    db.pragma('wal_autocheckpoint = 10000');
    this.#maxGroupSize = data.maxGroupSize;
    this.#statements = {
      byId: db.prepare('SELECT position, stream, revision, json FROM events WHERE id = ?'),
      lastRevision: db.prepare('SELECT MAX(revision) AS revision FROM events WHERE stream = ?'),
      // One index seek per stream (MAX on the (stream, revision) index). Not `MAX(revision) …
      // WHERE stream IN (…) GROUP BY stream`: SQLite reads every revision of each stream for that,
      // so a group's lookup grew with the length of its sessions.
      lastRevisions: db.prepare('SELECT j.value AS stream, (SELECT MAX(revision) FROM events WHERE stream = j.value) AS revision FROM json_each(?) AS j'),
      insert: db.prepare('INSERT INTO events (id, stream, revision, type, schema_version, occurred_at, recorded_at, json) VALUES (?, ?, ?, ?, ?, ?, ?, ?)'),
      saveCheckpoint: db.prepare(
        `INSERT INTO checkpoints (subscription_id, position, updated_at) VALUES (?, ?, ?)
         ON CONFLICT (subscription_id) DO UPDATE SET position = excluded.position, updated_at = excluded.updated_at`,
      ),
    };
    // Nested better-sqlite3 transactions are savepoints: a refused append rolls back only itself.
    this.#applyOne = db.transaction((append: WriterAppend) => this.#apply(append, (stream) => this.#statements.lastRevision.get(stream)?.revision ?? null, true));
    this.#saveOneCheckpoint = db.transaction((c: CheckpointToSave) => void this.#statements.saveCheckpoint.run(c.subscriptionId, c.position, c.updatedAt));
    this.#commitGroup = db.transaction(({ appends, outcomes, checkpoints, checkpointErrors }: GroupWork) => {
      for (const append of appends) {
        try {
          outcomes.push({ id: append.id, ok: true, result: this.#applyOne(append) });
        } catch (error) {
          // An I/O error can make SQLite roll back the whole transaction; continuing would then
          // autocommit the rest one by one, outside the group. Fail the group instead.
          if (!db.inTransaction) throw error;
          outcomes.push({ id: append.id, ok: false, refusal: refusalOf(error) });
        }
      }
      for (const checkpoint of checkpoints) {
        try {
          this.#saveOneCheckpoint(checkpoint);
        } catch (error) {
          if (!db.inTransaction) throw error;
          checkpointErrors.set(checkpoint.id, error instanceof Error ? error.message : String(error));
        }
      }
    });
    // The fast path: the same decisions without a savepoint per append, with the group's stream
    // revisions looked up in one query, and event ids looked up only for an append its revisions
    // refuse (an idempotent retry succeeds whatever it expected: it must be found before it is
    // refused). Every other append inserts its events unlooked-up: an id stored already, here or
    // in another stream, fails the insert on the append-only trigger. Every refusal is decided
    // before an append inserts anything, so a refused append leaves nothing to roll back; an
    // insert that fails (a stored id, a trigger, I/O) aborts the whole transaction, and the
    // group runs again on the path above, which looks every id up.
    this.#commitGroupFast = db.transaction(({ appends, outcomes, checkpoints }: GroupWork) => {
      const streams = new Set<string>();
      for (const append of appends) streams.add(append.stream);
      const revisions = new Map<string, number>();
      for (const row of this.#statements.lastRevisions.all(JSON.stringify([...streams]))) if (row.revision !== null) revisions.set(row.stream, row.revision);
      const revisionOf = (stream: string): number | null => revisions.get(stream) ?? null;
      for (const append of appends) {
        let result: WriterAppendResult;
        try {
          try {
            result = this.#apply(append, revisionOf, false);
          } catch (error) {
            if (!(error instanceof Refused)) throw error;
            result = this.#apply(append, revisionOf, true);
          }
        } catch (error) {
          if (error instanceof Refused) {
            outcomes.push({ id: append.id, ok: false, refusal: error.refusal });
            continue;
          }
          throw error instanceof FastPathAborted ? error : new FastPathAborted(error instanceof Error ? error.message : String(error), { cause: error });
        }
        if (!result.deduplicated) revisions.set(append.stream, result.nextExpectedRevision);
        outcomes.push({ id: append.id, ok: true, result });
      }
      // Checkpoints saved since the last commit ride along: no commit (and fsync) of their own.
      for (const c of checkpoints) {
        try {
          this.#statements.saveCheckpoint.run(c.subscriptionId, c.position, c.updatedAt);
        } catch (error) {
          throw new FastPathAborted(error instanceof Error ? error.message : String(error), { cause: error });
        }
      }
    });
  }

  enqueue(appends: readonly WriterAppend[]): void {
    for (const append of appends) this.#queue.push(append);
    this.#scheduleFlush();
  }

  #scheduleFlush(): void {
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    // setImmediate: every message that arrived while the last commit (and its fsync) ran is
    // delivered before this runs, so they all share the next transaction.
    setImmediate(() => this.flush());
  }

  flush(): void {
    this.#flushScheduled = false;
    const appends = this.#queue.splice(0, this.#maxGroupSize);
    if (this.#queue.length > 0) this.#scheduleFlush();
    const checkpoints = this.#checkpoints;
    this.#checkpoints = [];
    if (appends.length === 0 && checkpoints.length === 0) return;
    const work: GroupWork = { appends, outcomes: [], checkpoints, checkpointErrors: new Map() };
    try {
      // IMMEDIATE takes the write lock up front (waiting up to busy_timeout for other processes).
      try {
        this.#commitGroupFast.immediate(work);
      } catch (error) {
        if (!(error instanceof FastPathAborted)) throw error;
        // Rolled back whole: again, each append and checkpoint in its own savepoint.
        work.outcomes.length = 0;
        this.#commitGroup.immediate(work);
      }
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      if (appends.length > 0) reply({ type: 'group-failed', ids: appends.map((a) => a.id), message });
      for (const c of checkpoints) reply({ type: 'checkpoint-saved', id: c.id, error: message });
      return;
    }
    // COMMIT has returned: the group is durable. Only now is it acknowledged.
    const { outcomes } = work;
    if (appends.length > 0) {
      const wrote = outcomes.some((o) => o.ok && !o.result.deduplicated);
      const flat = encodeOutcomes(outcomes);
      if (flat) reply({ type: 'appended-flat', outcomes: flat, wrote }, [flat.appended.buffer as ArrayBuffer]);
      else reply({ type: 'appended', outcomes, wrote });
    }
    for (const c of checkpoints) {
      const error = work.checkpointErrors.get(c.id);
      reply(error === undefined ? { type: 'checkpoint-saved', id: c.id } : { type: 'checkpoint-saved', id: c.id, error });
    }
  }

  /** Saved in the next group transaction, with the appends that arrive meanwhile; answered after its COMMIT. */
  saveCheckpoint(checkpoint: CheckpointToSave): void {
    this.#checkpoints.push(checkpoint);
    this.#scheduleFlush();
  }

  close(): void {
    while (this.#queue.length > 0 || this.#checkpoints.length > 0) this.flush();
    this.#db.close();
  }

  /**
   * One append's decision and inserts. `lastRevision`: the stream's last stored revision;
   * `lookUpIds`: whether to look its event ids up first (else an insert of a stored one fails).
   */
  #apply(append: WriterAppend, lastRevisionOf: (stream: string) => number | null, lookUpIds: boolean): WriterAppendResult {
    const { stream, events } = append;
    const first = events[0]!;
    const last = events[events.length - 1]!;
    const found = lookUpIds ? events.map((event) => this.#statements.byId.get(event.id)) : [];
    if (found.some((row) => row !== undefined)) {
      // An idempotent retry succeeds whatever it expected, if every event is stored as sent.
      events.forEach((event, i) => {
        const row = found[i];
        if (!row) throw new Refused({ kind: 'idempotency-conflict', stream, eventId: event.id, detail: 'is new, but other events of its batch are already stored (partial overlap)' });
        if (row.stream !== stream || row.revision !== event.sequence) {
          throw new Refused({ kind: 'idempotency-conflict', stream, eventId: event.id, detail: `is already stored at ${row.stream}@${row.revision}` });
        }
        if (canonicalJson(JSON.parse(row.json)) !== canonicalJson(JSON.parse(event.json))) {
          throw new Refused({ kind: 'idempotency-conflict', stream, eventId: event.id, detail: 'is already stored with different content' });
        }
      });
      return { firstRevision: first.sequence, nextExpectedRevision: last.sequence, firstPosition: 0n, position: BigInt(found[found.length - 1]!.position), deduplicated: true };
    }
    const lastRevision = lastRevisionOf(stream);
    const actual = lastRevision === null ? 'no-stream' : lastRevision;
    const expected = append.expected;
    const expectedOk =
      expected === 'any' ||
      (expected === 'no-stream' && actual === 'no-stream') ||
      (expected === 'stream-exists' && actual !== 'no-stream') ||
      (typeof expected === 'number' && expected === actual);
    if (!expectedOk) throw new Refused({ kind: 'wrong-expected-revision', stream, expected: expected as 'no-stream' | 'stream-exists' | number, actual });
    const landsAt = actual === 'no-stream' ? 0 : actual + 1;
    if (first.sequence !== landsAt) throw new Refused({ kind: 'sequence-mismatch', stream, eventId: first.id, expectedSequence: landsAt, actualSequence: first.sequence });

    let firstPosition = 0n;
    let position = 0n;
    for (const event of events) {
      const info = this.#statements.insert.run(event.id, stream, event.sequence, event.type, event.schemaVersion, event.occurredAt, append.recordedAt, event.json);
      position = BigInt(info.lastInsertRowid);
      if (firstPosition === 0n) firstPosition = position;
    }
    return { firstRevision: first.sequence, nextExpectedRevision: last.sequence, firstPosition, position, deduplicated: false };
  }
}

function refusalOf(error: unknown): WriterRefusal {
  if (error instanceof Refused) return error.refusal;
  const e = error as { name?: unknown; message?: unknown; code?: unknown };
  return { kind: 'sqlite', name: typeof e.name === 'string' ? e.name : 'Error', message: typeof e.message === 'string' ? e.message : String(error), code: typeof e.code === 'string' ? e.code : undefined };
}

function reply(message: WriterReply, transfer?: ArrayBuffer[]): void {
  parentPort!.postMessage(message, transfer);
}

if (parentPort && (workerData as { role?: unknown } | null)?.role === WRITER_ROLE) {
  const data = workerData as WriterData;
  let writer: Writer | undefined;
  try {
    writer = new Writer(data);
    reply({ type: 'ready' });
  } catch (error) {
    reply({ type: 'open-failed', message: error instanceof Error ? error.message : String(error) });
  }
  const port = parentPort;
  port.on('message', (request: WriterRequest) => {
    if (request.type === 'close') {
      writer?.close();
      writer = undefined;
      reply({ type: 'closed' });
      port.close();
      return;
    }
    if (writer === undefined) return;
    switch (request.type) {
      case 'append':
        writer.enqueue(decodeAppends(request.appends));
        return;
      case 'checkpoint':
        writer.saveCheckpoint({ id: request.id, subscriptionId: request.subscriptionId, position: request.position, updatedAt: request.updatedAt });
        return;
    }
  });
}
