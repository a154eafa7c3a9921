// The embedded EventStore adapter: one SQLite file, append-only enforced by the database.
export { SqliteEventStore, type SqliteEventStoreOptions } from './sqlite-event-store.js';
export { SCHEMA_VERSION } from './schema.js';
