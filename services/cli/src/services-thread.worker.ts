// The services thread of `custodian start` (see embedded-host.ts): ingest, projector and api run
// here, off the gateway's event loop, with their own event store instance on the same database
// (SQLite WAL; the instances wake each other's subscriptions, see event-store-sqlite's
// cross-thread-commits.ts), the in-process bus the projector publishes to (checkpoints, SIEM),
// and their own metrics registry (served at these services' /metrics). Started by the host with
// startModuleWorker; talks to it by messages only (services-thread-protocol.ts).
import 'reflect-metadata';
import { parentPort, workerData } from 'node:worker_threads';
import type { DynamicModule } from '@nestjs/common';
import { ApiModule, configuredApprovals, configuredSessionsReadModelPath } from '@custodian/api-service';
import type { EventStore } from '@custodian/event-store';
import { activeTopicSpecs } from '@custodian/event-bus';
import { InProcessEventBus } from '@custodian/event-bus-in-process';
import { configuredEvidence } from '@custodian/evidence-host';
import { IngestModule } from '@custodian/ingest-service';
import { MetricsRegistry, createLogger, type Logger } from '@custodian/observability';
import { startNestService, type RunningNestService } from '@custodian/observability/nest';
import { ProjectorModule, openSiemWork } from '@custodian/projector-service';
import type { LoadedConfig } from '@custodian/runtime-config';
import { configuredIdentity, openConfiguredEventStore } from '@custodian/service-host';
import { lockedFdDestination } from './locked-fd-destination.js';
import { loadedFromData, serializeError, type FromServicesThread, type ServicesThreadData, type ToServicesThread } from './services-thread-protocol.js';
import { cliVersion } from './version.js';

type ThreadService = ServicesThreadData['services'][number];

interface ModuleDeps {
  readonly eventStore: EventStore;
  readonly logger: Logger;
  readonly loaded: LoadedConfig;
  /** Start-up notices a module wants the operator to see (collected into EmbeddedHost.notices). */
  readonly notices: string[];
  /** The in-process bus of this thread: the projector publishes checkpoints and the SIEM feed on it. */
  readonly bus: InProcessEventBus;
  /** One registry for this thread, served at /metrics by each of its services. */
  readonly metrics: MetricsRegistry | undefined;
}

const MODULES: { readonly [S in ThreadService]: (deps: ModuleDeps) => DynamicModule } = {
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

const port = parentPort;
if (port === null) throw new Error('services-thread.worker.ts runs as a worker thread of the embedded host (startEmbedded), not on its own');
const data = workerData as ServicesThreadData;
const loaded = loadedFromData(data);
const send = (message: FromServicesThread): void => port.postMessage(message);

// One message per line: the host writes each whole, so lines of both threads never interleave.
const toHost = { write: (line: string): void => send({ type: 'log', line }) };
const destination = data.log.to === 'host' ? toHost : lockedFdDestination(data.log.lock, data.log.fd);
const loggerFor = (service: string): Logger => createLogger({ service, level: loaded.config.log.level, destination });

const running: RunningNestService[] = [];
let eventStore: EventStore | undefined;
let bus: InProcessEventBus | undefined;

async function stopAll(): Promise<void> {
  // Reverse start order: the API stops taking requests before the pipeline behind it.
  for (const service of [...running].reverse()) await service.close();
  await bus?.close();
  await eventStore?.close();
}

async function start(): Promise<void> {
  eventStore = await openConfiguredEventStore(loaded);
  bus = new InProcessEventBus();
  await bus.ensureTopics(activeTopicSpecs());
  const metrics = loaded.config.metrics.enabled ? new MetricsRegistry() : undefined;
  const notices: string[] = [];
  for (const name of data.services) {
    const settings = loaded.config.services[name];
    const logger = loggerFor(name);
    // Many apps, one process: the host handles SIGTERM/SIGINT once (see cli.ts), not each app.
    const service = await startNestService({ module: MODULES[name]({ eventStore, logger, loaded, notices, bus, metrics }), logger, listen: settings.http, shutdownHooks: false });
    running.push(service);
    logger.info({ url: service.url }, `${name} listening on ${service.url}`);
    send({ type: 'started', name, url: service.url });
  }
  send({ type: 'ready', notices });
}

let stopping: Promise<void> | undefined;
port.on('message', (message: ToServicesThread) => {
  if (message.type !== 'stop') return;
  stopping ??= stopAll().then(
    () => send({ type: 'stopped' }),
    (error: unknown) => send({ type: 'stopped', error: serializeError(error) }),
  );
});

try {
  await start();
} catch (error) {
  // Stop what did start, then report; the host terminates this thread and stops its own services.
  await stopAll().catch(() => undefined);
  send({ type: 'start-failed', error: serializeError(error) });
}
