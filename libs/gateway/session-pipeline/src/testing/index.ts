// Test helpers for adapters built on the pipeline (never imported by production code).
export { TestOnlyApprovalGate } from './test-only-approval-gate.js';
