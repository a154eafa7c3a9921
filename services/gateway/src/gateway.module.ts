import { Module, type DynamicModule } from '@nestjs/common';
import { serviceCore, type ServiceDependencies } from '@custodian/service-host';

export type GatewayDependencies = ServiceDependencies;

/** Protocol gateway: agents connect here; later issues add the PostgreSQL, SSH, HTTP, Anthropic and MCP listeners. */
@Module({})
export class GatewayModule {
  static register(deps: GatewayDependencies): DynamicModule {
    return { module: GatewayModule, ...serviceCore(deps) };
  }
}
