import 'reflect-metadata';
import type { DynamicModule } from '@nestjs/common';
import type { EventStore } from '@custodian/event-store';
import { createLogger, type Logger } from '@custodian/observability';
import { startNestService } from '@custodian/observability/nest';
import { ConfigError, loadConfig, type HttpListenerConfig, type LoadedConfig } from '@custodian/runtime-config';
import { openConfiguredEventStore } from './configured-event-store.js';

export type StandaloneServiceName = 'gateway' | 'ingest' | 'projector' | 'api';

export interface StandaloneServiceSpec {
  readonly service: StandaloneServiceName;
  /**
   * Builds the service's Nest module; the process owns (and closes) the store it is given. May
   * throw ConfigError (e.g. an unresolvable secret reference): the process then exits 2.
   */
  readonly module: (deps: StandaloneModuleDependencies) => DynamicModule;
}

export interface StandaloneModuleDependencies {
  readonly eventStore: EventStore;
  readonly logger: Logger;
  readonly ownsEventStore: true;
  /** The loaded configuration, for services that build more adapters from it (e.g. identity). */
  readonly loaded: LoadedConfig;
  /** Where this service will listen. */
  readonly listen: HttpListenerConfig;
}

/**
 * Runs one service as its own process (distributed deployment): `node services/<name>/dist/main.js`.
 * Configuration: the YAML file named by CUSTODIAN_CONFIG (optional) plus CUSTODIAN_<SECTION>__<KEY>
 * overrides (libs/platform/runtime-config/README.md). Listens on `services.<name>.http`; SIGTERM/SIGINT
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
  const listen = config.services[spec.service].http;
  try {
    const eventStore = await openConfiguredEventStore(loaded);
    let module: DynamicModule;
    try {
      module = spec.module({ eventStore, logger, ownsEventStore: true, loaded, listen });
    } catch (err) {
      await eventStore.close();
      throw err;
    }
    const service = await startNestService({ module, logger, listen, shutdownHooks: true });
    logger.info({ url: service.url, eventStore: config.eventStore.kind, bus: config.bus.kind }, `${spec.service} listening on ${service.url}`);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`custodian ${spec.service}: ${err.message}\n`);
      process.exit(2);
    }
    logger.fatal(err instanceof Error ? err : { err }, `${spec.service} failed to start`);
    process.exit(1);
  }
}
