import type { GlobalPosition } from './position.js';

export type EventStoreErrorCode =
  | 'EVENT_STORE_WRONG_EXPECTED_REVISION'
  | 'EVENT_STORE_SEQUENCE_MISMATCH'
  | 'EVENT_STORE_STREAM_MISMATCH'
  | 'EVENT_STORE_IDEMPOTENCY_CONFLICT'
  | 'EVENT_STORE_INVALID_REQUEST'
  | 'EVENT_STORE_INVALID_POSITION'
  | 'EVENT_STORE_CORRUPT'
  | 'EVENT_STORE_CLOSED'
  | 'EVENT_STORE_UNAVAILABLE'
  | 'EVENT_STORE_SUBSCRIPTION_FAILED'
  | 'EVENT_STORE_SUBSCRIPTION_STOPPED';

/** Base class of every error the event store raises itself (contract violations stay `EventContractError`). */
export class EventStoreError extends Error {
  override name = 'EventStoreError';
  constructor(
    readonly code: EventStoreErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** What a stream looked like when an append was refused: its last revision, or absent. */
export type ActualRevision = number | 'no-stream';

/** Optimistic concurrency: the stream was not where the caller expected it to be. */
export class WrongExpectedRevisionError extends EventStoreError {
  override name = 'WrongExpectedRevisionError';
  constructor(
    readonly stream: string,
    readonly expected: 'no-stream' | 'stream-exists' | number,
    readonly actual: ActualRevision,
  ) {
    super('EVENT_STORE_WRONG_EXPECTED_REVISION', `stream ${stream}: expected revision ${expected}, actual ${actual}`);
  }
}

/**
 * The envelope `sequence` of an event is not the revision it would land at. Producers
 * number events themselves, so this exposes gaps and reorders instead of hiding them.
 */
export class SequenceMismatchError extends EventStoreError {
  override name = 'SequenceMismatchError';
  constructor(
    readonly stream: string,
    readonly eventId: string,
    readonly expectedSequence: number,
    readonly actualSequence: number,
  ) {
    super(
      'EVENT_STORE_SEQUENCE_MISMATCH',
      `stream ${stream}: event ${eventId} has sequence ${actualSequence} but would land at revision ${expectedSequence}`,
    );
  }
}

/** An event in the batch names a different stream than the one appended to. */
export class StreamMismatchError extends EventStoreError {
  override name = 'StreamMismatchError';
  constructor(
    readonly stream: string,
    readonly eventId: string,
    readonly eventStream: string,
  ) {
    super('EVENT_STORE_STREAM_MISMATCH', `event ${eventId} belongs to stream ${eventStream}, not ${stream}`);
  }
}

/**
 * An event id is already stored somewhere the retried batch does not put it: a partially
 * overlapping batch, the id at another stream or revision, or the same id with other content.
 */
export class IdempotencyConflictError extends EventStoreError {
  override name = 'IdempotencyConflictError';
  constructor(
    readonly stream: string,
    readonly eventId: string,
    detail: string,
  ) {
    super('EVENT_STORE_IDEMPOTENCY_CONFLICT', `stream ${stream}: event ${eventId} ${detail}`);
  }
}

export class InvalidRequestError extends EventStoreError {
  override name = 'InvalidRequestError';
  constructor(message: string) {
    super('EVENT_STORE_INVALID_REQUEST', message);
  }
}

/** A stored record contradicts its own envelope (e.g. row stream ≠ envelope stream). */
export class CorruptEventError extends EventStoreError {
  override name = 'CorruptEventError';
  /** Where the unreadable record is, when known: a reader may resume after it (e.g. `log verify`). */
  readonly position: GlobalPosition | undefined;
  constructor(message: string, options?: { cause?: unknown; position?: GlobalPosition }) {
    super('EVENT_STORE_CORRUPT', message, options);
    this.position = options?.position;
  }
}

export class EventStoreClosedError extends EventStoreError {
  override name = 'EventStoreClosedError';
  constructor() {
    super('EVENT_STORE_CLOSED', 'the event store is closed');
  }
}

export class EventStoreUnavailableError extends EventStoreError {
  override name = 'EventStoreUnavailableError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('EVENT_STORE_UNAVAILABLE', message, options);
  }
}

/** A subscription stopped because its handler (or the store) failed; `position` is the event it could not handle. */
export class SubscriptionFailedError extends EventStoreError {
  override name = 'SubscriptionFailedError';
  constructor(
    readonly subscriptionId: string,
    readonly position: GlobalPosition | undefined,
    cause: unknown,
  ) {
    super(
      'EVENT_STORE_SUBSCRIPTION_FAILED',
      `subscription ${subscriptionId} stopped${position ? ` at C${position.commit}/P${position.prepare}` : ''}: ${cause instanceof Error ? cause.message : String(cause)}`,
      { cause },
    );
  }
}

/** `caughtUp` of a subscription that was stopped before it caught up. */
export class SubscriptionStoppedError extends EventStoreError {
  override name = 'SubscriptionStoppedError';
  constructor(readonly subscriptionId: string) {
    super('EVENT_STORE_SUBSCRIPTION_STOPPED', `subscription ${subscriptionId} was stopped before it caught up`);
  }
}
