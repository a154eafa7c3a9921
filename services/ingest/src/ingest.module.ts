import { Module, type DynamicModule } from '@nestjs/common';
import { serviceCore, type ServiceDependencies } from '@custodian/service-host';

export type IngestDependencies = ServiceDependencies;

/** Ingest: consumes the bus and appends events to the event store (the Kafka pipeline arrives in a later issue). */
@Module({})
export class IngestModule {
  static register(deps: IngestDependencies): DynamicModule {
    return { module: IngestModule, ...serviceCore(deps) };
  }
}
