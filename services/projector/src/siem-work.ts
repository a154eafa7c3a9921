import type { EventBus } from '@custodian/event-bus';
import type { EventStore } from '@custodian/event-store';
import type { Logger } from '@custodian/observability';
import type { LoadedConfig } from '@custodian/runtime-config';
import { openConfiguredBus, type ServiceWork } from '@custodian/service-host';
import { runSiemProjection } from '@custodian/siem-ocsf';
import type { CheckpointPublishing } from './projector.module.js';

/** The SIEM projection on the configured bus; closes the bus it opened. */
export async function openSiemWork(
  loaded: LoadedConfig,
  options: { readonly store: EventStore; readonly logger: Logger; readonly bus?: EventBus; readonly productVersion?: string },
): Promise<ServiceWork & { readonly caughtUp: Promise<void> }> {
  const owned = options.bus === undefined;
  const bus = options.bus ?? (await openConfiguredBus(loaded, { logger: options.logger }));
  const log = options.logger.child({ component: 'siem-projection' });
  const publisher = bus.publisher();
  const { running } = runSiemProjection(options.store, publisher, {
    ...(options.productVersion ? { productVersion: options.productVersion } : {}),
    onError: (error) => log.warn({ err: error }, `SIEM projection failed, restarting from its checkpoint: ${(error as Error).message}`),
  });
  return {
    caughtUp: running.caughtUp,
    close: async () => {
      await running.stop();
      await publisher.close();
      if (owned) await bus.close();
    },
  };
}

/** A publisher of signed checkpoints (custodian.checkpoints.v1) on the configured bus; closes the bus it opened. */
export async function openCheckpointPublishing(loaded: LoadedConfig, options: { readonly logger: Logger }): Promise<CheckpointPublishing> {
  const bus = await openConfiguredBus(loaded, { logger: options.logger });
  const publisher = bus.publisher();
  return {
    publisher,
    close: async () => {
      await publisher.close();
      await bus.close();
    },
  };
}
