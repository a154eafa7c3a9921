// Opens the event bus and the gateway's evidence pipeline the configuration names, and maps the
// pipeline's observation points onto Prometheus metrics. Composition only: the logic lives in
// @custodian/evidence-pipeline, @custodian/event-ingest and the bus adapters.
import { hostname } from 'node:os';
import { activeTopicSpecs, type EventBus, type PipelineMetrics } from '@custodian/event-bus';
import { InProcessEventBus } from '@custodian/event-bus-in-process';
import { KafkaEventBus } from '@custodian/event-bus-kafka';
import type { EventStore } from '@custodian/event-store';
import { Spool, SpooledEvidencePipeline, StoreEvidencePipeline, type EvidencePipeline } from '@custodian/evidence-pipeline';
import type { Logger, MetricsRegistry } from '@custodian/observability';
import { resolveSecret, type LoadedConfig } from '@custodian/runtime-config';

/** The six pipeline metrics of the evidence pipeline issue, plus ingest outcomes. */
export const PIPELINE_METRIC_NAMES = {
  eventsPublished: 'custodian_pipeline_events_published_total',
  eventsSpooled: 'custodian_pipeline_events_spooled_total',
  spoolDepthEvents: 'custodian_pipeline_spool_depth_events',
  spoolDepthBytes: 'custodian_pipeline_spool_depth_bytes',
  refusals: 'custodian_pipeline_refusals_total',
  ingestLag: 'custodian_ingest_lag_messages',
  deadLetters: 'custodian_ingest_dead_letters_total',
  eventsIngested: 'custodian_ingest_events_total',
} as const;

export function pipelineMetrics(registry: MetricsRegistry): PipelineMetrics {
  const n = PIPELINE_METRIC_NAMES;
  const published = registry.counter(n.eventsPublished, 'Events acknowledged by the event bus (Kafka acks=-1) or, embedded, by the event store.');
  const spooled = registry.counter(n.eventsSpooled, "Events made durable in the gateway's spool (accepted).");
  const depthEvents = registry.gauge(n.spoolDepthEvents, 'Accepted events not yet acknowledged by the event bus.');
  const depthBytes = registry.gauge(n.spoolDepthBytes, 'Bytes of spooled records not yet acknowledged by the event bus.');
  const refusals = registry.counter(n.refusals, 'Commands refused because their events could not be made durable (spool full or unwritable).', ['reason']);
  const lag = registry.gauge(n.ingestLag, 'Messages of custodian.events.v1 not yet stored, per partition (after each commit).', ['topic', 'partition']);
  const deadLetters = registry.counter(n.deadLetters, 'Messages sent to custodian.events.dlq.v1, by reason.', ['reason']);
  const ingested = registry.counter(n.eventsIngested, 'Events appended by ingest: written, or recognised as already stored (redelivery).', ['outcome']);
  // Present from the first scrape, not only after the first refusal.
  for (const reason of ['PIPELINE_SPOOL_FULL', 'PIPELINE_SPOOL_UNWRITABLE', 'PIPELINE_STORE_UNWRITABLE']) refusals.inc({ reason }, 0);
  return {
    eventsPublished: (count) => published.inc(count),
    eventsSpooled: (count) => spooled.inc(count),
    spoolDepth: (events, bytes) => {
      depthEvents.set(events);
      depthBytes.set(bytes);
    },
    refused: (reason, count) => refusals.inc({ reason }, count),
    ingestLag: (topic, partition, value) => lag.set({ topic, partition: String(partition) }, value),
    deadLettered: (reason, count) => deadLetters.inc({ reason }, count),
    eventsIngested: (outcome, count) => ingested.inc({ outcome }, count),
  };
}

/** A name for this process on events it records about itself (refusals): host and pid. */
export function instanceName(service: string): string {
  return `${service}-${hostname()}-${process.pid}`;
}

export interface OpenBusOptions {
  readonly logger: Logger;
  /** The embedded host's one in-process bus, shared by its services. */
  readonly inProcess?: InProcessEventBus;
}

/** The configured bus with the active topics of schemas/topics created (unless `bus.topics.create` is off). */
export async function openConfiguredBus(loaded: LoadedConfig, options: OpenBusOptions): Promise<EventBus> {
  const settings = loaded.config.bus;
  if (settings.kind === 'in-process') {
    const bus = options.inProcess ?? new InProcessEventBus();
    await bus.ensureTopics(activeTopicSpecs());
    return bus;
  }
  const log = options.logger.child({ component: 'kafka' });
  const bus = new KafkaEventBus({
    brokers: settings.brokers,
    clientId: settings.clientId,
    ssl: settings.ssl,
    // Resolved here, at the point of use, so the secret never sits in the config object.
    ...(settings.sasl ? { sasl: { mechanism: settings.sasl.mechanism, username: settings.sasl.username, password: resolveSecret(settings.sasl.password, { baseDir: loaded.baseDir }) } } : {}),
    producer: { compression: settings.producer.compression, lingerMs: settings.producer.lingerMs, maxBatchBytes: settings.producer.maxBatchBytes },
    consumer: { sessionTimeoutMs: settings.consumer.sessionTimeoutMs },
    log: (entry) => log[entry.level]({ namespace: entry.namespace, ...entry.fields }, entry.message),
  });
  if (settings.topics.create) {
    await bus.ensureTopics(
      activeTopicSpecs({
        ...(settings.topics.partitions !== undefined ? { partitions: settings.topics.partitions } : {}),
        ...(settings.topics.replicationFactor !== undefined ? { replicationFactor: settings.topics.replicationFactor } : {}),
        ...(settings.topics.minInSyncReplicas !== undefined ? { minInSyncReplicas: settings.topics.minInSyncReplicas } : {}),
      }),
    );
  }
  return bus;
}

export interface OpenPipelineOptions {
  readonly store: EventStore;
  readonly bus: EventBus;
  readonly logger: Logger;
  readonly metrics?: PipelineMetrics;
  readonly instance?: string;
}

/**
 * The gateway's evidence pipeline. Kafka: the spool in `pipeline.spool.path`, drained to the bus.
 * In-process (embedded): the event store itself is the durable point (ADR 0007).
 */
export async function openConfiguredPipeline(loaded: LoadedConfig, options: OpenPipelineOptions): Promise<EvidencePipeline> {
  const instance = options.instance ?? instanceName('gateway');
  const metrics = options.metrics ? { metrics: options.metrics } : {};
  if (options.bus.kind === 'in-process') return new StoreEvidencePipeline({ store: options.store, instance, ...metrics });
  const { spool: settings } = loaded.config.pipeline;
  const spool = await Spool.open({ dir: settings.path, maxBytes: settings.maxBytes, segmentBytes: settings.segmentBytes });
  const log = options.logger.child({ component: 'evidence-pipeline' });
  if (spool.recovery.records > 0 || spool.recovery.truncatedBytes > 0) {
    log.warn({ ...spool.recovery, dir: settings.path }, `spool recovered: ${spool.recovery.records} undelivered record(s) to drain`);
  }
  let lastError = '';
  return new SpooledEvidencePipeline({
    spool,
    publisher: options.bus.publisher(),
    instance,
    ...metrics,
    onDeliveryError: (error) => {
      // One line per distinct failure, not one per retry.
      const message = (error as Error).message;
      if (message !== lastError) log.warn({ err: error }, `spool delivery failing, retrying: ${message}`);
      lastError = message;
    },
  });
}
