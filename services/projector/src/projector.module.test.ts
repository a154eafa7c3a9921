import { describeServiceHealthContract } from '@custodian/service-host/testing';
import { ProjectorModule } from './index.js';

describeServiceHealthContract('projector', (deps) => ProjectorModule.register(deps));
