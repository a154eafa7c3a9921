// Standalone gateway process (distributed deployment): `node services/gateway/dist/main.js`.
import { runStandaloneService } from '@custodian/service-host';
import { GatewayModule } from './gateway.module.js';

await runStandaloneService({ service: 'gateway', module: (deps) => GatewayModule.register(deps) });
