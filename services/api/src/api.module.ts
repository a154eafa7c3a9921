import { Module, type DynamicModule } from '@nestjs/common';
import { serviceCore, type ServiceDependencies } from '@custodian/service-host';
import { API_VERSION_INFO, type VersionInfo } from './tokens.js';
import { StreamsController } from './streams.controller.js';
import { VersionController } from './version.controller.js';
import { readServiceVersion } from './version-info.js';

export interface ApiDependencies extends ServiceDependencies {
  /** What GET /v1/version reports; this package's version when omitted. */
  readonly version?: VersionInfo;
}

/**
 * HTTP API for dashboards, approvers and auditors. No authentication yet: OIDC (authorization
 * code + PKCE for humans, bearer JWTs for agents) arrives with the identity issue. Until then
 * the listener binds to loopback by default (services.api.http.host = 127.0.0.1).
 */
@Module({})
export class ApiModule {
  static register(deps: ApiDependencies): DynamicModule {
    const core = serviceCore(deps);
    return {
      module: ApiModule,
      ...core,
      controllers: [StreamsController, VersionController],
      providers: [...core.providers, { provide: API_VERSION_INFO, useValue: deps.version ?? readServiceVersion() }],
    };
  }
}
