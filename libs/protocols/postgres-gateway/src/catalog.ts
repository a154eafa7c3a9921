// Names for the columns of a result: RowDescription carries a table OID and attribute number per
// column, masking rules name `schema.table.column`. The gateway asks the upstream catalog on a
// connection of its own (same held credential, never visible to clients) and caches the answer
// per table for a short time, so a renamed column is picked up quickly.
import {
  BackendType,
  decodeDataRow,
  decodeNoticeFields,
  encodeQuery,
  encodeTerminate,
} from '@custodian/postgres-wire';
import { PostgresGatewayError } from './gateway-errors.js';
import type { UpstreamTarget } from './gateway-options.js';
import { SocketFrameReader } from './socket-frame-reader.js';
import { connectUpstream, type UpstreamConnection } from './upstream-connection.js';

export interface TableColumns {
  readonly schema: string;
  readonly table: string;
  /** attnum → column name */
  readonly columns: ReadonlyMap<number, string>;
  /** `schema.table` of every table this one inherits from (partition parents up to the root): a column rule on a parent covers it. */
  readonly ancestors: readonly string[];
  /** For a view or materialized view: `schema.table.column` of every column it reads, through other views too. */
  readonly sources: readonly string[];
}

interface CacheEntry {
  readonly expires: number;
  readonly value: TableColumns | null;
}

const MAX_CACHED_TABLES = 10_000;

/** A SQL string literal (standard_conforming_strings is on in every supported PostgreSQL). */
function literal(text: string): string {
  return `'${text.replaceAll("'", "''")}'`;
}

export class CatalogResolver {
  private readonly cache = new Map<number, CacheEntry>();
  /** Relation names (as a statement spells them) → OID (0: no such relation), cached like the columns. */
  private readonly relations = new Map<string, { readonly expires: number; readonly oid: number }>();
  private connection: { upstream: UpstreamConnection; reader: SocketFrameReader } | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;
  private pending = 0;
  private idleTimer: NodeJS.Timeout | undefined;

  /** `idleMs`: the catalog connection is closed after this long unused, so it never blocks `DROP DATABASE` or holds a slot for long. */
  constructor(
    private readonly target: UpstreamTarget,
    private readonly ttlMs: number,
    private readonly maxMessageBytes: number,
    private readonly idleMs = 5_000,
  ) {}

  /** Cached columns of a table, if known and fresh. */
  cached(tableOid: number): TableColumns | null | undefined {
    const entry = this.cache.get(tableOid);
    if (!entry || entry.expires < Date.now()) return undefined;
    return entry.value;
  }

  /** Makes sure the given tables are cached (one catalog query for all that are missing). */
  async load(tableOids: Iterable<number>): Promise<void> {
    const missing = [...new Set(tableOids)].filter((oid) => oid !== 0 && this.cached(oid) === undefined);
    if (missing.length === 0) return;
    const list = missing.map((oid) => String(oid >>> 0)).join(',');
    // One query: the columns (c), the inheritance ancestors (a) and, for views and materialized
    // views, the columns they read (s), through views of views (pg_rewrite's dependencies).
    const rows = await this.query(
      `WITH RECURSIVE up(child, parent) AS (` +
        `SELECT i.inhrelid, i.inhparent FROM pg_catalog.pg_inherits i WHERE i.inhrelid IN (${list}) ` +
        `UNION SELECT up.child, i.inhparent FROM up JOIN pg_catalog.pg_inherits i ON i.inhrelid = up.parent), ` +
        `src(view, rel, att) AS (` +
        `SELECT r.ev_class, d.refobjid, d.refobjsubid FROM pg_catalog.pg_rewrite r JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass AND d.objid = r.oid ` +
        `AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.refobjid <> r.ev_class WHERE r.ev_class IN (${list}) ` +
        `UNION SELECT src.view, d.refobjid, d.refobjsubid FROM src JOIN pg_catalog.pg_rewrite r ON r.ev_class = src.rel JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass AND d.objid = r.oid ` +
        `AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.refobjid <> r.ev_class) ` +
        `SELECT 'c', c.oid::int8, n.nspname::text, c.relname::text, a.attnum::int4, a.attname::text FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace ` +
        `JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid WHERE c.oid IN (${list}) AND a.attnum > 0 AND NOT a.attisdropped ` +
        `UNION ALL SELECT 'a', up.child::int8, n.nspname::text, c.relname::text, NULL::int4, NULL::text FROM up JOIN pg_catalog.pg_class c ON c.oid = up.parent JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace ` +
        `UNION ALL SELECT 's', src.view::int8, n.nspname::text, c.relname::text, NULL::int4, a.attname::text FROM src JOIN pg_catalog.pg_class c ON c.oid = src.rel JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace ` +
        // A whole-row reference depends on the relation itself (attribute 0): every column of it is read.
        `JOIN pg_catalog.pg_attribute a ON a.attrelid = src.rel AND (a.attnum = src.att OR (src.att = 0 AND a.attnum > 0 AND NOT a.attisdropped))`,
    );
    const found = new Map<number, { schema: string; table: string; columns: Map<number, string>; ancestors: string[]; sources: string[] }>();
    const entryOf = (oid: number): { schema: string; table: string; columns: Map<number, string>; ancestors: string[]; sources: string[] } => {
      let entry = found.get(oid);
      if (!entry) found.set(oid, (entry = { schema: '', table: '', columns: new Map(), ancestors: [], sources: [] }));
      return entry;
    };
    for (const [tag, oid, schema, table, attnum, name] of rows) {
      const entry = entryOf(Number(oid));
      if (tag === 'c') {
        entry.schema = schema ?? '';
        entry.table = table ?? '';
        entry.columns.set(Number(attnum), name ?? '');
      } else if (tag === 'a') entry.ancestors.push(`${schema}.${table}`);
      else entry.sources.push(`${schema}.${table}.${name}`);
    }
    const expires = Date.now() + this.ttlMs;
    if (this.cache.size + missing.length > MAX_CACHED_TABLES) this.cache.clear();
    for (const oid of missing) this.cache.set(oid, { expires, value: found.get(oid) ?? null });
  }

  /** Columns of a relation named in a statement (schema optional: resolved by the upstream's search_path). */
  async relationColumns(schema: string | undefined, name: string): Promise<TableColumns | undefined> {
    const key = `${schema ?? ''}\u0000${name}`;
    const known = this.relations.get(key);
    if (known && known.expires >= Date.now()) {
      if (!known.oid) return undefined;
      await this.load([known.oid]);
      return this.cached(known.oid) ?? undefined;
    }
    const qualified = schema === undefined ? `pg_catalog.quote_ident(${literal(name)})` : `pg_catalog.quote_ident(${literal(schema)}) || '.' || pg_catalog.quote_ident(${literal(name)})`;
    const rows = await this.query(`SELECT pg_catalog.to_regclass(${qualified})::oid::int8`);
    const oid = Number(rows[0]?.[0] ?? 0);
    if (this.relations.size >= MAX_CACHED_TABLES) this.relations.clear();
    this.relations.set(key, { expires: Date.now() + this.ttlMs, oid });
    if (!oid) return undefined;
    await this.load([oid]);
    return this.cached(oid) ?? undefined;
  }

  close(): void {
    this.closed = true;
    this.disconnect();
  }

  /** Whether a catalog connection is open right now (for tests and diagnostics). */
  get connected(): boolean {
    return this.connection !== undefined;
  }

  private disconnect(): void {
    clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    const connection = this.connection;
    this.connection = undefined;
    if (connection) {
      connection.reader.detach();
      connection.upstream.socket.end(encodeTerminate());
      connection.upstream.socket.destroy();
    }
  }

  /** Runs one simple query on the catalog connection (serialised); text values. */
  private query(sql: string): Promise<(string | null)[][]> {
    this.pending += 1;
    clearTimeout(this.idleTimer);
    const run = this.queue.then(() => this.run(sql));
    this.queue = run
      .catch(() => undefined)
      .finally(() => {
        this.pending -= 1;
        if (this.pending === 0 && this.connection && !this.closed) {
          this.idleTimer = setTimeout(() => {
            if (this.pending === 0) this.disconnect();
          }, this.idleMs);
          this.idleTimer.unref();
        }
      });
    return run;
  }

  /** One attempt, and a second on a fresh connection when the first one's connection failed (not the query). */
  private async run(sql: string): Promise<(string | null)[][]> {
    try {
      return await this.attempt(sql);
    } catch (error) {
      if (this.closed || (error instanceof PostgresGatewayError && error.message.startsWith('catalog query failed'))) throw error;
      return this.attempt(sql);
    }
  }

  private async attempt(sql: string): Promise<(string | null)[][]> {
    if (this.closed) throw new PostgresGatewayError('CATALOG_UNAVAILABLE', 'the gateway is closing');
    try {
      if (!this.connection) {
        const upstream = await connectUpstream(this.target, new Map([['application_name', 'custodian-gateway-catalog']]), this.maxMessageBytes);
        const reader = new SocketFrameReader(upstream.socket, { side: 'backend', maxMessageBytes: this.maxMessageBytes });
        reader.framer.push(upstream.leftover);
        upstream.socket.unref();
        this.connection = { upstream, reader };
      }
      const { upstream, reader } = this.connection;
      upstream.socket.write(encodeQuery(sql));
      const rows: (string | null)[][] = [];
      let failure: string | undefined;
      const timeout = AbortSignal.timeout(10_000);
      for (;;) {
        const frame = await reader.next(timeout);
        if (frame.type === BackendType.DataRow) rows.push(decodeDataRow(frame).map((v) => (v === null ? null : v.toString('utf8'))));
        else if (frame.type === BackendType.ErrorResponse) failure = decodeNoticeFields(frame).get('C') ?? 'XX000';
        else if (frame.type === BackendType.ReadyForQuery) break;
      }
      if (failure !== undefined) throw new PostgresGatewayError('CATALOG_UNAVAILABLE', `catalog query failed (SQLSTATE ${failure})`);
      return rows;
    } catch (error) {
      if (this.connection && !(error instanceof PostgresGatewayError && error.code === 'CATALOG_UNAVAILABLE' && error.message.startsWith('catalog query failed'))) {
        this.connection.upstream.socket.destroy();
        this.connection = undefined;
      }
      if (error instanceof PostgresGatewayError) throw error;
      throw new PostgresGatewayError('CATALOG_UNAVAILABLE', `catalog lookup failed: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
    }
  }
}
