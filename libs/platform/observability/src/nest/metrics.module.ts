import { Controller, Get, Header, Inject, Module, type DynamicModule } from '@nestjs/common';
import type { MetricsRegistry } from '../metrics.js';

export const METRICS_REGISTRY = Symbol.for('@custodian/observability/metrics-registry');

@Controller('metrics')
export class MetricsController {
  constructor(@Inject(METRICS_REGISTRY) private readonly metrics: MetricsRegistry) {}

  /** Prometheus scrape endpoint (text exposition format 0.0.4). */
  @Get()
  @Header('Content-Type', 'text/plain; version=0.0.4; charset=utf-8')
  @Header('Cache-Control', 'no-store')
  async scrape(): Promise<string> {
    return (await this.metrics.exposition()).body;
  }
}

/** GET /metrics over a MetricsRegistry. */
@Module({})
export class MetricsModule {
  static register(registry: MetricsRegistry): DynamicModule {
    return { module: MetricsModule, controllers: [MetricsController], providers: [{ provide: METRICS_REGISTRY, useValue: registry }] };
  }
}
