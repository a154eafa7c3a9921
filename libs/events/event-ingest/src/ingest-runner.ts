import { EVENTS_TOPIC, NO_PIPELINE_METRICS, type ConsumedBatch, type EventBus, type PipelineMetrics, type RunningConsumer } from '@custodian/event-bus';
import type { EventStore } from '@custodian/event-store';
import { EventIngestor, type DeadLetter } from './event-ingestor.js';

export const DEFAULT_INGEST_GROUP = 'custodian-ingest';

export interface StartIngestOptions {
  readonly bus: EventBus;
  readonly store: EventStore;
  /** Consumer group; instances with the same group share the partitions. Default custodian-ingest. */
  readonly groupId?: string;
  readonly metrics?: PipelineMetrics;
  readonly onDeadLetter?: (letter: DeadLetter) => void;
  /** Told when a batch fails (store unavailable, …) before it is retried. */
  readonly onBatchError?: (error: unknown, batch: ConsumedBatch) => void;
  readonly partitionsConsumedConcurrently?: number;
  readonly retryBackoffMs?: number;
}

export interface RunningIngest {
  readonly consumer: RunningConsumer;
  readonly ingestor: EventIngestor;
  /** Finishes the batches in hand (committing them), then leaves the group. */
  stop(): Promise<void>;
  /** Leaves at once without committing the batches in hand (a crash, as the group sees it). */
  abort(): Promise<void>;
}

/** Consumes custodian.events.v1 into the store; the dead-letter topic must exist (ensureTopics). */
export function startIngest(options: StartIngestOptions): RunningIngest {
  const metrics = options.metrics ?? NO_PIPELINE_METRICS;
  const deadLetters = options.bus.publisher();
  const ingestor = new EventIngestor({ store: options.store, deadLetters, metrics, ...(options.onDeadLetter ? { onDeadLetter: options.onDeadLetter } : {}) });
  const consumer = options.bus.consume({
    groupId: options.groupId ?? DEFAULT_INGEST_GROUP,
    topics: [EVENTS_TOPIC],
    handleBatch: (batch) => ingestor.handleBatch(batch),
    onHandlerError: (error, batch) => options.onBatchError?.(error, batch),
    onCommitted: ({ topic, partition, lag }) => metrics.ingestLag(topic, partition, Number(lag)),
    ...(options.partitionsConsumedConcurrently ? { partitionsConsumedConcurrently: options.partitionsConsumedConcurrently } : {}),
    ...(options.retryBackoffMs ? { retryBackoffMs: options.retryBackoffMs } : {}),
  });
  const finish = async (how: 'stop' | 'abort'): Promise<void> => {
    await (how === 'stop' ? consumer.stop() : consumer.abort());
    await deadLetters.close();
  };
  return { consumer, ingestor, stop: () => finish('stop'), abort: () => finish('abort') };
}

