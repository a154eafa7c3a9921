import { Module, type DynamicModule } from '@nestjs/common';
import { serviceCore, type ServiceDependencies } from '@custodian/service-host';

export type ProjectorDependencies = ServiceDependencies;

/** Projector: builds evidence views, Merkle checkpoints and replay streams from the event store (later issues). */
@Module({})
export class ProjectorModule {
  static register(deps: ProjectorDependencies): DynamicModule {
    return { module: ProjectorModule, ...serviceCore(deps) };
  }
}
