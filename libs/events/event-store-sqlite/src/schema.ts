import { EventStoreUnavailableError } from '@custodian/event-store';
import type { Database } from 'better-sqlite3';

interface Migration {
  readonly version: number;
  readonly description: string;
  readonly sql: string;
}

/**
 * Append-only is enforced by the database itself, not only by this adapter: triggers refuse
 * UPDATE and DELETE of events, and an INSERT that reuses an id or position or leaves a gap in a
 * stream. The INSERT trigger also covers `INSERT OR REPLACE`, whose implicit delete does not fire
 * DELETE triggers unless recursive_triggers is on (it is on our connections, but not necessarily
 * on someone else's). Only DROP TABLE / file-level tampering gets past this; the evidence log's
 * signed Merkle checkpoints are what detect that.
 */
const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'events (append-only), checkpoints',
    sql: `
      CREATE TABLE events (
        position       INTEGER PRIMARY KEY AUTOINCREMENT,
        id             TEXT    NOT NULL UNIQUE,
        stream         TEXT    NOT NULL,
        revision       INTEGER NOT NULL CHECK (revision >= 0),
        type           TEXT    NOT NULL,
        schema_version INTEGER NOT NULL,
        occurred_at    TEXT    NOT NULL,
        recorded_at    TEXT    NOT NULL,
        json           TEXT    NOT NULL CHECK (json_valid(json)),
        UNIQUE (stream, revision)
      );
      CREATE TRIGGER events_refuse_update BEFORE UPDATE ON events
      BEGIN
        SELECT RAISE(ABORT, 'custodian events are append-only: UPDATE refused');
      END;
      CREATE TRIGGER events_refuse_delete BEFORE DELETE ON events
      BEGIN
        SELECT RAISE(ABORT, 'custodian events are append-only: DELETE refused');
      END;
      CREATE TRIGGER events_refuse_overwrite_or_gap BEFORE INSERT ON events
      BEGIN
        SELECT RAISE(ABORT, 'custodian events are append-only: id or position already stored')
         WHERE EXISTS (SELECT 1 FROM events WHERE id = NEW.id)
            OR EXISTS (SELECT 1 FROM events WHERE position = NEW.position);
        SELECT RAISE(ABORT, 'custodian events: a stream revision must follow the last one')
         WHERE NEW.revision <> COALESCE((SELECT MAX(revision) FROM events WHERE stream = NEW.stream), -1) + 1;
      END;
      CREATE TABLE checkpoints (
        subscription_id TEXT PRIMARY KEY,
        position        TEXT NOT NULL,
        updated_at      TEXT NOT NULL
      );
    `,
  },
];

export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version;

/** Applies pending migrations in one IMMEDIATE transaction, so concurrent openers serialize. */
export function migrate(db: Database, now: () => string): void {
  db.transaction(() => {
    db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version     INTEGER PRIMARY KEY,
      description TEXT NOT NULL,
      applied_at  TEXT NOT NULL
    )`);
    const applied = new Set(
      db
        .prepare<[], { version: number }>('SELECT version FROM schema_migrations')
        .all()
        .map((row) => row.version),
    );
    const newest = Math.max(0, ...applied);
    if (newest > SCHEMA_VERSION) {
      // Written by a newer build: its invariants may not be ours to uphold.
      throw new EventStoreUnavailableError(`database schema version ${newest} is newer than this build supports (${SCHEMA_VERSION})`);
    }
    const record = db.prepare('INSERT INTO schema_migrations (version, description, applied_at) VALUES (?, ?, ?)');
    for (const migration of MIGRATIONS) {
      if (applied.has(migration.version)) continue;
      db.exec(migration.sql);
      record.run(migration.version, migration.description, now());
    }
  }).immediate();
}
