import { randomBytes } from 'node:crypto';
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
  /**
   * A top-level payload field carried as the base64 of these bytes (a recorded frame's `data`):
   * the factory encodes them and puts the text in the event's JSON without JSON.stringify's
   * per-character escape scan (base64 needs no escaping; for a 64 KiB frame the scan was most of
   * the cost of making the event). The payload's own value for the field is replaced. The event and
   * its JSON are exactly what they would be with the text in the payload.
   */
  readonly base64?: { readonly field: string; readonly bytes: Uint8Array };
}

/**
 * Makes events for one producer: stamps id (UUIDv7), time (µs), latest schema version and
 * source, then validates against the contract. Invalid events never leave the producer.
 */
export class EventFactory {
  private readonly ids: UuidV7Generator;
  /** Stands for a base64 field while the rest of the event is serialized: a NUL and a nonce no input can guess. */
  private readonly placeholder = `\u0000custodian-base64-${randomBytes(16).toString('hex')}`;

  constructor(
    private readonly source: EventSource,
    private readonly clock: Clock = new SystemClock(),
  ) {
    this.ids = new UuidV7Generator(clock);
  }

  create<T extends EventType>(spec: NewEvent<T>): EventEnvelope<T> {
    const now = this.clock.nowMicros();
    const id = this.ids.next(Number(now / 1000n));
    let payload: EventPayloads[T] = spec.payload;
    let base64: { readonly field: string; readonly text: string } | undefined;
    if (spec.base64) {
      const { field, bytes } = spec.base64;
      base64 = { field, text: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64') };
      // Spread first, so that the field keeps its place in the payload (and so in the JSON).
      payload = { ...payload, [field]: this.placeholder };
    }
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
      payload,
    };
    // The JSON is made before validation and kept: what was validated is what gets stored and
    // scanned, and a store need not validate (or serialize) this event again.
    let json = JSON.stringify(event);
    if (base64) {
      (payload as unknown as Record<string, unknown>)[base64.field] = base64.text;
      const quoted = JSON.stringify(this.placeholder);
      const at = json.indexOf(quoted);
      // Exactly once (the nonce is secret, so no input holds it); else serialize as usual.
      json = at >= 0 && json.indexOf(quoted, at + quoted.length) < 0 ? `${json.slice(0, at)}"${base64.text}"${json.slice(at + quoted.length)}` : JSON.stringify(event);
    }
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
