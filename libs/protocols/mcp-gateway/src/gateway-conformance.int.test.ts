// The MCP gateway against the gateway conformance suite (libs/gateway/gateway-conformance), in both
// protocol eras: the session era with the TypeScript SDK 1.x Client and McpServer; the stateless era
// (2026-07-28) with the TypeScript SDK 2.x Client pinned to 2026-07-28 and a Python SDK server that
// speaks that era only. Each upstream's tool-call log is the observation point.
import { describe } from 'vitest';
import { describeGatewayConformance } from '@custodian/gateway-conformance';
import { mcpConformanceFixture } from './testing/conformance-fixture.js';
import { pythonSdkAvailable } from './testing/python-sdk.js';

describeGatewayConformance('MCP (SDK client, streamable HTTP)', mcpConformanceFixture);

if (pythonSdkAvailable()) describeGatewayConformance('MCP stateless era 2026-07-28 (SDK 2.x client, Python SDK server)', () => mcpConformanceFixture('stateless'));
else describe.skip('MCP stateless era: needs the Python SDK (scripts/setup-python.sh)', () => undefined);
