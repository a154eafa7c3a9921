export { PostgresEventStore, type PostgresEventStoreOptions } from './postgres-event-store.js';
export { SCHEMA_VERSION, storeSchema, type StoreSchema } from './schema.js';
