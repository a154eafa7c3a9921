import { Inject, Injectable, type DynamicModule, type OnApplicationShutdown, type Provider } from '@nestjs/common';
import type { EventStore } from '@custodian/event-store';
import { HealthRegistry, type Logger, type MetricsRegistry } from '@custodian/observability';
import { HealthModule, MetricsModule } from '@custodian/observability/nest';

/** Nest injection token for the event store port (an interface, so it needs an explicit token). */
export const EVENT_STORE = Symbol.for('@custodian/service-host/event-store');

/** What every service module is given by its composition root (a standalone main or the embedded host). */
export interface ServiceDependencies {
  readonly eventStore: EventStore;
  readonly logger: Logger;
  /** Checks of this service; a fresh registry when omitted. */
  readonly health?: HealthRegistry;
  /** Close the store when the app shuts down (standalone process). The embedded host shares one store and closes it itself. */
  readonly ownsEventStore?: boolean;
  /** Served as Prometheus text at GET /metrics when given (config `metrics.enabled`). */
  readonly metrics?: MetricsRegistry;
}

const OWNS_EVENT_STORE = Symbol.for('@custodian/service-host/owns-event-store');

@Injectable()
class EventStoreShutdown implements OnApplicationShutdown {
  constructor(
    @Inject(EVENT_STORE) private readonly eventStore: EventStore,
    @Inject(OWNS_EVENT_STORE) private readonly owns: boolean,
  ) {}

  async onApplicationShutdown(): Promise<void> {
    if (this.owns) await this.eventStore.close();
  }
}

/**
 * The part every service module shares: /health/live and /health/ready (ready includes "event
 * store reachable"), the event store under `EVENT_STORE`, and closing it on shutdown when owned.
 * A service module spreads this into its DynamicModule and adds its own controllers and providers.
 */
export function serviceCore(deps: ServiceDependencies): Required<Pick<DynamicModule, 'imports' | 'providers' | 'exports'>> {
  const health = deps.health ?? new HealthRegistry();
  health.register({ name: 'event-store', kind: 'ready', check: () => deps.eventStore.ping() });
  const providers: Provider[] = [
    { provide: EVENT_STORE, useValue: deps.eventStore },
    { provide: OWNS_EVENT_STORE, useValue: deps.ownsEventStore ?? false },
    EventStoreShutdown,
  ];
  const imports: DynamicModule[] = [HealthModule.register({ registry: health, logger: deps.logger })];
  if (deps.metrics) imports.push(MetricsModule.register(deps.metrics));
  return { imports, providers, exports: [EVENT_STORE] };
}
