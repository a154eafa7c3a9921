import { describeServiceHealthContract } from '@custodian/service-host/testing';
import { IngestModule } from './index.js';

describeServiceHealthContract('ingest', (deps) => IngestModule.register(deps));
