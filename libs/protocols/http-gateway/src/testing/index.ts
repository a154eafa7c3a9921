// Test-only exports (`@custodian/http-gateway/testing`): the local JSON API and the Anthropic
// Messages API STAND-IN, for tests of hosts that run the gateway (services/gateway) and the benchmark.
export { startJsonApiUpstream, type JsonApiUpstream } from './json-api-upstream.js';
export { recordedStream, startAnthropicStandIn, type AnthropicStandIn, type StandInOptions, type StandInRequest } from './anthropic-stand-in.js';
