import { EventContractError, SystemClock, formatRfc3339Micros, parseEventJson, type Clock, type CustodianEvent } from '@custodian/event-contracts';
import {
  CommitSignal,
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
import pg from 'pg';
import { assertMigrated, migrate, storeSchema, type StoreSchema } from './schema.js';

export interface PostgresEventStoreOptions {
  /** libpq-style URL. It may carry a password: it is never logged nor put in an error message. */
  readonly connectionString: string;
  /** PostgreSQL schema of the store's tables (default `custodian`); several stores can share a database. */
  readonly schema?: string;
  /**
   * Create or upgrade the schema at open (default true). Services that connect as a role without
   * DDL rights pass false: the store then only checks the schema's version.
   */
  readonly migrate?: boolean;
  /** When migrating: the role the services connect as gets SELECT/INSERT on events (never UPDATE/DELETE). */
  readonly writerRole?: string;
  /** Rows per internal read page (bounded memory for reads and subscriptions). Default 500. */
  readonly pageSize?: number;
  /** Live subscriptions are woken by NOTIFY; this poll is the fallback while the listener is down. Default 1000 ms. */
  readonly pollIntervalMs?: number;
  /** Most appends committed in one group transaction. Default 500. */
  readonly maxGroupSize?: number;
  /** Connections for reads and the writer (default 4). One more is held for LISTEN. */
  readonly poolSize?: number;
  /** How long to wait for a connection (default 5000 ms). */
  readonly connectTimeoutMs?: number;
  /** Source of `recordedAt`. */
  readonly clock?: Clock;
}

interface EventRow {
  readonly position: string;
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

/** Thrown inside a group when the database refused a write: the group is retried one append at a time. */
class GroupWriteFailed extends Error {}

const position = (value: string | bigint): GlobalPosition => {
  const p = BigInt(value);
  return { commit: p, prepare: p };
};

/** Positions here are one number (like SQLite); both halves of a GlobalPosition carry it. */
function toRowPosition(p: GlobalPosition): string {
  if (p.commit !== p.prepare || p.commit < 0n) throw new InvalidRequestError(`not a PostgreSQL event store position: ${formatPosition(p)}`);
  return p.commit.toString();
}

function checkCount(name: string, value: number | undefined): number {
  if (value === undefined) return Number.POSITIVE_INFINITY;
  if (!Number.isSafeInteger(value) || value < 0) throw new InvalidRequestError(`${name} must be a non-negative integer, got ${value}`);
  return value;
}

function unavailable(what: string, error: unknown): EventStoreError {
  if (error instanceof EventStoreError) return error;
  // pg's errors name the server's complaint (code, message), never the connection string.
  const code = (error as { code?: unknown }).code;
  return new EventStoreUnavailableError(`${what}: ${(error as Error).message}${typeof code === 'string' ? ` (${code})` : ''}`, { cause: error });
}

/**
 * The distributed event store: PostgreSQL, shared by every Custodian process.
 *
 * Ordering: a single sequencer. Every insert takes the store's transaction-level advisory lock
 * and gets its position only then (in a trigger), so positions are handed out in commit order and
 * `position > cursor` never skips an event that commits late. This serializes appends across
 * processes (one transaction at a time); each transaction carries a whole group of appends, so
 * throughput is groups per fsync, not events per fsync. Emmett's alternative (reading below
 * `pg_snapshot_xmin`) allows parallel writers but lets any long transaction anywhere on the
 * cluster stall every subscriber; an evidence store prefers the simpler guarantee.
 *
 * Appends from one process are group-committed: those queued while a transaction is in flight go
 * in the next one. Idempotency, expected revisions and sequences are decided under the lock by
 * the same code as every adapter (`decideAppend`), so they cannot race another process.
 */
export class PostgresEventStore implements EventStore {
  readonly checkpoints: CheckpointStore;
  readonly schema: StoreSchema;

  private readonly pageSize: number;
  private readonly pollIntervalMs: number;
  private readonly maxGroupSize: number;
  private readonly clock: Clock;
  private readonly pool: pg.Pool;

  private queue: PendingAppend[] = [];
  private flushScheduled = false;
  private flushing: Promise<void> | undefined;
  private closed = false;
  private closing: Promise<void> | undefined;
  private listener: pg.Client | undefined;
  private listenerRetry: NodeJS.Timeout | undefined;
  /** Notified at every commit seen (ours, or NOTIFY from anyone); wakes live subscriptions. */
  private readonly commits = new CommitSignal();
  private readonly subscriptions = new Set<Subscription>();

  static async open(options: PostgresEventStoreOptions): Promise<PostgresEventStore> {
    const store = new PostgresEventStore(options);
    try {
      const client = await store.pool.connect();
      try {
        if (options.migrate ?? true) await migrate(client, store.schema, () => store.now(), options.writerRole);
        else await assertMigrated(client, store.schema);
      } finally {
        client.release();
      }
    } catch (error) {
      await store.pool.end().catch(() => undefined);
      throw unavailable(`PostgreSQL event store (schema "${store.schema.name}") cannot open`, error);
    }
    await store.startListener();
    return store;
  }

  private constructor(private readonly options: PostgresEventStoreOptions) {
    this.schema = storeSchema(options.schema);
    this.pageSize = options.pageSize ?? 500;
    this.pollIntervalMs = options.pollIntervalMs ?? 1000;
    this.maxGroupSize = options.maxGroupSize ?? 500;
    this.clock = options.clock ?? new SystemClock();
    for (const [name, value] of [['pageSize', this.pageSize], ['pollIntervalMs', this.pollIntervalMs], ['maxGroupSize', this.maxGroupSize]] as const) {
      if (!Number.isSafeInteger(value) || value < 1) throw new InvalidRequestError(`${name} must be a positive integer`);
    }
    this.pool = new pg.Pool({
      connectionString: options.connectionString,
      max: options.poolSize ?? 4,
      connectionTimeoutMillis: options.connectTimeoutMs ?? 5_000,
      application_name: 'custodian-event-store',
    });
    // An idle pooled connection that dies (server restart) is dropped by the pool; the next query
    // opens a new one. Without a listener this event would crash the process.
    this.pool.on('error', () => undefined);

    const s = this.schema;
    this.checkpoints = {
      load: async (subscriptionId) => {
        this.assertOpen();
        const { rows } = await this.query<{ position: string }>('load a checkpoint', `SELECT position FROM ${s.checkpoints} WHERE subscription_id = $1`, [subscriptionId]);
        return rows[0] ? parsePosition(rows[0].position) : undefined;
      },
      save: async (subscriptionId, at) => {
        this.assertOpen();
        await this.query(
          'save a checkpoint',
          `INSERT INTO ${s.checkpoints} (subscription_id, position, updated_at) VALUES ($1, $2, $3)
           ON CONFLICT (subscription_id) DO UPDATE SET position = excluded.position, updated_at = excluded.updated_at`,
          [subscriptionId, formatPosition(at), this.now()],
        );
      },
    };
  }

  private now(): string {
    return formatRfc3339Micros(this.clock.nowMicros());
  }

  private assertOpen(): void {
    if (this.closed) throw new EventStoreClosedError();
  }

  private async query<R extends pg.QueryResultRow>(what: string, text: string, values: unknown[]): Promise<pg.QueryResult<R>> {
    try {
      return await this.pool.query<R>(text, values);
    } catch (error) {
      throw unavailable(`PostgreSQL event store: ${what}`, error);
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Append (group commit, one group in flight per process)
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
    if (this.flushScheduled || this.flushing) return;
    this.flushScheduled = true;
    // setImmediate, not a microtask: appends issued across several promise hops join the group.
    setImmediate(() => {
      this.flushScheduled = false;
      this.flushing = this.flushQueue().finally(() => {
        this.flushing = undefined;
        if (this.queue.length > 0) this.scheduleFlush();
      });
    });
  }

  private async flushQueue(): Promise<void> {
    const pending = this.queue.splice(0, this.maxGroupSize);
    if (pending.length === 0) return;
    try {
      await this.commitGroup(pending);
    } catch (error) {
      if (!(error instanceof GroupWriteFailed) || pending.length === 1) {
        const failure = unavailable('append failed', error instanceof GroupWriteFailed ? error.cause : error);
        for (const p of pending) p.reject(failure);
        return;
      }
      // The database refused one of the group's writes: find which, without failing the others.
      for (const p of pending) {
        try {
          await this.commitGroup([p]);
        } catch (single) {
          p.reject(unavailable('append failed', single instanceof GroupWriteFailed ? single.cause : single));
        }
      }
    }
  }

  /**
   * One transaction for the group. A rejected COMMIT leaves the outcome unknown: every append of
   * the group is rejected as unavailable, and a retry (same event ids) is answered idempotently.
   */
  private async commitGroup(pending: readonly PendingAppend[]): Promise<void> {
    const client = await this.pool.connect();
    let broken: Error | undefined;
    try {
      await client.query('BEGIN');
      await client.query('SELECT pg_advisory_xact_lock($1)', [this.schema.lockKey.toString()]);
      const outcomes = await this.applyGroup(client, pending);
      await client.query('COMMIT');
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
      if (wrote) this.commits.notify();
    } catch (error) {
      await client.query('ROLLBACK').catch((rollbackError: unknown) => {
        broken = rollbackError as Error;
      });
      throw error;
    } finally {
      client.release(broken);
    }
  }

  /**
   * Decides every append of the group in order against the stored state plus what earlier appends
   * of the group wrote, then writes all of them with one INSERT: two round trips per group,
   * whatever its size. Positions of this group's events are known only after the INSERT, so
   * results naming them are completed afterwards.
   */
  private async applyGroup(client: pg.PoolClient, pending: readonly PendingAppend[]): Promise<Outcome[]> {
    const s = this.schema;
    const ids = pending.flatMap((p) => p.batch.events.map((e) => e.id));
    const streams = [...new Set(pending.map((p) => p.batch.stream))];
    let rows: { kind: string; position: string | null; id: string | null; stream: string; revision: number | null; json: string | null }[];
    try {
      // The last revision per stream is one index seek each (max over the (stream, revision) index
      // per stream); max with GROUP BY read every row of each stream, so each append of a long
      // session cost time in proportion to the session's length.
      ({ rows } = await client.query(
        `SELECT 'found' AS kind, position::text AS position, id, stream, revision, json FROM ${s.events} WHERE id = ANY($1::text[])
         UNION ALL
         SELECT 'last', NULL, NULL, last.stream, last.revision, NULL
           FROM unnest($2::text[]) AS wanted(stream)
           CROSS JOIN LATERAL (SELECT wanted.stream, max(revision) AS revision FROM ${s.events} WHERE stream = wanted.stream) AS last
          WHERE last.revision IS NOT NULL`,
        [ids, streams],
      ));
    } catch (error) {
      throw new GroupWriteFailed('read before append failed', { cause: error });
    }
    // Stored refs; the group's own writes carry PENDING until the INSERT returns their positions.
    const PENDING: GlobalPosition = { commit: -1n, prepare: -1n };
    const stored = new Map<string, StoredEventRef>();
    const revisions = new Map<string, number>();
    for (const row of rows) {
      if (row.kind === 'last') revisions.set(row.stream, row.revision!);
      else stored.set(row.id!, { id: row.id!, stream: row.stream, revision: row.revision!, position: position(row.position!), stored: row.json! });
    }
    type Draft = { readonly ok: true; readonly result: AppendResult; readonly lastId: string } | { readonly ok: false; readonly error: unknown };
    const drafts: Draft[] = [];
    const toInsert: { event: CustodianEvent; json: string; stream: string }[] = [];
    for (const { batch, expected } of pending) {
      const last = revisions.get(batch.stream);
      try {
        const found = batch.events.map((e) => stored.get(e.id));
        const decision = decideAppend(batch, expected, last === undefined ? 'no-stream' : last, found);
        if (decision !== 'write') {
          drafts.push({ ok: true, result: decision, lastId: batch.events[batch.events.length - 1]!.id });
          continue;
        }
      } catch (error) {
        if (error instanceof EventStoreError || error instanceof EventContractError) {
          drafts.push({ ok: false, error });
          continue;
        }
        throw error;
      }
      batch.events.forEach((event, i) => {
        toInsert.push({ event, json: batch.jsons[i]!, stream: batch.stream });
        stored.set(event.id, { id: event.id, stream: batch.stream, revision: event.sequence, position: PENDING, stored: batch.jsons[i]! });
      });
      revisions.set(batch.stream, batch.lastSequence);
      const result: AppendResult = { stream: batch.stream, firstRevision: batch.firstSequence, nextExpectedRevision: batch.lastSequence, position: PENDING, deduplicated: false };
      drafts.push({ ok: true, result, lastId: batch.events[batch.events.length - 1]!.id });
    }

    const positions = new Map<string, GlobalPosition>();
    if (toInsert.length > 0) {
      let inserted: { id: string; position: string }[];
      try {
        ({ rows: inserted } = await client.query<{ id: string; position: string }>(
          `INSERT INTO ${s.events} (id, stream, revision, type, schema_version, occurred_at, recorded_at, json)
           SELECT id, stream, revision, type, schema_version, occurred_at, $1, json
             FROM unnest($2::text[], $3::text[], $4::int[], $5::text[], $6::int[], $7::text[], $8::text[])
                  WITH ORDINALITY AS e(id, stream, revision, type, schema_version, occurred_at, json, n)
            ORDER BY n
           RETURNING id, position::text AS position`,
          [
            this.now(),
            toInsert.map((r) => r.event.id),
            toInsert.map((r) => r.stream),
            toInsert.map((r) => r.event.sequence),
            toInsert.map((r) => r.event.type),
            toInsert.map((r) => r.event.schemaVersion),
            toInsert.map((r) => r.event.occurredAt),
            toInsert.map((r) => r.json),
          ],
        ));
      } catch (error) {
        throw new GroupWriteFailed('insert failed', { cause: error });
      }
      if (inserted.length !== toInsert.length) throw new GroupWriteFailed(`insert stored ${inserted.length} of ${toInsert.length} events`);
      for (const row of inserted) positions.set(row.id, position(row.position));
    }
    return drafts.map((draft): Outcome => {
      if (!draft.ok) return draft;
      if (draft.result.position !== PENDING) return { ok: true, result: draft.result };
      const at = positions.get(draft.lastId);
      if (!at) throw new GroupWriteFailed(`no position returned for event ${draft.lastId}`);
      return { ok: true, result: { ...draft.result, position: at } };
    });
  }

  // ---------------------------------------------------------------------------------------------
  // Reads
  // ---------------------------------------------------------------------------------------------

  private toRecorded(row: EventRow): RecordedEvent {
    let event: CustodianEvent;
    try {
      event = parseEventJson(row.json);
    } catch (error) {
      throw new CorruptEventError(`event at position ${row.position} cannot be read: ${(error as Error).message}`, { cause: error });
    }
    if (event.stream !== row.stream || event.sequence !== row.revision) {
      throw new CorruptEventError(`event at position ${row.position} says ${event.stream}@${event.sequence} but is stored at ${row.stream}@${row.revision}`);
    }
    return { event, stream: row.stream, revision: row.revision, position: position(row.position), recordedAt: row.recorded_at };
  }

  // `position` is read as text (bigint beyond 2^53); ORDER BY must then name the table's column, not this alias.
  private readonly columns = 'position::text AS position, stream, revision, recorded_at, json';

  async *readStream(stream: string, options: ReadStreamOptions = {}): AsyncIterable<RecordedEvent> {
    this.assertOpen();
    assertValidStreamName(stream);
    if (options.direction !== undefined && options.direction !== 'forwards' && options.direction !== 'backwards') {
      throw new InvalidRequestError(`direction must be 'forwards' or 'backwards'`);
    }
    const forwards = (options.direction ?? 'forwards') === 'forwards';
    let remaining = checkCount('maxCount', options.maxCount);
    let next = options.fromRevision ?? (forwards ? 0 : 2_147_483_647);
    checkCount('fromRevision', next);
    next = Math.min(next, 2_147_483_647);
    const s = this.schema;
    const sql = forwards
      ? `SELECT ${this.columns} FROM ${s.events} WHERE stream = $1 AND revision >= $2 ORDER BY revision ASC LIMIT $3`
      : `SELECT ${this.columns} FROM ${s.events} WHERE stream = $1 AND revision <= $2 ORDER BY revision DESC LIMIT $3`;
    while (remaining > 0 && next >= 0) {
      this.assertOpen();
      const limit = Math.min(this.pageSize, remaining);
      const { rows } = await this.query<EventRow>(`read ${stream}`, sql, [stream, next, limit]);
      for (const row of rows) yield this.toRecorded(row);
      if (rows.length < limit) return;
      remaining -= rows.length;
      next = rows[rows.length - 1]!.revision + (forwards ? 1 : -1);
    }
  }

  private page(after: string, limit: number): Promise<pg.QueryResult<EventRow>> {
    return this.query<EventRow>('read all', `SELECT ${this.columns} FROM ${this.schema.events} WHERE position > $1 ORDER BY ${this.schema.events}.position ASC LIMIT $2`, [after, limit]);
  }

  async *readAll(options: ReadAllOptions = {}): AsyncIterable<RecordedEvent> {
    this.assertOpen();
    let remaining = checkCount('maxCount', options.maxCount);
    let after = options.fromPosition ? toRowPosition(options.fromPosition) : '0';
    while (remaining > 0) {
      this.assertOpen();
      const limit = Math.min(this.pageSize, remaining);
      const { rows } = await this.page(after, limit);
      for (const row of rows) yield this.toRecorded(row);
      if (rows.length < limit) return;
      remaining -= rows.length;
      after = rows[rows.length - 1]!.position;
    }
  }

  async streamRevision(stream: string): Promise<StreamRevision> {
    this.assertOpen();
    assertValidStreamName(stream);
    const { rows } = await this.query<{ revision: number | null }>(`read ${stream}`, `SELECT max(revision) AS revision FROM ${this.schema.events} WHERE stream = $1`, [stream]);
    const last = rows[0]?.revision ?? null;
    return last === null ? 'no-stream' : last;
  }

  // ---------------------------------------------------------------------------------------------
  // Subscriptions (catch-up by position, live by NOTIFY with a polling fallback)
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
    let cursor = after ? toRowPosition(after) : '0';
    while (!signal.aborted) {
      const seen = this.commits.seen();
      const { rows } = await this.page(cursor, this.pageSize);
      for (const row of rows) {
        yield { kind: 'event', recorded: this.toRecorded(row) };
        cursor = row.position;
        if (signal.aborted) return;
      }
      if (rows.length < this.pageSize) {
        yield { kind: 'caught-up' };
        if (signal.aborted) return;
        await this.commits.wait(seen, this.listener ? this.pollIntervalMs * 5 : this.pollIntervalMs, signal);
      }
    }
  }


  /** LISTEN on a dedicated connection; reconnects after a failure, polling meanwhile. */
  private async startListener(): Promise<void> {
    if (this.closed || this.closing) return;
    const client = new pg.Client({ connectionString: this.options.connectionString, connectionTimeoutMillis: this.options.connectTimeoutMs ?? 5_000, application_name: 'custodian-event-store-listener' });
    const lost = (): void => {
      if (this.listener !== client) return;
      this.listener = undefined;
      client.removeAllListeners('notification');
      void client.end().catch(() => undefined);
      // Something may have committed while nobody listened.
      this.commits.notify();
      if (!this.closed && !this.closing) this.listenerRetry = setTimeout(() => void this.startListener(), this.pollIntervalMs);
    };
    client.on('error', lost);
    client.on('end', lost);
    try {
      await client.connect();
      await client.query(`LISTEN "${this.schema.channel}"`);
    } catch {
      client.removeAllListeners('end');
      void client.end().catch(() => undefined);
      if (!this.closed && !this.closing) this.listenerRetry = setTimeout(() => void this.startListener(), this.pollIntervalMs);
      return;
    }
    if (this.closed || this.closing) {
      await client.end().catch(() => undefined);
      return;
    }
    client.on('notification', () => this.commits.notify());
    this.listener = client;
    // Commits between the first read and LISTEN would otherwise wait for the poll.
    this.commits.notify();
  }

  /** Whether live subscriptions are woken by NOTIFY right now (false: they poll). */
  get listening(): boolean {
    return this.listener !== undefined;
  }

  // ---------------------------------------------------------------------------------------------
  // Lifecycle
  // ---------------------------------------------------------------------------------------------

  async ping(): Promise<void> {
    this.assertOpen();
    await this.query('ping', 'SELECT 1', []);
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      await Promise.all([...this.subscriptions].map((s) => s.stop()));
      // Appends already accepted are committed, not dropped.
      while (this.queue.length > 0 || this.flushing || this.flushScheduled) {
        if (this.flushing) await this.flushing;
        else await new Promise((resolve) => setImmediate(resolve));
      }
      this.closed = true;
      clearTimeout(this.listenerRetry);
      const listener = this.listener;
      this.listener = undefined;
      await listener?.end().catch(() => undefined);
      await this.pool.end().catch(() => undefined);
    })();
    return this.closing;
  }
}
