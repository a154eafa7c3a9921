import type { EventBus, PipelineMetrics } from '@custodian/event-bus';
import type { EventStore } from '@custodian/event-store';
import type { Logger } from '@custodian/observability';
import type { LoadedConfig } from '@custodian/runtime-config';
import { openConfiguredBus, openConfiguredPipeline } from '@custodian/service-host';
import type { GatewayEvidence } from './gateway.module.js';

/**
 * The gateway's evidence pipeline as configured: Kafka → spool drained to the bus (which it
 * opens and closes itself); in-process → the store directly, on the `bus` given (not closed here).
 */
export async function openGatewayEvidence(
  loaded: LoadedConfig,
  options: { readonly store: EventStore; readonly logger: Logger; readonly metrics?: PipelineMetrics; readonly bus?: EventBus; readonly instance?: string },
): Promise<GatewayEvidence> {
  const owned = options.bus === undefined;
  const bus = options.bus ?? (await openConfiguredBus(loaded, { logger: options.logger }));
  const pipeline = await openConfiguredPipeline(loaded, {
    store: options.store,
    bus,
    logger: options.logger,
    ...(options.metrics ? { metrics: options.metrics } : {}),
    ...(options.instance ? { instance: options.instance } : {}),
  });
  return {
    pipeline,
    strict: loaded.config.pipeline.strict,
    close: async () => {
      // Deliver what the grace period allows; the rest stays in the spool for the next start.
      await pipeline.close();
      if (owned) await bus.close();
    },
  };
}
