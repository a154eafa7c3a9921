// Test and benchmark helpers: the SDK-built upstream MCP server and the gateway fixture.
export { startTestUpstream, type TestUpstream, type TestUpstreamOptions } from './upstream-server.js';
export { startMcpFixture, teeingFetch, TEST_POLICY, type McpFixture, type McpFixtureOptions } from './gateway-fixture.js';
export { startPythonUpstream, runPythonClient, pythonSdkAvailable, type PythonUpstream, type PythonClientRun } from './python-sdk.js';
