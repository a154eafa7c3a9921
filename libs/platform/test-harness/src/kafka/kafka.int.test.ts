import { existsSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { dirname } from 'node:path';
import { Admin, Consumer, MessagesStreamModes, ProduceAcks, Producer, compatibilityPartitioner, stringDeserializers, stringSerializers } from '@platformatic/kafka';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HarnessError } from '../service.js';
import { KAFKA_DEFAULT_VERSION, KAFKA_POM_PATH, KafkaHarnessError, resolveKafkaClasspath, startKafka, type StartedKafka } from './index.js';

// One broker for the whole file: a start costs a few seconds (and, the very first time on a
// machine, a ~50 s Maven resolution into ~/.m2).
let kafka: StartedKafka;

beforeAll(async () => {
  kafka = await startKafka();
}, 300_000);

afterAll(async () => {
  await kafka?.stop();
});

const base = () => ({ clientId: 'test-harness-kafka-test', bootstrapBrokers: [...kafka.brokers] });

function producer(retries = 5): Producer<string, string, string, string> {
  return new Producer({ ...base(), idempotent: true, acks: ProduceAcks.ALL, maxInflights: 1, retries, retryDelay: 100, partitioner: compatibilityPartitioner, serializers: stringSerializers });
}

interface Received {
  readonly partition: number;
  readonly key: string;
  readonly value: string;
  readonly trace: string | undefined;
}

/**
 * Consumes `topic` as group `groupId` from the earliest offset, committing each, until `count`
 * messages arrived or, when `wanted` is given, until every wanted value arrived (a broker killed
 * mid-batch may hold extra copies or unacknowledged messages, so a count alone can stop early).
 */
async function consumeFromBeginning(groupId: string, topic: string, count: number, wanted?: ReadonlySet<string>): Promise<Received[]> {
  const consumer = new Consumer({ ...base(), groupId, sessionTimeout: 10_000, heartbeatInterval: 1_000, deserializers: stringDeserializers });
  const received: Received[] = [];
  try {
    const stream = await consumer.consume({ topics: [topic], mode: MessagesStreamModes.EARLIEST, autocommit: false, maxWaitTime: 250 });
    const timer = setTimeout(() => void stream.close(), 45_000);
    for await (const message of stream) {
      received.push({ partition: message.partition, key: message.key ?? '', value: message.value ?? '', trace: message.headers.get('trace-id') });
      await message.commit();
      if (wanted ? missingFrom(received, wanted) === 0 : received.length >= count) break;
    }
    clearTimeout(timer);
    if (wanted === undefined && received.length < count) throw new Error(`only ${received.length}/${count} messages arrived`);
  } finally {
    await consumer.close(true);
  }
  return received;
}

function missingFrom(received: readonly Received[], wanted: ReadonlySet<string>): number {
  const seen = new Set(received.map((m) => m.value));
  let missing = 0;
  for (const value of wanted) if (!seen.has(value)) missing += 1;
  return missing;
}

describe('startKafka (real KRaft broker from Maven Central)', () => {
  it('runs the requested Kafka version with a bootstrap address on loopback', async () => {
    expect(kafka.brokers).toEqual([expect.stringMatching(/^127\.0\.0\.1:\d+$/)]);
    expect(kafka.running).toBe(true);
    const admin = new Admin(base());
    try {
      const cluster = await admin.metadata({ topics: [], forceUpdate: true });
      expect([...cluster.brokers.values()].map((b) => `${b.host}:${b.port}`)).toEqual(kafka.brokers);
      expect(cluster.controllerId).toBe(1);
    } finally {
      await admin.close();
    }
  });

  it('round-trips keyed messages with headers through an idempotent producer and a consumer group', async () => {
    const topic = 'round-trip';
    const partitions = 3;
    const admin = new Admin(base());
    const sender = producer();
    try {
      await admin.createTopics({ topics: [topic], partitions, replicas: 1 });
      const metadata = await admin.metadata({ topics: [topic], forceUpdate: true });
      expect(metadata.topics.get(topic)?.partitionsCount).toBe(partitions);

      const sent = Array.from({ length: 30 }, (_, i) => ({ key: `key-${i % 6}`, value: `value-${i}`, trace: `trace-${i}` }));
      const result = await sender.send({ messages: sent.map((m) => ({ topic, key: m.key, value: m.value, headers: { 'trace-id': m.trace } })) });
      expect(result.offsets?.length).toBeGreaterThan(0);

      const received = await consumeFromBeginning('round-trip-group', topic, sent.length);
      expect(received.map(({ key, value, trace }) => ({ key, value, trace })).sort((a, b) => a.value.localeCompare(b.value))).toEqual(
        [...sent].sort((a, b) => a.value.localeCompare(b.value)),
      );
      // Same key, same partition; per-key order is the send order.
      for (const key of new Set(sent.map((m) => m.key))) {
        const forKey = received.filter((m) => m.key === key);
        expect(new Set(forKey.map((m) => m.partition)).size).toBe(1);
        expect(forKey.map((m) => m.value)).toEqual(sent.filter((m) => m.key === key).map((m) => m.value));
      }
      // Six keys over three partitions: the data really is spread, not all on partition 0.
      expect(new Set(received.map((m) => m.partition)).size).toBeGreaterThan(1);

      const [group] = await admin.listConsumerGroupOffsets({ groups: ['round-trip-group'] });
      const committed = (group?.topics ?? []).filter((t) => t.name === topic).flatMap((t) => t.partitions).reduce((sum, p) => sum + Number(p.committedOffset > 0n ? p.committedOffset : 0n), 0);
      expect(committed).toBe(sent.length);
    } finally {
      await sender.close();
      await admin.close();
    }
  });

  it('keeps acknowledged messages when the broker is SIGKILLed under load and restarted on the same data dir', async () => {
    const topic = 'survives-sigkill';
    const brokersBefore = [...kafka.brokers];
    const admin = new Admin(base());
    await admin.createTopics({ topics: [topic], partitions: 2, replicas: 1 });
    await admin.close();

    // Keep producing batches; only batches the broker acknowledged (acks=-1) must survive.
    const sender = producer(2);
    const acknowledged: string[] = [];
    let producing = true;
    let batch = 0;
    const load = (async () => {
      while (producing) {
        const values = Array.from({ length: 20 }, (_, i) => `b${batch}-m${i}`);
        batch += 1;
        try {
          await sender.send({ messages: values.map((value) => ({ topic, key: value, value })) });
          acknowledged.push(...values);
        } catch {
          // The broker died under this batch: it was never acknowledged.
          return;
        }
      }
    })();
    let loadEnded = false;
    void load.finally(() => {
      loadEnded = true;
    });
    while (acknowledged.length < 200 && !loadEnded) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(loadEnded).toBe(false);

    const pidBefore = kafka.pid;
    const exit = await kafka.kill('SIGKILL');
    expect(exit.signal).toBe('SIGKILL');
    expect(kafka.running).toBe(false);
    producing = false;

    // The in-flight batch settles (fails, or is retried into the restarted broker) meanwhile.
    await Promise.all([kafka.restart(), load]);
    await sender.close(true).catch(() => undefined);
    expect(kafka.running).toBe(true);
    expect(kafka.pid).not.toBe(pidBefore);
    expect(kafka.brokers).toEqual(brokersBefore);

    // Reads until every acknowledged value arrived (or 45 s pass); extra messages are allowed.
    const received = await consumeFromBeginning('after-restart', topic, acknowledged.length, new Set(acknowledged));
    const values = new Set(received.map((m) => m.value));
    expect(acknowledged.filter((value) => !values.has(value))).toEqual([]);
  });

  it('stop() ends the broker, frees its port and removes the temp dir', async () => {
    const [host, port] = (kafka.brokers[0] ?? '').split(':');
    const dir = kafka.dir;
    expect(existsSync(kafka.logDir)).toBe(true);
    await kafka.stop();
    expect(kafka.running).toBe(false);
    expect(existsSync(dir)).toBe(false);
    const accepted = await new Promise<boolean>((resolve) => {
      const socket = connect({ host: host ?? '127.0.0.1', port: Number(port) });
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    expect(accepted).toBe(false);
  });
});

describe('Kafka provisioning and start failures', () => {
  it('uses the same default version as pom.xml (which resolve.sh pre-fetches) and caches the classpath', async () => {
    expect(readFileSync(KAFKA_POM_PATH, 'utf8')).toContain(`<kafka.version>${KAFKA_DEFAULT_VERSION}</kafka.version>`);
    // beforeAll resolved it already, so this must come from the cache without running Maven.
    const resolved = await resolveKafkaClasspath();
    expect(resolved.resolvedNow).toBe(false);
    expect(resolved.classpath).toContain(`kafka_2.13-${KAFKA_DEFAULT_VERSION}.jar`);
  });

  it('fails with a typed error carrying the broker output when the JVM cannot start, and leaves no temp dir', async () => {
    const failure = await startKafka({ jvmOptions: ['-XX:+NoSuchHarnessFlag'], startTimeoutMs: 30_000 }).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(failure).toBeInstanceOf(HarnessError);
    // The old Kafka-only error class is an alias now, so existing instanceof checks still hold.
    expect(failure).toBeInstanceOf(KafkaHarnessError);
    const error = failure as HarnessError;
    expect(error.code).toBe('HARNESS_START_FAILED');
    expect(error.message).toContain('NoSuchHarnessFlag');
    const logPath = /--- last output of kafka \((.+?)\) ---/.exec(error.message)?.[1];
    expect(logPath).toBeDefined();
    expect(existsSync(dirname(logPath ?? '/'))).toBe(false);
  });
});
