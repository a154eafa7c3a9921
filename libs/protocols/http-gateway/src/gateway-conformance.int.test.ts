// The HTTP gateway against the gateway conformance suite, with node:http as the client and a
// local JSON API's request log as the observation point.
import { describeGatewayConformance } from '@custodian/gateway-conformance';
import { httpConformanceFixture } from './testing/conformance-fixture.js';

describeGatewayConformance('HTTP (node:http client, local JSON API)', httpConformanceFixture);
