// The embedded deployment: every service in one process, on two threads. The gateway runs on the
// main thread, whose event loop serves agents' connections; ingest, projector and api run in one
// worker thread, the services thread (services-thread.worker.ts), so that their synchronous work
// (SQLite reads of subscriptions, the evidence Merkle log, the SIEM projection, the API's read
// models) never stalls the gateway. Each thread opens its own event store on the same database
// (SQLite WAL; their commits wake each other's subscriptions), and each serves its own services'
// /metrics. The in-process bus lives with its publisher, the projector; the gateway's evidence
// goes to the store directly (ADR 0007).
import type { Worker } from 'node:worker_threads';
import type { DynamicModule } from '@nestjs/common';
import type { EventStore } from '@custodian/event-store';
import { InProcessEventBus } from '@custodian/event-bus-in-process';
import { GatewayModule, openGatewayEvidence } from '@custodian/gateway-service';
import { MetricsRegistry, createLogger, type LogDestination, type Logger } from '@custodian/observability';
import { startNestService, type RunningNestService } from '@custodian/observability/nest';
import { SERVICE_NAMES, type LoadedConfig, type ServiceName } from '@custodian/runtime-config';
import { openConfiguredEventStore, pipelineMetrics } from '@custodian/service-host';
import { lockedFdDestination, newLogLock } from './locked-fd-destination.js';
import { startServicesThread, type ServicesThread } from './services-thread.js';

function gatewayModule(deps: { eventStore: EventStore; logger: Logger; loaded: LoadedConfig; metrics: MetricsRegistry | undefined }): DynamicModule {
  const { eventStore, logger, loaded, metrics } = deps;
  // An in-process bus only selects the store pipeline (ADR 0007): the gateway appends its
  // evidence to the store itself and publishes nothing on it.
  const bus = new InProcessEventBus();
  return GatewayModule.register({
    eventStore,
    logger,
    loaded,
    ...(metrics ? { metrics } : {}),
    evidence: async () => {
      const evidence = await openGatewayEvidence(loaded, { store: eventStore, logger, bus, ...(metrics ? { metrics: pipelineMetrics(metrics) } : {}) });
      return {
        ...evidence,
        close: async () => {
          await evidence.close();
          await bus.close();
        },
      };
    },
  });
}

export interface EmbeddedService {
  readonly name: ServiceName;
  readonly url: string;
}

export interface EmbeddedHost {
  readonly services: readonly EmbeddedService[];
  /** What the operator must know, e.g. that the API refuses every request until an identity issuer is configured (also logged). */
  readonly notices: readonly string[];
  /** The gateway thread's event store (the same database the services thread's instance opens). */
  readonly eventStore: EventStore;
  /**
   * Resolves (never rejects) if the host stopped itself because the services thread ended
   * unexpectedly (fail closed: the gateway is stopped too); the caller should exit non-zero.
   */
  readonly failed: Promise<Error>;
  /** Closes every service (readiness fails first; the API before the pipeline behind it), then the stores. Idempotent. */
  stop(): Promise<void>;
}

export interface StartEmbeddedOptions {
  /** Where JSON log lines go (both threads' lines, whole); stdout by default. */
  readonly logDestination?: LogDestination;
  /** Tests: receives the services thread once its services listen (e.g. to end it and see the host fail closed). */
  readonly onServicesThread?: (worker: Worker) => void;
}

export async function startEmbedded(loaded: LoadedConfig, options: StartEmbeddedOptions = {}): Promise<EmbeddedHost> {
  const { config } = loaded;
  // With a destination, the services thread sends its lines here; without, both threads write to
  // stdout themselves, each line whole under one lock.
  const log = options.logDestination ? ({ to: 'host', destination: options.logDestination } as const) : ({ to: 'fd', fd: 1, lock: newLogLock() } as const);
  const destination = log.to === 'host' ? log.destination : lockedFdDestination(log.lock, log.fd);
  const loggerFor = (service: string): Logger => createLogger({ service, level: config.log.level, destination });
  const eventStore = await openConfiguredEventStore(loaded);
  // This thread's registry: the gateway's metrics (the services thread has its own).
  const metrics = config.metrics.enabled ? new MetricsRegistry() : undefined;
  let gateway: RunningNestService | undefined;
  let thread: ServicesThread | undefined;
  const stopAll = async (): Promise<void> => {
    // Reverse start order: the services thread (api, projector, ingest), then the gateway.
    try {
      await thread?.stop();
    } finally {
      try {
        await gateway?.close();
      } finally {
        await eventStore.close();
      }
    }
  };
  try {
    if (config.services.gateway.enabled) {
      const logger = loggerFor('gateway');
      // One process, many apps: the host handles SIGTERM/SIGINT once (see cli.ts), not each app.
      gateway = await startNestService({ module: gatewayModule({ eventStore, logger, loaded, metrics }), logger, listen: config.services.gateway.http, shutdownHooks: false });
      logger.info({ url: gateway.url }, `gateway listening on ${gateway.url}`);
    }
    const others = SERVICE_NAMES.filter((name): name is Exclude<ServiceName, 'gateway'> => name !== 'gateway' && config.services[name].enabled);
    if (others.length > 0) thread = await startServicesThread(loaded, { services: others, log });
    if (thread) options.onServicesThread?.(thread.worker);
  } catch (err) {
    await stopAll();
    throw err;
  }
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => (stopping ??= stopAll());
  const failed = thread
    ? thread.ended.then(async (error) => {
        loggerFor('custodian').fatal({ err: error }, `${error.message}; stopping the gateway and every other service (fail closed)`);
        await stop().catch(() => undefined);
        return error;
      })
    : new Promise<Error>(() => undefined);
  return {
    services: [...(gateway ? [{ name: 'gateway' as const, url: gateway.url }] : []), ...(thread?.services ?? [])],
    notices: thread?.notices ?? [],
    eventStore,
    failed,
    stop,
  };
}
