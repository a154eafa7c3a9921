import { EvidenceError } from '@custodian/evidence';
import {
  TransparencyLogError,
  TreeClosedError,
  TreeSizeConflictError,
  TreeStorageCorruptError,
  checkReadablePosition,
  checkTreeAppend,
  type Hash,
  type NodePosition,
  type TreeAppend,
  type TreeStorage,
} from '@custodian/transparency-log';
import type pg from 'pg';
import { EvidenceLogDatabase, type PostgresEvidenceLogConnection } from './evidence-log-database.js';

/** Work run inside a tree append's transaction, before the nodes are written (the evidence log's leaf records). */
export type StagedWrite = (client: pg.PoolClient) => Promise<void>;

function toSize(value: string | number | null | undefined, where: string): number {
  const size = Number(value ?? 0);
  if (!Number.isSafeInteger(size) || size < 0) throw new TreeStorageCorruptError(`tree size ${String(value)} in ${where} is not a safe integer`);
  return size;
}

/**
 * Tree storage in PostgreSQL: one row per node of `<schema>.tlog_nodes`, written once. An append
 * is one transaction that takes the log's advisory lock, checks the stored size again and inserts
 * the leaves and every node they complete; the schema's triggers refuse changes, gaps and orphan
 * interior nodes whoever writes (see schema.ts). Readers in any process see each committed append.
 */
export class PostgresTreeStorage implements TreeStorage {
  readonly #db: EvidenceLogDatabase;
  readonly #ownsDatabase: boolean;
  #closed = false;
  /** Work the next append runs in its transaction (see withStaged). */
  #staged: StagedWrite | undefined;

  /** On a database the caller owns (the evidence log state's): close() then closes only this handle. */
  constructor(db: EvidenceLogDatabase, options: { readonly ownsDatabase?: boolean } = {}) {
    this.#db = db;
    this.#ownsDatabase = options.ownsDatabase ?? false;
  }

  /** A tree of its own: connects and creates or checks the schema. */
  static async open(options: PostgresEvidenceLogConnection): Promise<PostgresTreeStorage> {
    return new PostgresTreeStorage(await EvidenceLogDatabase.open(options), {
      ownsDatabase: true,
    });
  }

  async size(): Promise<number> {
    this.#assertOpen();
    const rows = await this.#db.query<{ size: string }>('read the tree size', `SELECT coalesce(max(idx) + 1, 0)::text AS size FROM ${this.#db.schema.nodes} WHERE level = 0`).catch(this.#asTreeError);
    return toSize(rows[0]?.size, this.#db.schema.nodes);
  }

  async append(batch: TreeAppend): Promise<void> {
    this.#assertOpen();
    // The shape checks before any write; the size again under the lock, in the transaction.
    checkTreeAppend(batch, await this.size());
    const staged = this.#staged;
    this.#staged = undefined;
    const s = this.#db.schema;
    const levels: number[] = [];
    const indexes: string[] = [];
    const hashes: Buffer[] = [];
    for (const [i, hash] of batch.leafHashes.entries()) {
      levels.push(0);
      indexes.push(String(batch.fromSize + i));
      hashes.push(Buffer.from(hash));
    }
    for (const node of batch.nodes) {
      levels.push(node.level);
      indexes.push(String(node.index));
      hashes.push(Buffer.from(node.hash));
    }
    try {
      await this.#db.transaction(async (client) => {
        await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [s.lockName]);
        const { rows } = await client.query<{ size: string }>(`SELECT coalesce(max(idx) + 1, 0)::text AS size FROM ${s.nodes} WHERE level = 0`);
        const stored = toSize(rows[0]?.size, s.nodes);
        if (stored !== batch.fromSize) throw new TreeSizeConflictError(batch.fromSize, stored);
        if (staged) await staged(client);
        // In the order given: leaves, then nodes level by level (the insert trigger checks each against those before it).
        await client.query(
          `INSERT INTO ${s.nodes} (level, idx, hash)
           SELECT level, idx, hash FROM unnest($1::smallint[], $2::bigint[], $3::bytea[]) WITH ORDINALITY AS n(level, idx, hash, ord) ORDER BY ord`,
          [levels, indexes, hashes],
        );
      });
    } catch (error) {
      if (error instanceof TransparencyLogError) throw error;
      throw new TreeStorageCorruptError(`append to ${s.nodes} refused: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
    }
  }

  async readNodes(positions: readonly NodePosition[]): Promise<Hash[]> {
    this.#assertOpen();
    if (positions.length === 0) return [];
    const s = this.#db.schema;
    // One statement: the size and the nodes come from the same snapshot.
    const rows = await this.#db
      .query<{ size: string; ord: string; hash: Buffer | null }>(
        'read tree nodes',
        `SELECT (SELECT coalesce(max(idx) + 1, 0) FROM ${s.nodes} WHERE level = 0)::text AS size, p.ord::text AS ord, t.hash
           FROM unnest($1::smallint[], $2::bigint[]) WITH ORDINALITY AS p(level, idx, ord)
           LEFT JOIN ${s.nodes} t ON t.level = p.level AND t.idx = p.idx
          ORDER BY p.ord`,
        [positions.map((p) => p.level), positions.map((p) => String(p.index))],
      )
      .catch(this.#asTreeError);
    const size = toSize(rows[0]?.size, s.nodes);
    return positions.map((position, i) => {
      checkReadablePosition(position, size);
      const hash = rows[i]?.hash;
      if (!hash) throw new TreeStorageCorruptError(`node (${position.level}, ${position.index}) is missing from ${s.nodes}`);
      if (hash.length !== 32) throw new TreeStorageCorruptError(`node (${position.level}, ${position.index}) has a ${hash.length}-byte hash`);
      return hash;
    });
  }

  /**
   * Runs `append` (a tree append on this storage) with `write` done in the same transaction, before
   * the nodes: both or neither. The caller serializes its appends.
   */
  async withStaged<T>(write: StagedWrite, append: () => Promise<T>): Promise<T> {
    if (this.#staged !== undefined) throw new TreeStorageCorruptError(`${this.#db.schema.nodes}: an append with staged records is already in flight`);
    this.#staged = write;
    try {
      return await append();
    } finally {
      // Not consumed when the tree refused the append before storing it.
      this.#staged = undefined;
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#ownsDatabase) await this.#db.close();
  }

  #assertOpen(): void {
    if (this.#closed || this.#db.closed) throw new TreeClosedError();
  }

  readonly #asTreeError = (error: unknown): never => {
    if (error instanceof EvidenceError) throw new TreeStorageCorruptError(error.message, { cause: error });
    throw error;
  };
}
