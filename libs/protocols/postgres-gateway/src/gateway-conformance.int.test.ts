// The PostgreSQL gateway against the gateway conformance suite (libs/gateway/gateway-conformance),
// with node-postgres as the client and the upstream's statement log as the observation point.
import { describeGatewayConformance } from '@custodian/gateway-conformance';
import { postgresConformanceFixture } from './testing/conformance-fixture.js';

describeGatewayConformance('PostgreSQL (node-postgres)', postgresConformanceFixture);
