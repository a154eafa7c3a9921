import { formatPosition, parsePosition } from '@custodian/event-store';
import { EvidenceError, type EvidenceLogState, type LeafQuery, type LeafRecord, type StoredCheckpoint, type StoredCosignature } from '@custodian/evidence';
import type { MerkleTree } from '@custodian/transparency-log';
import type pg from 'pg';
import { EvidenceLogDatabase, evidenceDatabaseError, type PostgresEvidenceLogConnection } from './evidence-log-database.js';
import { PostgresTreeStorage } from './postgres-tree-storage.js';
import type { EvidenceLogSchema } from './schema.js';

export interface PostgresEvidenceLogStateOptions extends PostgresEvidenceLogConnection {
  /** The log's origin. A schema holding the log of another origin is refused. */
  readonly origin: string;
}

interface LeafRow {
  readonly leaf_index: string;
  readonly position: string;
  readonly event_id: string;
  readonly type: string;
  readonly occurred_at: string;
  readonly subject: string | null;
  readonly connection: string | null;
  readonly session_id: string | null;
  readonly leaf_hash: Buffer;
}

interface CheckpointRow {
  readonly tree_size: string;
  readonly root_hash: Buffer;
  readonly note: string;
  readonly key_ids: string[];
  readonly signed_at: string;
  readonly event_json: string;
  readonly appended: boolean;
  readonly published: boolean;
}

interface CosignatureRow {
  readonly tree_size: string;
  readonly witness: string;
  readonly key_id: string;
  readonly timestamp: string;
  readonly line: string;
}

/** meta key: the leaf index from which leaves are in leaf format 2 (as the SQLite adapter's). */
const LEAF_FORMAT_SWITCH = 'leafFormat2From';

function safeInteger(value: string, what: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n)) throw new EvidenceError('EVIDENCE_LOG_STATE_CORRUPT', `${what} ${value} is not a safe integer`);
  return n;
}

const toLeaf = (row: LeafRow): LeafRecord => ({
  leafIndex: safeInteger(row.leaf_index, 'leaf index'),
  position: parsePosition(row.position),
  eventId: row.event_id,
  type: row.type,
  occurredAt: row.occurred_at,
  subject: row.subject,
  connection: row.connection,
  sessionId: row.session_id,
  leafHash: row.leaf_hash,
});

const toCheckpoint = (row: CheckpointRow): StoredCheckpoint => ({
  treeSize: safeInteger(row.tree_size, 'checkpoint tree size'),
  rootHash: row.root_hash,
  note: row.note,
  keyIds: row.key_ids,
  signedAt: row.signed_at,
  eventJson: row.event_json,
  appended: row.appended,
  published: row.published,
});

// bigint columns come back as strings (pg's default): converted with a safe-integer check.
const LEAF_COLUMNS = 'leaf_index, position, event_id, type, occurred_at, subject, connection, session_id, leaf_hash';
const CHECKPOINT_COLUMNS = 'tree_size, root_hash, note, key_ids, signed_at, event_json, appended, published';

async function insertLeaves(client: pg.PoolClient, s: EvidenceLogSchema, leaves: readonly LeafRecord[]): Promise<void> {
  await client.query(
    `INSERT INTO ${s.leaves} (leaf_index, position, event_id, type, occurred_at, subject, connection, session_id, leaf_hash)
     SELECT leaf_index, position, event_id, type, occurred_at, subject, connection, session_id, leaf_hash
       FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::bytea[])
            WITH ORDINALITY AS l(leaf_index, position, event_id, type, occurred_at, subject, connection, session_id, leaf_hash, ord)
      ORDER BY ord`,
    [
      leaves.map((l) => String(l.leafIndex)),
      leaves.map((l) => formatPosition(l.position)),
      leaves.map((l) => l.eventId),
      leaves.map((l) => l.type),
      leaves.map((l) => l.occurredAt),
      leaves.map((l) => l.subject),
      leaves.map((l) => l.connection),
      leaves.map((l) => l.sessionId),
      leaves.map((l) => Buffer.from(l.leafHash)),
    ],
  );
}

/**
 * EvidenceLogState in PostgreSQL, with the tree (PostgresTreeStorage) in the same schema: the
 * projector writes it and the api reads it (and adds witness cosignatures) from any host, so a
 * distributed deployment needs no shared data directory. Every write is one transaction; an
 * append of leaves records them and grows the tree in the same one. Nothing here blocks the event
 * loop (pg is asynchronous); the schema's triggers keep the log append-only (schema.ts).
 */
export class PostgresEvidenceLogState implements EvidenceLogState {
  readonly origin: string;
  readonly treeStorage: PostgresTreeStorage;
  readonly #db: EvidenceLogDatabase;
  #closed = false;

  private constructor(db: EvidenceLogDatabase, origin: string) {
    this.#db = db;
    this.origin = origin;
    this.treeStorage = new PostgresTreeStorage(db);
  }

  /** The schema's name (for messages and tests). */
  get schema(): string {
    return this.#db.schema.name;
  }

  /** Connects, creates or checks the schema, and claims it for `origin` (or checks that it is this origin's). */
  static async open(options: PostgresEvidenceLogStateOptions): Promise<PostgresEvidenceLogState> {
    const db = await EvidenceLogDatabase.open(options);
    try {
      const s = db.schema;
      await db.write('record the origin', `INSERT INTO ${s.meta} (key, value) VALUES ('origin', $1) ON CONFLICT (key) DO NOTHING`, [options.origin]);
      const stored = (await db.query<{ value: string }>('read the origin', `SELECT value FROM ${s.meta} WHERE key = 'origin'`))[0]?.value;
      if (stored !== options.origin) {
        throw new EvidenceError('EVIDENCE_LOG_STATE_CORRUPT', `PostgreSQL schema "${s.name}" holds the evidence log of origin ${JSON.stringify(stored)}, not ${JSON.stringify(options.origin)}`);
      }
    } catch (error) {
      await db.close();
      throw error;
    }
    return new PostgresEvidenceLogState(db, options.origin);
  }

  async recordLeaves(leaves: readonly LeafRecord[]): Promise<void> {
    this.#assertOpen();
    if (leaves.length === 0) return;
    await this.#db
      .transaction(async (client) => {
        // Under the log's lock, as tree appends: a concurrent writer's leaves are seen, not raced.
        await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [this.#db.schema.lockName]);
        await insertLeaves(client, this.#db.schema, leaves);
      })
      .catch((error: unknown) => {
        // A leaf that is not the next one, or an event recorded twice: refused by the database.
        throw evidenceDatabaseError('PostgreSQL evidence log: record leaves', error);
      });
  }

  /** The leaf records and the tree's nodes in one transaction. */
  async appendLeaves(leaves: readonly LeafRecord[], tree: MerkleTree): Promise<void> {
    this.#assertOpen();
    if (leaves.length === 0) return;
    await this.treeStorage.withStaged(
      (client) => insertLeaves(client, this.#db.schema, leaves),
      () => tree.appendLeafHashes(leaves.map((l) => l.leafHash)),
    );
  }

  async leafFormatSwitch(): Promise<number | undefined> {
    this.#assertOpen();
    const value = (await this.#db.query<{ value: string }>('read the leaf format switch', `SELECT value FROM ${this.#db.schema.meta} WHERE key = $1`, [LEAF_FORMAT_SWITCH]))[0]?.value;
    return value === undefined ? undefined : safeInteger(value, 'leaf format switch');
  }

  async recordLeafFormatSwitch(leafIndex: number): Promise<void> {
    this.#assertOpen();
    await this.#db.write('record the leaf format switch', `INSERT INTO ${this.#db.schema.meta} (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING`, [LEAF_FORMAT_SWITCH, String(leafIndex)]);
    const recorded = await this.leafFormatSwitch();
    if (recorded !== leafIndex) throw new EvidenceError('EVIDENCE_LOG_STATE_CORRUPT', `the log switched to leaf format 2 at leaf ${String(recorded)}, not ${leafIndex}`);
  }

  async leafCount(): Promise<number> {
    this.#assertOpen();
    const rows = await this.#db.query<{ n: string }>('count leaves', `SELECT coalesce(max(leaf_index) + 1, 0)::text AS n FROM ${this.#db.schema.leaves}`);
    return safeInteger(rows[0]?.n ?? '0', 'leaf count');
  }

  async lastLeaf(): Promise<LeafRecord | undefined> {
    this.#assertOpen();
    const rows = await this.#db.query<LeafRow>('read the last leaf', `SELECT ${LEAF_COLUMNS} FROM ${this.#db.schema.leaves} ORDER BY leaf_index DESC LIMIT 1`);
    return rows[0] ? toLeaf(rows[0]) : undefined;
  }

  async leaves(from: number, to: number): Promise<LeafRecord[]> {
    this.#assertOpen();
    const rows = await this.#db.query<LeafRow>('read leaves', `SELECT ${LEAF_COLUMNS} FROM ${this.#db.schema.leaves} WHERE leaf_index >= $1 AND leaf_index < $2 ORDER BY leaf_index`, [from, to]);
    return rows.map(toLeaf);
  }

  async findLeaves(query: LeafQuery): Promise<LeafRecord[]> {
    this.#assertOpen();
    if (query.types !== undefined && query.types.length === 0) return [];
    const s = this.#db.schema;
    const where: string[] = [];
    const values: unknown[] = [];
    const param = (value: unknown): string => {
      values.push(value);
      return `$${values.length}`;
    };
    if (query.from !== undefined) where.push(`occurred_at >= ${param(query.from)}`);
    if (query.to !== undefined) where.push(`occurred_at < ${param(query.to)}`);
    if (query.subject !== undefined) where.push(`subject = ${param(query.subject)}`);
    // Events of a session carry its connection only in session.opened: select the whole session.
    if (query.connection !== undefined) {
      const connection = param(query.connection);
      where.push(`(connection = ${connection} OR session_id IN (SELECT session_id FROM ${s.leaves} WHERE connection = ${connection} AND session_id IS NOT NULL))`);
    }
    if (query.belowIndex !== undefined) where.push(`leaf_index < ${param(query.belowIndex)}`);
    if (query.fromIndex !== undefined) where.push(`leaf_index >= ${param(query.fromIndex)}`);
    if (query.types !== undefined) where.push(`type = ANY(${param([...query.types])}::text[])`);
    const sql = `SELECT ${LEAF_COLUMNS} FROM ${s.leaves}${where.length > 0 ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY leaf_index${query.descending === true ? ' DESC' : ''}${
      query.limit !== undefined ? ` LIMIT ${param(query.limit)}` : ''
    }`;
    return (await this.#db.query<LeafRow>('find leaves', sql, values)).map(toLeaf);
  }

  async saveCheckpoint(c: StoredCheckpoint): Promise<void> {
    this.#assertOpen();
    await this.#db.write(
      'save a checkpoint',
      `INSERT INTO ${this.#db.schema.checkpoints} (tree_size, root_hash, note, key_ids, signed_at, event_json, appended, published) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
      [c.treeSize, Buffer.from(c.rootHash), c.note, [...c.keyIds], c.signedAt, c.eventJson, c.appended, c.published],
    );
  }

  async markCheckpoint(treeSize: number, flags: { appended?: boolean; published?: boolean }): Promise<void> {
    this.#assertOpen();
    if (!flags.appended && !flags.published) return;
    await this.#db.write('mark a checkpoint delivered', `UPDATE ${this.#db.schema.checkpoints} SET appended = appended OR $2, published = published OR $3 WHERE tree_size = $1`, [
      treeSize,
      flags.appended === true,
      flags.published === true,
    ]);
  }

  async checkpoints(): Promise<StoredCheckpoint[]> {
    this.#assertOpen();
    return (await this.#db.query<CheckpointRow>('read checkpoints', `SELECT ${CHECKPOINT_COLUMNS} FROM ${this.#db.schema.checkpoints} ORDER BY tree_size`)).map(toCheckpoint);
  }

  async lastCheckpoint(): Promise<StoredCheckpoint | undefined> {
    this.#assertOpen();
    const rows = await this.#db.query<CheckpointRow>('read the last checkpoint', `SELECT ${CHECKPOINT_COLUMNS} FROM ${this.#db.schema.checkpoints} ORDER BY tree_size DESC LIMIT 1`);
    return rows[0] ? toCheckpoint(rows[0]) : undefined;
  }

  async undeliveredCheckpoints(options: { unpublished: boolean }): Promise<StoredCheckpoint[]> {
    this.#assertOpen();
    const where = options.unpublished ? 'NOT appended OR NOT published' : 'NOT appended';
    return (await this.#db.query<CheckpointRow>('read undelivered checkpoints', `SELECT ${CHECKPOINT_COLUMNS} FROM ${this.#db.schema.checkpoints} WHERE ${where} ORDER BY tree_size`)).map(
      toCheckpoint,
    );
  }

  async addCosignature(c: StoredCosignature): Promise<void> {
    this.#assertOpen();
    await this.#db.write(
      'add a cosignature',
      `INSERT INTO ${this.#db.schema.cosignatures} (tree_size, witness, key_id, timestamp, line) VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (tree_size, witness, key_id) DO UPDATE SET timestamp = excluded.timestamp, line = excluded.line`,
      [c.treeSize, c.witness, c.keyId, c.timestamp, c.line],
    );
  }

  async cosignatures(treeSize?: number): Promise<StoredCosignature[]> {
    this.#assertOpen();
    const s = this.#db.schema;
    const columns = 'tree_size, witness, key_id, timestamp, line';
    const rows =
      treeSize === undefined
        ? await this.#db.query<CosignatureRow>('read cosignatures', `SELECT ${columns} FROM ${s.cosignatures} ORDER BY tree_size, witness`)
        : await this.#db.query<CosignatureRow>('read cosignatures', `SELECT ${columns} FROM ${s.cosignatures} WHERE tree_size = $1 ORDER BY witness`, [treeSize]);
    return rows.map((r) => ({
      treeSize: safeInteger(r.tree_size, 'cosigned tree size'),
      witness: r.witness,
      keyId: r.key_id,
      timestamp: safeInteger(r.timestamp, 'cosignature timestamp'),
      line: r.line,
    }));
  }

  async recordKey(vkey: string): Promise<void> {
    this.#assertOpen();
    await this.#db.write('record a key', `INSERT INTO ${this.#db.schema.keys} (vkey, recorded_at) VALUES ($1, $2) ON CONFLICT (vkey) DO NOTHING`, [vkey, new Date().toISOString()]);
  }

  async keys(): Promise<string[]> {
    this.#assertOpen();
    return (await this.#db.query<{ vkey: string }>('read keys', `SELECT vkey FROM ${this.#db.schema.keys} ORDER BY recorded_at, vkey`)).map((r) => r.vkey);
  }

  /** Answers every call made before, then closes the connections. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.treeStorage.close();
    await this.#db.close();
  }

  #assertOpen(): void {
    if (this.#closed) throw new EvidenceError('EVIDENCE_LOG_CLOSED', 'the evidence log state is closed');
  }
}
