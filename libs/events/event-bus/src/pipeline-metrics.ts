// Observation points of the evidence pipeline. Domain code reports through this interface; a
// composition root maps it onto Prometheus metrics (libs/platform/service-host), tests onto counters.

export type RefusalReasonCode = 'PIPELINE_SPOOL_FULL' | 'PIPELINE_SPOOL_UNWRITABLE' | 'PIPELINE_STORE_UNWRITABLE';

export interface PipelineMetrics {
  /** Events made durable in the gateway's spool (accepted). */
  eventsSpooled(count: number): void;
  /** Events acknowledged by the bus (Kafka) or, embedded, by the store. */
  eventsPublished(count: number): void;
  /** Accepted events not yet acknowledged by the bus, and their bytes on disk. */
  spoolDepth(events: number, bytes: number): void;
  /** Commands refused because events could not be made durable. */
  refused(reasonCode: RefusalReasonCode, count: number): void;
  /** Messages behind the newest one, per consumed partition (after each commit). */
  ingestLag(topic: string, partition: number, lag: number): void;
  /** Messages sent to the dead-letter topic, by reason. */
  deadLettered(reasonCode: string, count: number): void;
  /** Events appended by ingest: newly written, or recognised as already stored (redelivery). */
  eventsIngested(outcome: 'written' | 'deduplicated', count: number): void;
}

export const NO_PIPELINE_METRICS: PipelineMetrics = {
  eventsSpooled: () => undefined,
  eventsPublished: () => undefined,
  spoolDepth: () => undefined,
  refused: () => undefined,
  ingestLag: () => undefined,
  deadLettered: () => undefined,
  eventsIngested: () => undefined,
};
