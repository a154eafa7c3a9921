// The embedded deployment: every service in one process, sharing one event store.
import type { DynamicModule } from '@nestjs/common';
import { ApiModule, configuredApprovals, configuredSessionsReadModelPath } from '@custodian/api-service';
import type { EventStore } from '@custodian/event-store';
import { activeTopicSpecs } from '@custodian/event-bus';
import { InProcessEventBus } from '@custodian/event-bus-in-process';
import { GatewayModule, openGatewayEvidence } from '@custodian/gateway-service';
import { IngestModule } from '@custodian/ingest-service';
import { MetricsRegistry, createLogger, type LogDestination, type Logger } from '@custodian/observability';
import { startNestService, type RunningNestService } from '@custodian/observability/nest';
import { configuredEvidence } from '@custodian/evidence-host';
import { ProjectorModule, openSiemWork } from '@custodian/projector-service';
import { SERVICE_NAMES, type LoadedConfig, type ServiceName } from '@custodian/runtime-config';
import { configuredIdentity, openConfiguredEventStore, pipelineMetrics } from '@custodian/service-host';
import { cliVersion } from './version.js';

interface ModuleDeps {
  readonly eventStore: EventStore;
  readonly logger: Logger;
  readonly loaded: LoadedConfig;
  /** Start-up notices a module wants the operator to see (collected into EmbeddedHost.notices). */
  readonly notices: string[];
  /** The in-process bus the services share (SIEM topic); the gateway's events go to the store directly (ADR 0007). */
  readonly bus: InProcessEventBus;
  /** One registry for the process, served at /metrics by every service. */
  readonly metrics: MetricsRegistry | undefined;
}

const MODULES: { readonly [S in ServiceName]: (deps: ModuleDeps) => DynamicModule } = {
  gateway: ({ eventStore, logger, loaded, bus, metrics }) =>
    GatewayModule.register({
      eventStore,
      logger,
      loaded,
      ...(metrics ? { metrics } : {}),
      evidence: () => openGatewayEvidence(loaded, { store: eventStore, logger, bus, ...(metrics ? { metrics: pipelineMetrics(metrics) } : {}) }),
    }),
  // Embedded, the gateway appends to the SQLite store itself: nothing for ingest to consume.
  ingest: ({ eventStore, logger, metrics }) => IngestModule.register({ eventStore, logger, ...(metrics ? { metrics } : {}) }),
  projector: ({ eventStore, logger, loaded, bus, metrics }) =>
    ProjectorModule.register({
      eventStore,
      logger,
      ...(metrics ? { metrics } : {}),
      evidence: configuredEvidence(loaded),
      checkpointPublisher: bus.publisher(),
      siem: () => openSiemWork(loaded, { store: eventStore, logger, bus, productVersion: cliVersion() }),
    }),
  api: ({ eventStore, logger, loaded, notices }) => {
    // Identity from the `identity` section; with no issuer the API still starts and refuses every request (fail closed).
    const identity = configuredIdentity(loaded, { logger });
    notices.push(...identity.notices.map((notice) => `api: ${notice}`));
    return ApiModule.register({ eventStore, logger, identity, evidence: configuredEvidence(loaded), approvals: configuredApprovals(loaded), sessionsReadModelPath: configuredSessionsReadModelPath(loaded), listenHost: loaded.config.services.api.http.host, version: { name: 'custodian', version: cliVersion() } });
  },
};

export interface EmbeddedService {
  readonly name: ServiceName;
  readonly url: string;
}

export interface EmbeddedHost {
  readonly services: readonly EmbeddedService[];
  /** What the operator must know, e.g. that the API refuses every request until an identity issuer is configured (also logged). */
  readonly notices: readonly string[];
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
  const bus = new InProcessEventBus();
  await bus.ensureTopics(activeTopicSpecs());
  const metrics = config.metrics.enabled ? new MetricsRegistry() : undefined;
  const running: { name: ServiceName; service: RunningNestService }[] = [];
  const notices: string[] = [];
  const stopAll = async (): Promise<void> => {
    // Reverse start order: the API stops taking requests before the pipeline behind it.
    for (const { service } of [...running].reverse()) await service.close();
    await bus.close();
    await eventStore.close();
  };
  try {
    for (const name of SERVICE_NAMES) {
      const settings = config.services[name];
      if (!settings.enabled) continue;
      const logger = loggerFor(name);
      // One process, many apps: the host handles SIGTERM/SIGINT once (see cli.ts), not each app.
      const service = await startNestService({ module: MODULES[name]({ eventStore, logger, loaded, notices, bus, metrics }), logger, listen: settings.http, shutdownHooks: false });
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
    notices,
    eventStore,
    stop: () => (stopping ??= stopAll()),
  };
}
