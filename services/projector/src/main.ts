// Standalone projector process (distributed deployment): `node services/projector/dist/main.js`.
import { runStandaloneService } from '@custodian/service-host';
import { ProjectorModule } from './projector.module.js';

await runStandaloneService({ service: 'projector', module: (deps) => ProjectorModule.register(deps) });
