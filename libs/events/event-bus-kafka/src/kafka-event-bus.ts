// The distributed bus: Apache Kafka through kafkajs 2.2.4. The only module that imports kafkajs
// (docs/adr/0006-kafkajs-behind-a-port.md). Producer: idempotent, acks=-1 (all in-sync
// replicas), one request in flight, compression, batching with linger (kafkajs has no linger.ms,
// so the publisher batches itself). Consumer: commits only after the handler resolved.
import {
  EventBusError,
  type BusMessage,
  type BusPublisher,
  type ConsumedBatch,
  type ConsumedMessage,
  type ConsumerSpec,
  type EventBus,
  type RunningConsumer,
  type TopicSpec,
} from '@custodian/event-bus';
import {
  CompressionTypes,
  Kafka,
  Partitioners,
  logLevel,
  type Consumer,
  type EachBatchPayload,
  type IHeaders,
  type LogEntry,
  type Producer,
  type SASLOptions,
  type TopicMessages,
} from 'kafkajs';

export type KafkaLogLevel = 'error' | 'warn' | 'info' | 'debug';

export interface KafkaLogEntry {
  readonly level: KafkaLogLevel;
  readonly namespace: string;
  readonly message: string;
  readonly fields: Readonly<Record<string, unknown>>;
}

export interface KafkaEventBusOptions {
  readonly brokers: readonly string[];
  readonly clientId: string;
  readonly ssl?: boolean;
  /** Credentials resolved by the caller (never from this module's config). */
  readonly sasl?: { readonly mechanism: 'plain' | 'scram-sha-256' | 'scram-sha-512'; readonly username: string; readonly password: string };
  readonly producer?: {
    /** Default 'gzip' (the codec kafkajs ships; others need native modules). */
    readonly compression?: 'none' | 'gzip';
    /** How long a publish waits for others to share its request. Default 5 ms. */
    readonly lingerMs?: number;
    /** A request is sent at once when this many bytes are waiting. Default 1 MiB. */
    readonly maxBatchBytes?: number;
    /** Retries of one request inside kafkajs before publish() rejects. Default 5. */
    readonly retries?: number;
  };
  readonly consumer?: {
    /** Default 10,000 ms. */
    readonly sessionTimeoutMs?: number;
    /** Default 1,000 ms. */
    readonly heartbeatIntervalMs?: number;
    /** Longest a fetch waits for data. Default 250 ms (quick stop and low latency). */
    readonly maxWaitTimeMs?: number;
  };
  /** kafkajs' own log lines (warn and above by default). */
  readonly log?: (entry: KafkaLogEntry) => void;
  readonly logLevel?: KafkaLogLevel;
  readonly connectionTimeoutMs?: number;
  readonly requestTimeoutMs?: number;
}

const LEVELS: Record<KafkaLogLevel, logLevel> = { error: logLevel.ERROR, warn: logLevel.WARN, info: logLevel.INFO, debug: logLevel.DEBUG };
const LEVEL_NAMES = new Map<number, KafkaLogLevel>([
  [logLevel.ERROR, 'error'],
  [logLevel.WARN, 'warn'],
  [logLevel.INFO, 'info'],
  [logLevel.DEBUG, 'debug'],
]);

function headersOf(headers: IHeaders | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers ?? {})) {
    if (value === undefined) continue;
    const first = Array.isArray(value) ? value[0] : value;
    if (first !== undefined) out[name] = first.toString();
  }
  return out;
}

function byteLength(message: BusMessage): number {
  const value = typeof message.value === 'string' ? Buffer.byteLength(message.value) : message.value.byteLength;
  return value + (message.key?.length ?? 0) + 64;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

interface PendingPublish {
  readonly messages: readonly BusMessage[];
  readonly bytes: number;
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
}

/** One idempotent producer, one request in flight; publishes that arrive within `lingerMs` share a request. */
class KafkaPublisher implements BusPublisher {
  private producer: Producer | undefined;
  private connecting: Promise<Producer> | undefined;
  private queue: PendingPublish[] = [];
  private queuedBytes = 0;
  private timer: NodeJS.Timeout | undefined;
  private sending: Promise<void> | undefined;
  private closed = false;
  private readonly lingerMs: number;
  private readonly maxBatchBytes: number;
  private readonly compression: CompressionTypes;

  constructor(
    private readonly kafka: Kafka,
    private readonly options: KafkaEventBusOptions,
    private readonly onClose: (p: KafkaPublisher) => void,
  ) {
    this.lingerMs = options.producer?.lingerMs ?? 5;
    this.maxBatchBytes = options.producer?.maxBatchBytes ?? 1024 * 1024;
    this.compression = (options.producer?.compression ?? 'gzip') === 'gzip' ? CompressionTypes.GZIP : CompressionTypes.None;
  }

  publish(messages: readonly BusMessage[]): Promise<void> {
    if (this.closed) return Promise.reject(new EventBusError('EVENT_BUS_CLOSED', 'the publisher is closed'));
    if (messages.length === 0) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const bytes = messages.reduce((sum, m) => sum + byteLength(m), 0);
      this.queue.push({ messages, bytes, resolve, reject });
      this.queuedBytes += bytes;
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.sending) return; // the send loop picks the queue up when its request is answered
    if (this.queuedBytes >= this.maxBatchBytes || this.lingerMs <= 0) {
      this.startSending();
      return;
    }
    this.timer ??= setTimeout(() => this.startSending(), this.lingerMs);
  }

  private startSending(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.sending || this.queue.length === 0) return;
    this.sending = this.sendLoop().finally(() => {
      this.sending = undefined;
      if (this.queue.length > 0) this.schedule();
    });
  }

  private async sendLoop(): Promise<void> {
    while (this.queue.length > 0) {
      // Take whole publish calls up to maxBatchBytes (at least one).
      const taken: PendingPublish[] = [];
      let bytes = 0;
      while (this.queue.length > 0 && (taken.length === 0 || bytes + this.queue[0]!.bytes <= this.maxBatchBytes)) {
        const next = this.queue.shift()!;
        bytes += next.bytes;
        taken.push(next);
      }
      this.queuedBytes -= bytes;
      const byTopic = new Map<string, TopicMessages>();
      for (const p of taken) {
        for (const m of p.messages) {
          let entry = byTopic.get(m.topic);
          if (!entry) byTopic.set(m.topic, (entry = { topic: m.topic, messages: [] }));
          entry.messages.push({ key: m.key, value: typeof m.value === 'string' ? m.value : Buffer.from(m.value), headers: { ...(m.headers ?? {}) } });
        }
      }
      try {
        const producer = await this.connected();
        await producer.sendBatch({ topicMessages: [...byTopic.values()], acks: -1, compression: this.compression });
        for (const p of taken) p.resolve();
      } catch (cause) {
        // A fresh producer (new producer id) for whatever comes next: kafkajs does not recover
        // every idempotent-producer error in place. Any part of this request may be written.
        await this.resetProducer();
        const error = new EventBusError('EVENT_BUS_PUBLISH_FAILED', `Kafka did not acknowledge ${taken.reduce((n, p) => n + p.messages.length, 0)} message(s): ${(cause as Error).message}`, { cause });
        for (const p of taken) p.reject(error);
      }
    }
  }

  private connected(): Promise<Producer> {
    if (this.producer) return Promise.resolve(this.producer);
    this.connecting ??= (async () => {
      const producer = this.kafka.producer({
        idempotent: true,
        maxInFlightRequests: 1,
        createPartitioner: Partitioners.DefaultPartitioner,
        retry: { retries: this.options.producer?.retries ?? 5, initialRetryTime: 100, maxRetryTime: 2_000 },
      });
      try {
        await producer.connect();
      } catch (error) {
        await producer.disconnect().catch(() => undefined);
        throw error;
      }
      this.producer = producer;
      return producer;
    })().finally(() => {
      this.connecting = undefined;
    });
    return this.connecting;
  }

  private async resetProducer(): Promise<void> {
    const producer = this.producer;
    this.producer = undefined;
    await producer?.disconnect().catch(() => undefined);
  }

  async flush(): Promise<void> {
    this.startSending();
    while (this.sending) await this.sending;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await this.flush();
    this.closed = true;
    await this.resetProducer();
    this.onClose(this);
  }
}

/** One member of a consumer group; re-creates its kafkajs consumer when kafkajs gives up (broker gone for long). */
class KafkaGroupMember implements RunningConsumer {
  readonly ready: Promise<void>;
  readonly done: Promise<void>;
  private resolveReady: () => void = () => undefined;
  private consumer: Consumer | undefined;
  private readonly stopping = new AbortController();
  private crashed = false;
  private readonly inHand = new Set<AbortController>();
  private stopped: Promise<void> | undefined;

  constructor(
    private readonly kafka: Kafka,
    private readonly spec: ConsumerSpec,
    private readonly options: KafkaEventBusOptions,
    private readonly onGone: (m: KafkaGroupMember) => void,
  ) {
    this.ready = new Promise((resolve) => (this.resolveReady = resolve));
    this.done = this.supervise();
    this.done.catch(() => undefined);
  }

  /** Runs a kafkajs consumer; when it crashes for good, waits and starts another. */
  private async supervise(): Promise<void> {
    const backoff = this.spec.retryBackoffMs ?? 500;
    while (!this.stopping.signal.aborted) {
      const gone = await this.runOnce().catch((error: unknown) => error);
      if (this.stopping.signal.aborted) break;
      this.options.log?.({ level: 'warn', namespace: 'custodian.consumer', message: `consumer of ${this.spec.groupId} restarts: ${(gone as Error)?.message ?? 'crashed'}`, fields: {} });
      await sleep(Math.max(backoff, 1_000), this.stopping.signal);
    }
  }

  private async runOnce(): Promise<unknown> {
    const consumer = this.kafka.consumer({
      groupId: this.spec.groupId,
      sessionTimeout: this.options.consumer?.sessionTimeoutMs ?? 10_000,
      heartbeatInterval: this.options.consumer?.heartbeatIntervalMs ?? 1_000,
      maxWaitTimeInMs: this.options.consumer?.maxWaitTimeMs ?? 250,
      // kafkajs restarts itself on retriable errors; we restart on the rest (see supervise()).
      retry: { retries: 10, initialRetryTime: 300, maxRetryTime: 5_000 },
    });
    this.consumer = consumer;
    const crashed = new Promise<unknown>((resolve) => {
      consumer.on(consumer.events.CRASH, (event) => {
        if (!event.payload.restart) resolve(event.payload.error);
      });
    });
    consumer.on(consumer.events.GROUP_JOIN, () => this.resolveReady());
    try {
      await consumer.connect();
      await consumer.subscribe({ topics: [...this.spec.topics], fromBeginning: this.spec.fromBeginning ?? true });
      await consumer.run({
        autoCommit: false,
        eachBatchAutoResolve: false,
        partitionsConsumedConcurrently: this.spec.partitionsConsumedConcurrently ?? 4,
        eachBatch: (payload) => this.eachBatch(consumer, payload),
      });
    } catch (error) {
      await consumer.disconnect().catch(() => undefined);
      return error;
    }
    const stopped = new Promise<undefined>((resolve) => this.stopping.signal.addEventListener('abort', () => resolve(undefined), { once: true }));
    const outcome = await Promise.race([crashed, stopped]);
    if (outcome !== undefined) await consumer.disconnect().catch(() => undefined);
    return outcome;
  }

  private async eachBatch(consumer: Consumer, payload: EachBatchPayload): Promise<void> {
    const { batch, resolveOffset, heartbeat, isRunning, isStale } = payload;
    if (batch.isEmpty()) return;
    const controller = new AbortController();
    this.inHand.add(controller);
    const messages: ConsumedMessage[] = batch.messages.map((m) => ({
      topic: batch.topic,
      partition: batch.partition,
      offset: BigInt(m.offset),
      key: m.key === null ? null : m.key.toString('utf8'),
      value: m.value ?? Buffer.alloc(0),
      headers: headersOf(m.headers),
      timestamp: Number(m.timestamp),
    }));
    const consumed: ConsumedBatch = { topic: batch.topic, partition: batch.partition, messages, highWatermark: BigInt(batch.highWatermark), signal: controller.signal };
    // Long handlers must not cost the group membership.
    const beat = setInterval(() => void heartbeat().catch(() => undefined), 1_000);
    try {
      for (;;) {
        if (!isRunning() || isStale() || controller.signal.aborted) return;
        try {
          await Promise.race([
            this.spec.handleBatch(consumed),
            new Promise<void>((resolve) => controller.signal.addEventListener('abort', () => resolve(), { once: true })),
          ]);
        } catch (error) {
          if (controller.signal.aborted) return;
          this.spec.onHandlerError?.(error, consumed);
          await sleep(this.spec.retryBackoffMs ?? 500, controller.signal);
          continue;
        }
        if (controller.signal.aborted || this.crashed) return;
        const last = messages[messages.length - 1]!.offset;
        resolveOffset(last.toString());
        const committedOffset = last + 1n;
        try {
          await consumer.commitOffsets([{ topic: batch.topic, partition: batch.partition, offset: committedOffset.toString() }]);
        } catch (error) {
          // Typically a rebalance in progress: the partition's next owner gets the batch again
          // (at-least-once; the handler's effects are idempotent). Nothing to retry here.
          this.options.log?.({ level: 'warn', namespace: 'custodian.consumer', message: `commit of ${batch.topic}/${batch.partition}@${committedOffset} failed: ${(error as Error).message}`, fields: {} });
          return;
        }
        this.spec.onCommitted?.({ topic: batch.topic, partition: batch.partition, committedOffset, lag: consumed.highWatermark - committedOffset });
        return;
      }
    } finally {
      clearInterval(beat);
      this.inHand.delete(controller);
    }
  }

  private leave(crash: boolean): Promise<void> {
    this.stopped ??= (async () => {
      this.crashed = crash;
      if (crash) for (const c of this.inHand) c.abort();
      this.stopping.abort();
      this.resolveReady();
      // Bounded: a kafkajs consumer still connecting or rejoining a group on a starved machine can
      // take long to give up, and leaving must not hang a shutdown (nothing uncommitted is lost).
      await Promise.race([this.consumer?.disconnect().catch(() => undefined), sleep(15_000)]);
      await Promise.race([this.done.catch(() => undefined), sleep(15_000)]);
      this.onGone(this);
    })();
    return this.stopped;
  }

  stop(): Promise<void> {
    return this.leave(false);
  }

  abort(): Promise<void> {
    return this.leave(true);
  }
}

export class KafkaEventBus implements EventBus {
  readonly kind = 'kafka' as const;
  private readonly kafka: Kafka;
  private readonly publishers = new Set<KafkaPublisher>();
  private readonly members = new Set<KafkaGroupMember>();
  private closed = false;

  constructor(private readonly options: KafkaEventBusOptions) {
    if (options.brokers.length === 0) throw new EventBusError('EVENT_BUS_INVALID_REQUEST', 'at least one Kafka broker is required');
    const log = options.log;
    this.kafka = new Kafka({
      clientId: options.clientId,
      brokers: [...options.brokers],
      ssl: options.ssl ?? false,
      ...(options.sasl ? { sasl: { mechanism: options.sasl.mechanism, username: options.sasl.username, password: options.sasl.password } as SASLOptions } : {}),
      connectionTimeout: options.connectionTimeoutMs ?? 3_000,
      requestTimeout: options.requestTimeoutMs ?? 30_000,
      logLevel: LEVELS[options.logLevel ?? 'warn'],
      logCreator: () => (entry: LogEntry) => {
        if (!log) return;
        const { message, ...fields } = entry.log;
        log({ level: LEVEL_NAMES.get(entry.level) ?? 'info', namespace: entry.namespace, message, fields });
      },
    });
  }

  async ensureTopics(topics: readonly TopicSpec[]): Promise<void> {
    this.assertOpen();
    // Metadata of a topic just created can lag behind (UNKNOWN_TOPIC_OR_PARTITION, retriable):
    // retry the whole, idempotent, operation a few times.
    let attempt = 0;
    for (;;) {
      try {
        await this.ensureTopicsOnce(topics);
        return;
      } catch (cause) {
        const retriable = (cause as { retriable?: boolean }).retriable === true || (cause as Error).name === 'KafkaJSNumberOfRetriesExceeded';
        if (!retriable || ++attempt >= 8) {
          throw new EventBusError('EVENT_BUS_ADMIN_FAILED', `could not create topics ${topics.map((t) => t.name).join(', ')}: ${(cause as Error).message}`, { cause });
        }
        await sleep(200 * attempt);
      }
    }
  }

  private async ensureTopicsOnce(topics: readonly TopicSpec[]): Promise<void> {
    const admin = this.kafka.admin();
    try {
      await admin.connect();
      const existing = new Set(await admin.listTopics());
      const missing = topics.filter((t) => !existing.has(t.name));
      if (missing.length > 0) {
        await admin.createTopics({
          waitForLeaders: false,
          topics: missing.map((t) => ({
            topic: t.name,
            numPartitions: t.partitions,
            replicationFactor: t.replicationFactor,
            configEntries: Object.entries(t.config ?? {}).map(([name, value]) => ({ name, value })),
          })),
        });
      }
      // Every partition has a leader before anyone produces.
      const metadata = await admin.fetchTopicMetadata({ topics: topics.map((t) => t.name) });
      const leaderless = metadata.topics.flatMap((t) => t.partitions.filter((p) => p.leader < 0).map((p) => `${t.name}/${p.partitionId}`));
      if (leaderless.length > 0) throw Object.assign(new Error(`no leader yet for ${leaderless.join(', ')}`), { retriable: true });
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
  }

  publisher(): BusPublisher {
    this.assertOpen();
    const publisher = new KafkaPublisher(this.kafka, this.options, (p) => this.publishers.delete(p));
    this.publishers.add(publisher);
    return publisher;
  }

  consume(spec: ConsumerSpec): RunningConsumer {
    this.assertOpen();
    const member = new KafkaGroupMember(this.kafka, spec, this.options, (m) => this.members.delete(m));
    this.members.add(member);
    return member;
  }

  private assertOpen(): void {
    if (this.closed) throw new EventBusError('EVENT_BUS_CLOSED', 'the event bus is closed');
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all([...this.members].map((m) => m.stop()));
    await Promise.all([...this.publishers].map((p) => p.close().catch(() => undefined)));
  }
}
