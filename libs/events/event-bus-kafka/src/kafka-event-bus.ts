// The distributed bus: Apache Kafka through @platformatic/kafka (pure JavaScript; ADR 0011). The
// only module that imports a Kafka client. Producer: idempotent, acks=-1 (all in-sync replicas),
// one request in flight, the Java client's key → partition mapping, batching with linger.
// Consumer: per partition, batches in offset order; a batch's offsets are committed only after its
// handler resolved (commit-after-store for ingest).
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
  Admin,
  Consumer,
  MessagesStreamFallbackModes,
  MessagesStreamModes,
  ProduceAcks,
  Producer,
  compatibilityPartitioner,
  type ConnectionOptions,
  type ConsumerGroupJoinPayload,
  type Message,
  type MessagesStream,
} from '@platformatic/kafka';

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
    /** Default 'gzip' (zlib, built into Node). */
    readonly compression?: 'none' | 'gzip';
    /** How long a publish waits for others to share its request. Default 5 ms. */
    readonly lingerMs?: number;
    /** A request is sent at once when this many bytes are waiting. Default 1 MiB. */
    readonly maxBatchBytes?: number;
    /** Retries of one request inside the client before publish() rejects. Default 5. */
    readonly retries?: number;
  };
  readonly consumer?: {
    /** Default 10,000 ms. */
    readonly sessionTimeoutMs?: number;
    /** Default 1,000 ms. */
    readonly heartbeatIntervalMs?: number;
    /** Longest a fetch waits for data. Default 250 ms (quick stop and low latency). */
    readonly maxWaitTimeMs?: number;
    /** Most messages handed to one handleBatch call. Default 1,000. */
    readonly maxBatchMessages?: number;
  };
  /** The adapter's own log lines (warn and above by default). */
  readonly log?: (entry: KafkaLogEntry) => void;
  readonly logLevel?: KafkaLogLevel;
  readonly connectionTimeoutMs?: number;
  readonly requestTimeoutMs?: number;
}

const LEVEL_ORDER: Record<KafkaLogLevel, number> = { error: 0, warn: 1, info: 2, debug: 3 };

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

function byteLength(message: BusMessage): number {
  const value = typeof message.value === 'string' ? Buffer.byteLength(message.value) : message.value.byteLength;
  return value + (message.key?.length ?? 0) + 64;
}

function describe(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  // The client aggregates per-broker failures; their messages say what happened.
  const inner = error instanceof AggregateError ? error.errors.map((e: unknown) => (e instanceof Error ? e.message : String(e))) : [];
  return inner.length > 0 ? `${error.message} (${[...new Set(inner)].join('; ')})` : error.message;
}

type BufferMessage = Message<Buffer, Buffer, Buffer, Buffer>;

/** Connection settings shared by the producer, consumers and admin clients. */
function connectionOptions(options: KafkaEventBusOptions, clientId: string) {
  const connection: ConnectionOptions = {
    connectTimeout: options.connectionTimeoutMs ?? 3_000,
    requestTimeout: options.requestTimeoutMs ?? 30_000,
    ...(options.ssl ? { tls: {} } : {}),
    ...(options.sasl
      ? { sasl: { mechanism: ({ plain: 'PLAIN', 'scram-sha-256': 'SCRAM-SHA-256', 'scram-sha-512': 'SCRAM-SHA-512' } as const)[options.sasl.mechanism], username: options.sasl.username, password: options.sasl.password } }
      : {}),
  };
  return { clientId, bootstrapBrokers: [...options.brokers], ...connection };
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
  private queue: PendingPublish[] = [];
  private queuedBytes = 0;
  private timer: NodeJS.Timeout | undefined;
  private sending: Promise<void> | undefined;
  private closed = false;
  private readonly lingerMs: number;
  private readonly maxBatchBytes: number;

  constructor(
    private readonly options: KafkaEventBusOptions,
    private readonly onClose: (p: KafkaPublisher) => void,
  ) {
    this.lingerMs = options.producer?.lingerMs ?? 5;
    this.maxBatchBytes = options.producer?.maxBatchBytes ?? 1024 * 1024;
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
      const messages = taken.flatMap((p) =>
        p.messages.map((m) => ({
          topic: m.topic,
          ...(m.key === null ? {} : { key: Buffer.from(m.key) }),
          value: typeof m.value === 'string' ? Buffer.from(m.value) : Buffer.from(m.value.buffer, m.value.byteOffset, m.value.byteLength),
          headers: new Map(Object.entries<string>(m.headers ?? {}).map(([name, value]) => [Buffer.from(name), Buffer.from(value)] as [Buffer, Buffer])),
        })),
      );
      try {
        await this.connected().send({ messages });
        for (const p of taken) p.resolve();
      } catch (cause) {
        // A fresh producer (new producer id) for whatever comes next: after a failed request the
        // old producer's sequence numbers may no longer match the broker's. Any part of this
        // request may be written; callers retry and consumers deduplicate.
        await this.resetProducer();
        const error = new EventBusError('EVENT_BUS_PUBLISH_FAILED', `Kafka did not acknowledge ${messages.length} message(s): ${describe(cause)}`, { cause });
        for (const p of taken) p.reject(error);
      }
    }
  }

  private connected(): Producer {
    this.producer ??= new Producer({
      ...connectionOptions(this.options, this.options.clientId),
      idempotent: true,
      acks: ProduceAcks.ALL,
      compression: (this.options.producer?.compression ?? 'gzip') === 'gzip' ? 'gzip' : 'none',
      // (murmur2 & 0x7fffffff) % partitions: the Java client's mapping, which kafkajs used too, so a
      // session keeps its partition across a rolling upgrade.
      partitioner: compatibilityPartitioner,
      // One request at a time: order per key holds even across retries.
      maxInflights: 1,
      retries: this.options.producer?.retries ?? 5,
      retryDelay: 200,
    });
    // The client reports failures it handles itself as 'error' events; unheard, Node would throw
    // them (uncaught). A failed send still rejects its own promise.
    this.producer.on('error', () => undefined);
    return this.producer;
  }

  private async resetProducer(): Promise<void> {
    const producer = this.producer;
    this.producer = undefined;
    await producer?.close(true).catch(() => undefined);
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

/** One partition this member owns: messages fetched, not yet handed to the handler. */
interface PartitionState {
  readonly topic: string;
  readonly partition: number;
  readonly queue: ConsumedMessage[];
  /** The offset after the last message queued: redeliveries below it are dropped (already queued or handled). */
  next: bigint | undefined;
  /** The running handler's abort, while a batch is in hand. */
  inHand: AbortController | undefined;
  /** A worker owns the queue (running or waiting for a slot). */
  working: boolean;
  /** Set when the partition was revoked or the member stops: its worker ends. */
  revoked: boolean;
}

const partitionKey = (topic: string, partition: number) => `${topic}\u0000${partition}`;

/**
 * One member of a consumer group. The client's message stream feeds one queue per partition; one
 * worker per partition hands its queue to `handleBatch` in offset order and commits after it.
 * When the stream fails (broker gone, fatal group error) the whole client is replaced and
 * consumption resumes from the committed offsets.
 */
class KafkaGroupMember implements RunningConsumer {
  readonly ready: Promise<void>;
  readonly done: Promise<void>;
  private resolveReady: () => void = () => undefined;
  private readonly stopping = new AbortController();
  private crashed = false;
  private stopped: Promise<void> | undefined;
  private consumer: Consumer | undefined;
  private stream: MessagesStream<Buffer, Buffer, Buffer, Buffer> | undefined;
  private partitions = new Map<string, PartitionState>();
  private readonly workers = new Set<Promise<void>>();
  private readonly waitingForSlot: (() => void)[] = [];
  private running = 0;
  private queued = 0;
  private readonly highWatermarks = new Map<string, bigint>();
  private readonly maxQueued: number;
  private readonly maxBatch: number;
  private readonly concurrency: number;

  constructor(
    private readonly spec: ConsumerSpec,
    private readonly options: KafkaEventBusOptions,
    private readonly log: (level: KafkaLogLevel, message: string) => void,
    private readonly onGone: (m: KafkaGroupMember) => void,
  ) {
    this.maxBatch = options.consumer?.maxBatchMessages ?? 1_000;
    this.maxQueued = this.maxBatch * 8;
    this.concurrency = Math.max(1, spec.partitionsConsumedConcurrently ?? 4);
    this.ready = new Promise((resolve) => (this.resolveReady = resolve));
    this.done = this.supervise();
    this.done.catch(() => undefined);
  }

  /** Runs a client until it fails for good; then waits and starts another. */
  private async supervise(): Promise<void> {
    const backoff = this.spec.retryBackoffMs ?? 500;
    while (!this.stopping.signal.aborted) {
      const gone = await this.runOnce().catch((error: unknown) => error);
      if (this.stopping.signal.aborted) break;
      this.log('warn', `consumer of ${this.spec.groupId} restarts: ${gone === undefined ? 'stream ended' : describe(gone)}`);
      await sleep(Math.max(backoff, 1_000), this.stopping.signal);
    }
  }

  private async runOnce(): Promise<unknown> {
    const settings = this.options.consumer;
    const consumer = new Consumer({
      ...connectionOptions(this.options, this.options.clientId),
      groupId: this.spec.groupId,
      sessionTimeout: settings?.sessionTimeoutMs ?? 10_000,
      rebalanceTimeout: Math.max(settings?.sessionTimeoutMs ?? 10_000, 30_000),
      heartbeatInterval: settings?.heartbeatIntervalMs ?? 1_000,
      maxWaitTime: settings?.maxWaitTimeMs ?? 250,
      autocommit: false,
      // Retries inside the client; past them the stream fails and supervise() starts afresh.
      retries: 5,
      retryDelay: 300,
    });
    this.consumer = consumer;
    // The client reports failures it recovers from (a failed rejoin, a heartbeat error) as 'error'
    // events; unheard, Node would throw them (uncaught). A failure it cannot recover from ends the
    // stream, and supervise() starts a new client.
    consumer.on('error', (error: unknown) => {
      if (!this.stopping.signal.aborted) this.log('warn', `consumer of ${this.spec.groupId}: ${describe(error)}`);
    });
    consumer.on('consumer:group:join', (payload: ConsumerGroupJoinPayload) => this.onJoin(payload));
    const lagTimer = setInterval(() => void this.refreshHighWatermarks(consumer), 2_000);
    try {
      const stream = await consumer.consume({
        topics: [...this.spec.topics],
        mode: MessagesStreamModes.COMMITTED,
        fallbackMode: this.spec.fromBeginning === false ? MessagesStreamFallbackModes.LATEST : MessagesStreamFallbackModes.EARLIEST,
        autocommit: false,
        maxWaitTime: settings?.maxWaitTimeMs ?? 250,
        highWaterMark: this.maxBatch,
      });
      this.stream = stream;
      if (this.stopping.signal.aborted) return undefined;
      const ended = new Promise<unknown>((resolve) => {
        stream.once('error', (error: Error) => resolve(error));
        stream.once('close', () => resolve(undefined));
      });
      stream.on('data', (message: BufferMessage) => this.enqueue(message));
      const stopped = new Promise<'stopped'>((resolve) => this.stopping.signal.addEventListener('abort', () => resolve('stopped'), { once: true }));
      const outcome = await Promise.race([ended, stopped]);
      if (outcome === 'stopped') return undefined;
      return outcome ?? new Error('the message stream closed');
    } finally {
      clearInterval(lagTimer);
      if (!this.stopping.signal.aborted) {
        // The client is gone: batches in hand cannot be committed by it; the next client starts from the committed offsets.
        this.revokeAll();
        await consumer.close(true).catch(() => undefined);
      }
    }
  }

  /** A (re)join: partitions no longer assigned to this member stop; retained ones go on. */
  private onJoin(payload: ConsumerGroupJoinPayload): void {
    const assigned = new Set<string>();
    for (const a of payload.assignments ?? []) for (const p of a.partitions) assigned.add(partitionKey(a.topic, p));
    for (const [key, state] of this.partitions) if (!assigned.has(key)) this.revoke(key, state);
    this.resolveReady();
  }

  private revoke(key: string, state: PartitionState): void {
    state.revoked = true;
    state.inHand?.abort();
    this.queued -= state.queue.length;
    state.queue.length = 0;
    this.partitions.delete(key);
    this.resumeIfRoom();
  }

  private revokeAll(): void {
    for (const [key, state] of [...this.partitions]) this.revoke(key, state);
  }

  private enqueue(message: BufferMessage): void {
    if (this.stopping.signal.aborted) return;
    const assignment = this.consumer?.assignments?.find((a) => a.topic === message.topic);
    if (!assignment?.partitions.includes(message.partition)) return; // fetched before a rebalance took it away
    const key = partitionKey(message.topic, message.partition);
    let state = this.partitions.get(key);
    if (!state) {
      state = { topic: message.topic, partition: message.partition, queue: [], next: undefined, inHand: undefined, working: false, revoked: false };
      this.partitions.set(key, state);
    }
    if (state.next !== undefined && message.offset < state.next) return; // refetched after a rejoin: already queued or handled
    state.next = message.offset + 1n;
    const headers: Record<string, string> = {};
    for (const [name, value] of message.headerEntries) if (name) headers[name.toString('utf8')] = value ? value.toString('utf8') : '';
    state.queue.push({
      topic: message.topic,
      partition: message.partition,
      offset: message.offset,
      key: message.key ? message.key.toString('utf8') : null,
      value: message.value ?? Buffer.alloc(0),
      headers,
      timestamp: Number(message.timestamp),
    });
    this.queued++;
    if (this.queued >= this.maxQueued) this.stream?.pause();
    if (!state.working) this.startWorker(state);
  }

  private resumeIfRoom(): void {
    if (this.queued < this.maxQueued / 2 && this.stream?.isPaused() && !this.stopping.signal.aborted) this.stream.resume();
  }

  private startWorker(state: PartitionState): void {
    state.working = true;
    const worker = this.work(state).finally(() => {
      state.working = false;
      this.workers.delete(worker);
      // Messages queued while the worker was finishing.
      if (state.queue.length > 0 && !state.revoked && !this.stopping.signal.aborted && this.partitions.get(partitionKey(state.topic, state.partition)) === state) this.startWorker(state);
    });
    this.workers.add(worker);
  }

  private async acquire(): Promise<void> {
    if (this.running < this.concurrency) {
      this.running++;
      return;
    }
    await new Promise<void>((resolve) => this.waitingForSlot.push(resolve));
  }

  private release(): void {
    const next = this.waitingForSlot.shift();
    if (next) next();
    else this.running--;
  }

  /** Hands the partition's queue to the handler, batch after batch, committing each after it. */
  private async work(state: PartitionState): Promise<void> {
    await this.acquire();
    try {
      while (state.queue.length > 0 && !state.revoked && !this.stopping.signal.aborted) {
        const controller = new AbortController();
        state.inHand = controller;
        const messages = state.queue.splice(0, this.maxBatch);
        this.queued -= messages.length;
        this.resumeIfRoom();
        try {
          if (!(await this.handle(state, messages, controller))) return;
        } finally {
          state.inHand = undefined;
        }
      }
    } finally {
      this.release();
    }
  }

  /** One batch until handled and committed; false when the batch was given up (revoked, aborted, commit failed). */
  private async handle(state: PartitionState, messages: ConsumedMessage[], controller: AbortController): Promise<boolean> {
    const last = messages[messages.length - 1]!.offset;
    const known = this.highWatermarks.get(partitionKey(state.topic, state.partition)) ?? 0n;
    const batch: ConsumedBatch = { topic: state.topic, partition: state.partition, messages, highWatermark: known > last ? known : last + 1n, signal: controller.signal };
    const aborted = new Promise<void>((resolve) => controller.signal.addEventListener('abort', () => resolve(), { once: true }));
    for (;;) {
      if (controller.signal.aborted) return false;
      try {
        await Promise.race([this.spec.handleBatch(batch), aborted]);
        break;
      } catch (error) {
        if (controller.signal.aborted) return false;
        this.spec.onHandlerError?.(error, batch);
        await sleep(this.spec.retryBackoffMs ?? 500, controller.signal);
      }
    }
    if (controller.signal.aborted || this.crashed || !this.consumer) return false;
    const committedOffset = last + 1n;
    try {
      await this.consumer.commit({ offsets: [{ topic: state.topic, partition: state.partition, offset: committedOffset, leaderEpoch: -1 }] });
    } catch (error) {
      // Typically a rebalance: if the partition moved, its next owner gets the batch again
      // (at-least-once; the handler's effects are idempotent); if it stayed, the next batch's
      // commit covers this one. Nothing is retried here.
      this.log('warn', `commit of ${state.topic}/${state.partition}@${committedOffset} failed: ${describe(error)}`);
      return true;
    }
    this.spec.onCommitted?.({ topic: state.topic, partition: state.partition, committedOffset, lag: batch.highWatermark - committedOffset });
    return true;
  }

  private async refreshHighWatermarks(consumer: Consumer): Promise<void> {
    try {
      const offsets = await consumer.listOffsets({ topics: [...this.spec.topics] });
      for (const [topic, partitions] of offsets) partitions.forEach((offset, partition) => this.highWatermarks.set(partitionKey(topic, partition), offset));
    } catch {
      // Lag figures only; the next round tries again.
    }
  }

  private leave(crash: boolean): Promise<void> {
    this.stopped ??= (async () => {
      this.crashed = crash;
      if (crash) for (const state of this.partitions.values()) state.inHand?.abort();
      // Queued batches are not started; a batch in hand finishes and commits (stop) or not (abort).
      for (const state of this.partitions.values()) {
        this.queued -= state.queue.length;
        state.queue.length = 0;
      }
      this.stopping.abort();
      this.resolveReady();
      // Bounded: a handler or a client on a starved machine can take long to give up, and leaving
      // must not hang a shutdown (nothing uncommitted is lost).
      await Promise.race([Promise.all([...this.workers]), sleep(15_000)]);
      await Promise.race([this.stream?.close().catch(() => undefined), sleep(5_000)]);
      await Promise.race([this.consumer?.close(crash).catch(() => undefined), sleep(15_000)]);
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
  private readonly publishers = new Set<KafkaPublisher>();
  private readonly members = new Set<KafkaGroupMember>();
  private closed = false;
  private readonly log: (level: KafkaLogLevel, message: string) => void;

  constructor(private readonly options: KafkaEventBusOptions) {
    if (options.brokers.length === 0) throw new EventBusError('EVENT_BUS_INVALID_REQUEST', 'at least one Kafka broker is required');
    const threshold = LEVEL_ORDER[options.logLevel ?? 'warn'];
    this.log = (level, message) => {
      if (LEVEL_ORDER[level] <= threshold) options.log?.({ level, namespace: 'custodian.kafka', message, fields: {} });
    };
  }

  async ensureTopics(topics: readonly TopicSpec[]): Promise<void> {
    this.assertOpen();
    // Metadata of a topic just created can lag behind: retry the whole, idempotent, operation.
    let attempt = 0;
    for (;;) {
      try {
        await this.ensureTopicsOnce(topics);
        return;
      } catch (cause) {
        if (++attempt >= 8) {
          throw new EventBusError('EVENT_BUS_ADMIN_FAILED', `could not create topics ${topics.map((t) => t.name).join(', ')}: ${describe(cause)}`, { cause });
        }
        await sleep(200 * attempt);
      }
    }
  }

  private async ensureTopicsOnce(topics: readonly TopicSpec[]): Promise<void> {
    const admin = new Admin({ ...connectionOptions(this.options, `${this.options.clientId}-admin`), retries: 2, retryDelay: 200 });
    try {
      const existing = new Set(await admin.listTopics());
      for (const t of topics.filter((topic) => !existing.has(topic.name))) {
        try {
          await admin.createTopics({
            topics: [t.name],
            partitions: t.partitions,
            replicas: t.replicationFactor,
            configs: Object.entries<string>(t.config ?? {}).map(([name, value]) => ({ name, value })),
          });
        } catch (error) {
          // Created meanwhile by another process: fine.
          if (!/TOPIC_ALREADY_EXISTS|already exists/i.test(describe(error))) throw error;
        }
      }
      // Every partition has a leader before anyone produces.
      const metadata = await admin.metadata({ topics: topics.map((t) => t.name), forceUpdate: true });
      const leaderless: string[] = [];
      for (const t of topics) {
        const topic = metadata.topics.get(t.name);
        if (!topic) leaderless.push(t.name);
        else topic.partitions.forEach((p, i) => p.leader < 0 && leaderless.push(`${t.name}/${i}`));
      }
      if (leaderless.length > 0) throw new Error(`no leader yet for ${leaderless.join(', ')}`);
    } finally {
      await admin.close().catch(() => undefined);
    }
  }

  publisher(): BusPublisher {
    this.assertOpen();
    const publisher = new KafkaPublisher(this.options, (p) => this.publishers.delete(p));
    this.publishers.add(publisher);
    return publisher;
  }

  consume(spec: ConsumerSpec): RunningConsumer {
    this.assertOpen();
    const member = new KafkaGroupMember(spec, this.options, this.log, (m) => this.members.delete(m));
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
