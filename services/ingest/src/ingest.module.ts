import { Module, type DynamicModule } from '@nestjs/common';
import { serviceCore, serviceWorkProviders, type ServiceDependencies, type ServiceWork } from '@custodian/service-host';

export const INGEST_WORK = Symbol.for('@custodian/ingest/work');

export interface IngestDependencies extends ServiceDependencies {
  /**
   * Starts consuming the bus into the event store (distributed deployment). Absent in the
   * embedded deployment, where the gateway's pipeline appends to the store itself (ADR 0007).
   */
  readonly ingest?: () => Promise<ServiceWork>;
}

/** Ingest: consumes custodian.events.v1 and appends events to the event store exactly once by event id. */
@Module({})
export class IngestModule {
  static register(deps: IngestDependencies): DynamicModule {
    const core = serviceCore(deps);
    if (!deps.ingest) return { module: IngestModule, ...core };
    return { module: IngestModule, ...core, providers: [...core.providers, ...serviceWorkProviders(INGEST_WORK, deps.ingest)] };
  }
}
