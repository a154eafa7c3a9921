// Standalone ingest process (distributed deployment): `node services/ingest/dist/main.js`.
import { MetricsRegistry } from '@custodian/observability';
import { pipelineMetrics, runStandaloneService } from '@custodian/service-host';
import { openIngestWork } from './ingest-work.js';
import { IngestModule } from './ingest.module.js';

await runStandaloneService({
  service: 'ingest',
  module: (deps) => {
    const { loaded } = deps;
    const metrics = loaded.config.metrics.enabled ? new MetricsRegistry({ defaultLabels: { service: 'ingest' } }) : undefined;
    return IngestModule.register({
      ...deps,
      ...(metrics ? { metrics } : {}),
      // With an in-process bus nothing reaches this process: the gateway appends to the store itself.
      ...(loaded.config.bus.kind === 'kafka'
        ? { ingest: () => openIngestWork(loaded, { store: deps.eventStore, logger: deps.logger, ...(metrics ? { metrics: pipelineMetrics(metrics) } : {}) }) }
        : {}),
    });
  },
});
