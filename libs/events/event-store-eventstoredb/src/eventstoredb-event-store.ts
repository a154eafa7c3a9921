import { formatRfc3339Micros, parseEvent, type CustodianEvent } from '@custodian/event-contracts';
import {
  CorruptEventError,
  EventStoreClosedError,
  EventStoreError,
  EventStoreUnavailableError,
  InvalidRequestError,
  WrongExpectedRevisionError,
  assertValidStreamName,
  checkBatch,
  comparePositions,
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
import {
  BACKWARDS,
  END,
  EventStoreDBClient,
  FORWARDS,
  NO_STREAM,
  START,
  StreamNotFoundError,
  WrongExpectedVersionError,
  jsonEvent,
  streamNameFilter,
  type AllStreamSubscription,
  type AppendExpectedRevision,
  type ResolvedEvent,
  type AllStreamResolvedEvent,
  type Position,
} from '@eventstore/db-client';

export interface EventStoreDbEventStoreOptions {
  /** e.g. `esdb://127.0.0.1:2113?tls=false` */
  readonly connectionString: string;
  /** Events per internal read request (bounded memory). Default 500. */
  readonly pageSize?: number;
  /** Buffered subscription events before the gRPC stream is paused. Default 500. */
  readonly subscriptionBuffer?: number;
}

/** Checkpoints live in ordinary streams with this prefix; they are hidden from reads and subscriptions. */
export const CHECKPOINT_STREAM_PREFIX = 'custodian.checkpoint-';
const CHECKPOINT_EVENT_TYPE = 'custodian.checkpoint-saved';

/** Server-side subscription filter: everything except system (`$`) and checkpoint streams. */
export const USER_STREAM_REGEX = `^(?!\\$|${CHECKPOINT_STREAM_PREFIX.replace(/\./g, '\\.')})`;

export function isCustodianStream(stream: string): boolean {
  return !stream.startsWith('$') && !stream.startsWith(CHECKPOINT_STREAM_PREFIX);
}

/**
 * The server-side expected revision that makes the envelope sequence check atomic: a batch whose
 * first event has sequence N may only land on a stream whose last revision is N-1.
 */
export function serverExpectedRevision(firstSequence: number): AppendExpectedRevision {
  return firstSequence === 0 ? NO_STREAM : BigInt(firstSequence - 1);
}

/** Whether the caller's expectation can hold when the batch lands where its sequence says. */
export function expectationCompatible(expected: ExpectedRevision, firstSequence: number): boolean {
  if (expected === 'any') return true;
  if (expected === 'no-stream') return firstSequence === 0;
  if (expected === 'stream-exists') return firstSequence > 0;
  return expected === firstSequence - 1;
}

interface RawEvent {
  readonly id: string;
  readonly stream: string;
  readonly revision: number;
  readonly position: GlobalPosition | undefined;
  readonly created: Date;
  readonly isJson: boolean;
  readonly data: unknown;
}

function rawOf(resolved: ResolvedEvent | AllStreamResolvedEvent): RawEvent | undefined {
  const e = resolved.event;
  if (!e) return undefined;
  return {
    id: e.id,
    stream: e.streamId,
    revision: Number(e.revision),
    position: e.position ? { commit: e.position.commit, prepare: e.position.prepare } : undefined,
    created: e.created,
    isJson: e.isJson,
    data: e.data,
  };
}

function toEsdbPosition(position: GlobalPosition): Position {
  return { commit: position.commit, prepare: position.prepare };
}

function checkCount(name: string, value: number | undefined): number {
  if (value === undefined) return Number.POSITIVE_INFINITY;
  if (!Number.isSafeInteger(value) || value < 0) throw new InvalidRequestError(`${name} must be a non-negative integer, got ${value}`);
  return value;
}

/** Maps client/transport failures to the port's error, keeping our own errors as they are. */
function mapError(error: unknown, what: string): unknown {
  if (error instanceof EventStoreError) return error;
  if (error instanceof Error && 'type' in error && typeof (error as { type: unknown }).type === 'string') {
    return new EventStoreUnavailableError(`${what}: ${error.message}`, { cause: error });
  }
  return error;
}

/** Pull queue over the push-based gRPC subscription, pausing the stream when the consumer lags. */
class SubscriptionQueue<T> {
  private readonly items: T[] = [];
  private waiter: (() => void) | undefined;
  private ended = false;
  private failure: { error: unknown } | undefined;

  constructor(
    private readonly high: number,
    private readonly onHigh: () => void,
    private readonly onLow: () => void,
  ) {}

  get size(): number {
    return this.items.length;
  }

  push(item: T): void {
    this.items.push(item);
    if (this.items.length >= this.high) this.onHigh();
    this.wake();
  }

  fail(error: unknown): void {
    this.failure ??= { error };
    this.wake();
  }

  end(): void {
    this.ended = true;
    this.wake();
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }

  /** The next item; undefined once ended. Throws the stream's error. */
  async next(): Promise<T | undefined> {
    for (;;) {
      if (this.failure) throw this.failure.error;
      if (this.items.length > 0) {
        const item = this.items.shift()!;
        if (this.items.length === Math.floor(this.high / 2)) this.onLow();
        return item;
      }
      if (this.ended) return undefined;
      await new Promise<void>((resolve) => (this.waiter = resolve));
    }
  }
}

type QueueItem = { readonly kind: 'event'; readonly raw: RawEvent } | { readonly kind: 'progress'; readonly position: GlobalPosition } | { readonly kind: 'caught-up' };

/**
 * EventStore on EventStoreDB / KurrentDB (gRPC client). The envelope id is the server event id,
 * so the server deduplicates retries too; the envelope is the event's JSON data.
 *
 * Ordering: `$all` is ordered by commit position, i.e. commit order.
 * Limits versus SQLite: ids are only checked where a batch lands (EventStoreDB has no global id
 * index), so an id reused in another stream or at another revision is not detected.
 * The database should be dedicated to Custodian: readAll refuses events it cannot parse.
 */
export class EventStoreDbEventStore implements EventStore {
  readonly checkpoints: CheckpointStore;
  private readonly pageSize: number;
  private readonly subscriptionBuffer: number;
  private readonly subscriptions = new Set<Subscription>();
  private closed = false;
  private closing: Promise<void> | undefined;

  static async open(options: EventStoreDbEventStoreOptions): Promise<EventStoreDbEventStore> {
    const store = new EventStoreDbEventStore(EventStoreDBClient.connectionString(options.connectionString), options);
    return store;
  }

  constructor(
    private readonly client: EventStoreDBClient,
    options: Omit<EventStoreDbEventStoreOptions, 'connectionString'> = {},
  ) {
    this.pageSize = options.pageSize ?? 500;
    this.subscriptionBuffer = options.subscriptionBuffer ?? 500;
    this.checkpoints = {
      load: async (subscriptionId) => {
        this.assertOpen();
        const [last] = await this.readRaw(CHECKPOINT_STREAM_PREFIX + subscriptionId, END, 1, 'backwards');
        if (!last) return undefined;
        const data = last.data as { position?: unknown };
        if (typeof data?.position !== 'string') throw new CorruptEventError(`checkpoint of ${subscriptionId} has no position`);
        return parsePosition(data.position);
      },
      save: async (subscriptionId, position) => {
        this.assertOpen();
        const stream = CHECKPOINT_STREAM_PREFIX + subscriptionId;
        try {
          const result = await this.client.appendToStream(stream, jsonEvent({ type: CHECKPOINT_EVENT_TYPE, data: { position: formatPosition(position) } }));
          // Only the latest checkpoint matters; let the server scavenge older ones.
          if (result.nextExpectedRevision === 0n) await this.client.setStreamMetadata(stream, { maxCount: 5 });
        } catch (error) {
          throw mapError(error, `saving checkpoint ${subscriptionId}`);
        }
      },
    };
  }

  private assertOpen(): void {
    if (this.closed) throw new EventStoreClosedError();
  }

  private assertCustodianStream(stream: string): void {
    assertValidStreamName(stream);
    if (!isCustodianStream(stream)) throw new InvalidRequestError(`stream names starting with ${CHECKPOINT_STREAM_PREFIX} are reserved`);
  }

  // ---------------------------------------------------------------------------------------------
  // Append
  // ---------------------------------------------------------------------------------------------

  async append(stream: string, events: readonly CustodianEvent[], options: AppendOptions): Promise<AppendResult> {
    if (this.closed || this.closing) throw new EventStoreClosedError();
    this.assertCustodianStream(stream);
    const expected = options?.expectedRevision;
    const batch = checkBatch(stream, events, expected);
    const data = batch.events.map((event) => jsonEvent({ id: event.id, type: event.type, data: JSON.parse(JSON.stringify(event)) as Record<string, unknown> }));

    // A batch that is already stored (a retry) must be recognized before writing, whatever it expected.
    const known = await this.classify(batch, expected, false);
    if (known !== 'write') return known;
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        const result = await this.client.appendToStream(stream, data, { expectedRevision: serverExpectedRevision(batch.firstSequence) });
        const position = result.position ?? (await this.positionOf(stream, batch.lastSequence));
        return { stream, firstRevision: batch.firstSequence, nextExpectedRevision: Number(result.nextExpectedRevision), position, deduplicated: false };
      } catch (error) {
        if (!(error instanceof WrongExpectedVersionError)) throw mapError(error, `append to ${stream}`);
        // Someone else moved the stream between our check and the write: classify again.
        const again = await this.classify(batch, expected, true);
        if (again !== 'write') return again;
      }
    }
    const actual = await this.streamRevision(stream);
    throw new WrongExpectedRevisionError(stream, expected === 'any' ? batch.firstSequence - 1 : expected, actual);
  }

  /**
   * Reads what is stored where the batch would land and decides: the original result of a
   * retry, 'write', or the error. With `mustRead` false, skips the revision read when the
   * caller's expectation agrees with the sequence (the server checks it atomically on write).
   */
  private async classify(batch: CheckedBatch, expected: ExpectedRevision, mustRead: boolean): Promise<AppendResult | 'write'> {
    const landed = await this.readRaw(batch.stream, BigInt(batch.firstSequence), batch.events.length, 'forwards');
    const byId = new Map(landed.map((raw) => [raw.id, raw]));
    const found: (StoredEventRef | undefined)[] = batch.events.map((event) => {
      const raw = byId.get(event.id);
      if (!raw) return undefined;
      if (!raw.position) throw new EventStoreUnavailableError('the server does not report event positions (EventStoreDB 22.6 or later is required)');
      return { id: raw.id, stream: raw.stream, revision: raw.revision, position: raw.position, stored: raw.data as object };
    });
    if (!mustRead && landed.length === 0 && expectationCompatible(expected, batch.firstSequence)) return 'write';
    const current = await this.streamRevision(batch.stream);
    return decideAppend(batch, expected, current, found);
  }

  private async positionOf(stream: string, revision: number): Promise<GlobalPosition> {
    const [raw] = await this.readRaw(stream, BigInt(revision), 1, 'forwards');
    if (!raw?.position) throw new EventStoreUnavailableError('the server does not report event positions (EventStoreDB 22.6 or later is required)');
    return raw.position;
  }

  // ---------------------------------------------------------------------------------------------
  // Reads
  // ---------------------------------------------------------------------------------------------

  /** One bounded read of a stream; a missing stream reads as empty. */
  private async readRaw(stream: string, from: bigint | typeof START | typeof END, maxCount: number, direction: 'forwards' | 'backwards'): Promise<RawEvent[]> {
    const out: RawEvent[] = [];
    try {
      for await (const resolved of this.client.readStream(stream, { fromRevision: from, maxCount, direction: direction === 'forwards' ? FORWARDS : BACKWARDS })) {
        const raw = rawOf(resolved);
        if (raw) out.push(raw);
      }
    } catch (error) {
      if (error instanceof StreamNotFoundError) return [];
      throw mapError(error, `reading ${stream}`);
    }
    return out;
  }

  private toRecorded(raw: RawEvent): RecordedEvent {
    if (!raw.position) throw new EventStoreUnavailableError('the server does not report event positions (EventStoreDB 22.6 or later is required)');
    const at = { position: raw.position };
    if (!raw.isJson) throw new CorruptEventError(`event ${raw.id} in ${raw.stream} is not JSON`, at);
    let event: CustodianEvent;
    try {
      event = parseEvent(raw.data);
    } catch (error) {
      throw new CorruptEventError(`event ${raw.stream}@${raw.revision} cannot be read: ${(error as Error).message}`, { cause: error, ...at });
    }
    if (event.stream !== raw.stream || event.sequence !== raw.revision || event.id !== raw.id) {
      throw new CorruptEventError(`event ${event.id} says ${event.stream}@${event.sequence} but is stored as ${raw.id} at ${raw.stream}@${raw.revision}`, at);
    }
    return {
      event,
      stream: raw.stream,
      revision: raw.revision,
      position: raw.position,
      recordedAt: formatRfc3339Micros(BigInt(raw.created.getTime()) * 1000n),
    };
  }

  async *readStream(stream: string, options: ReadStreamOptions = {}): AsyncIterable<RecordedEvent> {
    this.assertOpen();
    this.assertCustodianStream(stream);
    if (options.direction !== undefined && options.direction !== 'forwards' && options.direction !== 'backwards') {
      throw new InvalidRequestError(`direction must be 'forwards' or 'backwards'`);
    }
    const direction = options.direction ?? 'forwards';
    let remaining = checkCount('maxCount', options.maxCount);
    if (options.fromRevision !== undefined) checkCount('fromRevision', options.fromRevision);
    let next: bigint | typeof START | typeof END = options.fromRevision !== undefined ? BigInt(options.fromRevision) : direction === 'forwards' ? START : END;
    while (remaining > 0) {
      const limit = Math.min(this.pageSize, remaining);
      const page = await this.readRaw(stream, next, limit, direction);
      for (const raw of page) yield this.toRecorded(raw);
      if (page.length < limit) return;
      remaining -= page.length;
      const last = page[page.length - 1]!.revision;
      if (direction === 'backwards' && last === 0) return;
      next = BigInt(direction === 'forwards' ? last + 1 : last - 1);
    }
  }

  async *readAll(options: ReadAllOptions = {}): AsyncIterable<RecordedEvent> {
    this.assertOpen();
    let remaining = checkCount('maxCount', options.maxCount);
    // The server reads from a position inclusively; ours is exclusive, so skip up to and including it.
    let after = options.fromPosition;
    while (remaining > 0) {
      const page: RawEvent[] = [];
      try {
        for await (const resolved of this.client.readAll({ fromPosition: after ? toEsdbPosition(after) : START, maxCount: this.pageSize, direction: FORWARDS })) {
          const raw = rawOf(resolved);
          if (raw) page.push(raw);
        }
      } catch (error) {
        throw mapError(error, 'reading $all');
      }
      for (const raw of page) {
        if (!raw.position || (after && comparePositions(raw.position, after) <= 0)) continue;
        after = raw.position;
        if (!isCustodianStream(raw.stream)) continue;
        yield this.toRecorded(raw);
        remaining -= 1;
        if (remaining <= 0) return;
      }
      if (page.length < this.pageSize) return;
    }
  }

  async streamRevision(stream: string): Promise<StreamRevision> {
    this.assertOpen();
    assertValidStreamName(stream);
    const [last] = await this.readRaw(stream, END, 1, 'backwards');
    return last ? last.revision : 'no-stream';
  }

  private async lastAllPosition(): Promise<GlobalPosition | undefined> {
    try {
      for await (const resolved of this.client.readAll({ fromPosition: END, maxCount: 1, direction: BACKWARDS })) {
        const raw = rawOf(resolved);
        if (raw?.position) return raw.position;
      }
    } catch (error) {
      throw mapError(error, 'reading the end of $all');
    }
    return undefined;
  }

  // ---------------------------------------------------------------------------------------------
  // Subscriptions
  // ---------------------------------------------------------------------------------------------

  subscribeToAll(options: SubscribeToAllOptions): Subscription {
    if (this.closed || this.closing) throw new EventStoreClosedError();
    const subscription = startSubscription(options, this.checkpoints, (after, signal) => this.subscriptionItems(after, signal));
    this.subscriptions.add(subscription);
    void subscription.done.catch(() => undefined).finally(() => this.subscriptions.delete(subscription));
    return subscription;
  }

  private async *subscriptionItems(after: GlobalPosition | undefined, signal: AbortSignal): AsyncIterable<SubscriptionItem> {
    // Caught up = past the end of $all as it was when we started; system events past it are
    // filtered out server-side, so the filter's checkpoints and the client's caughtUp also count.
    const end = await this.lastAllPosition();
    const pastEnd = (p: GlobalPosition): boolean => end === undefined || comparePositions(p, end) >= 0;
    let caughtUp = end === undefined || (after !== undefined && pastEnd(after));
    if (caughtUp) yield { kind: 'caught-up' };
    if (signal.aborted) return;

    // The callbacks only run once `subscription` exists (they are driven by its events).
    const queue = new SubscriptionQueue<QueueItem>(
      this.subscriptionBuffer,
      () => subscription.pause(),
      () => subscription.resume(),
    );
    const subscription: AllStreamSubscription = this.client.subscribeToAll({
      fromPosition: after ? toEsdbPosition(after) : START,
      filter: streamNameFilter({
        regex: USER_STREAM_REGEX,
        checkpointInterval: 1,
        checkpointReached: (_sub, position) => queue.push({ kind: 'progress', position: { commit: position.commit, prepare: position.prepare } }),
      }),
    });
    subscription.on('data', (resolved: AllStreamResolvedEvent) => {
      const raw = rawOf(resolved);
      if (raw) queue.push({ kind: 'event', raw });
    });
    subscription.on('caughtUp', () => queue.push({ kind: 'caught-up' }));
    subscription.on('error', (error: Error) => queue.fail(mapError(error, 'subscription to $all')));
    subscription.on('end', () => queue.end());
    const onAbort = (): void => queue.end();
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      for (;;) {
        const item = await queue.next();
        if (item === undefined || signal.aborted) return;
        if (item.kind === 'event') {
          const { raw } = item;
          if (!raw.position || (after && comparePositions(raw.position, after) <= 0) || !isCustodianStream(raw.stream)) continue;
          yield { kind: 'event', recorded: this.toRecorded(raw) };
          if (signal.aborted) return;
          if (!caughtUp && pastEnd(raw.position)) caughtUp = true;
          // Idle after a live burst: lets the runner save its checkpoint.
          if (caughtUp && queue.size === 0) yield { kind: 'caught-up' };
        } else if (!caughtUp && (item.kind === 'caught-up' || pastEnd(item.position))) {
          caughtUp = true;
          yield { kind: 'caught-up' };
        }
      }
    } finally {
      signal.removeEventListener('abort', onAbort);
      await subscription.unsubscribe().catch(() => undefined);
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Lifecycle
  // ---------------------------------------------------------------------------------------------

  async ping(): Promise<void> {
    this.assertOpen();
    try {
      await this.lastAllPosition();
    } catch (error) {
      throw new EventStoreUnavailableError(`EventStoreDB does not answer: ${(error as Error).message}`, { cause: error });
    }
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      await Promise.all([...this.subscriptions].map((s) => s.stop()));
      this.closed = true;
      await this.client.dispose();
    })();
    return this.closing;
  }
}
