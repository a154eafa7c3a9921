// The HTTP gateway against the gateway conformance suite, twice: the reverse proxy (node:http
// client, a local JSON API's request log as the observation point) and the Anthropic Messages API
// adapter (the real @anthropic-ai/sdk, streaming, against the STAND-IN upstream's request log).
import { describeGatewayConformance } from '@custodian/gateway-conformance';
import { anthropicConformanceFixture } from './testing/anthropic-conformance-fixture.js';
import { httpConformanceFixture } from './testing/conformance-fixture.js';

describeGatewayConformance('HTTP (node:http client, local JSON API)', httpConformanceFixture);
describeGatewayConformance('Anthropic Messages API (@anthropic-ai/sdk streaming, stand-in upstream)', anthropicConformanceFixture);
