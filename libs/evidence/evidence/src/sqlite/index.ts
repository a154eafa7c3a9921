// SQLite adapter of the evidence log state (loads better-sqlite3, so it is a subpath).
export * from './sqlite-evidence-log-state.js';
