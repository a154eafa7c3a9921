// Test support for EventStore adapters: `@custodian/event-store/testing` (imports vitest; test code only).
export * from './event-store-contract.js';
