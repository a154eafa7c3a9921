import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EventFactory, type CustodianEvent, type Identity } from '@custodian/event-contracts';
import { DEAD_LETTER_HEADERS, DEAD_LETTER_TOPIC, EVENTS_TOPIC, activeTopicSpecs, eventMessage, type ConsumedBatch, type ConsumedMessage } from '@custodian/event-bus';
import { InProcessEventBus } from '@custodian/event-bus-in-process';
import { SqliteEventStore } from '@custodian/event-store-sqlite';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EventIngestor } from './event-ingestor.js';

const agent: Identity = { subject: 'agent-7', issuer: 'https://idp.example', groups: [], kind: 'agent' };
const factory = new EventFactory({ service: 'gateway', instance: 'gw-test' });

function sessionEvents(count: number): CustodianEvent[] {
  const sessionId = randomUUID();
  const stream = `session-${sessionId}`;
  return Array.from({ length: count }, (_, sequence) =>
    factory.create({ type: 'frame.recorded', stream, sequence, identity: agent, payload: { sessionId, direction: 'client-to-upstream', offsetMicros: sequence, data: 'eA==', byteLength: 1 } }),
  );
}

let offset = 0n;
function asMessage(event: CustodianEvent, override: Partial<ConsumedMessage> = {}): ConsumedMessage {
  const m = eventMessage(event);
  return { topic: EVENTS_TOPIC, partition: 0, offset: offset++, key: m.key, value: Buffer.from(String(m.value)), headers: { ...m.headers }, timestamp: Date.now(), ...override };
}

function batchOf(messages: ConsumedMessage[]): ConsumedBatch {
  return { topic: EVENTS_TOPIC, partition: 0, messages, highWatermark: offset, signal: new AbortController().signal };
}

let dir: string;
let store: SqliteEventStore;
let bus: InProcessEventBus;
let ingestor: EventIngestor;
let deadLetters: ConsumedMessage[];
let counted: Record<string, number>;

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'custodian-ingest-'));
  store = await SqliteEventStore.open({ path: join(dir, 'events.db') });
  bus = new InProcessEventBus();
  await bus.ensureTopics(activeTopicSpecs({ partitions: 1, replicationFactor: 1 }));
  deadLetters = [];
  counted = {};
  bus.consume({ groupId: 'dlq-reader', topics: [DEAD_LETTER_TOPIC], handleBatch: async (b) => void deadLetters.push(...b.messages) });
  ingestor = new EventIngestor({
    store,
    deadLetters: bus.publisher(),
    metrics: {
      eventsSpooled: () => undefined,
      eventsPublished: () => undefined,
      spoolDepth: () => undefined,
      refused: () => undefined,
      ingestLag: () => undefined,
      deadLettered: (code, n) => void (counted[`dlq:${code}`] = (counted[`dlq:${code}`] ?? 0) + n),
      eventsIngested: (outcome, n) => void (counted[outcome] = (counted[outcome] ?? 0) + n),
    },
  });
});

afterEach(async () => {
  await bus.close();
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

async function stored(stream: string): Promise<string[]> {
  const ids: string[] = [];
  for await (const r of store.readStream(stream)) ids.push(r.event.id);
  return ids;
}

describe('EventIngestor', () => {
  it('a redelivered stretch that partly overlaps the stored tail lands exactly once, in order', async () => {
    const events = sessionEvents(9);
    await ingestor.handleBatch(batchOf(events.slice(0, 5).map((e) => asMessage(e))));
    // Redelivery from an older committed offset, running past what was stored.
    await ingestor.handleBatch(batchOf(events.slice(3).map((e) => asMessage(e))));
    expect(await stored(events[0]!.stream)).toEqual(events.map((e) => e.id));
    expect(counted).toEqual({ written: 9, deduplicated: 2 });
  });

  it('a batch with a repeated stretch (a producer retry) stores each event once', async () => {
    const events = sessionEvents(4);
    const order = [0, 1, 2, 0, 1, 2, 3];
    await ingestor.handleBatch(batchOf(order.map((i) => asMessage(events[i]!))));
    expect(await stored(events[0]!.stream)).toEqual(events.map((e) => e.id));
    await ingestor.handleBatch(batchOf(order.map((i) => asMessage(events[i]!))));
    expect(await stored(events[0]!.stream)).toEqual(events.map((e) => e.id));
  });

  it('poison messages go to the dead-letter topic with their reason; the rest of the batch is stored', async () => {
    const good = sessionEvents(3);
    const other = sessionEvents(1)[0]!;
    const invalid = { ...JSON.parse(JSON.stringify(sessionEvents(1)[0])), payload: { sessionId: 'not-a-uuid' } };
    const poison = [
      asMessage(good[0]!, { value: Buffer.from('{not json') }),
      asMessage(good[0]!, { value: Buffer.from(JSON.stringify(invalid)), key: invalid.stream }),
      asMessage(other, { headers: { ...asMessage(other).headers, 'custodian-event-id': randomUUID() } }),
      asMessage(other, { headers: {} }),
    ];
    await ingestor.handleBatch(batchOf([poison[0]!, asMessage(good[0]!), poison[1]!, asMessage(good[1]!), poison[2]!, poison[3]!, asMessage(good[2]!)]));
    expect(await stored(good[0]!.stream)).toEqual(good.map((e) => e.id));
    expect(await stored(other.stream)).toEqual([]);
    await expect.poll(() => deadLetters.length).toBe(4);
    expect(deadLetters.map((m) => m.headers[DEAD_LETTER_HEADERS.reasonCode])).toEqual(['INGEST_NOT_JSON', 'INGEST_INVALID_EVENT', 'INGEST_HEADER_MISMATCH', 'INGEST_HEADER_MISMATCH']);
    expect(deadLetters[1]!.headers[DEAD_LETTER_HEADERS.reason]).toContain('/payload/sessionId');
    expect(deadLetters[3]!.headers[DEAD_LETTER_HEADERS.reason]).toContain('custodian-event-id is missing');
    expect(deadLetters[0]!.value.toString()).toBe('{not json');
    expect(deadLetters[0]!.headers).toMatchObject({
      [DEAD_LETTER_HEADERS.sourceTopic]: EVENTS_TOPIC,
      [DEAD_LETTER_HEADERS.sourcePartition]: '0',
      [DEAD_LETTER_HEADERS.sourceOffset]: poison[0]!.offset.toString(),
    });
    expect(counted).toMatchObject({ 'dlq:INGEST_NOT_JSON': 1, 'dlq:INGEST_INVALID_EVENT': 1, 'dlq:INGEST_HEADER_MISMATCH': 2, written: 3 });
  });

  it('an id stored with other content, another event at a stored revision, and a gap are dead-lettered, not stored', async () => {
    const events = sessionEvents(3);
    await ingestor.handleBatch(batchOf(events.slice(0, 2).map((e) => asMessage(e))));
    const tampered = { ...events[1]!, occurredAt: '2020-01-01T00:00:00.000000Z' } as CustodianEvent;
    const fork = factory.create({ type: 'frame.recorded', stream: events[0]!.stream, sequence: 1, identity: agent, payload: { ...(events[1]!.payload as object), offsetMicros: 99 } as never });
    const afterGap = factory.create({ type: 'frame.recorded', stream: events[0]!.stream, sequence: 5, identity: agent, payload: events[2]!.payload as never });
    await ingestor.handleBatch(batchOf([asMessage(tampered), asMessage(fork), asMessage(afterGap)]));
    await expect.poll(() => deadLetters.length).toBe(3);
    expect(deadLetters.map((m) => m.headers[DEAD_LETTER_HEADERS.reasonCode])).toEqual(['INGEST_IDEMPOTENCY_CONFLICT', 'INGEST_SEQUENCE_CONFLICT', 'INGEST_SEQUENCE_GAP']);
    expect(await stored(events[0]!.stream)).toEqual(events.slice(0, 2).map((e) => e.id));
  });

  it('an unavailable store fails the batch (to be retried) instead of dead-lettering it', async () => {
    const events = sessionEvents(2);
    await store.close();
    await expect(ingestor.handleBatch(batchOf(events.map((e) => asMessage(e))))).rejects.toMatchObject({ code: 'EVENT_STORE_CLOSED' });
    expect(deadLetters).toEqual([]);
  });
});
