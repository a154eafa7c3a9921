// Standalone gateway process (distributed deployment): `node services/gateway/dist/main.js`.
import { MetricsRegistry } from '@custodian/observability';
import { pipelineMetrics, runStandaloneService } from '@custodian/service-host';
import { openGatewayEvidence } from './gateway-evidence.js';
import { GatewayModule } from './gateway.module.js';

await runStandaloneService({
  service: 'gateway',
  module: (deps) => {
    const { loaded } = deps;
    const metrics = loaded.config.metrics.enabled ? new MetricsRegistry({ defaultLabels: { service: 'gateway' } }) : undefined;
    return GatewayModule.register({
      ...deps,
      ...(metrics ? { metrics } : {}),
      evidence: () => openGatewayEvidence(loaded, { store: deps.eventStore, logger: deps.logger, ...(metrics ? { metrics: pipelineMetrics(metrics) } : {}) }),
    });
  },
});
