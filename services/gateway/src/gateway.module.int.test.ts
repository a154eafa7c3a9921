import { describeServiceHealthContract } from '@custodian/service-host/testing';
import { GatewayModule } from './index.js';

describeServiceHealthContract('gateway', (deps) => GatewayModule.register(deps));
