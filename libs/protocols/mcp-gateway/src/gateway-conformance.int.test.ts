// The MCP gateway against the gateway conformance suite (libs/gateway/gateway-conformance), with
// the SDK's Client and an SDK McpServer upstream whose tool-call log is the observation point.
import { describeGatewayConformance } from '@custodian/gateway-conformance';
import { mcpConformanceFixture } from './testing/conformance-fixture.js';

describeGatewayConformance('MCP (SDK client, streamable HTTP)', mcpConformanceFixture);
