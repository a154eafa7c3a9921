import {
  Controller,
  Get,
  Inject,
  Injectable,
  Module,
  ServiceUnavailableException,
  type BeforeApplicationShutdown,
  type DynamicModule,
} from '@nestjs/common';
import type { Logger } from 'pino';
import type { HealthKind, HealthRegistry } from '../health.js';

export const HEALTH_REGISTRY = Symbol.for('@custodian/observability/health-registry');
export const HEALTH_LOGGER = Symbol.for('@custodian/observability/health-logger');

/** What /health/* answers. Failure reasons stay in the logs; clients get check names only. */
export interface HealthResponse {
  readonly status: 'ok' | 'unavailable';
  readonly checks: readonly { readonly name: string; readonly ok: boolean }[];
  readonly failing: readonly string[];
}

@Controller('health')
export class HealthController {
  private lastFailing = new Map<HealthKind, string>();

  constructor(
    @Inject(HEALTH_REGISTRY) private readonly registry: HealthRegistry,
    @Inject(HEALTH_LOGGER) private readonly logger: Logger,
  ) {}

  /** 200 while the process works; 503 names the failing checks. */
  @Get('live')
  live(): Promise<HealthResponse> {
    return this.respond('live');
  }

  /** 200 when every readiness check passes; 503 names the failing checks. */
  @Get('ready')
  ready(): Promise<HealthResponse> {
    return this.respond('ready');
  }

  private async respond(kind: HealthKind): Promise<HealthResponse> {
    const report = await this.registry.run(kind);
    const body: HealthResponse = {
      status: report.ok ? 'ok' : 'unavailable',
      checks: report.checks.map((c) => ({ name: c.name, ok: c.ok })),
      failing: report.failing,
    };
    // Probes poll every few seconds: log transitions, not every answer.
    const failing = report.failing.join(',');
    if (this.lastFailing.get(kind) !== failing) {
      this.lastFailing.set(kind, failing);
      if (report.ok) this.logger.info({ kind }, `${kind} checks pass`);
      else this.logger.warn({ kind, checks: report.checks.filter((c) => !c.ok) }, `${kind} checks failing: ${failing}`);
    }
    if (!report.ok) throw new ServiceUnavailableException(body);
    return body;
  }
}

/** Fails readiness as soon as shutdown begins, so load balancers stop sending traffic. */
@Injectable()
export class ReadinessDrain implements BeforeApplicationShutdown {
  constructor(@Inject(HEALTH_REGISTRY) private readonly registry: HealthRegistry) {}

  beforeApplicationShutdown(): void {
    this.registry.markShuttingDown();
  }
}

export interface HealthModuleOptions {
  readonly registry: HealthRegistry;
  readonly logger: Logger;
}

/** GET /health/live and GET /health/ready over a HealthRegistry. */
@Module({})
export class HealthModule {
  static register(options: HealthModuleOptions): DynamicModule {
    return {
      module: HealthModule,
      controllers: [HealthController],
      providers: [{ provide: HEALTH_REGISTRY, useValue: options.registry }, { provide: HEALTH_LOGGER, useValue: options.logger }, ReadinessDrain],
      exports: [HEALTH_REGISTRY],
    };
  }
}
