// The custodian CLI as a library (for tests and embedding); the command itself is main.ts.
export { EXIT, runCli, USAGE, UsageError, type CliIo } from './cli.js';
export { startEmbedded, type EmbeddedHost, type EmbeddedService, type StartEmbeddedOptions } from './embedded-host.js';
export { cliVersion } from './version.js';
export { POLICY_EXIT, POLICY_USAGE, runPolicyCommand } from './policy-command.js';
export { APPROVALS_EXIT, APPROVALS_USAGE, runApprovalsCommand } from './approvals-command.js';
export { MCP_TOOLS_EXIT, MCP_TOOLS_USAGE, runMcpToolsCommand } from './mcp-tools-command.js';
