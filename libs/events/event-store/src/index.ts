// The event store port: the append-only log of Custodian events that every service writes to
// and reads from. Adapters: @custodian/event-store-sqlite (embedded), @custodian/event-store-postgres,
// @custodian/event-store-eventstoredb.
export * from './event-store.js';
export * from './errors.js';
export * from './position.js';
export * from './append-batch.js';
export * from './subscription-runner.js';
export * from './commit-signal.js';
