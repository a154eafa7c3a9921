import type { EventEnvelopeFields, EventPayloads, EventPayloadVersions } from './generated/types.js';

export type EventType = keyof EventPayloads;

/** An event at the latest schema version of its type. */
export type EventEnvelope<T extends EventType = EventType> = Omit<EventEnvelopeFields, 'type' | 'payload'> & {
  readonly type: T;
  readonly payload: EventPayloads[T];
};

/** Any event, discriminated on `type`: `if (e.type === 'session.opened') e.payload.connection`. */
export type CustodianEvent = { [T in EventType]: EventEnvelope<T> }[EventType];

/** An event as stored, possibly at an older schema version (before upcasting). */
export type StoredEvent = {
  [T in EventType]: {
    [V in keyof EventPayloadVersions[T]]: Omit<EventEnvelopeFields, 'type' | 'schemaVersion' | 'payload'> & {
      readonly type: T;
      readonly schemaVersion: V;
      readonly payload: EventPayloadVersions[T][V];
    };
  }[keyof EventPayloadVersions[T]];
}[EventType];

/** Stream name for a category and an id: `streamName('session', id)` → `session-<id>`. */
export function streamName(category: 'session' | 'approval' | 'policy' | 'grant' | 'evidence' | 'auth', id: string): string {
  return `${category}-${id}`;
}
