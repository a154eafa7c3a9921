import BetterSqlite3, { type Database, type Statement } from 'better-sqlite3';
import { TreeClosedError, TreeStorageCorruptError, TransparencyLogError } from '../errors.js';
import { type Hash } from '../hashing.js';
import { type NodePosition } from '../tree-shape.js';
import { checkReadablePosition, checkTreeAppend, type TreeAppend, type TreeStorage } from '../tree-storage.js';
import { migrateTreeSchema } from './schema.js';

export interface SqliteTreeStorageOptions {
  /** Database file; created with its schema when missing. May be shared with other stores (tables are tlog_*). */
  readonly path: string;
  /** How long a writer waits for another connection's write lock. Default 5000 ms. */
  readonly busyTimeoutMs?: number;
}

export interface SqliteTreeStorageSettings {
  readonly journalMode: string;
  readonly synchronous: string;
}

/**
 * Tree storage in SQLite (WAL, synchronous=FULL: an acknowledged append survives power loss). One
 * row per node, written once; the schema's triggers refuse changes and gaps (see schema.ts).
 */
export class SqliteTreeStorage implements TreeStorage {
  readonly path: string;
  private readonly db: Database;
  private readonly sizeStatement: Statement<[], { size: number }>;
  private readonly readStatement: Statement<[number, number], { hash: Buffer }>;
  private readonly insertStatement: Statement<[number, number, Buffer]>;
  private readonly appendTransaction: (batch: TreeAppend) => void;
  private readonly readTransaction: (positions: readonly NodePosition[]) => Hash[];
  private closed = false;

  private constructor(options: SqliteTreeStorageOptions) {
    this.path = options.path;
    const db = new BetterSqlite3(options.path);
    try {
      const mode = db.pragma('journal_mode = WAL', { simple: true });
      if (String(mode).toLowerCase() !== 'wal') throw new TreeStorageCorruptError(`${options.path}: could not enable WAL (journal_mode=${String(mode)})`);
      // FULL: the WAL is fsynced at every commit.
      db.pragma('synchronous = FULL');
      db.pragma(`busy_timeout = ${Math.trunc(options.busyTimeoutMs ?? 5_000)}`);
      // So that INSERT OR REPLACE on this connection fires the DELETE trigger too.
      db.pragma('recursive_triggers = ON');
      migrateTreeSchema(db, () => new Date().toISOString());
    } catch (error) {
      db.close();
      throw error;
    }
    this.db = db;
    this.sizeStatement = db.prepare('SELECT COALESCE(MAX(idx) + 1, 0) AS size FROM tlog_nodes WHERE level = 0');
    this.readStatement = db.prepare('SELECT hash FROM tlog_nodes WHERE level = ? AND idx = ?');
    this.insertStatement = db.prepare('INSERT INTO tlog_nodes (level, idx, hash) VALUES (?, ?, ?)');
    const append = db.transaction((batch: TreeAppend) => {
      checkTreeAppend(batch, this.readSize());
      for (const [i, hash] of batch.leafHashes.entries()) this.insertStatement.run(0, batch.fromSize + i, Buffer.from(hash));
      for (const node of batch.nodes) this.insertStatement.run(node.level, node.index, Buffer.from(node.hash));
    });
    // IMMEDIATE: take the write lock before reading the size, so two writers cannot both pass the size check.
    this.appendTransaction = (batch) => append.immediate(batch);
    // One read transaction: the size and the nodes come from the same snapshot.
    this.readTransaction = db.transaction((positions: readonly NodePosition[]) => {
      const size = this.readSize();
      return positions.map((position) => {
        checkReadablePosition(position, size);
        const row = this.readStatement.get(position.level, position.index);
        if (!row) throw new TreeStorageCorruptError(`node (${position.level}, ${position.index}) is missing from ${this.path}`);
        if (row.hash.length !== 32) throw new TreeStorageCorruptError(`node (${position.level}, ${position.index}) has a ${row.hash.length}-byte hash`);
        return row.hash;
      });
    });
  }

  static async open(options: SqliteTreeStorageOptions): Promise<SqliteTreeStorage> {
    return new SqliteTreeStorage(options);
  }

  async size(): Promise<number> {
    this.assertOpen();
    return this.readSize();
  }

  async append(batch: TreeAppend): Promise<void> {
    this.assertOpen();
    try {
      this.appendTransaction(batch);
    } catch (error) {
      if (error instanceof TransparencyLogError) throw error;
      throw new TreeStorageCorruptError(`append to ${this.path} refused: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
    }
  }

  async readNodes(positions: readonly NodePosition[]): Promise<Hash[]> {
    this.assertOpen();
    return this.readTransaction(positions);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.db.close();
  }

  /** The durability settings in force, for health checks and tests. */
  settings(): SqliteTreeStorageSettings {
    this.assertOpen();
    const levels = ['OFF', 'NORMAL', 'FULL', 'EXTRA'];
    return {
      journalMode: String(this.db.pragma('journal_mode', { simple: true })),
      synchronous: levels[Number(this.db.pragma('synchronous', { simple: true }))] ?? 'OFF',
    };
  }

  private readSize(): number {
    const size = this.sizeStatement.get()?.size ?? 0;
    if (!Number.isSafeInteger(size)) throw new TreeStorageCorruptError(`tree size ${String(size)} in ${this.path} is not a safe integer`);
    return size;
  }

  private assertOpen(): void {
    if (this.closed) throw new TreeClosedError();
  }
}
