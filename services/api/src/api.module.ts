import { Inject, Injectable, Module, type DynamicModule, type OnApplicationShutdown } from '@nestjs/common';
import type { EventStore } from '@custodian/event-store';
import { HealthRegistry, type Logger } from '@custodian/observability';
import { HealthModule } from '@custodian/observability/nest';
import { API_EVENT_STORE, API_VERSION_INFO, type VersionInfo } from './tokens.js';
import { StreamsController } from './streams.controller.js';
import { VersionController } from './version.controller.js';
import { readServiceVersion } from './version-info.js';

export interface ApiDependencies {
  readonly eventStore: EventStore;
  readonly logger: Logger;
  /** Checks of this service; a fresh registry when omitted. */
  readonly health?: HealthRegistry;
  /** Close the store when the app shuts down (standalone process). The embedded host shares one store and closes it itself. */
  readonly ownsEventStore?: boolean;
  /** What GET /v1/version reports; this package's version when omitted. */
  readonly version?: VersionInfo;
}

const OWNS_EVENT_STORE = Symbol.for('@custodian/api-service/owns-event-store');

@Injectable()
class EventStoreShutdown implements OnApplicationShutdown {
  constructor(
    @Inject(API_EVENT_STORE) private readonly eventStore: EventStore,
    @Inject(OWNS_EVENT_STORE) private readonly owns: boolean,
  ) {}

  async onApplicationShutdown(): Promise<void> {
    if (this.owns) await this.eventStore.close();
  }
}

/**
 * HTTP API for dashboards, approvers and auditors. No authentication yet: OIDC (authorization
 * code + PKCE for humans, bearer JWTs for agents) arrives with the identity issue. Until then
 * the listener binds to loopback by default (services.api.http.host = 127.0.0.1).
 */
@Module({})
export class ApiModule {
  static register(deps: ApiDependencies): DynamicModule {
    const health = deps.health ?? new HealthRegistry();
    health.register({ name: 'event-store', kind: 'ready', check: () => deps.eventStore.ping() });
    return {
      module: ApiModule,
      imports: [HealthModule.register({ registry: health, logger: deps.logger })],
      controllers: [StreamsController, VersionController],
      providers: [
        { provide: API_EVENT_STORE, useValue: deps.eventStore },
        { provide: OWNS_EVENT_STORE, useValue: deps.ownsEventStore ?? false },
        { provide: API_VERSION_INFO, useValue: deps.version ?? readServiceVersion() },
        EventStoreShutdown,
      ],
      exports: [API_EVENT_STORE],
    };
  }
}
