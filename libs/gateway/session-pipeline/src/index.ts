// The protocol-neutral session pipeline: identify → decide → hold for approval → forward → mask → record.
// Protocol adapters (PostgreSQL, later SSH, HTTP, Anthropic, MCP) drive it; see README.md.
export * from './approval-gate.js';
export * from './session-errors.js';
export * from './session-pipeline.js';
export { SessionRecorder, type SessionRecorderOptions } from './session-recorder.js';
export { authorizeConnection, type ConnectionAuthorization } from './connection-authorization.js';
export { PolicyMasking, maskingPolicyFromRules } from './masking-configuration.js';
export { sqlClassificationSummary } from './command-summary.js';
