// Standalone ingest process (distributed deployment): `node services/ingest/dist/main.js`.
import { runStandaloneService } from '@custodian/service-host';
import { IngestModule } from './ingest.module.js';

await runStandaloneService({ service: 'ingest', module: (deps) => IngestModule.register(deps) });
