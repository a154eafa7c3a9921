import 'reflect-metadata';
import type { DynamicModule } from '@nestjs/common';
import type { EventStore } from '@custodian/event-store';
import { createLogger, type Logger } from '@custodian/observability';
import { startNestService } from '@custodian/observability/nest';
import { ConfigError, loadConfig, type LoadedConfig } from '@custodian/runtime-config';
import { openConfiguredEventStore } from './configured-event-store.js';

export type StandaloneServiceName = 'gateway' | 'ingest' | 'projector' | 'api';

export interface StandaloneServiceSpec {
  readonly service: StandaloneServiceName;
  /** Builds the service's Nest module; the process owns (and closes) the store it is given. */
  readonly module: (deps: { readonly eventStore: EventStore; readonly logger: Logger; readonly ownsEventStore: true }) => DynamicModule;
}

/**
 * Runs one service as its own process (distributed deployment): `node services/<name>/dist/main.js`.
 * Configuration: the YAML file named by CUSTODIAN_CONFIG (optional) plus CUSTODIAN_<SECTION>__<KEY>
 * overrides (libs/runtime-config/README.md). Listens on `services.<name>.http`; SIGTERM/SIGINT
 * close it gracefully. A config error exits 2, a start failure exits 1.
 */
export async function runStandaloneService(spec: StandaloneServiceSpec): Promise<void> {
  let loaded: LoadedConfig;
  try {
    loaded = loadConfig();
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`custodian ${spec.service}: ${err.message}\n`);
    process.exit(2);
  }
  const { config } = loaded;
  const logger = createLogger({ service: spec.service, level: config.log.level });
  try {
    const eventStore = await openConfiguredEventStore(loaded);
    const service = await startNestService({
      module: spec.module({ eventStore, logger, ownsEventStore: true }),
      logger,
      listen: config.services[spec.service].http,
      shutdownHooks: true,
    });
    logger.info({ url: service.url, eventStore: config.eventStore.kind, bus: config.bus.kind }, `${spec.service} listening on ${service.url}`);
  } catch (err) {
    logger.fatal(err instanceof Error ? err : { err }, `${spec.service} failed to start`);
    process.exit(1);
  }
}
