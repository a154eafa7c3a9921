import { SystemClock, formatRfc3339Micros, type Clock } from './clock.js';
import type { EventEnvelope, EventType } from './envelope.js';
import type { EventPayloads, EventSource, Identity } from './generated/types.js';
import { LATEST_SCHEMA_VERSIONS } from './generated/types.js';
import { UuidV7Generator } from './uuid-v7.js';
import { assertValidEvent } from './validation.js';

export interface NewEvent<T extends EventType> {
  readonly type: T;
  readonly stream: string;
  readonly sequence: number;
  readonly identity: Identity | null;
  readonly payload: EventPayloads[T];
  /** Defaults to a new UUIDv7 when this event starts a unit of work. */
  readonly correlationId?: string;
  readonly causationId?: string | null;
}

/**
 * Makes events for one producer: stamps id (UUIDv7), time (µs), latest schema version and
 * source, then validates against the contract. Invalid events never leave the producer.
 */
export class EventFactory {
  private readonly ids: UuidV7Generator;

  constructor(
    private readonly source: EventSource,
    private readonly clock: Clock = new SystemClock(),
  ) {
    this.ids = new UuidV7Generator(clock);
  }

  create<T extends EventType>(spec: NewEvent<T>): EventEnvelope<T> {
    const now = this.clock.nowMicros();
    const id = this.ids.next(Number(now / 1000n));
    const event = {
      id,
      type: spec.type,
      schemaVersion: LATEST_SCHEMA_VERSIONS[spec.type],
      stream: spec.stream,
      sequence: spec.sequence,
      occurredAt: formatRfc3339Micros(now),
      identity: spec.identity,
      correlationId: spec.correlationId ?? id,
      causationId: spec.causationId ?? null,
      source: this.source,
      payload: spec.payload,
    };
    // The JSON is made before validation and kept: what was validated is what gets stored and
    // scanned, and a store need not validate (or serialize) this event again.
    const json = JSON.stringify(event);
    assertValidEvent(event);
    // Frozen, so that the object cannot drift from the JSON validated for it.
    deepFreeze(event);
    factoryJson.set(event, json);
    return event as unknown as EventEnvelope<T>;
  }
}

/**
 * Events made (and validated) by an EventFactory in this process, with the JSON they were
 * validated as. Module-private: nothing else can add to it, so a foreign object (parsed from
 * Kafka, built by hand) is never taken for a validated one.
 */
const factoryJson = new WeakMap<object, string>();

function deepFreeze(value: unknown): void {
  if (typeof value !== 'object' || value === null || Object.isFrozen(value)) return;
  Object.freeze(value);
  for (const child of Object.values(value)) deepFreeze(child);
}

/**
 * The JSON of an event made by an EventFactory of this process (validated when made, frozen
 * since), or undefined for any other object: those must be validated by whoever accepts them.
 */
export function factoryEventJson(event: unknown): string | undefined {
  return typeof event === 'object' && event !== null ? factoryJson.get(event) : undefined;
}

/** `JSON.stringify(event)`, reusing the JSON made by the factory when there is one. */
export function eventJson(event: object): string {
  return factoryJson.get(event) ?? JSON.stringify(event);
}
