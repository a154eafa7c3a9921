// The behaviour every EventStore adapter must have, as a Vitest suite. An adapter's test file calls
// describeEventStoreContract() with a factory; see libs/events/event-store-sqlite for an example.
// Streams are unique per test and readAll/subscription assertions look only at the test's own
// streams, so the suite also runs against a shared server (EventStoreDB) that other tests write to.
import { randomUUID } from 'node:crypto';
import { EventContractError, EventFactory, ManualClock, factoryEventJson, streamName, type CustodianEvent, type Identity } from '@custodian/event-contracts';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  IdempotencyConflictError,
  InvalidRequestError,
  SequenceMismatchError,
  StreamMismatchError,
  SubscriptionFailedError,
  WrongExpectedRevisionError,
} from '../errors.js';
import type { EventStore, RecordedEvent, Subscription } from '../event-store.js';
import { comparePositions, formatPosition, parsePosition, type GlobalPosition } from '../position.js';

export interface EventStoreContractSubject {
  readonly store: EventStore;
  /** Releases the store and whatever the factory created (temp files, connections). */
  cleanup(): Promise<void>;
  /**
   * Writes an event exactly as given (any schema version) at its envelope's stream and sequence,
   * bypassing the produce-time checks: how events written by an older build look to this one.
   */
  writeStoredEventUnchecked(event: Readonly<Record<string, unknown>>): Promise<void>;
}

export interface EventStoreContractOptions {
  /** The page size the factory configured, so that paging tests read more than one page. */
  readonly pageSize: number;
  /**
   * Whether the adapter detects an event id reused at another stream or revision (SQLite has a
   * unique index on ids; EventStoreDB only deduplicates ids where the batch lands). Default true.
   */
  readonly detectsIdReuseElsewhere?: boolean;
  /** Extra time allowed for live delivery (remote servers, poll intervals). Default 10 s. */
  readonly liveDeliveryTimeoutMs?: number;
}

const RFC3339_MICROS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/;

const identity: Identity = { subject: 'alice@example.com', issuer: 'https://idp.example.com', groups: ['dba'], kind: 'human' };

/** Makes valid events for unique session streams, deterministically timed. */
export class ContractEvents {
  private readonly factory = new EventFactory({ service: 'gateway', instance: 'contract-test' }, new ManualClock(new Date('2026-01-02T03:04:05.000Z'), 1_000n));

  newSession(): { sessionId: string; stream: string } {
    const sessionId = randomUUID();
    return { sessionId, stream: streamName('session', sessionId) };
  }

  opened(stream: string, sessionId: string, sequence = 0): CustodianEvent {
    return this.factory.create({
      type: 'session.opened',
      stream,
      sequence,
      identity,
      payload: { sessionId, connection: { name: 'orders-prod', protocol: 'postgres' }, client: { address: '127.0.0.1:5555', tls: true } },
    });
  }

  /** `count` command.issued events with sequences from..from+count-1. */
  commands(stream: string, sessionId: string, from: number, count: number): CustodianEvent[] {
    return Array.from({ length: count }, (_, i) =>
      this.factory.create({
        type: 'command.issued',
        stream,
        sequence: from + i,
        identity,
        payload: { sessionId, commandId: randomUUID(), kind: 'sql', text: `SELECT ${from + i} FROM orders WHERE id = $1`, parameters: ['***'] },
      }),
    );
  }
}

async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of iterable) out.push(item);
  return out;
}

async function waitUntil(predicate: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

async function rejectionOf(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a rejection, but the promise resolved');
}

function assertIncreasing(positions: readonly GlobalPosition[]): void {
  for (let i = 1; i < positions.length; i++) expect(comparePositions(positions[i - 1]!, positions[i]!)).toBeLessThan(0);
}

export function describeEventStoreContract(
  name: string,
  factory: () => Promise<EventStoreContractSubject>,
  options: EventStoreContractOptions,
): void {
  const liveTimeout = options.liveDeliveryTimeoutMs ?? 10_000;
  const detectsIdReuseElsewhere = options.detectsIdReuseElsewhere ?? true;

  describe(`EventStore contract: ${name}`, () => {
    let subject: EventStoreContractSubject;
    let store: EventStore;
    let events: ContractEvents;
    const subscriptions: Subscription[] = [];

    beforeEach(async () => {
      subject = await factory();
      store = subject.store;
      events = new ContractEvents();
    });

    afterEach(async () => {
      for (const s of subscriptions.splice(0)) await s.stop();
      await subject.cleanup();
    });

    const subscribe = (...args: Parameters<EventStore['subscribeToAll']>): Subscription => {
      const s = store.subscribeToAll(...args);
      subscriptions.push(s);
      return s;
    };

    const ofStreams = (streams: readonly string[]) => (r: RecordedEvent) => streams.includes(r.stream);

    describe('append and read', () => {
      it('round-trips envelopes exactly, with revisions, positions and recordedAt', async () => {
        const { sessionId, stream } = events.newSession();
        const batch = [events.opened(stream, sessionId), ...events.commands(stream, sessionId, 1, 2)];
        const result = await store.append(stream, batch, { expectedRevision: 'no-stream' });
        expect(result).toMatchObject({ stream, firstRevision: 0, nextExpectedRevision: 2, deduplicated: false });

        const read = await collect(store.readStream(stream));
        expect(read.map((r) => r.event)).toEqual(batch);
        expect(read.map((r) => r.revision)).toEqual([0, 1, 2]);
        expect(read.every((r) => r.stream === stream && RFC3339_MICROS.test(r.recordedAt))).toBe(true);
        assertIncreasing(read.map((r) => r.position));
        expect(read[2]!.position).toEqual(result.position);
        expect(await store.streamRevision(stream)).toBe(2);
      });

      it('reads an unknown stream as empty, with revision no-stream', async () => {
        const { stream } = events.newSession();
        expect(await collect(store.readStream(stream))).toEqual([]);
        expect(await store.streamRevision(stream)).toBe('no-stream');
      });

      it('reads a stream from a revision, bounded, forwards and backwards', async () => {
        const { sessionId, stream } = events.newSession();
        const batch = events.commands(stream, sessionId, 0, 6);
        await store.append(stream, batch, { expectedRevision: 'no-stream' });
        const revisions = async (opts: Parameters<EventStore['readStream']>[1]) => (await collect(store.readStream(stream, opts))).map((r) => r.revision);
        expect(await revisions({ fromRevision: 2, maxCount: 3 })).toEqual([2, 3, 4]);
        expect(await revisions({ direction: 'backwards' })).toEqual([5, 4, 3, 2, 1, 0]);
        expect(await revisions({ direction: 'backwards', fromRevision: 3, maxCount: 2 })).toEqual([3, 2]);
        expect(await revisions({ fromRevision: 6 })).toEqual([]);
      });

      it('refuses an empty batch', async () => {
        const { stream } = events.newSession();
        expect(await rejectionOf(store.append(stream, [], { expectedRevision: 'any' }))).toBeInstanceOf(InvalidRequestError);
      });
    });

    describe('expected revision', () => {
      it("'no-stream' succeeds only on a new stream", async () => {
        const { sessionId, stream } = events.newSession();
        await store.append(stream, [events.opened(stream, sessionId)], { expectedRevision: 'no-stream' });
        const error = await rejectionOf(store.append(stream, events.commands(stream, sessionId, 1, 1), { expectedRevision: 'no-stream' }));
        expect(error).toBeInstanceOf(WrongExpectedRevisionError);
        expect(error).toMatchObject({ code: 'EVENT_STORE_WRONG_EXPECTED_REVISION', expected: 'no-stream', actual: 0 });
      });

      it("'stream-exists' succeeds only on an existing stream", async () => {
        const { sessionId, stream } = events.newSession();
        const error = await rejectionOf(store.append(stream, [events.opened(stream, sessionId)], { expectedRevision: 'stream-exists' }));
        expect(error).toMatchObject({ code: 'EVENT_STORE_WRONG_EXPECTED_REVISION', expected: 'stream-exists', actual: 'no-stream' });
        expect(await store.streamRevision(stream)).toBe('no-stream');
        await store.append(stream, [events.opened(stream, sessionId)], { expectedRevision: 'no-stream' });
        const result = await store.append(stream, events.commands(stream, sessionId, 1, 1), { expectedRevision: 'stream-exists' });
        expect(result.nextExpectedRevision).toBe(1);
      });

      it('a number must equal the revision of the last event', async () => {
        const { sessionId, stream } = events.newSession();
        expect(await rejectionOf(store.append(stream, [events.opened(stream, sessionId)], { expectedRevision: 0 }))).toMatchObject({
          code: 'EVENT_STORE_WRONG_EXPECTED_REVISION',
          expected: 0,
          actual: 'no-stream',
        });
        await store.append(stream, [events.opened(stream, sessionId)], { expectedRevision: 'no-stream' });
        await store.append(stream, events.commands(stream, sessionId, 1, 1), { expectedRevision: 0 });
        const stale = await rejectionOf(store.append(stream, events.commands(stream, sessionId, 2, 1), { expectedRevision: 0 }));
        expect(stale).toBeInstanceOf(WrongExpectedRevisionError);
        expect(stale).toMatchObject({ expected: 0, actual: 1, stream });
        expect(await store.streamRevision(stream)).toBe(1);
      });

      it("'any' skips the revision check but not the sequence check", async () => {
        const { sessionId, stream } = events.newSession();
        await store.append(stream, [events.opened(stream, sessionId)], { expectedRevision: 'any' });
        await store.append(stream, events.commands(stream, sessionId, 1, 2), { expectedRevision: 'any' });
        const error = await rejectionOf(store.append(stream, events.commands(stream, sessionId, 1, 1), { expectedRevision: 'any' }));
        expect(error).toBeInstanceOf(SequenceMismatchError);
        expect(error).toMatchObject({ code: 'EVENT_STORE_SEQUENCE_MISMATCH', expectedSequence: 3, actualSequence: 1 });
      });

      it('refuses an expectedRevision that is not one of the four kinds', async () => {
        const { sessionId, stream } = events.newSession();
        for (const bad of [-1, 1.5, 'latest'] as const) {
          const error = await rejectionOf(store.append(stream, [events.opened(stream, sessionId)], { expectedRevision: bad as unknown as number }));
          expect(error).toBeInstanceOf(InvalidRequestError);
        }
      });

      it('lets exactly one of concurrent appenders win the same revision', async () => {
        const { sessionId, stream } = events.newSession();
        await store.append(stream, [events.opened(stream, sessionId)], { expectedRevision: 'no-stream' });
        const racers = Array.from({ length: 8 }, () => events.commands(stream, sessionId, 1, 2));
        const outcomes = await Promise.allSettled(racers.map((batch) => store.append(stream, batch, { expectedRevision: 0 })));
        const won = outcomes.filter((o) => o.status === 'fulfilled');
        const lost = outcomes.flatMap((o) => (o.status === 'rejected' ? [o.reason as unknown] : []));
        expect(won).toHaveLength(1);
        expect(lost).toHaveLength(7);
        for (const error of lost) expect(error).toMatchObject({ code: 'EVENT_STORE_WRONG_EXPECTED_REVISION', expected: 0 });
        const winner = racers[outcomes.findIndex((o) => o.status === 'fulfilled')]!;
        expect((await collect(store.readStream(stream))).map((r) => r.event)).toEqual([expect.anything(), ...winner]);
      });

      it("lets exactly one of concurrent 'any' appenders with the same sequence win", async () => {
        const { sessionId, stream } = events.newSession();
        const racers = Array.from({ length: 4 }, () => [events.opened(stream, sessionId)]);
        const outcomes = await Promise.allSettled(racers.map((batch) => store.append(stream, batch, { expectedRevision: 'any' })));
        expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(1);
        for (const o of outcomes) if (o.status === 'rejected') expect(o.reason).toBeInstanceOf(SequenceMismatchError);
        expect(await collect(store.readStream(stream))).toHaveLength(1);
      });
    });

    describe('idempotency by event id', () => {
      it('a retried single event is a no-op returning the original result', async () => {
        const { sessionId, stream } = events.newSession();
        const opened = events.opened(stream, sessionId);
        const first = await store.append(stream, [opened], { expectedRevision: 'no-stream' });
        for (const expectedRevision of ['no-stream', 'any', 'stream-exists', 0, 7] as const) {
          const retry = await store.append(stream, [opened], { expectedRevision });
          expect(retry).toEqual({ ...first, deduplicated: true });
        }
        // Also after the stream moved on.
        await store.append(stream, events.commands(stream, sessionId, 1, 1), { expectedRevision: 0 });
        expect(await store.append(stream, [opened], { expectedRevision: 'no-stream' })).toEqual({ ...first, deduplicated: true });
        expect(await collect(store.readStream(stream))).toHaveLength(2);
        expect((await collect(store.readAll())).filter((r) => r.event.id === opened.id)).toHaveLength(1);
      });

      it('a retried batch is a no-op returning the original result', async () => {
        const { sessionId, stream } = events.newSession();
        const batch = [events.opened(stream, sessionId), ...events.commands(stream, sessionId, 1, 3)];
        const first = await store.append(stream, batch, { expectedRevision: 'no-stream' });
        await store.append(stream, events.commands(stream, sessionId, 4, 1), { expectedRevision: 3 });
        const retry = await store.append(stream, batch.map((e) => structuredClone(e)), { expectedRevision: 'no-stream' });
        expect(retry).toEqual({ ...first, deduplicated: true });
        expect((await collect(store.readStream(stream))).map((r) => r.revision)).toEqual([0, 1, 2, 3, 4]);
        const ids = new Set(batch.map((e) => e.id));
        expect((await collect(store.readAll())).filter((r) => ids.has(r.event.id))).toHaveLength(4);
      });

      it('concurrent retries of the same batch store it once', async () => {
        const { sessionId, stream } = events.newSession();
        const batch = [events.opened(stream, sessionId), ...events.commands(stream, sessionId, 1, 2)];
        const results = await Promise.allSettled(Array.from({ length: 4 }, () => store.append(stream, batch, { expectedRevision: 'no-stream' })));
        // A retry racing the original may see the stream before or after it: it is deduplicated
        // or refused with a concurrency error, and never writes twice. (`deduplicated` may be
        // false on more than one of them where the server deduplicates silently: EventStoreDB.)
        const fulfilled = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
        expect(fulfilled.length).toBeGreaterThanOrEqual(1);
        for (const r of fulfilled) expect(r.position).toEqual(fulfilled[0]!.position);
        expect((await collect(store.readStream(stream))).map((r) => r.event)).toEqual(batch);
        const ids = new Set(batch.map((e) => e.id));
        expect((await collect(store.readAll())).filter((r) => ids.has(r.event.id))).toHaveLength(3);
      });

      it('a partially overlapping batch is a conflict and writes nothing', async () => {
        const { sessionId, stream } = events.newSession();
        const [e0, e1] = [events.opened(stream, sessionId), ...events.commands(stream, sessionId, 1, 1)];
        await store.append(stream, [e0!, e1!], { expectedRevision: 'no-stream' });
        const e2 = events.commands(stream, sessionId, 2, 1)[0]!;
        const error = await rejectionOf(store.append(stream, [e1!, e2], { expectedRevision: 'any' }));
        expect(error).toBeInstanceOf(IdempotencyConflictError);
        expect(error).toMatchObject({ code: 'EVENT_STORE_IDEMPOTENCY_CONFLICT', eventId: e2.id });
        expect(await store.streamRevision(stream)).toBe(1);
      });

      it('the same id with different content is a conflict', async () => {
        const { sessionId, stream } = events.newSession();
        const opened = events.opened(stream, sessionId);
        await store.append(stream, [opened], { expectedRevision: 'no-stream' });
        const altered = { ...opened, payload: { ...opened.payload, client: { address: '10.0.0.9:1' } } } as CustodianEvent;
        expect(await rejectionOf(store.append(stream, [altered], { expectedRevision: 'no-stream' }))).toMatchObject({ code: 'EVENT_STORE_IDEMPOTENCY_CONFLICT' });
      });

      it.skipIf(!detectsIdReuseElsewhere)('an id reused at another stream or revision is a conflict', async () => {
        const a = events.newSession();
        const b = events.newSession();
        const opened = events.opened(a.stream, a.sessionId);
        await store.append(a.stream, [opened], { expectedRevision: 'no-stream' });
        const elsewhere = { ...opened, stream: b.stream } as CustodianEvent;
        expect(await rejectionOf(store.append(b.stream, [elsewhere], { expectedRevision: 'no-stream' }))).toMatchObject({ code: 'EVENT_STORE_IDEMPOTENCY_CONFLICT' });
        const later = { ...opened, sequence: 1 } as CustodianEvent;
        expect(await rejectionOf(store.append(a.stream, [later], { expectedRevision: 0 }))).toMatchObject({ code: 'EVENT_STORE_IDEMPOTENCY_CONFLICT' });
        expect(await store.streamRevision(b.stream)).toBe('no-stream');
        expect(await store.streamRevision(a.stream)).toBe(0);
      });
      if (!detectsIdReuseElsewhere) console.warn(`[${name}] skipping "id reused at another stream or revision": the adapter only deduplicates ids where a batch lands`);
    });

    describe('envelope checks', () => {
      it('refuses a sequence that is not the revision the event lands at, writing nothing', async () => {
        const { sessionId, stream } = events.newSession();
        const gap = events.commands(stream, sessionId, 1, 1);
        expect(await rejectionOf(store.append(stream, gap, { expectedRevision: 'no-stream' }))).toMatchObject({
          code: 'EVENT_STORE_SEQUENCE_MISMATCH',
          expectedSequence: 0,
          actualSequence: 1,
        });
        const holey = [events.opened(stream, sessionId, 0), ...events.commands(stream, sessionId, 2, 1)];
        expect(await rejectionOf(store.append(stream, holey, { expectedRevision: 'no-stream' }))).toBeInstanceOf(SequenceMismatchError);
        const reordered = events.commands(stream, sessionId, 0, 2).reverse();
        expect(await rejectionOf(store.append(stream, reordered, { expectedRevision: 'any' }))).toBeInstanceOf(SequenceMismatchError);
        expect(await store.streamRevision(stream)).toBe('no-stream');
      });

      it('refuses events that belong to another stream, writing nothing', async () => {
        const a = events.newSession();
        const b = events.newSession();
        const mixed = [events.opened(a.stream, a.sessionId), ...events.commands(b.stream, b.sessionId, 1, 1)];
        const error = await rejectionOf(store.append(a.stream, mixed, { expectedRevision: 'no-stream' }));
        expect(error).toBeInstanceOf(StreamMismatchError);
        expect(error).toMatchObject({ code: 'EVENT_STORE_STREAM_MISMATCH', stream: a.stream, eventStream: b.stream });
        expect(await store.streamRevision(a.stream)).toBe('no-stream');
        expect(await store.streamRevision(b.stream)).toBe('no-stream');
      });

      it('accepts foreign events (not made by an EventFactory here) only after validating them', async () => {
        const { sessionId, stream } = events.newSession();
        const made = events.opened(stream, sessionId);
        expect(factoryEventJson(made)).toBe(JSON.stringify(made));
        // Parsed from JSON, as Kafka ingest or a raw append hands it over: validated on append.
        const foreign = JSON.parse(JSON.stringify(made)) as CustodianEvent;
        expect(factoryEventJson(foreign)).toBeUndefined();
        await store.append(stream, [foreign], { expectedRevision: 'no-stream' });
        const [read] = await collect(store.readStream(stream));
        expect(read!.event).toEqual(made);
        const forgedCopy = { ...events.commands(stream, sessionId, 1, 1)[0]!, occurredAt: 'yesterday' } as unknown as CustodianEvent;
        expect(await rejectionOf(store.append(stream, [forgedCopy], { expectedRevision: 0 }))).toMatchObject({ code: 'EVENT_INVALID_ENVELOPE' });
        expect(await store.streamRevision(stream)).toBe(0);
      });

      it('refuses an event that violates its contract with the contract error, writing nothing', async () => {
        const { sessionId, stream } = events.newSession();
        const valid = events.opened(stream, sessionId);
        const invalid = { ...valid, payload: { sessionId, client: { address: 'x' } } } as unknown as CustodianEvent;
        const error = await rejectionOf(store.append(stream, [invalid], { expectedRevision: 'no-stream' }));
        expect(error).toBeInstanceOf(EventContractError);
        expect(error).toMatchObject({ code: 'EVENT_INVALID_PAYLOAD' });
        const oldVersion = { ...valid, schemaVersion: 1, payload: { sessionId, protocol: 'postgres', target: 'orders-prod', clientAddress: 'x' } } as unknown as CustodianEvent;
        expect(await rejectionOf(store.append(stream, [oldVersion], { expectedRevision: 'no-stream' }))).toMatchObject({ code: 'EVENT_UNKNOWN_VERSION' });
        const badEnvelope = { ...valid, occurredAt: 'yesterday' } as unknown as CustodianEvent;
        expect(await rejectionOf(store.append(stream, [badEnvelope], { expectedRevision: 'no-stream' }))).toMatchObject({ code: 'EVENT_INVALID_ENVELOPE' });
        expect(await store.streamRevision(stream)).toBe('no-stream');
      });
    });

    describe('readAll', () => {
      it('returns events of all streams in commit order, fromPosition exclusive', async () => {
        const a = events.newSession();
        const b = events.newSession();
        const c = events.newSession();
        const order: CustodianEvent[] = [];
        const appendOne = async (s: { stream: string; sessionId: string }, sequence: number) => {
          const e = sequence === 0 ? events.opened(s.stream, s.sessionId) : events.commands(s.stream, s.sessionId, sequence, 1)[0]!;
          await store.append(s.stream, [e], { expectedRevision: sequence === 0 ? 'no-stream' : sequence - 1 });
          order.push(e);
        };
        await appendOne(a, 0);
        await appendOne(b, 0);
        await appendOne(a, 1);
        await appendOne(c, 0);
        await appendOne(b, 1);
        const mine = ofStreams([a.stream, b.stream, c.stream]);
        const all = (await collect(store.readAll())).filter(mine);
        expect(all.map((r) => r.event)).toEqual(order);
        assertIncreasing(all.map((r) => r.position));

        const after = (await collect(store.readAll({ fromPosition: all[1]!.position }))).filter(mine);
        expect(after.map((r) => r.event.id)).toEqual(order.slice(2).map((e) => e.id));
        const lastPosition = all[all.length - 1]!.position;
        expect((await collect(store.readAll({ fromPosition: lastPosition }))).filter(mine)).toEqual([]);
        expect(await collect(store.readAll({ fromPosition: all[0]!.position, maxCount: 2 }))).toHaveLength(2);
      });

      it('positions survive formatPosition/parsePosition', async () => {
        const { sessionId, stream } = events.newSession();
        const result = await store.append(stream, [events.opened(stream, sessionId)], { expectedRevision: 'no-stream' });
        expect(parsePosition(formatPosition(result.position))).toEqual(result.position);
      });

      it(`pages through more than one page (${options.pageSize} events) in both reads`, async () => {
        const { sessionId, stream } = events.newSession();
        const total = options.pageSize * 2 + 7;
        const all: CustodianEvent[] = [];
        for (let from = 0; from < total; from += 50) {
          const batch = events.commands(stream, sessionId, from, Math.min(50, total - from));
          await store.append(stream, batch, { expectedRevision: from === 0 ? 'no-stream' : from - 1 });
          all.push(...batch);
        }
        const forwards = await collect(store.readStream(stream));
        expect(forwards.map((r) => r.event.id)).toEqual(all.map((e) => e.id));
        const backwards = await collect(store.readStream(stream, { direction: 'backwards' }));
        expect(backwards.map((r) => r.revision)).toEqual(all.map((_, i) => total - 1 - i));
        const middle = await collect(store.readStream(stream, { fromRevision: 3, maxCount: options.pageSize + 2 }));
        expect(middle.map((r) => r.revision)).toEqual(Array.from({ length: options.pageSize + 2 }, (_, i) => 3 + i));
        const inAll = (await collect(store.readAll())).filter(ofStreams([stream]));
        expect(inAll.map((r) => r.revision)).toEqual(all.map((_, i) => i));
      });
    });

    describe('subscribeToAll', () => {
      it('catches up on existing events, then delivers new ones live, and saves the checkpoint', async () => {
        const { sessionId, stream } = events.newSession();
        const initial = [events.opened(stream, sessionId), ...events.commands(stream, sessionId, 1, 2)];
        await store.append(stream, initial, { expectedRevision: 'no-stream' });
        const seen: RecordedEvent[] = [];
        const id = `contract-${randomUUID()}`;
        const sub = subscribe({ subscriptionId: id, from: 'start', checkpointEvery: 1000, handler: (r) => void (r.stream === stream && seen.push(r)) });
        await sub.caughtUp;
        expect(seen.map((r) => r.event)).toEqual(initial);

        const live = events.commands(stream, sessionId, 3, 2);
        await store.append(stream, live, { expectedRevision: 2 });
        await waitUntil(() => seen.length === 5, liveTimeout, 'live delivery');
        expect(seen.map((r) => r.event)).toEqual([...initial, ...live]);

        await sub.stop();
        await sub.done;
        const checkpoint = await store.checkpoints.load(id);
        expect(checkpoint).toBeDefined();
        expect(comparePositions(checkpoint!, seen[4]!.position)).toBeGreaterThanOrEqual(0);
        expect(checkpoint).toEqual(sub.lastHandledPosition());
      });

      it('restarts from its checkpoint, delivering only newer events', async () => {
        const { sessionId, stream } = events.newSession();
        await store.append(stream, [events.opened(stream, sessionId), ...events.commands(stream, sessionId, 1, 2)], { expectedRevision: 'no-stream' });
        const id = `contract-${randomUUID()}`;
        const first = subscribe({ subscriptionId: id, from: 'checkpoint', checkpointEvery: 1, handler: () => undefined });
        await first.caughtUp;
        await first.stop();

        const newer = events.commands(stream, sessionId, 3, 2);
        await store.append(stream, newer, { expectedRevision: 2 });
        const seen: RecordedEvent[] = [];
        const second = subscribe({ subscriptionId: id, from: 'checkpoint', handler: (r) => void (r.stream === stream && seen.push(r)) });
        await second.caughtUp;
        expect(seen.map((r) => r.event)).toEqual(newer);

        // 'start' ignores the checkpoint.
        const fromStart: RecordedEvent[] = [];
        const third = subscribe({ subscriptionId: `${id}-b`, from: 'start', handler: (r) => void (r.stream === stream && fromStart.push(r)) });
        await third.caughtUp;
        expect(fromStart).toHaveLength(5);
      });

      it('stops on a handler failure without skipping or checkpointing the failed event', async () => {
        const { sessionId, stream } = events.newSession();
        const batch = [events.opened(stream, sessionId), ...events.commands(stream, sessionId, 1, 4)];
        await store.append(stream, batch, { expectedRevision: 'no-stream' });
        const id = `contract-${randomUUID()}`;
        const boom = new Error('projection failed');
        const handled: string[] = [];
        const sub = subscribe({
          subscriptionId: id,
          from: 'start',
          checkpointEvery: 1,
          handler: (r) => {
            if (r.event.id === batch[2]!.id) throw boom;
            if (r.stream === stream) handled.push(r.event.id);
          },
        });
        const error = await rejectionOf(sub.done);
        expect(error).toBeInstanceOf(SubscriptionFailedError);
        expect(error).toMatchObject({ code: 'EVENT_STORE_SUBSCRIPTION_FAILED', subscriptionId: id, cause: boom });
        const failedAt = (error as SubscriptionFailedError).position!;
        expect(await rejectionOf(sub.caughtUp)).toBe(error);
        expect(handled).toEqual([batch[0]!.id, batch[1]!.id]);
        const checkpoint = await store.checkpoints.load(id);
        expect(comparePositions(checkpoint!, failedAt)).toBeLessThan(0);

        const again: string[] = [];
        const retry = subscribe({ subscriptionId: id, from: 'checkpoint', handler: (r) => void (r.stream === stream && again.push(r.event.id)) });
        await retry.caughtUp;
        expect(again).toEqual(batch.slice(2).map((e) => e.id));
      });

      it('stops when its signal aborts, saving the checkpoint', async () => {
        const { sessionId, stream } = events.newSession();
        await store.append(stream, [events.opened(stream, sessionId)], { expectedRevision: 'no-stream' });
        const controller = new AbortController();
        const id = `contract-${randomUUID()}`;
        const sub = subscribe({ subscriptionId: id, from: 'start', checkpointEvery: 1000, handler: () => undefined, signal: controller.signal });
        await sub.caughtUp;
        controller.abort();
        await sub.done;
        expect(await store.checkpoints.load(id)).toEqual(sub.lastHandledPosition());
      });
    });

    describe('upcasting on read', () => {
      it('returns a stored session.opened v1 event as v2, in every read', async () => {
        const { sessionId, stream } = events.newSession();
        const v2 = events.opened(stream, sessionId);
        const stored = {
          ...v2,
          schemaVersion: 1,
          payload: { sessionId, protocol: 'ssh', target: 'bastion', clientAddress: '192.0.2.7:40022' },
        };
        await subject.writeStoredEventUnchecked(stored);
        const expected = { ...v2, schemaVersion: 2, payload: { sessionId, connection: { name: 'bastion', protocol: 'ssh' }, client: { address: '192.0.2.7:40022' } } };

        const [read] = await collect(store.readStream(stream));
        expect(read?.event).toEqual(expected);
        expect((await collect(store.readAll())).filter(ofStreams([stream])).map((r) => r.event)).toEqual([expected]);
        const seen: RecordedEvent[] = [];
        const sub = subscribe({ subscriptionId: `contract-${randomUUID()}`, from: 'start', handler: (r) => void (r.stream === stream && seen.push(r)) });
        await sub.caughtUp;
        expect(seen.map((r) => r.event)).toEqual([expected]);

        // The stream continues normally after an old event.
        const next = await store.append(stream, events.commands(stream, sessionId, 1, 1), { expectedRevision: 0 });
        expect(next.nextExpectedRevision).toBe(1);
      });
    });

    describe('lifecycle', () => {
      it('answers ping while open', async () => {
        await expect(store.ping()).resolves.toBeUndefined();
      });

      it('close stops running subscriptions and refuses further appends', async () => {
        const { sessionId, stream } = events.newSession();
        await store.append(stream, [events.opened(stream, sessionId)], { expectedRevision: 'no-stream' });
        const sub = subscribe({ subscriptionId: `contract-${randomUUID()}`, from: 'start', handler: () => undefined });
        await sub.caughtUp;
        await store.close();
        await expect(sub.done).resolves.toBeUndefined();
        expect(await rejectionOf(store.append(stream, events.commands(stream, sessionId, 1, 1), { expectedRevision: 0 }))).toMatchObject({
          code: 'EVENT_STORE_CLOSED',
        });
        await store.close();
      });
    });
  });
}
