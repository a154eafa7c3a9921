// Standalone api process (distributed deployment): `node services/api/dist/main.js`.
import { configuredIdentity, runStandaloneService } from '@custodian/service-host';
import { ApiModule } from './api.module.js';

await runStandaloneService({
  service: 'api',
  module: (deps) => ApiModule.register({ ...deps, identity: configuredIdentity(deps.loaded, { logger: deps.logger }), listenHost: deps.listen.host }),
});
