import { EventStoreUnavailableError, InvalidRequestError } from '@custodian/event-store';
import type { PoolClient } from 'pg';

/**
 * Where the store lives. Every name is quoted from validated identifiers, so a schema name
 * from configuration never reaches SQL as free text.
 */
export interface StoreSchema {
  /** The PostgreSQL schema holding the store's tables (default `custodian`). */
  readonly name: string;
  /** `"schema"."events"` etc., quoted. */
  readonly events: string;
  readonly checkpoints: string;
  readonly migrations: string;
  readonly positions: string;
  /** LISTEN/NOTIFY channel woken by every committed append. */
  readonly channel: string;
  /**
   * Key of the transaction-level advisory lock that serializes appends (see the package README:
   * positions are handed out under it, so position order is commit order).
   */
  readonly lockKey: bigint;
}

const IDENTIFIER = /^[a-z_][a-z0-9_]{0,47}$/;

export function storeSchema(name = 'custodian'): StoreSchema {
  if (!IDENTIFIER.test(name)) throw new InvalidRequestError(`PostgreSQL event store schema ${JSON.stringify(name)}: use lower-case letters, digits and _ (at most 48)`);
  const q = (table: string): string => `"${name}"."${table}"`;
  return {
    name,
    events: q('events'),
    checkpoints: q('checkpoints'),
    migrations: q('schema_migrations'),
    positions: q('event_positions'),
    channel: `${name}_events_appended`,
    lockKey: advisoryKey(`custodian-event-store:${name}`),
  };
}

/** A stable signed 64-bit key per schema (FNV-1a), so two stores in one database do not share a lock. */
function advisoryKey(text: string): bigint {
  let hash = 0xcbf29ce484222325n;
  for (const byte of Buffer.from(text, 'utf8')) {
    hash ^= BigInt(byte);
    hash = (hash * 0x100000001b3n) & 0xffffffffffffffffn;
  }
  return BigInt.asIntN(64, hash);
}

interface Migration {
  readonly version: number;
  readonly description: string;
  readonly sql: (s: StoreSchema) => string;
}

/**
 * Append-only and commit order are enforced by the database, not only by this adapter:
 * - UPDATE, DELETE and TRUNCATE of events are refused by triggers (an owner could drop them;
 *   grant the services' role only SELECT and INSERT — `writerRole` — and the evidence log's
 *   signed checkpoints detect what is left);
 * - every INSERT, whoever makes it, takes the store's advisory lock and is given its position
 *   from the sequence only then, so a position is never handed out to a transaction that will
 *   commit after a later one: readers that read `position > cursor` never skip an event;
 * - an INSERT must land at the stream's next revision (no gap, no overwrite);
 * - every committed INSERT notifies the channel, so live subscriptions in any process wake.
 */
const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'events (append-only, positions in commit order), checkpoints',
    sql: (s) => `
      CREATE SEQUENCE ${s.positions} AS bigint MINVALUE 1 NO CYCLE;
      CREATE TABLE ${s.events} (
        position       bigint      PRIMARY KEY,
        id             text        NOT NULL UNIQUE,
        stream         text        NOT NULL,
        revision       integer     NOT NULL CHECK (revision >= 0),
        type           text        NOT NULL,
        schema_version integer     NOT NULL,
        occurred_at    text        NOT NULL,
        recorded_at    text        NOT NULL,
        -- text, not jsonb: the stored bytes are the evidence (jsonb reorders keys and refuses \\u0000).
        json           text        NOT NULL,
        UNIQUE (stream, revision)
      );
      CREATE FUNCTION "${s.name}".events_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        RAISE EXCEPTION 'custodian events are append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
      END $$;
      CREATE TRIGGER events_refuse_update_delete BEFORE UPDATE OR DELETE ON ${s.events}
        FOR EACH ROW EXECUTE FUNCTION "${s.name}".events_refuse_change();
      CREATE TRIGGER events_refuse_truncate BEFORE TRUNCATE ON ${s.events}
        FOR EACH STATEMENT EXECUTE FUNCTION "${s.name}".events_refuse_change();
      CREATE FUNCTION "${s.name}".events_before_insert() RETURNS trigger LANGUAGE plpgsql AS $$
      DECLARE
        last_revision integer;
      BEGIN
        PERFORM pg_advisory_xact_lock(${s.lockKey});
        SELECT max(revision) INTO last_revision FROM ${s.events} WHERE stream = NEW.stream;
        IF NEW.revision <> coalesce(last_revision, -1) + 1 THEN
          RAISE EXCEPTION 'custodian events: stream % revision % does not follow %', NEW.stream, NEW.revision, coalesce(last_revision, -1)
            USING ERRCODE = 'unique_violation';
        END IF;
        NEW.position := nextval('${s.positions}');
        RETURN NEW;
      END $$;
      CREATE TRIGGER events_before_insert BEFORE INSERT ON ${s.events}
        FOR EACH ROW EXECUTE FUNCTION "${s.name}".events_before_insert();
      CREATE FUNCTION "${s.name}".events_notify() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        PERFORM pg_notify('${s.channel}', '');
        RETURN NULL;
      END $$;
      CREATE TRIGGER events_notify AFTER INSERT ON ${s.events}
        FOR EACH STATEMENT EXECUTE FUNCTION "${s.name}".events_notify();
      REVOKE UPDATE, DELETE, TRUNCATE ON ${s.events} FROM PUBLIC;
      CREATE TABLE ${s.checkpoints} (
        subscription_id text PRIMARY KEY,
        position        text NOT NULL,
        updated_at      text NOT NULL
      );
    `,
  },
];

export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version;

/**
 * Creates or upgrades the store's schema in one transaction, serialized across processes by the
 * store's advisory lock. A database written by a newer build is refused. When `writerRole` is
 * given, that role gets exactly what the services need: read and append events, read and write
 * checkpoints — never UPDATE or DELETE of events.
 */
export async function migrate(client: PoolClient, s: StoreSchema, now: () => string, writerRole?: string): Promise<void> {
  if (writerRole !== undefined && !IDENTIFIER.test(writerRole)) throw new InvalidRequestError(`writerRole ${JSON.stringify(writerRole)} is not a plain role name`);
  await client.query('BEGIN');
  try {
    await client.query('SELECT pg_advisory_xact_lock($1)', [s.lockKey.toString()]);
    await client.query(`CREATE SCHEMA IF NOT EXISTS "${s.name}"`);
    await client.query(`CREATE TABLE IF NOT EXISTS ${s.migrations} (version integer PRIMARY KEY, description text NOT NULL, applied_at text NOT NULL)`);
    const { rows } = await client.query<{ version: number }>(`SELECT version FROM ${s.migrations}`);
    const applied = new Set(rows.map((row) => row.version));
    const newest = Math.max(0, ...applied);
    if (newest > SCHEMA_VERSION) {
      throw new EventStoreUnavailableError(`event store schema "${s.name}" is at version ${newest}, newer than this build supports (${SCHEMA_VERSION})`);
    }
    for (const migration of MIGRATIONS) {
      if (applied.has(migration.version)) continue;
      await client.query(migration.sql(s));
      await client.query(`INSERT INTO ${s.migrations} (version, description, applied_at) VALUES ($1, $2, $3)`, [migration.version, migration.description, now()]);
    }
    if (writerRole !== undefined) {
      await client.query(`GRANT USAGE ON SCHEMA "${s.name}" TO "${writerRole}"`);
      await client.query(`GRANT SELECT, INSERT ON ${s.events} TO "${writerRole}"`);
      await client.query(`GRANT USAGE ON SEQUENCE ${s.positions} TO "${writerRole}"`);
      await client.query(`GRANT SELECT ON ${s.migrations} TO "${writerRole}"`);
      await client.query(`GRANT SELECT, INSERT, UPDATE ON ${s.checkpoints} TO "${writerRole}"`);
    }
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
}

/** Checks, without changing anything, that the schema exists at this build's version (for a writer role that may not migrate). */
export async function assertMigrated(client: PoolClient, s: StoreSchema): Promise<void> {
  const exists = await client.query<{ table: string | null }>('SELECT to_regclass($1)::text AS table', [s.migrations]);
  const version = exists.rows[0]?.table ? ((await client.query<{ version: number | null }>(`SELECT max(version) AS version FROM ${s.migrations}`)).rows[0]?.version ?? null) : null;
  if (version === null) throw new EventStoreUnavailableError(`event store schema "${s.name}" does not exist: open the store once with migrate: true as its owner`);
  if (version !== SCHEMA_VERSION) throw new EventStoreUnavailableError(`event store schema "${s.name}" is at version ${version}, this build needs ${SCHEMA_VERSION}`);
}
