// Standalone api process (distributed deployment): `node services/api/dist/main.js`.
import { configuredEvidence } from '@custodian/evidence-host';
import { configuredIdentity, runStandaloneService } from '@custodian/service-host';
import { configuredSessionsReadModelPath } from './sessions/configured-sessions.js';
import { ApiModule } from './api.module.js';
import { configuredApprovals } from './approvals/configured-approvals.js';

await runStandaloneService({
  service: 'api',
  module: (deps) => ApiModule.register({ ...deps, identity: configuredIdentity(deps.loaded, { logger: deps.logger }), evidence: configuredEvidence(deps.loaded), approvals: configuredApprovals(deps.loaded), sessionsReadModelPath: configuredSessionsReadModelPath(deps.loaded), listenHost: deps.listen.host }),
});
