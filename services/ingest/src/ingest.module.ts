import { Inject, Injectable, Module, type DynamicModule, type OnApplicationShutdown } from '@nestjs/common';
import type { EventStore } from '@custodian/event-store';
import { HealthRegistry, type Logger } from '@custodian/observability';
import { HealthModule } from '@custodian/observability/nest';

/** Injection token for the event store port (an interface, so it needs an explicit token). */
export const INGEST_EVENT_STORE = Symbol.for('@custodian/ingest-service/event-store');

export interface IngestDependencies {
  readonly eventStore: EventStore;
  readonly logger: Logger;
  /** Checks of this service; a fresh registry when omitted. */
  readonly health?: HealthRegistry;
  /** Close the store when the app shuts down (standalone process). The embedded host shares one store and closes it itself. */
  readonly ownsEventStore?: boolean;
}

const OWNS_EVENT_STORE = Symbol.for('@custodian/ingest-service/owns-event-store');

@Injectable()
class EventStoreShutdown implements OnApplicationShutdown {
  constructor(
    @Inject(INGEST_EVENT_STORE) private readonly eventStore: EventStore,
    @Inject(OWNS_EVENT_STORE) private readonly owns: boolean,
  ) {}

  async onApplicationShutdown(): Promise<void> {
    if (this.owns) await this.eventStore.close();
  }
}

/** Ingest: consumes the bus and appends events to the event store (the Kafka pipeline arrives in a later issue). */
@Module({})
export class IngestModule {
  static register(deps: IngestDependencies): DynamicModule {
    const health = deps.health ?? new HealthRegistry();
    health.register({ name: 'event-store', kind: 'ready', check: () => deps.eventStore.ping() });
    return {
      module: IngestModule,
      imports: [HealthModule.register({ registry: health, logger: deps.logger })],
      providers: [
        { provide: INGEST_EVENT_STORE, useValue: deps.eventStore },
        { provide: OWNS_EVENT_STORE, useValue: deps.ownsEventStore ?? false },
        EventStoreShutdown,
      ],
      exports: [INGEST_EVENT_STORE],
    };
  }
}
