// The protocol-neutral session pipeline: identify → decide → hold for approval → forward → mask → record.
// Protocol adapters (PostgreSQL, later SSH, HTTP, Anthropic, MCP, Kubernetes exec) drive it; see README.md.
// It imports no classifier and no protocol library (the kind:pipeline lint constraint).
export * from './approval-gate.js';
export * from './session-errors.js';
export * from './session-pipeline.js';
export { SessionRecorder, type SessionRecorderOptions } from './session-recorder.js';
export { PolicyMasking, maskingPolicyFromRules } from './masking-configuration.js';
