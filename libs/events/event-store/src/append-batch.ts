// Checks shared by every adapter, so that all of them refuse the same appends with the same errors.
import { assertValidEvent, factoryEventJson, type CustodianEvent } from '@custodian/event-contracts';
import {
  IdempotencyConflictError,
  InvalidRequestError,
  SequenceMismatchError,
  StreamMismatchError,
  WrongExpectedRevisionError,
} from './errors.js';
import type { AppendResult, ExpectedRevision, StreamRevision } from './event-store.js';
import type { GlobalPosition } from './position.js';

/** A batch that passed every check that needs no stored state. */
export interface CheckedBatch {
  readonly stream: string;
  readonly events: readonly CustodianEvent[];
  /** `JSON.stringify` of each event, as it is stored. */
  readonly jsons: readonly string[];
  readonly firstSequence: number;
  readonly lastSequence: number;
}

/** Stream names: non-empty, no control characters, not `$`-prefixed (reserved for EventStoreDB system streams). */
export function assertValidStreamName(stream: string): void {
  // eslint-disable-next-line no-control-regex
  if (typeof stream !== 'string' || stream.length === 0 || stream.length > 512 || stream.startsWith('$') || /[\u0000-\u001f]/.test(stream)) {
    throw new InvalidRequestError(`invalid stream name ${JSON.stringify(stream)}`);
  }
}

export function assertValidExpectedRevision(expected: ExpectedRevision): void {
  const ok = expected === 'any' || expected === 'no-stream' || expected === 'stream-exists' || (Number.isSafeInteger(expected) && expected >= 0);
  if (!ok) throw new InvalidRequestError(`invalid expectedRevision ${JSON.stringify(expected)}`);
}

/**
 * Produce boundary of the store: contract validation (skipped for events an EventFactory made and validated), stream membership, ids unique and
 * sequences consecutive within the batch. Throws `EventContractError` or an `EventStoreError`.
 */
export function checkBatch(stream: string, events: readonly CustodianEvent[], expected: ExpectedRevision): CheckedBatch {
  assertValidStreamName(stream);
  assertValidExpectedRevision(expected);
  if (!Array.isArray(events) || events.length === 0) throw new InvalidRequestError(`append to ${stream}: the batch is empty`);
  const ids = new Set<string>();
  const jsons: string[] = [];
  const first = events[0]!;
  events.forEach((event, i) => {
    // Events made by an EventFactory were validated (and frozen) when made; anything else is foreign.
    let json = factoryEventJson(event);
    if (json === undefined) {
      assertValidEvent(event);
      json = JSON.stringify(event);
    }
    if (event.stream !== stream) throw new StreamMismatchError(stream, event.id, event.stream);
    if (ids.has(event.id)) throw new IdempotencyConflictError(stream, event.id, 'appears twice in the batch');
    ids.add(event.id);
    if (event.sequence !== first.sequence + i) {
      throw new SequenceMismatchError(stream, event.id, first.sequence + i, event.sequence);
    }
    jsons.push(json);
  });
  return { stream, events, jsons, firstSequence: first.sequence, lastSequence: first.sequence + events.length - 1 };
}

/** Where an event id is already stored. */
export interface StoredEventRef {
  readonly id: string;
  readonly stream: string;
  readonly revision: number;
  readonly position: GlobalPosition;
  /** The stored event (its JSON, or the parsed value). */
  readonly stored: string | object;
}

export function checkExpectedRevision(stream: string, expected: ExpectedRevision, actual: StreamRevision): void {
  const ok =
    expected === 'any' ||
    (expected === 'no-stream' && actual === 'no-stream') ||
    (expected === 'stream-exists' && actual !== 'no-stream') ||
    (typeof expected === 'number' && expected === actual);
  if (!ok) throw new WrongExpectedRevisionError(stream, expected as Exclude<ExpectedRevision, 'any'>, actual);
}

/**
 * Decides an append against the stored state: an idempotent retry (returns the original
 * result), a write (returns 'write'), or throws. `found[i]` is where `batch.events[i].id` is
 * already stored, if anywhere. Order: idempotency first (a retry succeeds whatever it expected),
 * then the caller's expected revision, then the envelope sequence.
 */
export function decideAppend(
  batch: CheckedBatch,
  expected: ExpectedRevision,
  current: StreamRevision,
  found: readonly (StoredEventRef | undefined)[],
): AppendResult | 'write' {
  if (found.some((ref) => ref !== undefined)) {
    batch.events.forEach((event, i) => {
      const ref = found[i];
      if (!ref) throw new IdempotencyConflictError(batch.stream, event.id, 'is new, but other events of its batch are already stored (partial overlap)');
      if (ref.stream !== batch.stream || ref.revision !== event.sequence) {
        throw new IdempotencyConflictError(batch.stream, event.id, `is already stored at ${ref.stream}@${ref.revision}`);
      }
      if (canonicalJson(typeof ref.stored === 'string' ? JSON.parse(ref.stored) : ref.stored) !== canonicalJson(event)) {
        throw new IdempotencyConflictError(batch.stream, event.id, 'is already stored with different content');
      }
    });
    return {
      stream: batch.stream,
      firstRevision: batch.firstSequence,
      nextExpectedRevision: batch.lastSequence,
      position: found[found.length - 1]!.position,
      deduplicated: true,
    };
  }
  checkExpectedRevision(batch.stream, expected, current);
  const landsAt = current === 'no-stream' ? 0 : current + 1;
  if (batch.firstSequence !== landsAt) throw new SequenceMismatchError(batch.stream, batch.events[0]!.id, landsAt, batch.firstSequence);
  return 'write';
}

/** JSON with object keys sorted, so that equal values compare equal whatever their key order. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return v;
    const sorted: Record<string, unknown> = {};
    for (const k of Object.keys(v).sort()) sorted[k] = (v as Record<string, unknown>)[k];
    return sorted;
  });
}
