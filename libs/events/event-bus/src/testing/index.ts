// Test support for EventBus adapters: `@custodian/event-bus/testing` (imports vitest; test code only).
export * from './event-bus-contract.js';
