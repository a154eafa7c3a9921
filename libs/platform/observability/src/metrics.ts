// Prometheus metrics: one registry per process (the embedded host shares it between services),
// exposed as text at GET /metrics (nest/metrics.module.ts). prom-client does the exposition format.
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';

export interface MetricsRegistryOptions {
  /** Also collect Node process metrics (CPU, memory, event loop lag). Default true. */
  readonly processMetrics?: boolean;
  /** Labels on every metric, e.g. { service: 'gateway' }. */
  readonly defaultLabels?: Readonly<Record<string, string>>;
}

export class MetricsRegistry {
  readonly registry = new Registry();
  private readonly counters = new Map<string, Counter>();
  private readonly gauges = new Map<string, Gauge>();

  constructor(options: MetricsRegistryOptions = {}) {
    if (options.defaultLabels) this.registry.setDefaultLabels({ ...options.defaultLabels });
    if (options.processMetrics ?? true) collectDefaultMetrics({ register: this.registry, prefix: 'custodian_' });
  }

  /** The counter of that name, created on first use (the same one on every later call). */
  counter(name: string, help: string, labelNames: readonly string[] = []): Counter {
    let counter = this.counters.get(name);
    if (!counter) {
      counter = new Counter({ name, help, labelNames: [...labelNames], registers: [this.registry] });
      this.counters.set(name, counter);
    }
    return counter;
  }

  gauge(name: string, help: string, labelNames: readonly string[] = []): Gauge {
    let gauge = this.gauges.get(name);
    if (!gauge) {
      gauge = new Gauge({ name, help, labelNames: [...labelNames], registers: [this.registry] });
      this.gauges.set(name, gauge);
    }
    return gauge;
  }

  /** Prometheus text exposition format (version 0.0.4). */
  async exposition(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
