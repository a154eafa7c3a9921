// The connection pool both halves of the PostgreSQL evidence log share (the tree's nodes and the
// log's records live in one schema, and an append writes both in one transaction): queries and
// transactions tracked so that close() answers every call made before it.
import { EvidenceError } from '@custodian/evidence';
import pg from 'pg';
import { assertEvidenceLogMigrated, evidenceLogSchema, migrateEvidenceLog, type EvidenceLogSchema } from './schema.js';

export interface PostgresEvidenceLogConnection {
  /** libpq-style URL. It may carry a password: it is never logged nor put in an error message. */
  readonly connectionString: string;
  /** PostgreSQL schema of the log's tables (default `custodian_evidence`); several logs can share a database. */
  readonly schema?: string;
  /** Create or upgrade the schema at open (default true). A role without DDL rights passes false: the version is only checked. */
  readonly migrate?: boolean;
  /** When migrating: the role the projector and the api connect as gets what they need and no UPDATE or DELETE of the log. */
  readonly writerRole?: string;
  /** Connections (default 3). */
  readonly poolSize?: number;
  /** How long to wait for a connection (default 5000 ms). */
  readonly connectTimeoutMs?: number;
}

/** SQLSTATE classes of a write the database refused (constraint, trigger, privilege, bad data), as opposed to one it could not take. */
const REFUSED = /^(22|23|42|P0)/;

/** A pg error as an evidence error: refused writes are EVIDENCE_LOG_STATE_CORRUPT, the rest EVIDENCE_LOG_UNAVAILABLE. */
export function evidenceDatabaseError(what: string, error: unknown): EvidenceError {
  if (error instanceof EvidenceError) return error;
  // pg's errors carry the server's message and SQLSTATE, never the connection string.
  const code = (error as { code?: unknown }).code;
  const message = `${what}: ${error instanceof Error ? error.message : String(error)}${typeof code === 'string' ? ` (${code})` : ''}`;
  return new EvidenceError(typeof code === 'string' && REFUSED.test(code) ? 'EVIDENCE_LOG_STATE_CORRUPT' : 'EVIDENCE_LOG_UNAVAILABLE', message, { cause: error });
}

export class EvidenceLogDatabase {
  readonly schema: EvidenceLogSchema;
  readonly #pool: pg.Pool;
  readonly #inFlight = new Set<Promise<unknown>>();
  /** The last write of this handle: writes run one after another, in call order (as the SQLite adapter's writer thread). */
  #lastWrite: Promise<unknown> = Promise.resolve();
  #closing: Promise<void> | undefined;

  private constructor(options: PostgresEvidenceLogConnection) {
    this.schema = evidenceLogSchema(options.schema);
    this.#pool = new pg.Pool({
      connectionString: options.connectionString,
      max: options.poolSize ?? 3,
      connectionTimeoutMillis: options.connectTimeoutMs ?? 5_000,
      application_name: 'custodian-evidence-log',
    });
    // An idle pooled connection that dies (server restart) is dropped; the next query opens another.
    this.#pool.on('error', () => undefined);
  }

  /** Connects, and creates or checks the schema; an unreachable database fails here (EVIDENCE_LOG_UNAVAILABLE). */
  static async open(options: PostgresEvidenceLogConnection): Promise<EvidenceLogDatabase> {
    const db = new EvidenceLogDatabase(options);
    try {
      const client = await db.#pool.connect();
      try {
        if (options.migrate ?? true) await migrateEvidenceLog(client, db.schema, () => new Date().toISOString(), options.writerRole);
        else await assertEvidenceLogMigrated(client, db.schema);
      } finally {
        client.release();
      }
    } catch (error) {
      await db.#pool.end().catch(() => undefined);
      throw evidenceDatabaseError(`PostgreSQL evidence log (schema "${db.schema.name}") cannot open`, error);
    }
    return db;
  }

  get closed(): boolean {
    return this.#closing !== undefined;
  }

  query<R extends pg.QueryResultRow>(what: string, text: string, values: readonly unknown[] = []): Promise<R[]> {
    return this.#track(
      this.#pool.query<R>(text, values as unknown[]).then(
        (result) => result.rows,
        (error: unknown) => {
          throw evidenceDatabaseError(`PostgreSQL evidence log: ${what}`, error);
        },
      ),
    );
  }

  /** A write that is one statement: run after this handle's earlier writes (see transaction). */
  write<R extends pg.QueryResultRow>(what: string, text: string, values: readonly unknown[] = []): Promise<R[]> {
    return this.#serialized(() =>
      this.#pool.query<R>(text, values as unknown[]).then(
        (result) => result.rows,
        (error: unknown) => {
          throw evidenceDatabaseError(`PostgreSQL evidence log: ${what}`, error);
        },
      ),
    );
  }

  /**
   * Runs `work` in one transaction (BEGIN … COMMIT), after this handle's earlier writes have
   * finished: a handle's writes commit in call order. Errors roll it back and are rethrown as they are.
   * `work` must not start another write of this handle (it would wait for itself).
   */
  transaction<T>(work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    return this.#serialized(async () => {
      const client = await this.#pool.connect();
      let broken: Error | undefined;
      try {
        await client.query('BEGIN');
        const result = await work(client);
        await client.query('COMMIT');
        return result;
      } catch (error) {
        await client.query('ROLLBACK').catch((rollbackError: unknown) => {
          broken = rollbackError instanceof Error ? rollbackError : new Error(String(rollbackError));
        });
        throw error;
      } finally {
        client.release(broken);
      }
    });
  }

  #serialized<T>(run: () => Promise<T>): Promise<T> {
    const result = this.#lastWrite.then(run, run);
    this.#lastWrite = result.catch(() => undefined);
    return this.#track(result);
  }

  /** Answers every call made before, then closes the pool. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      await Promise.allSettled([...this.#inFlight]);
      await this.#pool.end();
    })();
    return this.#closing;
  }

  #track<T>(promise: Promise<T>): Promise<T> {
    this.#inFlight.add(promise);
    const settled = (): void => void this.#inFlight.delete(promise);
    promise.then(settled, settled);
    return promise;
  }
}
