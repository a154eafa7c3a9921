import { formatPosition, parsePosition } from '@custodian/event-store';
import { TreeClosedError, TreeSizeConflictError, TreeStorageCorruptError, checkTreeAppend, type Hash, type MerkleTree, type NodePosition, type TreeAppend, type TreeStorage } from '@custodian/transparency-log';
import { SqliteTreeStorage, type SqliteTreeStorageSettings } from '@custodian/transparency-log/sqlite';
import BetterSqlite3, { type Database } from 'better-sqlite3';
import { EvidenceError } from '../errors.js';
import type { EvidenceLogState, LeafQuery, LeafRecord, StoredCheckpoint, StoredCosignature } from '../evidence-log-state.js';
import { EvidenceLogWriter, EvidenceWriteCheckError } from './evidence-log-writer.js';
import type { WriteStep } from './evidence-log-writer.worker.js';

export interface SqliteEvidenceLogStateOptions {
  /** Database file (the tree's tlog_* tables and the evidence_* tables share it); created when missing. */
  readonly path: string;
  /** The log's origin. A database created for another origin is refused. */
  readonly origin: string;
}

interface LeafRow {
  readonly leaf_index: number;
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
  readonly tree_size: number;
  readonly root_hash: Buffer;
  readonly note: string;
  readonly key_ids: string;
  readonly signed_at: string;
  readonly event_json: string;
  readonly appended: number;
  readonly published: number;
}

// Leaves and checkpoints are append-only in the database itself (as the tree nodes are); only the
// delivery flags of a checkpoint may change, from 0 to 1.
const SCHEMA = `
  CREATE TABLE IF NOT EXISTS evidence_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
  CREATE TABLE IF NOT EXISTS evidence_leaves (
    leaf_index  INTEGER PRIMARY KEY CHECK (leaf_index >= 0),
    position    TEXT NOT NULL,
    event_id    TEXT NOT NULL UNIQUE,
    type        TEXT NOT NULL,
    occurred_at TEXT NOT NULL,
    subject     TEXT,
    connection  TEXT,
    session_id  TEXT,
    leaf_hash   BLOB NOT NULL CHECK (length(leaf_hash) = 32)
  );
  CREATE INDEX IF NOT EXISTS evidence_leaves_time ON evidence_leaves (occurred_at);
  CREATE INDEX IF NOT EXISTS evidence_leaves_session ON evidence_leaves (session_id);
  CREATE INDEX IF NOT EXISTS evidence_leaves_connection ON evidence_leaves (connection);
  CREATE INDEX IF NOT EXISTS evidence_leaves_subject ON evidence_leaves (subject);
  CREATE TRIGGER IF NOT EXISTS evidence_leaves_append_only_u BEFORE UPDATE ON evidence_leaves BEGIN SELECT RAISE(ABORT, 'evidence leaves are append-only'); END;
  CREATE TRIGGER IF NOT EXISTS evidence_leaves_append_only_d BEFORE DELETE ON evidence_leaves BEGIN SELECT RAISE(ABORT, 'evidence leaves are append-only'); END;
  CREATE TRIGGER IF NOT EXISTS evidence_leaves_next BEFORE INSERT ON evidence_leaves BEGIN
    SELECT RAISE(ABORT, 'evidence leaves: a leaf must be the next one')
     WHERE NEW.leaf_index <> COALESCE((SELECT MAX(leaf_index) FROM evidence_leaves), -1) + 1;
  END;
  CREATE TABLE IF NOT EXISTS evidence_checkpoints (
    tree_size  INTEGER PRIMARY KEY CHECK (tree_size >= 0),
    root_hash  BLOB NOT NULL CHECK (length(root_hash) = 32),
    note       TEXT NOT NULL,
    key_ids    TEXT NOT NULL,
    signed_at  TEXT NOT NULL,
    event_json TEXT NOT NULL,
    appended   INTEGER NOT NULL DEFAULT 0,
    published  INTEGER NOT NULL DEFAULT 0
  );
  CREATE TRIGGER IF NOT EXISTS evidence_checkpoints_d BEFORE DELETE ON evidence_checkpoints BEGIN SELECT RAISE(ABORT, 'evidence checkpoints are append-only'); END;
  CREATE TRIGGER IF NOT EXISTS evidence_checkpoints_u BEFORE UPDATE OF tree_size, root_hash, note, key_ids, signed_at, event_json ON evidence_checkpoints
  BEGIN SELECT RAISE(ABORT, 'evidence checkpoints are append-only'); END;
  CREATE TABLE IF NOT EXISTS evidence_cosignatures (
    tree_size   INTEGER NOT NULL,
    witness     TEXT NOT NULL,
    key_id      TEXT NOT NULL,
    timestamp   INTEGER NOT NULL,
    line        TEXT NOT NULL,
    PRIMARY KEY (tree_size, witness, key_id)
  );
  CREATE TABLE IF NOT EXISTS evidence_keys (vkey TEXT PRIMARY KEY, recorded_at TEXT NOT NULL);
`;

const toLeaf = (row: LeafRow): LeafRecord => ({
  leafIndex: row.leaf_index,
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
  treeSize: row.tree_size,
  rootHash: row.root_hash,
  note: row.note,
  keyIds: JSON.parse(row.key_ids) as string[],
  signedAt: row.signed_at,
  eventJson: row.event_json,
  appended: row.appended === 1,
  published: row.published === 1,
});

const INSERT_LEAF = 'INSERT INTO evidence_leaves (leaf_index, position, event_id, type, occurred_at, subject, connection, session_id, leaf_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)';
const INSERT_NODE = 'INSERT INTO tlog_nodes (level, idx, hash) VALUES (?, ?, ?)';
const TREE_SIZE = 'SELECT COALESCE(MAX(idx) + 1, 0) AS size FROM tlog_nodes WHERE level = 0';

function leafStep(leaves: readonly LeafRecord[]): WriteStep {
  return { kind: 'run', sql: INSERT_LEAF, rows: leaves.map((l) => [l.leafIndex, formatPosition(l.position), l.eventId, l.type, l.occurredAt, l.subject, l.connection, l.sessionId, l.leafHash]) };
}

/**
 * The tree's storage as the projection uses it: reads and the size on this thread's connection
 * (SqliteTreeStorage), appends in the evidence log's writer thread, in one transaction that
 * checks the stored size again under the write lock.
 */
export class WriterTreeStorage implements TreeStorage {
  readonly path: string;
  readonly #reader: SqliteTreeStorage;
  readonly #writer: EvidenceLogWriter;
  #closed = false;
  /** Steps the next append commits in its own transaction, before the tree's (see withSteps). */
  #staged: WriteStep[] | undefined;

  constructor(reader: SqliteTreeStorage, writer: EvidenceLogWriter) {
    this.#reader = reader;
    this.#writer = writer;
    this.path = reader.path;
  }

  size(): Promise<number> {
    return this.#reader.size();
  }

  async append(batch: TreeAppend): Promise<void> {
    if (this.#closed) throw new TreeClosedError();
    // The shape checks here (same order as SqliteTreeStorage: size first); the size again in the writer's transaction.
    checkTreeAppend(batch, await this.#reader.size());
    const rows: (readonly [number, number, Uint8Array])[] = [];
    for (const [i, hash] of batch.leafHashes.entries()) rows.push([0, batch.fromSize + i, hash]);
    for (const node of batch.nodes) rows.push([node.level, node.index, node.hash]);
    const staged = this.#staged ?? [];
    this.#staged = undefined;
    try {
      await this.#writer.write([
        ...staged,
        { kind: 'check', sql: TREE_SIZE, expect: batch.fromSize, label: 'tree size' },
        { kind: 'run', sql: INSERT_NODE, rows },
      ]);
    } catch (error) {
      if (error instanceof EvidenceWriteCheckError) throw new TreeSizeConflictError(batch.fromSize, error.actual);
      throw new TreeStorageCorruptError(`append to ${this.path} refused: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
    }
  }

  readNodes(positions: readonly NodePosition[]): Promise<Hash[]> {
    return this.#reader.readNodes(positions);
  }

  /**
   * Runs `append` (a tree append on this storage) with `steps` committed in the same transaction
   * as the tree's nodes: both or neither, one fsync. The caller serializes its appends.
   */
  async withSteps<T>(steps: readonly WriteStep[], append: () => Promise<T>): Promise<T> {
    if (this.#staged !== undefined) throw new TreeStorageCorruptError(`${this.path}: an append with staged records is already in flight`);
    this.#staged = [...steps];
    try {
      return await append();
    } finally {
      // Not consumed when the tree refused the append before storing it.
      this.#staged = undefined;
    }
  }

  /** The durability settings of the reading connection (the writer's: SqliteEvidenceLogState.writerSettings()). */
  settings(): SqliteTreeStorageSettings {
    return this.#reader.settings();
  }

  async close(): Promise<void> {
    this.#closed = true;
    await this.#reader.close();
  }
}

/**
 * EvidenceLogState in one SQLite file together with the tree. Reads run on this thread's
 * connections; every write (leaves, tree nodes, checkpoints, cosignatures, keys) runs in a writer
 * thread (evidence-log-writer.worker.ts, synchronous=FULL) started at the first write, so that a
 * projector's commits never block the event loop it shares with a gateway.
 */
/** evidence_meta key: the leaf index from which leaves are in leaf format 2. */
const LEAF_FORMAT_SWITCH = 'leafFormat2From';

export class SqliteEvidenceLogState implements EvidenceLogState {
  readonly origin: string;
  readonly path: string;
  readonly treeStorage: WriterTreeStorage;
  private readonly db: Database;
  private readonly writer: EvidenceLogWriter;
  private closed = false;

  private constructor(db: Database, tree: SqliteTreeStorage, options: SqliteEvidenceLogStateOptions) {
    this.db = db;
    this.writer = new EvidenceLogWriter(options.path);
    this.treeStorage = new WriterTreeStorage(tree, this.writer);
    this.origin = options.origin;
    this.path = options.path;
  }

  /** Whether a write started the writer thread (reads alone never do). */
  get writerStarted(): boolean {
    return this.writer.started;
  }

  /** The writer thread's connection settings (starts the thread); synchronous 2 = FULL. */
  writerSettings(): Promise<{ readonly journalMode: string; readonly synchronous: number }> {
    return this.writer.settings();
  }

  static async open(options: SqliteEvidenceLogStateOptions): Promise<SqliteEvidenceLogState> {
    // The tree storage creates the file and its tlog_* schema (WAL, synchronous=FULL).
    const tree = await SqliteTreeStorage.open({ path: options.path });
    const db = new BetterSqlite3(options.path);
    try {
      db.pragma('busy_timeout = 5000');
      db.pragma('synchronous = FULL');
      db.exec(SCHEMA);
      db.prepare('INSERT OR IGNORE INTO evidence_meta (key, value) VALUES (?, ?)').run('origin', options.origin);
      const stored = db.prepare<[], { value: string }>("SELECT value FROM evidence_meta WHERE key = 'origin'").get()?.value;
      if (stored !== undefined && stored !== options.origin) {
        throw new EvidenceError('EVIDENCE_LOG_STATE_CORRUPT', `${options.path} holds the evidence log of origin ${JSON.stringify(stored)}, not ${JSON.stringify(options.origin)}`);
      }
    } catch (error) {
      db.close();
      await tree.close();
      throw error;
    }
    return new SqliteEvidenceLogState(db, tree, options);
  }

  async recordLeaves(leaves: readonly LeafRecord[]): Promise<void> {
    this.assertOpen();
    if (leaves.length === 0) return;
    await this.writer.write([leafStep(leaves)]);
  }

  /** The leaf records and the tree's nodes in one transaction of the writer thread (one fsync). */
  async appendLeaves(leaves: readonly LeafRecord[], tree: MerkleTree): Promise<void> {
    this.assertOpen();
    if (leaves.length === 0) return;
    await this.treeStorage.withSteps([leafStep(leaves)], () => tree.appendLeafHashes(leaves.map((l) => l.leafHash)));
  }

  async leafFormatSwitch(): Promise<number | undefined> {
    this.assertOpen();
    const value = this.db.prepare<[], { value: string }>(`SELECT value FROM evidence_meta WHERE key = '${LEAF_FORMAT_SWITCH}'`).get()?.value;
    return value === undefined ? undefined : Number(value);
  }

  async recordLeafFormatSwitch(leafIndex: number): Promise<void> {
    this.assertOpen();
    await this.writer.write([{ kind: 'run', sql: 'INSERT OR IGNORE INTO evidence_meta (key, value) VALUES (?, ?)', rows: [[LEAF_FORMAT_SWITCH, String(leafIndex)]] }]);
    const recorded = await this.leafFormatSwitch();
    if (recorded !== leafIndex) throw new EvidenceError('EVIDENCE_LOG_STATE_CORRUPT', `the log switched to leaf format 2 at leaf ${String(recorded)}, not ${leafIndex}`);
  }

  async leafCount(): Promise<number> {
    this.assertOpen();
    return this.db.prepare<[], { n: number }>('SELECT COALESCE(MAX(leaf_index) + 1, 0) AS n FROM evidence_leaves').get()?.n ?? 0;
  }

  async lastLeaf(): Promise<LeafRecord | undefined> {
    this.assertOpen();
    const row = this.db.prepare<[], LeafRow>('SELECT * FROM evidence_leaves ORDER BY leaf_index DESC LIMIT 1').get();
    return row ? toLeaf(row) : undefined;
  }

  async leaves(from: number, to: number): Promise<LeafRecord[]> {
    this.assertOpen();
    return this.db.prepare<[number, number], LeafRow>('SELECT * FROM evidence_leaves WHERE leaf_index >= ? AND leaf_index < ? ORDER BY leaf_index').all(from, to).map(toLeaf);
  }

  async findLeaves(query: LeafQuery): Promise<LeafRecord[]> {
    this.assertOpen();
    const where: string[] = [];
    const params: (string | number)[] = [];
    const add = (clause: string, ...values: (string | number)[]): void => {
      where.push(clause);
      params.push(...values);
    };
    if (query.from !== undefined) add('occurred_at >= ?', query.from);
    if (query.to !== undefined) add('occurred_at < ?', query.to);
    if (query.subject !== undefined) add('subject = ?', query.subject);
    // Events of a session carry its connection only in session.opened: select the whole session.
    if (query.connection !== undefined) add('(connection = ? OR session_id IN (SELECT session_id FROM evidence_leaves WHERE connection = ? AND session_id IS NOT NULL))', query.connection, query.connection);
    if (query.belowIndex !== undefined) add('leaf_index < ?', query.belowIndex);
    if (query.fromIndex !== undefined) add('leaf_index >= ?', query.fromIndex);
    if (query.types !== undefined) {
      if (query.types.length === 0) return [];
      add(`type IN (${query.types.map(() => '?').join(', ')})`, ...query.types);
    }
    const sql = `SELECT * FROM evidence_leaves ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY leaf_index${query.descending === true ? ' DESC' : ''}${query.limit !== undefined ? ' LIMIT ?' : ''}`;
    if (query.limit !== undefined) params.push(query.limit);
    return this.db.prepare<(string | number)[], LeafRow>(sql).all(...params).map(toLeaf);
  }

  async saveCheckpoint(c: StoredCheckpoint): Promise<void> {
    this.assertOpen();
    await this.writer.write([
      {
        kind: 'run',
        sql: 'INSERT INTO evidence_checkpoints (tree_size, root_hash, note, key_ids, signed_at, event_json, appended, published) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
        rows: [[c.treeSize, c.rootHash, c.note, JSON.stringify(c.keyIds), c.signedAt, c.eventJson, c.appended ? 1 : 0, c.published ? 1 : 0]],
      },
    ]);
  }

  async markCheckpoint(treeSize: number, flags: { appended?: boolean; published?: boolean }): Promise<void> {
    this.assertOpen();
    const steps = [
      ...(flags.appended ? [{ kind: 'run' as const, sql: 'UPDATE evidence_checkpoints SET appended = 1 WHERE tree_size = ?', rows: [[treeSize]] }] : []),
      ...(flags.published ? [{ kind: 'run' as const, sql: 'UPDATE evidence_checkpoints SET published = 1 WHERE tree_size = ?', rows: [[treeSize]] }] : []),
    ];
    if (steps.length > 0) await this.writer.write(steps);
  }

  async checkpoints(): Promise<StoredCheckpoint[]> {
    this.assertOpen();
    return this.db.prepare<[], CheckpointRow>('SELECT * FROM evidence_checkpoints ORDER BY tree_size').all().map(toCheckpoint);
  }

  async lastCheckpoint(): Promise<StoredCheckpoint | undefined> {
    this.assertOpen();
    const row = this.db.prepare<[], CheckpointRow>('SELECT * FROM evidence_checkpoints ORDER BY tree_size DESC LIMIT 1').get();
    return row ? toCheckpoint(row) : undefined;
  }

  async undeliveredCheckpoints(options: { unpublished: boolean }): Promise<StoredCheckpoint[]> {
    this.assertOpen();
    const where = options.unpublished ? 'appended = 0 OR published = 0' : 'appended = 0';
    return this.db.prepare<[], CheckpointRow>(`SELECT * FROM evidence_checkpoints WHERE ${where} ORDER BY tree_size`).all().map(toCheckpoint);
  }

  async addCosignature(c: StoredCosignature): Promise<void> {
    this.assertOpen();
    await this.writer.write([
      { kind: 'run', sql: 'INSERT OR REPLACE INTO evidence_cosignatures (tree_size, witness, key_id, timestamp, line) VALUES (?, ?, ?, ?, ?)', rows: [[c.treeSize, c.witness, c.keyId, c.timestamp, c.line]] },
    ]);
  }

  async cosignatures(treeSize?: number): Promise<StoredCosignature[]> {
    this.assertOpen();
    const rows =
      treeSize === undefined
        ? this.db.prepare<[], { tree_size: number; witness: string; key_id: string; timestamp: number; line: string }>('SELECT * FROM evidence_cosignatures ORDER BY tree_size, witness').all()
        : this.db
            .prepare<[number], { tree_size: number; witness: string; key_id: string; timestamp: number; line: string }>('SELECT * FROM evidence_cosignatures WHERE tree_size = ? ORDER BY witness')
            .all(treeSize);
    return rows.map((r) => ({ treeSize: r.tree_size, witness: r.witness, keyId: r.key_id, timestamp: r.timestamp, line: r.line }));
  }

  async recordKey(vkey: string): Promise<void> {
    this.assertOpen();
    await this.writer.write([{ kind: 'run', sql: 'INSERT OR IGNORE INTO evidence_keys (vkey, recorded_at) VALUES (?, ?)', rows: [[vkey, new Date().toISOString()]] }]);
  }

  async keys(): Promise<string[]> {
    this.assertOpen();
    return this.db.prepare<[], { vkey: string }>('SELECT vkey FROM evidence_keys ORDER BY recorded_at, vkey').all().map((r) => r.vkey);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // Writes in flight are answered first; then the readers close.
    await this.writer.close();
    this.db.close();
    await this.treeStorage.close();
  }

  private assertOpen(): void {
    if (this.closed) throw new EvidenceError('EVIDENCE_LOG_CLOSED', 'the evidence log state is closed');
  }
}
