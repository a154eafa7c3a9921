// Test support: `@custodian/transparency-log/testing` (imports vitest; test code only).
export * from './tree-storage-contract.js';
export * from './reference-tree.js';
