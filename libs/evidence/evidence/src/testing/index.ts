// Test helpers of the evidence library: the independent tools the interop tests run (Go, cosign,
// compliance-trestle) and how to run them without network.
export * from './external-tools.js';
// The EvidenceLogState contract suite (imports vitest; test code only).
export * from './evidence-log-state-contract.js';
