// The event bus port: how services hand messages to a log (Kafka, or an in-process stand-in)
// and consume them with at-least-once delivery and committed offsets. No module outside the
// adapters knows which technology is behind it (docs/adr/0006-kafkajs-behind-a-port.md, docs/adr/0011-kafka-client.md).

/** One message to publish. `value` is bytes or UTF-8 text; header values are UTF-8 strings. */
export interface BusMessage {
  readonly topic: string;
  /** Messages with the same key keep their relative order (same partition). `null`: no ordering. */
  readonly key: string | null;
  readonly value: Uint8Array | string;
  readonly headers?: Readonly<Record<string, string>>;
}

export interface BusPublisher {
  /**
   * Resolves once every message is durably accepted by the bus (Kafka: acknowledged by all
   * in-sync replicas). Messages of one call, and of calls made one after another, keep their
   * order per key. Rejects with `EventBusError` (`EVENT_BUS_PUBLISH_FAILED`) when the bus does
   * not accept them; then any subset may have been written, so callers retry the whole call and
   * consumers deduplicate.
   */
  publish(messages: readonly BusMessage[]): Promise<void>;
  /** Resolves when everything published so far has been acknowledged (or rejects with the first failure). */
  flush(): Promise<void>;
  /** Flushes, then releases connections. Idempotent. */
  close(): Promise<void>;
}

export interface ConsumedMessage {
  readonly topic: string;
  readonly partition: number;
  /** Offset within the partition. */
  readonly offset: bigint;
  readonly key: string | null;
  readonly value: Buffer;
  readonly headers: Readonly<Record<string, string>>;
  /** Producer or log-append time, ms since the epoch. */
  readonly timestamp: number;
}

/** Consecutive messages of one partition, in offset order. */
export interface ConsumedBatch {
  readonly topic: string;
  readonly partition: number;
  readonly messages: readonly ConsumedMessage[];
  /** Offset the next produced message of this partition will get; lag = highWatermark − (last offset + 1). */
  readonly highWatermark: bigint;
  /** Aborted when this consumer loses the partition or stops: results of the batch will not be committed. */
  readonly signal: AbortSignal;
}

export interface ConsumerSpec {
  /** Members of one group share the partitions; each group receives every message. */
  readonly groupId: string;
  readonly topics: readonly string[];
  /** Where a group without committed offsets starts. Default true (the earliest message). */
  readonly fromBeginning?: boolean;
  /**
   * Handles one batch. When it resolves, the offsets of the whole batch are committed. When it
   * throws, nothing of the batch is committed and the same batch is delivered again after
   * `retryBackoffMs` (to this member, or to the next owner of the partition): never skipped.
   */
  handleBatch(batch: ConsumedBatch): Promise<void>;
  /** Told about every failed `handleBatch` before it is retried (for logs and metrics). */
  onHandlerError?(error: unknown, batch: ConsumedBatch): void;
  /** Told after every committed batch: the partition's lag right after the commit. */
  onCommitted?(progress: { topic: string; partition: number; committedOffset: bigint; lag: bigint }): void;
  /** Default 500 ms. */
  readonly retryBackoffMs?: number;
  /** Partitions of this member handled at the same time. Default 4. */
  readonly partitionsConsumedConcurrently?: number;
}

export interface RunningConsumer {
  /** Resolves once the member joined its group and got its first assignment. */
  readonly ready: Promise<void>;
  /** Resolves after the consumer stopped (rejects if it crashed and could not recover). */
  readonly done: Promise<void>;
  /** Stops after the batches in hand (their commits included); leaves the group. Idempotent. */
  stop(): Promise<void>;
  /**
   * Stops at once, as a crash would look to the group: batches in hand are not committed
   * (their handlers may still finish what they started). Idempotent.
   */
  abort(): Promise<void>;
}

export interface TopicSpec {
  readonly name: string;
  readonly partitions: number;
  readonly replicationFactor: number;
  /** Topic-level configuration entries (Kafka names). */
  readonly config?: Readonly<Record<string, string>>;
}

export interface EventBus {
  readonly kind: 'kafka' | 'in-process';
  /** Creates the topics that do not exist yet (existing ones are left as they are). */
  ensureTopics(topics: readonly TopicSpec[]): Promise<void>;
  /** A new publisher; each keeps its own order and is closed by its owner (or by `close()`). */
  publisher(): BusPublisher;
  /** Joins `spec.groupId` and consumes until stopped. */
  consume(spec: ConsumerSpec): RunningConsumer;
  /** Closes every publisher and consumer it created. Idempotent. */
  close(): Promise<void>;
}

export type EventBusErrorCode =
  | 'EVENT_BUS_PUBLISH_FAILED'
  | 'EVENT_BUS_CLOSED'
  | 'EVENT_BUS_UNKNOWN_TOPIC'
  | 'EVENT_BUS_INVALID_REQUEST'
  | 'EVENT_BUS_ADMIN_FAILED'
  | 'EVENT_BUS_CONSUMER_FAILED';

export class EventBusError extends Error {
  override name = 'EventBusError';
  constructor(
    readonly code: EventBusErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
