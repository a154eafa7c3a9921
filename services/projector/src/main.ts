// Standalone projector process (distributed deployment): `node services/projector/dist/main.js`.
import { configuredEvidence } from '@custodian/evidence-host';
import { MetricsRegistry } from '@custodian/observability';
import { runStandaloneService } from '@custodian/service-host';
import { ProjectorModule } from './projector.module.js';
import { openCheckpointPublishing, openSiemWork } from './siem-work.js';

await runStandaloneService({
  service: 'projector',
  module: (deps) => {
    const metrics = deps.loaded.config.metrics.enabled ? new MetricsRegistry({ defaultLabels: { service: 'projector' } }) : undefined;
    return ProjectorModule.register({
      ...deps,
      ...(metrics ? { metrics } : {}),
      evidence: configuredEvidence(deps.loaded),
      // With Kafka, signed checkpoints also go to custodian.checkpoints.v1 (as in the embedded host).
      ...(deps.loaded.config.bus.kind === 'kafka' ? { checkpoints: () => openCheckpointPublishing(deps.loaded, { logger: deps.logger }) } : {}),
      siem: () => openSiemWork(deps.loaded, { store: deps.eventStore, logger: deps.logger }),
    });
  },
});
