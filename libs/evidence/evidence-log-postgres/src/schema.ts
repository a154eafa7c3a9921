import { EvidenceError } from '@custodian/evidence';
import type { PoolClient } from 'pg';

/**
 * Where the evidence log lives. Every name is quoted from a validated identifier, so a schema name
 * from configuration never reaches SQL as free text.
 */
export interface EvidenceLogSchema {
  /** The PostgreSQL schema holding the log's tables (default `custodian_evidence`). */
  readonly name: string;
  readonly migrations: string;
  readonly meta: string;
  readonly nodes: string;
  readonly leaves: string;
  readonly checkpoints: string;
  readonly cosignatures: string;
  readonly keys: string;
  /** Text hashed (hashtext) into the transaction-level advisory lock that serializes migrations and tree appends. */
  readonly lockName: string;
}

export const IDENTIFIER = /^[a-z_][a-z0-9_]{0,47}$/;

export function evidenceLogSchema(name = 'custodian_evidence'): EvidenceLogSchema {
  if (!IDENTIFIER.test(name)) throw new EvidenceError('EVIDENCE_LOG_STATE_CORRUPT', `PostgreSQL evidence log schema ${JSON.stringify(name)}: use lower-case letters, digits and _ (at most 48)`);
  const q = (table: string): string => `"${name}"."${table}"`;
  return {
    name,
    migrations: q('schema_migrations'),
    meta: q('meta'),
    nodes: q('tlog_nodes'),
    leaves: q('leaves'),
    checkpoints: q('checkpoints'),
    cosignatures: q('cosignatures'),
    keys: q('keys'),
    lockName: `custodian-evidence-log:${name}`,
  };
}

interface Migration {
  readonly version: number;
  readonly description: string;
  readonly sql: (s: EvidenceLogSchema) => string;
}

/**
 * The database keeps the log append-only and gap-free, whoever writes to it (as the SQLite
 * adapter's triggers do):
 * - tree nodes: never updated, deleted or truncated; a node is the next one of its level, and an
 *   interior node is added only once both its children exist;
 * - leaf records: never updated, deleted or truncated; each is the next index, each event once;
 * - checkpoints: never deleted; of a stored checkpoint only its delivery flags change, false → true;
 * - meta (origin, leaf format switch) and keys: written once.
 * Only the owner can drop a trigger; the services' role (`writerRole`) cannot, and signed
 * checkpoints detect whatever else is changed under them.
 */
const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'evidence log: tree nodes, leaf records, checkpoints, cosignatures, keys (append-only)',
    sql: (s) => `
      CREATE FUNCTION "${s.name}".refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        RAISE EXCEPTION 'custodian evidence log is append-only: % on % refused', TG_OP, TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
      END $$;

      CREATE TABLE ${s.meta} (key text PRIMARY KEY, value text NOT NULL);
      CREATE TRIGGER meta_refuse_change BEFORE UPDATE OR DELETE ON ${s.meta} FOR EACH ROW EXECUTE FUNCTION "${s.name}".refuse_change();
      CREATE TRIGGER meta_refuse_truncate BEFORE TRUNCATE ON ${s.meta} FOR EACH STATEMENT EXECUTE FUNCTION "${s.name}".refuse_change();

      CREATE TABLE ${s.nodes} (
        level smallint NOT NULL CHECK (level >= 0 AND level < 64),
        idx   bigint   NOT NULL CHECK (idx >= 0),
        hash  bytea    NOT NULL CHECK (octet_length(hash) = 32),
        PRIMARY KEY (level, idx)
      );
      CREATE FUNCTION "${s.name}".nodes_before_insert() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF NEW.idx <> coalesce((SELECT max(idx) FROM ${s.nodes} WHERE level = NEW.level), -1) + 1 THEN
          RAISE EXCEPTION 'custodian transparency log: node (%, %) is not the next one of its level', NEW.level, NEW.idx USING ERRCODE = 'check_violation';
        END IF;
        IF NEW.level > 0 AND (SELECT count(*) FROM ${s.nodes} WHERE level = NEW.level - 1 AND idx IN (2 * NEW.idx, 2 * NEW.idx + 1)) <> 2 THEN
          RAISE EXCEPTION 'custodian transparency log: interior node (%, %) needs both children', NEW.level, NEW.idx USING ERRCODE = 'check_violation';
        END IF;
        RETURN NEW;
      END $$;
      CREATE TRIGGER nodes_before_insert BEFORE INSERT ON ${s.nodes} FOR EACH ROW EXECUTE FUNCTION "${s.name}".nodes_before_insert();
      CREATE TRIGGER nodes_refuse_change BEFORE UPDATE OR DELETE ON ${s.nodes} FOR EACH ROW EXECUTE FUNCTION "${s.name}".refuse_change();
      CREATE TRIGGER nodes_refuse_truncate BEFORE TRUNCATE ON ${s.nodes} FOR EACH STATEMENT EXECUTE FUNCTION "${s.name}".refuse_change();

      -- COLLATE "C": occurred_at is compared as text (RFC 3339, UTC, microseconds), byte by byte.
      CREATE TABLE ${s.leaves} (
        leaf_index  bigint PRIMARY KEY CHECK (leaf_index >= 0),
        position    text   NOT NULL,
        event_id    text   NOT NULL UNIQUE,
        type        text   NOT NULL,
        occurred_at text   COLLATE "C" NOT NULL,
        subject     text,
        connection  text,
        session_id  text,
        leaf_hash   bytea  NOT NULL CHECK (octet_length(leaf_hash) = 32)
      );
      CREATE INDEX leaves_time ON ${s.leaves} (occurred_at);
      CREATE INDEX leaves_session ON ${s.leaves} (session_id);
      CREATE INDEX leaves_connection ON ${s.leaves} (connection);
      CREATE INDEX leaves_subject ON ${s.leaves} (subject);
      CREATE INDEX leaves_type ON ${s.leaves} (type, leaf_index);
      CREATE FUNCTION "${s.name}".leaves_before_insert() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF NEW.leaf_index <> coalesce((SELECT max(leaf_index) FROM ${s.leaves}), -1) + 1 THEN
          RAISE EXCEPTION 'evidence leaves: leaf % must be the next one', NEW.leaf_index USING ERRCODE = 'check_violation';
        END IF;
        RETURN NEW;
      END $$;
      CREATE TRIGGER leaves_before_insert BEFORE INSERT ON ${s.leaves} FOR EACH ROW EXECUTE FUNCTION "${s.name}".leaves_before_insert();
      CREATE TRIGGER leaves_refuse_change BEFORE UPDATE OR DELETE ON ${s.leaves} FOR EACH ROW EXECUTE FUNCTION "${s.name}".refuse_change();
      CREATE TRIGGER leaves_refuse_truncate BEFORE TRUNCATE ON ${s.leaves} FOR EACH STATEMENT EXECUTE FUNCTION "${s.name}".refuse_change();

      CREATE TABLE ${s.checkpoints} (
        tree_size  bigint  PRIMARY KEY CHECK (tree_size >= 0),
        root_hash  bytea   NOT NULL CHECK (octet_length(root_hash) = 32),
        note       text    NOT NULL,
        key_ids    text[]  NOT NULL,
        signed_at  text    NOT NULL,
        event_json text    NOT NULL,
        appended   boolean NOT NULL DEFAULT false,
        published  boolean NOT NULL DEFAULT false
      );
      CREATE FUNCTION "${s.name}".checkpoints_before_update() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF (NEW.tree_size, NEW.root_hash, NEW.note, NEW.key_ids, NEW.signed_at, NEW.event_json) IS DISTINCT FROM
           (OLD.tree_size, OLD.root_hash, OLD.note, OLD.key_ids, OLD.signed_at, OLD.event_json)
           OR (OLD.appended AND NOT NEW.appended) OR (OLD.published AND NOT NEW.published) THEN
          RAISE EXCEPTION 'custodian evidence log is append-only: a checkpoint changes only its delivery flags, false to true' USING ERRCODE = 'insufficient_privilege';
        END IF;
        RETURN NEW;
      END $$;
      CREATE TRIGGER checkpoints_before_update BEFORE UPDATE ON ${s.checkpoints} FOR EACH ROW EXECUTE FUNCTION "${s.name}".checkpoints_before_update();
      CREATE TRIGGER checkpoints_refuse_delete BEFORE DELETE ON ${s.checkpoints} FOR EACH ROW EXECUTE FUNCTION "${s.name}".refuse_change();
      CREATE TRIGGER checkpoints_refuse_truncate BEFORE TRUNCATE ON ${s.checkpoints} FOR EACH STATEMENT EXECUTE FUNCTION "${s.name}".refuse_change();

      -- A witness may cosign a size again (a later timestamp): the latest line is kept.
      CREATE TABLE ${s.cosignatures} (
        tree_size bigint NOT NULL,
        witness   text   COLLATE "C" NOT NULL,
        key_id    text   NOT NULL,
        timestamp bigint NOT NULL,
        line      text   NOT NULL,
        PRIMARY KEY (tree_size, witness, key_id)
      );

      CREATE TABLE ${s.keys} (vkey text COLLATE "C" PRIMARY KEY, recorded_at text NOT NULL);
      CREATE TRIGGER keys_refuse_change BEFORE UPDATE OR DELETE ON ${s.keys} FOR EACH ROW EXECUTE FUNCTION "${s.name}".refuse_change();
      CREATE TRIGGER keys_refuse_truncate BEFORE TRUNCATE ON ${s.keys} FOR EACH STATEMENT EXECUTE FUNCTION "${s.name}".refuse_change();

      REVOKE UPDATE, DELETE, TRUNCATE ON ${s.meta}, ${s.nodes}, ${s.leaves}, ${s.keys} FROM PUBLIC;
    `,
  },
];

export const EVIDENCE_LOG_SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version;

/**
 * Creates or upgrades the log's schema in one transaction, serialized across processes by the
 * log's advisory lock. A schema written by a newer build is refused. With `writerRole`, that role
 * gets exactly what the projector and the api need: read everything, insert nodes, leaves,
 * checkpoints, keys and meta, set a checkpoint's delivery flags, write cosignatures.
 */
export async function migrateEvidenceLog(client: PoolClient, s: EvidenceLogSchema, now: () => string, writerRole?: string): Promise<void> {
  if (writerRole !== undefined && !IDENTIFIER.test(writerRole)) throw new EvidenceError('EVIDENCE_LOG_STATE_CORRUPT', `writerRole ${JSON.stringify(writerRole)} is not a plain role name`);
  await client.query('BEGIN');
  try {
    await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [s.lockName]);
    await client.query(`CREATE SCHEMA IF NOT EXISTS "${s.name}"`);
    await client.query(`CREATE TABLE IF NOT EXISTS ${s.migrations} (version integer PRIMARY KEY, description text NOT NULL, applied_at text NOT NULL)`);
    const { rows } = await client.query<{ version: number }>(`SELECT version FROM ${s.migrations}`);
    const applied = new Set(rows.map((row) => row.version));
    const newest = Math.max(0, ...applied);
    if (newest > EVIDENCE_LOG_SCHEMA_VERSION) {
      throw new EvidenceError('EVIDENCE_LOG_STATE_CORRUPT', `evidence log schema "${s.name}" is at version ${newest}, newer than this build supports (${EVIDENCE_LOG_SCHEMA_VERSION})`);
    }
    for (const migration of MIGRATIONS) {
      if (applied.has(migration.version)) continue;
      await client.query(migration.sql(s));
      await client.query(`INSERT INTO ${s.migrations} (version, description, applied_at) VALUES ($1, $2, $3)`, [migration.version, migration.description, now()]);
    }
    if (writerRole !== undefined) {
      await client.query(`GRANT USAGE ON SCHEMA "${s.name}" TO "${writerRole}"`);
      await client.query(`GRANT SELECT ON ${s.migrations} TO "${writerRole}"`);
      await client.query(`GRANT SELECT, INSERT ON ${s.meta}, ${s.nodes}, ${s.leaves}, ${s.keys} TO "${writerRole}"`);
      await client.query(`GRANT SELECT, INSERT ON ${s.checkpoints} TO "${writerRole}"`);
      await client.query(`GRANT UPDATE (appended, published) ON ${s.checkpoints} TO "${writerRole}"`);
      await client.query(`GRANT SELECT, INSERT, UPDATE ON ${s.cosignatures} TO "${writerRole}"`);
    }
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
}

/** Checks, without changing anything, that the schema exists at this build's version (a role that may not migrate). */
export async function assertEvidenceLogMigrated(client: PoolClient, s: EvidenceLogSchema): Promise<void> {
  const exists = await client.query<{ table: string | null }>('SELECT to_regclass($1)::text AS table', [s.migrations]);
  const version = exists.rows[0]?.table ? ((await client.query<{ version: number | null }>(`SELECT max(version) AS version FROM ${s.migrations}`)).rows[0]?.version ?? null) : null;
  if (version === null) throw new EvidenceError('EVIDENCE_LOG_UNAVAILABLE', `evidence log schema "${s.name}" does not exist: open the log once with migrate: true as its owner`);
  if (version !== EVIDENCE_LOG_SCHEMA_VERSION)
    throw new EvidenceError('EVIDENCE_LOG_STATE_CORRUPT', `evidence log schema "${s.name}" is at version ${version}, this build needs ${EVIDENCE_LOG_SCHEMA_VERSION}`);
}
