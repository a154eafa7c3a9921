// The embedded deployment: every service in one process, sharing one event store.
import type { DynamicModule } from '@nestjs/common';
import { ApiModule } from '@custodian/api-service';
import type { EventStore } from '@custodian/event-store';
import { GatewayModule } from '@custodian/gateway-service';
import { IngestModule } from '@custodian/ingest-service';
import { createLogger, type LogDestination, type Logger } from '@custodian/observability';
import { startNestService, type RunningNestService } from '@custodian/observability/nest';
import { ProjectorModule } from '@custodian/projector-service';
import { SERVICE_NAMES, type LoadedConfig, type ServiceName } from '@custodian/runtime-config';
import { openConfiguredEventStore } from '@custodian/service-host';
import { cliVersion } from './version.js';

interface ModuleDeps {
  readonly eventStore: EventStore;
  readonly logger: Logger;
}

const MODULES: { readonly [S in ServiceName]: (deps: ModuleDeps) => DynamicModule } = {
  gateway: (deps) => GatewayModule.register(deps),
  ingest: (deps) => IngestModule.register(deps),
  projector: (deps) => ProjectorModule.register(deps),
  api: (deps) => ApiModule.register({ ...deps, version: { name: 'custodian', version: cliVersion() } }),
};

export interface EmbeddedService {
  readonly name: ServiceName;
  readonly url: string;
}

export interface EmbeddedHost {
  readonly services: readonly EmbeddedService[];
  readonly eventStore: EventStore;
  /** Closes every service (readiness fails first), then the store. Idempotent. */
  stop(): Promise<void>;
}

export interface StartEmbeddedOptions {
  /** Where JSON log lines go; stdout by default. */
  readonly logDestination?: LogDestination;
}

export async function startEmbedded(loaded: LoadedConfig, options: StartEmbeddedOptions = {}): Promise<EmbeddedHost> {
  const { config } = loaded;
  const loggerFor = (service: string): Logger =>
    createLogger({ service, level: config.log.level, ...(options.logDestination ? { destination: options.logDestination } : {}) });
  const eventStore = await openConfiguredEventStore(loaded);
  const running: { name: ServiceName; service: RunningNestService }[] = [];
  const stopAll = async (): Promise<void> => {
    // Reverse start order: the API stops taking requests before the pipeline behind it.
    for (const { service } of [...running].reverse()) await service.close();
    await eventStore.close();
  };
  try {
    for (const name of SERVICE_NAMES) {
      const settings = config.services[name];
      if (!settings.enabled) continue;
      const logger = loggerFor(name);
      // One process, many apps: the host handles SIGTERM/SIGINT once (see cli.ts), not each app.
      const service = await startNestService({ module: MODULES[name]({ eventStore, logger }), logger, listen: settings.http, shutdownHooks: false });
      running.push({ name, service });
      logger.info({ url: service.url }, `${name} listening on ${service.url}`);
    }
  } catch (err) {
    await stopAll();
    throw err;
  }
  let stopping: Promise<void> | undefined;
  return {
    services: running.map(({ name, service }) => ({ name, url: service.url })),
    eventStore,
    stop: () => (stopping ??= stopAll()),
  };
}
