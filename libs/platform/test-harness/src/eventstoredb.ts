// An EventStoreDB endpoint for tests: an existing server (EVENTSTORE_CONNECTION_STRING), else a
// container where a Docker engine answers, else a reason why there is none (tests skip visibly).
import { containerRuntimeAvailable } from './service.js';

export type EventStoreDbEndpoint =
  | { readonly available: true; readonly connectionString: string; stop(): Promise<void> }
  | { readonly available: false; readonly reason: string };

export interface EventStoreDbEndpointOptions {
  /** Container image; default `eventstore/eventstore:24.10` (KurrentDB images work too). */
  readonly image?: string;
  readonly startTimeoutMs?: number;
}

const DEFAULT_IMAGE = 'eventstore/eventstore:24.10';

export async function eventStoreDbEndpoint(options: EventStoreDbEndpointOptions = {}): Promise<EventStoreDbEndpoint> {
  const fromEnv = process.env['EVENTSTORE_CONNECTION_STRING'];
  if (fromEnv) return { available: true, connectionString: fromEnv, stop: async () => undefined };

  if (!(await containerRuntimeAvailable())) {
    const where = process.env['DOCKER_HOST'] ?? '/var/run/docker.sock';
    return { available: false, reason: `no EVENTSTORE_CONNECTION_STRING and no Docker engine (nothing answered GET /_ping at ${where})` };
  }

  // Only this path needs testcontainers; importing it lazily keeps it off every other test run.
  const { GenericContainer, Wait } = await import('testcontainers');
  const container = await new GenericContainer(options.image ?? DEFAULT_IMAGE)
    .withEnvironment({
      EVENTSTORE_INSECURE: 'true',
      EVENTSTORE_RUN_PROJECTIONS: 'None',
      EVENTSTORE_MEM_DB: 'true',
      EVENTSTORE_CLUSTER_SIZE: '1',
      KURRENTDB_INSECURE: 'true',
      KURRENTDB_RUN_PROJECTIONS: 'None',
      KURRENTDB_MEM_DB: 'true',
    })
    .withExposedPorts(2113)
    .withWaitStrategy(Wait.forHttp('/health/live', 2113).forStatusCode(204))
    .withStartupTimeout(options.startTimeoutMs ?? 120_000)
    .start();
  let stopped = false;
  return {
    available: true,
    connectionString: `esdb://${container.getHost()}:${container.getMappedPort(2113)}?tls=false`,
    stop: async () => {
      if (stopped) return;
      stopped = true;
      await container.stop();
    },
  };
}
