import { SystemClock, formatRfc3339Micros, parseEventJson, type Clock, type CustodianEvent } from '@custodian/event-contracts';
import {
  CorruptEventError,
  EventStoreClosedError,
  EventStoreError,
  EventStoreUnavailableError,
  InvalidRequestError,
  assertValidStreamName,
  checkBatch,
  decideAppend,
  formatPosition,
  parsePosition,
  startSubscription,
  type AppendOptions,
  type AppendResult,
  type CheckedBatch,
  type CheckpointStore,
  type EventStore,
  type ExpectedRevision,
  type GlobalPosition,
  type ReadAllOptions,
  type ReadStreamOptions,
  type RecordedEvent,
  type StoredEventRef,
  type StreamRevision,
  type SubscribeToAllOptions,
  type Subscription,
  type SubscriptionItem,
} from '@custodian/event-store';
import BetterSqlite3, { type Database, type Transaction } from 'better-sqlite3';
import { migrate } from './schema.js';

export interface SqliteEventStoreOptions {
  /** Database file. Created with its schema when missing. */
  readonly path: string;
  /** Rows per internal read page (bounded memory for reads and subscriptions). Default 500. */
  readonly pageSize?: number;
  /** How often idle subscriptions look for appends made by other processes. Default 250 ms. */
  readonly pollIntervalMs?: number;
  /** How long a writer waits for another process's write lock. Default 5000 ms. */
  readonly busyTimeoutMs?: number;
  /** Most appends committed in one group transaction. Default 1000. */
  readonly maxGroupSize?: number;
  /** Source of `recordedAt`. */
  readonly clock?: Clock;
}

interface EventRow {
  readonly position: number;
  readonly stream: string;
  readonly revision: number;
  readonly recorded_at: string;
  readonly json: string;
}

interface PendingAppend {
  readonly batch: CheckedBatch;
  readonly expected: ExpectedRevision;
  readonly resolve: (result: AppendResult) => void;
  readonly reject: (error: unknown) => void;
}

type Outcome = { readonly ok: true; readonly result: AppendResult } | { readonly ok: false; readonly error: unknown };

const sqlitePosition = (position: number | bigint): GlobalPosition => {
  const p = BigInt(position);
  return { commit: p, prepare: p };
};

/** SQLite only has one number per event; both halves of a GlobalPosition carry it. */
function toRowPosition(position: GlobalPosition): number {
  if (position.commit !== position.prepare || position.commit < 0n || position.commit > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new InvalidRequestError(`not a SQLite event store position: C${position.commit}/P${position.prepare}`);
  }
  return Number(position.commit);
}

function checkCount(name: string, value: number | undefined): number {
  if (value === undefined) return Number.POSITIVE_INFINITY;
  if (!Number.isSafeInteger(value) || value < 0) throw new InvalidRequestError(`${name} must be a non-negative integer, got ${value}`);
  return value;
}

function prepareStatements(db: Database) {
  return {
    byId: db.prepare<[string], { position: number; stream: string; revision: number; json: string }>(
      'SELECT position, stream, revision, json FROM events WHERE id = ?',
    ),
    lastRevision: db.prepare<[string], { revision: number | null }>('SELECT MAX(revision) AS revision FROM events WHERE stream = ?'),
    insert: db.prepare<[string, string, number, string, number, string, string, string]>(
      'INSERT INTO events (id, stream, revision, type, schema_version, occurred_at, recorded_at, json) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
    ),
    streamForwards: db.prepare<[string, number, number], EventRow>(
      'SELECT position, stream, revision, recorded_at, json FROM events WHERE stream = ? AND revision >= ? ORDER BY revision ASC LIMIT ?',
    ),
    streamBackwards: db.prepare<[string, number, number], EventRow>(
      'SELECT position, stream, revision, recorded_at, json FROM events WHERE stream = ? AND revision <= ? ORDER BY revision DESC LIMIT ?',
    ),
    allForwards: db.prepare<[number, number], EventRow>(
      'SELECT position, stream, revision, recorded_at, json FROM events WHERE position > ? ORDER BY position ASC LIMIT ?',
    ),
    loadCheckpoint: db.prepare<[string], { position: string }>('SELECT position FROM checkpoints WHERE subscription_id = ?'),
    saveCheckpoint: db.prepare<[string, string, string]>(
      `INSERT INTO checkpoints (subscription_id, position, updated_at) VALUES (?, ?, ?)
       ON CONFLICT (subscription_id) DO UPDATE SET position = excluded.position, updated_at = excluded.updated_at`,
    ),
  };
}

/**
 * The embedded event store: one SQLite file in WAL mode with synchronous=FULL (a committed
 * append survives power loss). Concurrent appends from the same tick are group-committed in one
 * transaction, each inside its own savepoint, so one refused append does not fail the others.
 *
 * Ordering: SQLite has a single writer, and positions come from AUTOINCREMENT inside the write
 * transaction, so position order is commit order: a reader never sees position N+1 committed
 * while N is still pending. readAll and subscriptions rely on this.
 */
export class SqliteEventStore implements EventStore {
  readonly checkpoints: CheckpointStore;
  readonly path: string;

  private readonly pageSize: number;
  private readonly pollIntervalMs: number;
  private readonly maxGroupSize: number;
  private readonly clock: Clock;
  private readonly db: Database;
  private readonly statements: ReturnType<typeof prepareStatements>;
  private readonly commitGroup: Transaction<(pending: readonly PendingAppend[], outcomes: Outcome[]) => void>;
  private readonly applyOne: (pending: PendingAppend) => AppendResult;

  private queue: PendingAppend[] = [];
  private flushScheduled = false;
  private closed = false;
  private closing: Promise<void> | undefined;
  /** Incremented after every commit that wrote events; wakes live subscriptions in this process. */
  private commitCount = 0;
  private readonly commitWaiters = new Set<() => void>();
  private readonly subscriptions = new Set<Subscription>();

  static async open(options: SqliteEventStoreOptions): Promise<SqliteEventStore> {
    return new SqliteEventStore(options);
  }

  private constructor(private readonly options: SqliteEventStoreOptions) {
    this.path = options.path;
    this.pageSize = options.pageSize ?? 500;
    this.pollIntervalMs = options.pollIntervalMs ?? 250;
    this.maxGroupSize = options.maxGroupSize ?? 1000;
    this.clock = options.clock ?? new SystemClock();
    if (!Number.isSafeInteger(this.pageSize) || this.pageSize < 1) throw new InvalidRequestError('pageSize must be a positive integer');

    const db = new BetterSqlite3(options.path);
    try {
      this.configure(db, options.busyTimeoutMs ?? 5_000);
      migrate(db, () => this.now());
    } catch (error) {
      db.close();
      throw error;
    }
    this.db = db;
    this.statements = prepareStatements(db);

    // Nested better-sqlite3 transactions are savepoints: a refused append rolls back only itself.
    this.applyOne = db.transaction((pending: PendingAppend) => this.applyAppend(pending));
    this.commitGroup = db.transaction((pending: readonly PendingAppend[], outcomes: Outcome[]) => {
      for (const p of pending) {
        try {
          outcomes.push({ ok: true, result: this.applyOne(p) });
        } catch (error) {
          // An I/O error can make SQLite roll back the whole transaction; continuing would then
          // autocommit the rest one by one, outside the group. Fail the group instead.
          if (!db.inTransaction) throw error;
          outcomes.push({ ok: false, error });
        }
      }
    });

    this.checkpoints = {
      load: async (subscriptionId) => {
        this.assertOpen();
        const row = this.statements.loadCheckpoint.get(subscriptionId);
        return row ? parsePosition(row.position) : undefined;
      },
      save: async (subscriptionId, position) => {
        this.assertOpen();
        this.statements.saveCheckpoint.run(subscriptionId, formatPosition(position), this.now());
      },
    };
  }

  private configure(db: Database, busyTimeoutMs: number): void {
    const mode = db.pragma('journal_mode = WAL', { simple: true });
    if (String(mode).toLowerCase() !== 'wal') throw new EventStoreUnavailableError(`${this.options.path}: could not enable WAL (journal_mode=${String(mode)})`);
    // FULL: the WAL is fsynced at every commit, so an acknowledged append survives power loss.
    db.pragma('synchronous = FULL');
    db.pragma('foreign_keys = ON');
    db.pragma(`busy_timeout = ${Math.trunc(busyTimeoutMs)}`);
    // So that INSERT OR REPLACE on this connection fires the DELETE trigger too.
    db.pragma('recursive_triggers = ON');
  }

  private now(): string {
    return formatRfc3339Micros(this.clock.nowMicros());
  }

  private assertOpen(): void {
    if (this.closed) throw new EventStoreClosedError();
  }

  // ---------------------------------------------------------------------------------------------
  // Append (group commit)
  // ---------------------------------------------------------------------------------------------

  async append(stream: string, events: readonly CustodianEvent[], options: AppendOptions): Promise<AppendResult> {
    if (this.closed || this.closing) throw new EventStoreClosedError();
    const expected = options?.expectedRevision;
    const batch = checkBatch(stream, events, expected);
    return new Promise<AppendResult>((resolve, reject) => {
      this.queue.push({ batch, expected, resolve, reject });
      this.scheduleFlush();
    });
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    // setImmediate, not a microtask: appends issued across several promise hops of the same
    // turn still join the group.
    setImmediate(() => this.flush());
  }

  private flush(): void {
    this.flushScheduled = false;
    const pending = this.queue.splice(0, this.maxGroupSize);
    if (this.queue.length > 0) this.scheduleFlush();
    if (pending.length === 0) return;
    const outcomes: Outcome[] = [];
    try {
      // IMMEDIATE takes the write lock up front (waiting up to busy_timeout for other processes).
      this.commitGroup.immediate(pending, outcomes);
    } catch (error) {
      const failure = error instanceof EventStoreError ? error : new EventStoreUnavailableError(`append to ${this.path} failed: ${(error as Error).message}`, { cause: error });
      for (const p of pending) p.reject(failure);
      return;
    }
    let wrote = false;
    pending.forEach((p, i) => {
      const outcome = outcomes[i]!;
      if (outcome.ok) {
        wrote ||= !outcome.result.deduplicated;
        p.resolve(outcome.result);
      } else {
        p.reject(outcome.error);
      }
    });
    if (wrote) this.notifyCommit();
  }

  private applyAppend({ batch, expected }: PendingAppend): AppendResult {
    const found: (StoredEventRef | undefined)[] = batch.events.map((event) => {
      const row = this.statements.byId.get(event.id);
      return row && { id: event.id, stream: row.stream, revision: row.revision, position: sqlitePosition(row.position), stored: row.json };
    });
    const last = this.statements.lastRevision.get(batch.stream)?.revision ?? null;
    const current: StreamRevision = last === null ? 'no-stream' : last;
    const decision = decideAppend(batch, expected, current, found);
    if (decision !== 'write') return decision;

    const recordedAt = this.now();
    let position = 0n;
    batch.events.forEach((event, i) => {
      const info = this.statements.insert.run(event.id, batch.stream, event.sequence, event.type, event.schemaVersion, event.occurredAt, recordedAt, batch.jsons[i]!);
      position = BigInt(info.lastInsertRowid);
    });
    return {
      stream: batch.stream,
      firstRevision: batch.firstSequence,
      nextExpectedRevision: batch.lastSequence,
      position: { commit: position, prepare: position },
      deduplicated: false,
    };
  }

  // ---------------------------------------------------------------------------------------------
  // Reads
  // ---------------------------------------------------------------------------------------------

  private toRecorded(row: EventRow): RecordedEvent {
    let event: CustodianEvent;
    try {
      event = parseEventJson(row.json);
    } catch (error) {
      throw new CorruptEventError(`event at position ${row.position} cannot be read: ${(error as Error).message}`, { cause: error, position: sqlitePosition(row.position) });
    }
    if (event.stream !== row.stream || event.sequence !== row.revision) {
      throw new CorruptEventError(`event at position ${row.position} says ${event.stream}@${event.sequence} but is stored at ${row.stream}@${row.revision}`, { position: sqlitePosition(row.position) });
    }
    return { event, stream: row.stream, revision: row.revision, position: sqlitePosition(row.position), recordedAt: row.recorded_at };
  }

  async *readStream(stream: string, options: ReadStreamOptions = {}): AsyncIterable<RecordedEvent> {
    this.assertOpen();
    assertValidStreamName(stream);
    const forwards = (options.direction ?? 'forwards') === 'forwards';
    if (options.direction !== undefined && options.direction !== 'forwards' && options.direction !== 'backwards') {
      throw new InvalidRequestError(`direction must be 'forwards' or 'backwards'`);
    }
    let remaining = checkCount('maxCount', options.maxCount);
    let next = options.fromRevision ?? (forwards ? 0 : Number.MAX_SAFE_INTEGER);
    checkCount('fromRevision', next);
    while (remaining > 0 && next >= 0) {
      this.assertOpen();
      const limit = Math.min(this.pageSize, remaining);
      const rows = forwards ? this.statements.streamForwards.all(stream, next, limit) : this.statements.streamBackwards.all(stream, next, limit);
      for (const row of rows) yield this.toRecorded(row);
      if (rows.length < limit) return;
      remaining -= rows.length;
      next = rows[rows.length - 1]!.revision + (forwards ? 1 : -1);
    }
  }

  async *readAll(options: ReadAllOptions = {}): AsyncIterable<RecordedEvent> {
    this.assertOpen();
    let remaining = checkCount('maxCount', options.maxCount);
    let after = options.fromPosition ? toRowPosition(options.fromPosition) : 0;
    while (remaining > 0) {
      this.assertOpen();
      const limit = Math.min(this.pageSize, remaining);
      const rows = this.statements.allForwards.all(after, limit);
      for (const row of rows) yield this.toRecorded(row);
      if (rows.length < limit) return;
      remaining -= rows.length;
      after = rows[rows.length - 1]!.position;
    }
  }

  async streamRevision(stream: string): Promise<StreamRevision> {
    this.assertOpen();
    assertValidStreamName(stream);
    const last = this.statements.lastRevision.get(stream)?.revision ?? null;
    return last === null ? 'no-stream' : last;
  }

  // ---------------------------------------------------------------------------------------------
  // Subscriptions
  // ---------------------------------------------------------------------------------------------

  subscribeToAll(options: SubscribeToAllOptions): Subscription {
    this.assertOpen();
    if (this.closing) throw new EventStoreClosedError();
    const subscription = startSubscription(options, this.checkpoints, (after, signal) => this.subscriptionItems(after, signal));
    this.subscriptions.add(subscription);
    void subscription.done.catch(() => undefined).finally(() => this.subscriptions.delete(subscription));
    return subscription;
  }

  private async *subscriptionItems(after: GlobalPosition | undefined, signal: AbortSignal): AsyncIterable<SubscriptionItem> {
    let cursor = after ? toRowPosition(after) : 0;
    while (!signal.aborted) {
      const seen = this.commitCount;
      const rows = this.statements.allForwards.all(cursor, this.pageSize);
      for (const row of rows) {
        yield { kind: 'event', recorded: this.toRecorded(row) };
        cursor = row.position;
        if (signal.aborted) return;
      }
      if (rows.length < this.pageSize) {
        yield { kind: 'caught-up' };
        if (signal.aborted) return;
        // Woken by a commit in this process, else by the poll timer (commits by other processes).
        await this.waitForCommit(seen, signal);
      }
    }
  }

  private waitForCommit(seen: number, signal: AbortSignal): Promise<void> {
    if (this.commitCount !== seen || signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        this.commitWaiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, this.pollIntervalMs);
      signal.addEventListener('abort', done, { once: true });
      this.commitWaiters.add(done);
    });
  }

  private notifyCommit(): void {
    this.commitCount += 1;
    for (const wake of [...this.commitWaiters]) wake();
  }

  // ---------------------------------------------------------------------------------------------
  // Lifecycle
  // ---------------------------------------------------------------------------------------------

  /** The connection's durability settings as SQLite reports them (for readiness checks and tests). */
  readSettings(): { journalMode: string; synchronous: 'OFF' | 'NORMAL' | 'FULL' | 'EXTRA'; foreignKeys: boolean; busyTimeoutMs: number } {
    this.assertOpen();
    const levels = ['OFF', 'NORMAL', 'FULL', 'EXTRA'] as const;
    return {
      journalMode: String(this.db.pragma('journal_mode', { simple: true })),
      synchronous: levels[Number(this.db.pragma('synchronous', { simple: true }))] ?? 'OFF',
      foreignKeys: Number(this.db.pragma('foreign_keys', { simple: true })) === 1,
      busyTimeoutMs: Number(this.db.pragma('busy_timeout', { simple: true })),
    };
  }

  async ping(): Promise<void> {
    this.assertOpen();
    try {
      this.db.prepare('SELECT 1').get();
    } catch (error) {
      throw new EventStoreUnavailableError(`${this.path} does not answer: ${(error as Error).message}`, { cause: error });
    }
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      await Promise.all([...this.subscriptions].map((s) => s.stop()));
      // Appends already accepted are committed, not dropped.
      while (this.queue.length > 0) this.flush();
      this.closed = true;
      this.db.close();
    })();
    return this.closing;
  }
}
