import type { Database } from 'better-sqlite3';
import { TreeStorageCorruptError } from '../errors.js';

interface Migration {
  readonly version: number;
  readonly description: string;
  readonly sql: string;
}

/**
 * The database itself keeps the tree append-only and gap-free, whoever writes to it: UPDATE and
 * DELETE are refused, a leaf must be the next one, and an interior node may only be added once
 * both its children exist, as the next node of its level. (INSERT OR REPLACE is caught by the
 * INSERT trigger.) Only file-level tampering gets past this, and signed checkpoints detect that.
 * Table names carry a tlog_ prefix so the tree can share a database file with other stores.
 */
const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'tlog_nodes (append-only Merkle tree nodes)',
    sql: `
      CREATE TABLE tlog_nodes (
        level INTEGER NOT NULL CHECK (level >= 0 AND level < 64),
        idx   INTEGER NOT NULL CHECK (idx >= 0),
        hash  BLOB    NOT NULL CHECK (typeof(hash) = 'blob' AND length(hash) = 32),
        PRIMARY KEY (level, idx)
      ) WITHOUT ROWID;
      CREATE TRIGGER tlog_nodes_refuse_update BEFORE UPDATE ON tlog_nodes
      BEGIN
        SELECT RAISE(ABORT, 'custodian transparency log is append-only: UPDATE refused');
      END;
      CREATE TRIGGER tlog_nodes_refuse_delete BEFORE DELETE ON tlog_nodes
      BEGIN
        SELECT RAISE(ABORT, 'custodian transparency log is append-only: DELETE refused');
      END;
      CREATE TRIGGER tlog_nodes_refuse_overwrite_or_gap BEFORE INSERT ON tlog_nodes
      BEGIN
        SELECT RAISE(ABORT, 'custodian transparency log is append-only: node already stored')
         WHERE EXISTS (SELECT 1 FROM tlog_nodes WHERE level = NEW.level AND idx = NEW.idx);
        SELECT RAISE(ABORT, 'custodian transparency log: a node must be the next one of its level')
         WHERE NEW.idx <> COALESCE((SELECT MAX(idx) FROM tlog_nodes WHERE level = NEW.level), -1) + 1;
        SELECT RAISE(ABORT, 'custodian transparency log: an interior node needs both children')
         WHERE NEW.level > 0 AND (
           NOT EXISTS (SELECT 1 FROM tlog_nodes WHERE level = NEW.level - 1 AND idx = 2 * NEW.idx)
           OR NOT EXISTS (SELECT 1 FROM tlog_nodes WHERE level = NEW.level - 1 AND idx = 2 * NEW.idx + 1));
      END;
    `,
  },
];

export const TREE_SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version;

/** Applies pending migrations in one IMMEDIATE transaction, so concurrent openers serialize. */
export function migrateTreeSchema(db: Database, now: () => string): void {
  db.transaction(() => {
    db.exec(`CREATE TABLE IF NOT EXISTS tlog_schema_migrations (
      version     INTEGER PRIMARY KEY,
      description TEXT NOT NULL,
      applied_at  TEXT NOT NULL
    )`);
    const applied = new Set(
      db
        .prepare<[], { version: number }>('SELECT version FROM tlog_schema_migrations')
        .all()
        .map((row) => row.version),
    );
    const newest = Math.max(0, ...applied);
    if (newest > TREE_SCHEMA_VERSION) {
      // Written by a newer build: its invariants may not be ours to uphold.
      throw new TreeStorageCorruptError(`transparency log schema version ${newest} is newer than this build supports (${TREE_SCHEMA_VERSION})`);
    }
    const record = db.prepare('INSERT INTO tlog_schema_migrations (version, description, applied_at) VALUES (?, ?, ?)');
    for (const migration of MIGRATIONS) {
      if (applied.has(migration.version)) continue;
      db.exec(migration.sql);
      record.run(migration.version, migration.description, now());
    }
  }).immediate();
}
