// The behaviour every EventBus adapter must have, as a Vitest suite. An adapter's test file calls
// describeEventBusContract() with a factory (see libs/events/event-bus-kafka and libs/events/event-bus-in-process).
// Topics and groups are unique per test, so one bus (one broker) serves the whole file.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventBusError, type BusMessage, type ConsumedBatch, type ConsumedMessage, type ConsumerSpec, type EventBus, type RunningConsumer } from '../event-bus.js';

export interface EventBusContractSubject {
  readonly bus: EventBus;
  /** Releases the bus and whatever the factory started. */
  cleanup(): Promise<void>;
}

export interface EventBusContractOptions {
  /** How long to wait for deliveries (group joins on a real broker take seconds). Default 30 s. */
  readonly deliveryTimeoutMs?: number;
}

/** Waits until `predicate` holds, polling; fails with `what` after `timeoutMs`. */
export async function eventually(predicate: () => boolean, what: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Waits for members to join their groups, failing (not hanging) after `timeoutMs`. */
async function joined(consumers: readonly RunningConsumer[], timeoutMs: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`consumers did not join their groups within ${timeoutMs} ms`)), timeoutMs)));
  try {
    await Promise.race([Promise.all(consumers.map((c) => c.ready)), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function text(message: ConsumedMessage): string {
  return message.value.toString('utf8');
}

export function describeEventBusContract(name: string, open: () => Promise<EventBusContractSubject>, options: EventBusContractOptions = {}): void {
  const timeout = options.deliveryTimeoutMs ?? 30_000;
  // Group joins and rebalances on a loaded machine: a test may wait up to `timeout` more than once.
  const test = (name: string, fn: () => Promise<void>): void => void it(name, fn, 2 * timeout + 10_000);

  describe(`EventBus contract: ${name}`, () => {
    let subject: EventBusContractSubject;
    let bus: EventBus;

    beforeAll(async () => {
      subject = await open();
      bus = subject.bus;
    });

    afterAll(async () => {
      await subject?.cleanup();
    });

    const freshTopic = async (partitions = 3): Promise<string> => {
      const topic = `contract-${randomUUID()}`;
      await bus.ensureTopics([{ name: topic, partitions, replicationFactor: 1, config: { 'retention.ms': '3600000' } }]);
      return topic;
    };

    /** Publishes `count` messages over `keys` keys, one publish call per message, in order. */
    const publishSequence = async (topic: string, count: number, keys: number, from = 0): Promise<BusMessage[]> => {
      const publisher = bus.publisher();
      const sent: BusMessage[] = [];
      try {
        for (let i = from; i < from + count; i++) {
          const message: BusMessage = { topic, key: `key-${i % keys}`, value: `value-${i}`, headers: { 'x-index': String(i), 'x-unicode': 'é✓' } };
          await publisher.publish([message]);
          sent.push(message);
        }
      } finally {
        await publisher.close();
      }
      return sent;
    };

    interface Collector {
      readonly handled: ConsumedMessage[];
      readonly consumer: RunningConsumer;
    }

    const collect = (spec: Omit<ConsumerSpec, 'handleBatch'> & { handleBatch?: ConsumerSpec['handleBatch'] }): Collector => {
      const handled: ConsumedMessage[] = [];
      const consumer = bus.consume({
        ...spec,
        retryBackoffMs: spec.retryBackoffMs ?? 50,
        handleBatch: async (batch: ConsumedBatch) => {
          if (spec.handleBatch) await spec.handleBatch(batch);
          handled.push(...batch.messages);
        },
      });
      return { handled, consumer };
    };

    test('creates topics idempotently', async () => {
      const topic = await freshTopic(2);
      await expect(bus.ensureTopics([{ name: topic, partitions: 2, replicationFactor: 1 }])).resolves.toBeUndefined();
    });

    test('round-trips keys, values and headers; per-key order is publish order; commits the offsets', async () => {
      const topic = await freshTopic();
      const sent = await publishSequence(topic, 60, 6);
      const { handled, consumer } = collect({ groupId: `g-${randomUUID()}`, topics: [topic] });
      try {
        await joined([consumer], timeout);
        await eventually(() => handled.length >= sent.length, `${sent.length} messages`, timeout);
      } finally {
        await consumer.stop();
      }
      expect(handled.map(text).sort()).toEqual(sent.map((m) => String(m.value)).sort());
      const first = handled.find((m) => text(m) === 'value-7');
      expect(first?.key).toBe('key-1');
      expect(first?.headers).toMatchObject({ 'x-index': '7', 'x-unicode': 'é✓' });
      expect(first?.topic).toBe(topic);
      for (let k = 0; k < 6; k++) {
        const forKey = handled.filter((m) => m.key === `key-${k}`);
        expect(new Set(forKey.map((m) => m.partition)).size).toBe(1);
        expect(forKey.map(text)).toEqual(sent.filter((m) => m.key === `key-${k}`).map((m) => String(m.value)));
        const offsets = forKey.map((m) => m.offset);
        expect([...offsets].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))).toEqual(offsets);
      }
    });

    test('a restarted member of the group resumes after the committed offsets: nothing handled twice, nothing skipped', async () => {
      const topic = await freshTopic(2);
      const groupId = `g-${randomUUID()}`;
      const firstHalf = await publishSequence(topic, 20, 4);
      const a = collect({ groupId, topics: [topic] });
      await joined([a.consumer], timeout);
      await eventually(() => a.handled.length >= firstHalf.length, 'the first 20', timeout);
      await a.consumer.stop();
      const secondHalf = await publishSequence(topic, 20, 4, 20);
      const b = collect({ groupId, topics: [topic] });
      try {
        await joined([b.consumer], timeout);
        await eventually(() => b.handled.length >= secondHalf.length, 'the next 20', timeout);
        // Give a wrongly redelivered batch the chance to show up.
        await new Promise((resolve) => setTimeout(resolve, 300));
      } finally {
        await b.consumer.stop();
      }
      expect(a.handled.map(text).sort()).toEqual(firstHalf.map((m) => String(m.value)).sort());
      expect(b.handled.map(text).sort()).toEqual(secondHalf.map((m) => String(m.value)).sort());
    });

    test('a failing handler gets the same batch again: nothing is skipped', async () => {
      const topic = await freshTopic(1);
      const sent = await publishSequence(topic, 10, 1);
      let failures = 0;
      const errors: unknown[] = [];
      const { handled, consumer } = collect({
        groupId: `g-${randomUUID()}`,
        topics: [topic],
        onHandlerError: (error) => errors.push(error),
        handleBatch: async (batch) => {
          if (failures < 2 && batch.messages.some((m) => text(m) === 'value-4')) {
            failures += 1;
            throw new Error('store unavailable');
          }
        },
      });
      try {
        await joined([consumer], timeout);
        await eventually(() => handled.some((m) => text(m) === 'value-9'), 'the last message', timeout);
      } finally {
        await consumer.stop();
      }
      expect(failures).toBe(2);
      expect(errors.map((e) => (e as Error).message)).toEqual(['store unavailable', 'store unavailable']);
      // Handled in order, each exactly once after the failed attempts.
      expect(handled.map(text)).toEqual(sent.map((m) => String(m.value)));
    });

    test('abort() does not commit the batch in hand: the next member of the group gets it again', async () => {
      const topic = await freshTopic(1);
      const groupId = `g-${randomUUID()}`;
      const sent = await publishSequence(topic, 10, 2);
      let entered = false;
      const stuck = bus.consume({
        groupId,
        topics: [topic],
        handleBatch: (batch) =>
          new Promise<void>((resolve) => {
            entered = true;
            // Never finishes on its own: the member "crashes" while handling.
            batch.signal.addEventListener('abort', () => resolve(), { once: true });
          }),
      });
      await eventually(() => entered, 'the first batch', timeout);
      await stuck.abort();
      const b = collect({ groupId, topics: [topic] });
      try {
        await joined([b.consumer], timeout);
        await eventually(() => b.handled.length >= sent.length, 'all messages again', timeout);
      } finally {
        await b.consumer.stop();
      }
      expect(b.handled.map(text)).toEqual(sent.map((m) => String(m.value)));
    });

    test('every group receives every message; members of one group share the partitions', async () => {
      const topic = await freshTopic(4);
      const sent = await publishSequence(topic, 40, 8);
      const groupA = `g-${randomUUID()}`;
      const solo = collect({ groupId: `g-${randomUUID()}`, topics: [topic] });
      const first = collect({ groupId: groupA, topics: [topic] });
      const second = collect({ groupId: groupA, topics: [topic] });
      try {
        await joined([solo.consumer, first.consumer, second.consumer], timeout);
        await eventually(() => solo.handled.length >= sent.length, 'the solo group', timeout);
        await eventually(() => new Set([...first.handled, ...second.handled].map(text)).size >= sent.length, 'the shared group', timeout);
      } finally {
        await Promise.all([solo.consumer.stop(), first.consumer.stop(), second.consumer.stop()]);
      }
      expect(solo.handled.map(text).sort()).toEqual(sent.map((m) => String(m.value)).sort());
      const shared = [...first.handled, ...second.handled];
      expect(new Set(shared.map(text))).toEqual(new Set(sent.map((m) => String(m.value))));
      // Every partition was consumed by some member of the shared group.
      const owners = new Map<number, Set<string>>();
      for (const [member, handled] of [['first', first.handled], ['second', second.handled]] as const) {
        for (const m of handled) owners.set(m.partition, new Set([...(owners.get(m.partition) ?? []), member]));
      }
      expect(owners.size).toBe(4);
    });

    test('a closed publisher refuses to publish with EVENT_BUS_CLOSED', async () => {
      const topic = await freshTopic(1);
      const publisher = bus.publisher();
      await publisher.publish([{ topic, key: 'k', value: 'v' }]);
      await publisher.close();
      await expect(publisher.publish([{ topic, key: 'k', value: 'v' }])).rejects.toSatisfy(
        (error: unknown) => error instanceof EventBusError && error.code === 'EVENT_BUS_CLOSED',
      );
    });
  });
}
