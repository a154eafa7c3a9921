import { existsSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { dirname } from 'node:path';
import { Kafka, logLevel, type Consumer, type IHeaders, type KafkaMessage } from 'kafkajs';
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

function client(): Kafka {
  // kafkajs logs retriable broker answers ("coordinator is loading") as errors; the
  // assertions below are what tells whether something went wrong.
  return new Kafka({ clientId: 'test-harness-kafka-test', brokers: [...kafka.brokers], logLevel: logLevel.NOTHING });
}

function headerText(headers: IHeaders | undefined, name: string): string | undefined {
  const value = headers?.[name];
  return value === undefined ? undefined : String(value);
}

interface Received {
  readonly partition: number;
  readonly key: string;
  readonly value: string;
  readonly trace: string | undefined;
}

/** Runs a consumer group from the beginning of `topic` until `count` messages arrived. */
async function consumeFromBeginning(consumer: Consumer, topic: string, count: number): Promise<Received[]> {
  const received: Received[] = [];
  await consumer.subscribe({ topic, fromBeginning: true });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`only ${received.length}/${count} messages arrived`)), 45_000);
    consumer
      .run({
        eachMessage: async ({ partition, message }: { partition: number; message: KafkaMessage }) => {
          received.push({
            partition,
            key: message.key?.toString() ?? '',
            value: message.value?.toString() ?? '',
            trace: headerText(message.headers, 'trace-id'),
          });
          if (received.length >= count) {
            clearTimeout(timer);
            resolve();
          }
        },
      })
      .catch(reject);
  });
  return received;
}

describe('startKafka (real KRaft broker from Maven Central)', () => {
  it('runs the requested Kafka version with a bootstrap address on loopback', async () => {
    expect(kafka.brokers).toEqual([expect.stringMatching(/^127\.0\.0\.1:\d+$/)]);
    expect(kafka.running).toBe(true);
    const admin = client().admin();
    await admin.connect();
    try {
      const cluster = await admin.describeCluster();
      expect(cluster.brokers.map((b) => `${b.host}:${b.port}`)).toEqual(kafka.brokers);
      expect(cluster.controller).toBe(1);
    } finally {
      await admin.disconnect();
    }
  });

  it('round-trips keyed messages with headers through an idempotent producer and a consumer group', async () => {
    const topic = 'round-trip';
    const partitions = 3;
    const c = client();
    const admin = c.admin();
    await admin.connect();
    const producer = c.producer({ idempotent: true, maxInFlightRequests: 1 });
    const consumer = c.consumer({ groupId: 'round-trip-group' });
    try {
      expect(await admin.createTopics({ topics: [{ topic, numPartitions: partitions }], waitForLeaders: true })).toBe(true);
      const metadata = await admin.fetchTopicMetadata({ topics: [topic] });
      expect(metadata.topics[0]?.partitions).toHaveLength(partitions);

      await producer.connect();
      const sent = Array.from({ length: 30 }, (_, i) => ({ key: `key-${i % 6}`, value: `value-${i}`, trace: `trace-${i}` }));
      const acks = await producer.send({
        topic,
        acks: -1,
        messages: sent.map((m) => ({ key: m.key, value: m.value, headers: { 'trace-id': m.trace } })),
      });
      expect(acks.every((ack) => ack.errorCode === 0)).toBe(true);

      await consumer.connect();
      const received = await consumeFromBeginning(consumer, topic, sent.length);
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

      await consumer.stop();
      const offsets = await admin.fetchOffsets({ groupId: 'round-trip-group', topics: [topic] });
      const committed = offsets.flatMap((t) => t.partitions).reduce((sum, p) => sum + Number(p.offset), 0);
      expect(committed).toBe(sent.length);
    } finally {
      await consumer.disconnect();
      await producer.disconnect();
      await admin.disconnect();
    }
  });

  it('keeps acknowledged messages when the broker is SIGKILLed under load and restarted on the same data dir', async () => {
    const topic = 'survives-sigkill';
    const brokersBefore = [...kafka.brokers];
    const c = client();
    const admin = c.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic, numPartitions: 2 }], waitForLeaders: true });
    await admin.disconnect();

    // Keep producing batches; only batches the broker acknowledged (acks=-1) must survive.
    const producer = c.producer({ idempotent: true, maxInFlightRequests: 1, retry: { retries: 2, initialRetryTime: 100 } });
    await producer.connect();
    const acknowledged: string[] = [];
    let producing = true;
    let batch = 0;
    const load = (async () => {
      while (producing) {
        const values = Array.from({ length: 20 }, (_, i) => `b${batch}-m${i}`);
        batch += 1;
        try {
          await producer.send({ topic, acks: -1, messages: values.map((value) => ({ key: value, value })) });
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
    await producer.disconnect().catch(() => undefined);
    expect(kafka.running).toBe(true);
    expect(kafka.pid).not.toBe(pidBefore);
    expect(kafka.brokers).toEqual(brokersBefore);

    const consumer = client().consumer({ groupId: 'after-restart' });
    await consumer.connect();
    try {
      const received = await consumeFromBeginning(consumer, topic, acknowledged.length);
      const values = new Set(received.map((m) => m.value));
      expect(acknowledged.filter((value) => !values.has(value))).toEqual([]);
    } finally {
      await consumer.disconnect();
    }
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
