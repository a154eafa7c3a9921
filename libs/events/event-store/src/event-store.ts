import type { CustodianEvent } from '@custodian/event-contracts';
import type { GlobalPosition } from './position.js';

/**
 * What the caller believes about the stream before appending:
 * - `'any'`: no check (the envelope `sequence` is still checked, so this is never a blind write);
 * - `'no-stream'`: the stream must not exist yet;
 * - `'stream-exists'`: the stream must hold at least one event;
 * - a number: the revision (0-based) of the stream's last event.
 */
export type ExpectedRevision = 'any' | 'no-stream' | 'stream-exists' | number;

/** The revision of a stream's last event, or `'no-stream'`; usable directly as an `ExpectedRevision`. */
export type StreamRevision = number | 'no-stream';

export interface AppendOptions {
  readonly expectedRevision: ExpectedRevision;
}

export interface AppendResult {
  readonly stream: string;
  /** Revision of the first event of the batch. */
  readonly firstRevision: number;
  /** Revision of the last event of the batch: pass it as `expectedRevision` of the next append. */
  readonly nextExpectedRevision: number;
  /** Global position of the last event of the batch. */
  readonly position: GlobalPosition;
  /** True when every event of the batch was already stored (an idempotent retry): nothing was written. */
  readonly deduplicated: boolean;
}

/** An event as read back: parsed and upcast to the latest schema version, with where it is stored. */
export interface RecordedEvent {
  readonly event: CustodianEvent;
  readonly stream: string;
  /** 0-based revision within the stream; always equals `event.sequence`. */
  readonly revision: number;
  readonly position: GlobalPosition;
  /** When the store committed it: RFC 3339 UTC with microseconds (store clock, not the producer's). */
  readonly recordedAt: string;
}

export type ReadDirection = 'forwards' | 'backwards';

export interface ReadStreamOptions {
  /** Inclusive. Default: the first revision (forwards) or the last one (backwards). */
  readonly fromRevision?: number;
  readonly maxCount?: number;
  readonly direction?: ReadDirection;
}

export interface ReadAllOptions {
  /** Exclusive: reading starts with the first event committed after this position. Default: the beginning. */
  readonly fromPosition?: GlobalPosition;
  readonly maxCount?: number;
}

/** Durable "last handled position" per subscription. */
export interface CheckpointStore {
  load(subscriptionId: string): Promise<GlobalPosition | undefined>;
  save(subscriptionId: string, position: GlobalPosition): Promise<void>;
}

export type SubscriptionHandler = (recorded: RecordedEvent) => Promise<void> | void;

export interface SubscribeToAllOptions {
  /** Names the checkpoint; one running subscription per id. */
  readonly subscriptionId: string;
  /** `'start'`: from the first event; `'checkpoint'`: after the saved checkpoint (the first event when there is none). */
  readonly from: 'start' | 'checkpoint';
  /** Awaited for one event at a time, in commit order. Throwing stops the subscription. */
  readonly handler: SubscriptionHandler;
  /** Save the checkpoint after this many handled events (default 100); it is also saved when idle and on stop. */
  readonly checkpointEvery?: number;
  /** Where checkpoints live; default: the store's own `checkpoints`. */
  readonly checkpoints?: CheckpointStore;
  /** Aborting stops the subscription like `stop()`. */
  readonly signal?: AbortSignal;
}

export interface Subscription {
  /** Resolves when every event committed before the subscription reached the end has been handled; rejects if it failed first. */
  readonly caughtUp: Promise<void>;
  /** Stops after the event in hand, saves the checkpoint; resolves when stopped (never rejects; see `done`). */
  stop(): Promise<void>;
  /** Resolves when stopped by `stop()`/the signal; rejects with `SubscriptionFailedError` when the handler or store failed. */
  readonly done: Promise<void>;
  /** Position of the last handled event, if any. */
  lastHandledPosition(): GlobalPosition | undefined;
}

/**
 * The append-only log of Custodian events.
 *
 * Ordering: within a stream, by revision (= envelope `sequence`, no gaps); across streams, by
 * global position, which is commit order (`readAll` and subscriptions never see a later commit
 * before an earlier one).
 *
 * Idempotency: the event id is the idempotency key. Re-appending a batch whose ids are already
 * stored in this stream at the same revisions (with the same content) returns the original result
 * with `deduplicated: true`, whatever the `expectedRevision`.
 *
 * Delivery: subscriptions are at-least-once (a crash between handling and checkpointing redelivers),
 * so consumers must be idempotent (key on `event.id` or on the position).
 */
export interface EventStore {
  /**
   * Appends a batch atomically to one stream. Every event is validated against its contract
   * (`EventContractError`), must name `stream` (`StreamMismatchError`) and carry the `sequence`
   * of the revision it lands at (`SequenceMismatchError`). Concurrency: `WrongExpectedRevisionError`;
   * reused ids: `IdempotencyConflictError`.
   */
  append(stream: string, events: readonly CustodianEvent[], options: AppendOptions): Promise<AppendResult>;
  /** A stream's events, paged internally. An unknown stream reads as empty (no error). */
  readStream(stream: string, options?: ReadStreamOptions): AsyncIterable<RecordedEvent>;
  /** Every event of every stream in commit order, paged internally. */
  readAll(options?: ReadAllOptions): AsyncIterable<RecordedEvent>;
  /** Catch-up then live subscription to all events, with a durable checkpoint. */
  subscribeToAll(options: SubscribeToAllOptions): Subscription;
  /** The revision of the stream's last event, or `'no-stream'`. */
  streamRevision(stream: string): Promise<StreamRevision>;
  /** The store's own checkpoint store (used by subscriptions unless they pass another). */
  readonly checkpoints: CheckpointStore;
  /** Readiness: resolves when the store can serve reads and writes, else rejects with `EventStoreUnavailableError`. */
  ping(): Promise<void>;
  /** Stops subscriptions (saving their checkpoints), then releases connections. Idempotent. */
  close(): Promise<void>;
}
