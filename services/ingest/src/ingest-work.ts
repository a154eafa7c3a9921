import type { EventBus, PipelineMetrics } from '@custodian/event-bus';
import { startIngest } from '@custodian/event-ingest';
import type { EventStore } from '@custodian/event-store';
import type { Logger } from '@custodian/observability';
import type { LoadedConfig } from '@custodian/runtime-config';
import { openConfiguredBus, type ServiceWork } from '@custodian/service-host';

/** Consumes the configured bus into the store; closes the bus it opened. */
export async function openIngestWork(
  loaded: LoadedConfig,
  options: { readonly store: EventStore; readonly logger: Logger; readonly metrics?: PipelineMetrics; readonly bus?: EventBus },
): Promise<ServiceWork> {
  const owned = options.bus === undefined;
  const bus = options.bus ?? (await openConfiguredBus(loaded, { logger: options.logger }));
  const log = options.logger.child({ component: 'ingest' });
  const settings = loaded.config.bus;
  const running = startIngest({
    bus,
    store: options.store,
    ...(settings.kind === 'kafka' ? { groupId: settings.consumer.groupId } : {}),
    ...(options.metrics ? { metrics: options.metrics } : {}),
    onDeadLetter: (letter) =>
      log.warn(
        { reasonCode: letter.reasonCode, topic: letter.message.topic, partition: letter.message.partition, offset: letter.message.offset.toString() },
        `dead-lettered: ${letter.reason}`,
      ),
    onBatchError: (error, batch) => log.warn({ err: error, topic: batch.topic, partition: batch.partition }, `batch not stored, retrying: ${(error as Error).message}`),
  });
  return {
    close: async () => {
      await running.stop();
      if (owned) await bus.close();
    },
  };
}
