// SQLite adapter for the transparency log's TreeStorage port (loads better-sqlite3, so it is a subpath).
export * from './sqlite-tree-storage.js';
export { TREE_SCHEMA_VERSION } from './schema.js';
