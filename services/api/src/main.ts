// Standalone api process (distributed deployment): `node services/api/dist/main.js`.
import { runStandaloneService } from '@custodian/service-host';
import { ApiModule } from './api.module.js';

await runStandaloneService({ service: 'api', module: (deps) => ApiModule.register(deps) });
