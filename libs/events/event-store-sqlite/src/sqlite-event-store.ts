import { SystemClock, factoryEventJson, formatRfc3339Micros, parseEventJson, type Clock, type CustodianEvent } from '@custodian/event-contracts';
import {
  CommitSignal,
  CorruptEventError,
  EventStoreClosedError,
  EventStoreUnavailableError,
  IdempotencyConflictError,
  InvalidRequestError,
  SequenceMismatchError,
  WrongExpectedRevisionError,
  assertValidStreamName,
  checkBatch,
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
  type StreamRevision,
  type SubscribeToAllOptions,
  type Subscription,
  type SubscriptionItem,
} from '@custodian/event-store';
import { Worker } from 'node:worker_threads';
import BetterSqlite3, { type Database } from 'better-sqlite3';
import { CrossThreadCommits } from './cross-thread-commits.js';
import { migrate } from './schema.js';
import {
  WRITER_ROLE,
  decodeOutcomes,
  encodeAppends,
  type AppendToEncode,
  type WriterData,
  type WriterOutcome,
  type WriterRefusal,
  type WriterReply,
  type WriterRequest,
} from './sqlite-writer.worker.js';

/** Where the writer's entry point is: beside this file, as .ts when running from sources. */
const WRITER_ENTRY = new URL(import.meta.url.endsWith('.ts') ? './sqlite-writer.worker.ts' : './sqlite-writer.worker.js', import.meta.url);

export interface SqliteEventStoreOptions {
  /** Database file. Created with its schema when missing. */
  readonly path: string;
  /** Rows per internal read page (bounded memory for reads and subscriptions). Default 500. */
  readonly pageSize?: number;
  /** How often idle subscriptions look for appends made by other processes (other instances in this process wake them at once). Default 250 ms. */
  readonly pollIntervalMs?: number;
  /** How long a writer waits for another process's write lock. Default 5000 ms. */
  readonly busyTimeoutMs?: number;
  /** Most appends committed in one group transaction. Default 1000. */
  readonly maxGroupSize?: number;
  /** Source of `recordedAt`. */
  readonly clock?: Clock;
}

/** Parsed rows kept for other readers (see parsedRows): a few pages behind the head. */
const PARSED_ROWS_KEPT = 4096;
/**
 * …and at most this much JSON text (UTF-16 code units) with them: frame events carry up to 64 KiB
 * of data each, and 4096 of them, parsed, would hold hundreds of MiB.
 */
const PARSED_CHARS_KEPT = 16 * 1024 * 1024;

function deepFreeze(value: unknown): void {
  if (typeof value !== 'object' || value === null || Object.isFrozen(value)) return;
  Object.freeze(value);
  for (const child of Object.values(value)) deepFreeze(child);
}

/** An event parsed and validated (or made by this process's EventFactory), with the JSON it was stored as. */
interface ParsedRow {
  readonly json: string;
  readonly event: CustodianEvent;
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
    lastRevision: db.prepare<[string], { revision: number | null }>('SELECT MAX(revision) AS revision FROM events WHERE stream = ?'),
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
  };
}

/**
 * The embedded event store: one SQLite file in WAL mode with synchronous=FULL (a committed
 * append survives power loss). Writes run in a worker thread (sqlite-writer.worker.ts), the
 * file's only writer in this process, so commits and their fsync never block the event loop:
 * appends issued in the same turn are sent together, the writer commits everything that arrived
 * during its previous commit in one transaction (each append in its own savepoint, so one
 * refused append does not fail the others), and an append resolves only after its COMMIT.
 * Reads run on this thread's own connection (WAL: readers never wait for the writer).
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
  private readonly writer: Worker;

  /** Appends of this turn, sent to the writer together. */
  private queue: PendingAppend[] = [];
  private sendScheduled = false;
  /** Sent to the writer, by request id, until it answers. */
  private readonly inFlight = new Map<number, PendingAppend>();
  private readonly checkpointsInFlight = new Map<number, { resolve: () => void; reject: (error: unknown) => void }>();
  private nextRequestId = 1;
  /** Set when the writer died or failed to open: every later append is refused with it. */
  private writerFailure: EventStoreUnavailableError | undefined;
  private writerExited: Promise<void>;
  private closed = false;
  private closing: Promise<void> | undefined;
  /** Notified after every commit that wrote events; wakes live subscriptions in this process. */
  private readonly commits = new CommitSignal();
  /** Commits of other instances on this file in this process (other threads) notify `commits` too. */
  private readonly otherThreads: CrossThreadCommits;
  private readonly subscriptions = new Set<Subscription>();

  static async open(options: SqliteEventStoreOptions): Promise<SqliteEventStore> {
    const store = new SqliteEventStore(options);
    try {
      await store.writerReady;
    } catch (error) {
      await store.close().catch(() => undefined);
      throw error;
    }
    return store;
  }

  private readonly writerReady: Promise<void>;

  private constructor(private readonly options: SqliteEventStoreOptions) {
    this.path = options.path;
    this.pageSize = options.pageSize ?? 500;
    this.pollIntervalMs = options.pollIntervalMs ?? 250;
    this.maxGroupSize = options.maxGroupSize ?? 1000;
    this.clock = options.clock ?? new SystemClock();
    if (!Number.isSafeInteger(this.pageSize) || this.pageSize < 1) throw new InvalidRequestError('pageSize must be a positive integer');
    const busyTimeoutMs = options.busyTimeoutMs ?? 5_000;

    // Schema first (once, at open), so that the writer and this reader find the tables.
    const db = new BetterSqlite3(options.path);
    try {
      this.configure(db, busyTimeoutMs);
      migrate(db, () => this.now());
    } catch (error) {
      db.close();
      throw error;
    }
    this.db = db;
    this.statements = prepareStatements(db);
    this.otherThreads = new CrossThreadCommits(options.path, () => this.commits.notify());

    const workerData: WriterData = { role: WRITER_ROLE, path: options.path, busyTimeoutMs, maxGroupSize: this.maxGroupSize };
    // execArgv []: the writer needs none of the parent's flags, and some (--input-type) break a worker.
    this.writer = new Worker(WRITER_ENTRY, { workerData, execArgv: [] });
    // The writer keeps the process alive only while it owes an answer (see track()).
    this.writer.unref();
    this.writerReady = new Promise<void>((resolve, reject) => {
      const onReply = (reply: WriterReply): void => {
        if (reply.type === 'ready') resolve();
        else if (reply.type === 'open-failed') reject(new EventStoreUnavailableError(`${options.path}: the writer could not open the database: ${reply.message}`));
        else this.onWriterReply(reply);
      };
      this.writer.on('message', onReply);
      this.writer.on('error', (error) => {
        const failure = new EventStoreUnavailableError(`${options.path}: the writer thread failed: ${error.message}`, { cause: error });
        reject(failure);
        this.failWriter(failure);
      });
    });
    this.writerReady.catch(() => undefined);
    this.writerExited = new Promise((resolve) => {
      this.writer.once('exit', () => {
        this.failWriter(new EventStoreUnavailableError(`${options.path}: the writer thread exited`));
        resolve();
      });
    });

    this.checkpoints = {
      load: async (subscriptionId) => {
        this.assertOpen();
        const row = this.statements.loadCheckpoint.get(subscriptionId);
        return row ? parsePosition(row.position) : undefined;
      },
      save: async (subscriptionId, position) => {
        this.assertOpen();
        if (this.writerFailure) throw this.writerFailure;
        const id = this.nextRequestId++;
        const saved = new Promise<void>((resolve, reject) => this.checkpointsInFlight.set(id, { resolve, reject }));
        this.track(1);
        this.send({ type: 'checkpoint', id, subscriptionId, position: formatPosition(position), updatedAt: this.now() });
        await saved;
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
  // Append (to the writer thread, group commit there)
  // ---------------------------------------------------------------------------------------------

  async append(stream: string, events: readonly CustodianEvent[], options: AppendOptions): Promise<AppendResult> {
    if (this.closed || this.closing) throw new EventStoreClosedError();
    const expected = options?.expectedRevision;
    const batch = checkBatch(stream, events, expected);
    if (this.writerFailure) throw this.writerFailure;
    return new Promise<AppendResult>((resolve, reject) => {
      this.queue.push({ batch, expected, resolve, reject });
      this.track(1);
      this.scheduleSend();
    });
  }

  private scheduleSend(): void {
    if (this.sendScheduled) return;
    this.sendScheduled = true;
    // setImmediate, not a microtask: appends issued across several promise hops of the same
    // turn still go in one message (and so most likely one transaction).
    setImmediate(() => this.sendQueued());
  }

  private sendQueued(): void {
    this.sendScheduled = false;
    const pending = this.queue;
    if (pending.length === 0) return;
    this.queue = [];
    if (this.writerFailure) {
      for (const p of pending) this.settle(p, () => p.reject(this.writerFailure));
      return;
    }
    // recordedAt: when the batch leaves for the writer (this thread owns the clock).
    const recordedAt = this.now();
    const appends: AppendToEncode[] = pending.map((p) => {
      const id = this.nextRequestId++;
      this.inFlight.set(id, p);
      return { id, stream: p.batch.stream, expected: p.expected, events: p.batch.events, jsons: p.batch.jsons };
    });
    const flat = encodeAppends(recordedAt, appends);
    this.send({ type: 'append', appends: flat }, [flat.numbers.buffer as ArrayBuffer]);
  }

  private send(request: WriterRequest, transfer?: ArrayBuffer[]): void {
    this.writer.postMessage(request, transfer);
  }

  private onWriterReply(reply: WriterReply): void {
    switch (reply.type) {
      case 'appended':
      case 'appended-flat': {
        const outcomes: readonly WriterOutcome[] = reply.type === 'appended' ? reply.outcomes : decodeOutcomes(reply.outcomes);
        for (const outcome of outcomes) {
          const p = this.inFlight.get(outcome.id);
          if (!p) continue;
          this.inFlight.delete(outcome.id);
          if (outcome.ok) {
            const { result } = outcome;
            if (!result.deduplicated) this.rememberAppended(p.batch, result.firstPosition);
            this.settle(p, () =>
              p.resolve({
                stream: p.batch.stream,
                firstRevision: result.firstRevision,
                nextExpectedRevision: result.nextExpectedRevision,
                position: { commit: result.position, prepare: result.position },
                deduplicated: result.deduplicated,
              }),
            );
          } else {
            this.settle(p, () => p.reject(refusalError(outcome.refusal)));
          }
        }
        if (reply.wrote) {
          this.commits.notify();
          this.otherThreads.committed();
        }
        return;
      }
      case 'group-failed': {
        const failure = new EventStoreUnavailableError(`append to ${this.path} failed: ${reply.message}`);
        for (const id of reply.ids) {
          const p = this.inFlight.get(id);
          if (!p) continue;
          this.inFlight.delete(id);
          this.settle(p, () => p.reject(failure));
        }
        return;
      }
      case 'checkpoint-saved': {
        const waiter = this.checkpointsInFlight.get(reply.id);
        if (!waiter) return;
        this.checkpointsInFlight.delete(reply.id);
        this.track(-1);
        if (reply.error === undefined) waiter.resolve();
        else waiter.reject(new EventStoreUnavailableError(`saving a checkpoint in ${this.path} failed: ${reply.error}`));
        return;
      }
      default:
        return;
    }
  }

  private settle(_pending: PendingAppend, action: () => void): void {
    this.track(-1);
    action();
  }

  /** Appends and checkpoints not answered yet; the worker keeps the process alive only while there are some. */
  private owed = 0;
  private drainWaiters: (() => void)[] = [];
  private track(delta: number): void {
    const before = this.owed;
    this.owed += delta;
    if (before === 0 && this.owed > 0) this.writer.ref();
    else if (before > 0 && this.owed === 0) {
      this.writer.unref();
      const waiters = this.drainWaiters;
      this.drainWaiters = [];
      for (const wake of waiters) wake();
    }
  }

  private failWriter(failure: EventStoreUnavailableError): void {
    if (this.writerFailure) return;
    this.writerFailure = failure;
    const pending = [...this.inFlight.values(), ...this.queue];
    this.inFlight.clear();
    this.queue = [];
    for (const p of pending) this.settle(p, () => p.reject(failure));
    for (const waiter of this.checkpointsInFlight.values()) {
      this.track(-1);
      waiter.reject(failure);
    }
    this.checkpointsInFlight.clear();
  }

  // ---------------------------------------------------------------------------------------------
  // Reads
  // ---------------------------------------------------------------------------------------------

  /**
   * Events parsed and validated recently, by position, with the exact JSON they were parsed from.
   * Several subscriptions in one process (evidence log, SIEM, approvals read models) read the same
   * rows near the head: each row is parsed and validated once, and a row whose text differs from
   * what was parsed (changed underneath) is parsed and validated again. Frozen, since shared.
   */
  private readonly parsedRows = new Map<number, ParsedRow>();
  private parsedChars = 0;
  /**
   * The rows kept, oldest first, from `parsedHead` on (an entry no longer in parsedRows, replaced
   * or evicted, is skipped). Not the Map's own order: V8 leaves a deleted Map entry in place until
   * the table is rebuilt, so finding the oldest by iterating the Map stepped over thousands of
   * them for every row kept.
   */
  private parsedOrder: ({ readonly position: number; readonly row: ParsedRow } | undefined)[] = [];
  private parsedHead = 0;

  private parseRow(row: EventRow): CustodianEvent {
    const cached = this.parsedRows.get(row.position);
    if (cached && cached.json === row.json) return cached.event;
    let event: CustodianEvent;
    try {
      event = parseEventJson(row.json);
    } catch (error) {
      throw new CorruptEventError(`event at position ${row.position} cannot be read: ${(error as Error).message}`, { cause: error, position: sqlitePosition(row.position) });
    }
    deepFreeze(event);
    this.keepParsed(row.position, row.json, event);
    return event;
  }

  private keepParsed(position: number, json: string, event: CustodianEvent): void {
    const cached = this.parsedRows.get(position);
    if (cached) this.parsedChars -= cached.json.length;
    const row: ParsedRow = { json, event };
    this.parsedRows.set(position, row);
    this.parsedOrder.push({ position, row });
    this.parsedChars += json.length;
    // Oldest first; the row just kept stays even when it alone is over the budget.
    while (this.parsedRows.size > 1 && (this.parsedRows.size > PARSED_ROWS_KEPT || this.parsedChars > PARSED_CHARS_KEPT)) {
      const oldest = this.parsedOrder[this.parsedHead]!;
      // Consumed: the slot lets go of the row at once (until the front is dropped below, it would
      // keep every evicted row alive; with frames of 64 KiB that was the whole recorded body).
      this.parsedOrder[this.parsedHead++] = undefined;
      if (this.parsedRows.get(oldest.position) !== oldest.row) continue;
      this.parsedRows.delete(oldest.position);
      this.parsedChars -= oldest.row.json.length;
    }
    // Drop the consumed front now and then (amortised: at most once per PARSED_ROWS_KEPT rows kept).
    if (this.parsedHead >= PARSED_ROWS_KEPT && this.parsedHead * 2 >= this.parsedOrder.length) {
      this.parsedOrder = this.parsedOrder.slice(this.parsedHead);
      this.parsedHead = 0;
    }
  }

  /**
   * A committed append of events made by an EventFactory of this process (validated when made,
   * deeply frozen, their JSON exactly what was stored): readers in this process (subscriptions
   * near the head) take them from the parsed rows instead of parsing and validating the JSON they
   * were just written as. A row whose text is not that JSON is still parsed and validated.
   */
  private rememberAppended(batch: CheckedBatch, firstPosition: bigint): void {
    // Only for live subscriptions (which read the head soon): with none, the cache would only hold memory.
    if (this.subscriptions.size === 0) return;
    if (firstPosition <= 0n || firstPosition > BigInt(Number.MAX_SAFE_INTEGER)) return;
    const first = Number(firstPosition);
    batch.events.forEach((event, i) => {
      const json = batch.jsons[i]!;
      if (factoryEventJson(event) === json) this.keepParsed(first + i, json, event);
    });
  }

  private toRecorded(row: EventRow): RecordedEvent {
    const event = this.parseRow(row);
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
      const seen = this.commits.seen();
      const rows = this.statements.allForwards.all(cursor, this.pageSize);
      for (const row of rows) {
        // Appends this process queued while the writer is idle go to it first, so that it commits
        // them while this thread handles the rest of the page (the send waits for setImmediate,
        // which handlers that never wait for I/O would otherwise hold back to the page's end).
        if (this.sendScheduled && this.inFlight.size === 0) await new Promise<void>((resolve) => setImmediate(resolve));
        yield { kind: 'event', recorded: this.toRecorded(row) };
        cursor = row.position;
        if (signal.aborted) return;
      }
      if (rows.length < this.pageSize) {
        yield { kind: 'caught-up' };
        if (signal.aborted) return;
        // Woken by a commit in this process (this instance's, or another thread's on the same
        // file: cross-thread-commits.ts), else by the poll timer (commits by other processes).
        // While this process's appends are with the writer, a poll would read their rows between
        // COMMIT and the writer's answer, and parse and validate them again (rememberAppended):
        // their answer wakes the subscription instead, polls resume within a second at most.
        for (let polls = 0; ; polls++) {
          await this.commits.wait(seen, this.pollIntervalMs, signal);
          if (signal.aborted || this.commits.seen() !== seen || this.inFlight.size === 0 || polls * this.pollIntervalMs >= 1_000) break;
        }
      }
    }
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
      // Appends already accepted are committed, not dropped: send what is queued, then wait.
      this.sendQueued();
      await this.drained();
      this.closed = true;
      if (!this.writerFailure) {
        this.writer.ref();
        this.send({ type: 'close' });
      }
      await this.writerExited;
      this.otherThreads.close();
      this.db.close();
    })();
    return this.closing;
  }

  /** Resolves once the writer has answered every append and checkpoint sent so far. */
  private drained(): Promise<void> {
    if (this.owed === 0) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }
}

/** The shared error class for a refusal the writer made. */
function refusalError(refusal: WriterRefusal): Error {
  switch (refusal.kind) {
    case 'wrong-expected-revision':
      return new WrongExpectedRevisionError(refusal.stream, refusal.expected, refusal.actual);
    case 'sequence-mismatch':
      return new SequenceMismatchError(refusal.stream, refusal.eventId, refusal.expectedSequence, refusal.actualSequence);
    case 'idempotency-conflict':
      return new IdempotencyConflictError(refusal.stream, refusal.eventId, refusal.detail);
    case 'sqlite': {
      // SQLite refused the write itself (an append-only trigger, a constraint): as before, the
      // caller gets SQLite's error, under its name and code.
      const error = new Error(refusal.message) as Error & { code?: string };
      error.name = refusal.name;
      if (refusal.code !== undefined) error.code = refusal.code;
      return error;
    }
  }
}
