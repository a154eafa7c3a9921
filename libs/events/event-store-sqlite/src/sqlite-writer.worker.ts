// The SQLite event store's single writer, in a worker thread, so that commits (fsync included)
// never block the event loop of the process that appends. The main thread sends checked batches;
// this thread group-commits everything that arrived since the last commit in one IMMEDIATE
// transaction (each append in its own savepoint) and answers only after COMMIT returned, i.e.
// after the WAL was fsynced (synchronous=FULL): an acknowledged append is durable.
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

export type WriterRequest =
  | { readonly type: 'append'; readonly appends: readonly WriterAppend[] }
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
  readonly position: bigint;
  readonly deduplicated: boolean;
}

export type WriterOutcome = { readonly id: number; readonly ok: true; readonly result: WriterAppendResult } | { readonly id: number; readonly ok: false; readonly refusal: WriterRefusal };

export type WriterReply =
  | { readonly type: 'ready' }
  | { readonly type: 'open-failed'; readonly message: string }
  | { readonly type: 'appended'; readonly outcomes: readonly WriterOutcome[]; readonly wrote: boolean }
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

interface Statements {
  readonly byId: Statement<[string], { position: number; stream: string; revision: number; json: string }>;
  readonly lastRevision: Statement<[string], { revision: number | null }>;
  readonly insert: Statement<[string, string, number, string, number, string, string, string]>;
  readonly saveCheckpoint: Statement<[string, string, string]>;
}

class Writer {
  readonly #db: Database;
  readonly #statements: Statements;
  readonly #maxGroupSize: number;
  readonly #applyOne: (append: WriterAppend) => WriterAppendResult;
  readonly #commitGroup: { immediate: (appends: readonly WriterAppend[], outcomes: WriterOutcome[]) => void };
  #queue: WriterAppend[] = [];
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
    this.#maxGroupSize = data.maxGroupSize;
    this.#statements = {
      byId: db.prepare('SELECT position, stream, revision, json FROM events WHERE id = ?'),
      lastRevision: db.prepare('SELECT MAX(revision) AS revision FROM events WHERE stream = ?'),
      insert: db.prepare('INSERT INTO events (id, stream, revision, type, schema_version, occurred_at, recorded_at, json) VALUES (?, ?, ?, ?, ?, ?, ?, ?)'),
      saveCheckpoint: db.prepare(
        `INSERT INTO checkpoints (subscription_id, position, updated_at) VALUES (?, ?, ?)
         ON CONFLICT (subscription_id) DO UPDATE SET position = excluded.position, updated_at = excluded.updated_at`,
      ),
    };
    // Nested better-sqlite3 transactions are savepoints: a refused append rolls back only itself.
    this.#applyOne = db.transaction((append: WriterAppend) => this.#apply(append));
    this.#commitGroup = db.transaction((appends: readonly WriterAppend[], outcomes: WriterOutcome[]) => {
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
    const group = this.#queue.splice(0, this.#maxGroupSize);
    if (this.#queue.length > 0) this.#scheduleFlush();
    if (group.length === 0) return;
    const outcomes: WriterOutcome[] = [];
    try {
      // IMMEDIATE takes the write lock up front (waiting up to busy_timeout for other processes).
      this.#commitGroup.immediate(group, outcomes);
    } catch (error) {
      reply({ type: 'group-failed', ids: group.map((a) => a.id), message: error instanceof Error ? error.message : String(error) });
      return;
    }
    // COMMIT has returned: the group is durable. Only now is it acknowledged.
    reply({ type: 'appended', outcomes, wrote: outcomes.some((o) => o.ok && !o.result.deduplicated) });
  }

  saveCheckpoint(id: number, subscriptionId: string, position: string, updatedAt: string): void {
    try {
      this.#statements.saveCheckpoint.run(subscriptionId, position, updatedAt);
      reply({ type: 'checkpoint-saved', id });
    } catch (error) {
      reply({ type: 'checkpoint-saved', id, error: error instanceof Error ? error.message : String(error) });
    }
  }

  close(): void {
    while (this.#queue.length > 0) this.flush();
    this.#db.close();
  }

  #apply(append: WriterAppend): WriterAppendResult {
    const { stream, events } = append;
    const first = events[0]!;
    const last = events[events.length - 1]!;
    const found = events.map((event) => this.#statements.byId.get(event.id));
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
      return { firstRevision: first.sequence, nextExpectedRevision: last.sequence, position: BigInt(found[found.length - 1]!.position), deduplicated: true };
    }
    const lastRevision = this.#statements.lastRevision.get(stream)?.revision ?? null;
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

    let position = 0n;
    for (const event of events) {
      const info = this.#statements.insert.run(event.id, stream, event.sequence, event.type, event.schemaVersion, event.occurredAt, append.recordedAt, event.json);
      position = BigInt(info.lastInsertRowid);
    }
    return { firstRevision: first.sequence, nextExpectedRevision: last.sequence, position, deduplicated: false };
  }
}

function refusalOf(error: unknown): WriterRefusal {
  if (error instanceof Refused) return error.refusal;
  const e = error as { name?: unknown; message?: unknown; code?: unknown };
  return { kind: 'sqlite', name: typeof e.name === 'string' ? e.name : 'Error', message: typeof e.message === 'string' ? e.message : String(error), code: typeof e.code === 'string' ? e.code : undefined };
}

function reply(message: WriterReply): void {
  parentPort!.postMessage(message);
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
        writer.enqueue(request.appends);
        return;
      case 'checkpoint':
        writer.saveCheckpoint(request.id, request.subscriptionId, request.position, request.updatedAt);
        return;
    }
  });
}
