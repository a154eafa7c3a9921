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
const MAX_CACHED_ROUTINES = 10_000;

/**
 * What a statement may call, as the classifier saw it: function names, operator names, the last
 * names of qualified column references (possible attribute notation) and the relations it reads
 * (a view's rules and a table's row-security policies call functions too).
 */
export interface RoutineReferences {
  readonly functions: readonly string[];
  readonly operators: readonly string[];
  readonly attributeNames: readonly string[];
  /** Types cast to: a cast function, a domain's CHECK constraints and the type's input function run. */
  readonly typeNames?: readonly string[];
  readonly relations: readonly { readonly schema?: string | undefined; readonly name: string }[];
}

/** A routine that could change the database although the statement only reads. */
export interface RoutineRisk {
  /** What the statement names: `function lower`, `operator ##`, `relation public.customer_touches`. */
  readonly reference: string;
  /** Why: `public.lower is VOLATILE`, `no function lower on the search path`. */
  readonly reason: string;
}

interface RoutineEntry {
  readonly expires: number;
  /** null: nothing that can write; otherwise why not. */
  readonly risk: string | null;
}

/** Splits `schema.name` (or `catalog.schema.name`) into the schemas to search and the name. */
function splitRoutineName(qualified: string, searchSchemas: readonly string[]): { schemas: readonly string[]; name: string } {
  // Operator names contain dots never; function and schema names only when quoted (then as written).
  const parts = qualified.split('.');
  const name = parts[parts.length - 1] ?? '';
  return parts.length > 1 ? { schemas: [parts[parts.length - 2] ?? ''], name } : { schemas: searchSchemas, name };
}

function textArray(values: readonly string[]): string {
  return `ARRAY[${values.map(literal).join(',')}]::text[]`;
}

/**
 * Whether a routine found in the catalog may write: VOLATILE outside pg_catalog. Functions in
 * pg_catalog are the server's own (only a superuser can add to it); the classifier's lists decide
 * about those by name (dangerous, side-effect), so a volatile built-in like random() stays allowed.
 */
function routineMayWrite(schema: string | null, volatility: string | null): boolean {
  return schema !== 'pg_catalog' && volatility === 'v';
}

/** A SQL string literal (standard_conforming_strings is on in every supported PostgreSQL). */
function literal(text: string): string {
  return `'${text.replaceAll("'", "''")}'`;
}

export class CatalogResolver {
  private readonly cache = new Map<number, CacheEntry>();
  /** Relation names (as a statement spells them) → OID (0: no such relation), cached like the columns. */
  private readonly relations = new Map<string, { readonly expires: number; readonly oid: number }>();
  /** Verdicts on routines by reference (`f:`, `o:`, `a:`, `r:` + search schemas + name), see routineRisks. */
  private readonly routines = new Map<string, RoutineEntry>();
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
    private readonly routineTtlMs = 10_000,
  ) {}

  /** Forgets every routine verdict: a DDL statement went through the gateway (functions, operators or views may have changed). */
  invalidateRoutines(): void {
    this.routines.clear();
  }

  /**
   * The routines a statement's references resolve to that could write (issue 19 §2), from the cache;
   * undefined when a verdict is missing (call loadRoutines first). Names are resolved through the
   * catalog in the given schemas (the session's pinned search_path), never trusted by name: every
   * candidate of an unqualified name counts, whatever argument types the call has, so an overload
   * (`public.lower(integer)`) is found although the call looks like the built-in.
   */
  routineRisks(references: RoutineReferences, searchSchemas: readonly string[]): RoutineRisk[] | undefined {
    const now = Date.now();
    const risks: RoutineRisk[] = [];
    for (const [key, reference] of this.routineKeys(references, searchSchemas)) {
      const entry = this.routines.get(key);
      if (!entry || entry.expires < now) return undefined;
      if (entry.risk !== null) risks.push({ reference, reason: entry.risk });
    }
    return risks;
  }

  /** Loads the verdicts routineRisks lacks (at most one catalog query per kind of reference). */
  async loadRoutines(references: RoutineReferences, searchSchemas: readonly string[]): Promise<void> {
    const now = Date.now();
    const missing = new Map<string, string>();
    for (const [key, reference] of this.routineKeys(references, searchSchemas)) {
      const entry = this.routines.get(key);
      if (!entry || entry.expires < now) missing.set(key, reference);
    }
    if (missing.size === 0) return;
    const functions: [string, readonly string[], string, boolean][] = [];
    const operators: [string, readonly string[], string][] = [];
    const relations: [string, string][] = [];
    const types: [string, readonly string[], string][] = [];
    for (const key of missing.keys()) {
      const [tag, schemas, name] = key.split('\u0000') as [string, string, string];
      const list = schemas.split('\u0001');
      if (tag === 'f' || tag === 'a') functions.push([key, list, name, tag === 'a']);
      else if (tag === 'o') operators.push([key, list, name]);
      else if (tag === 't') types.push([key, list, name]);
      else relations.push([key, schemas === '' ? `pg_catalog.quote_ident(${literal(name)})` : `pg_catalog.quote_ident(${literal(schemas)}) || '.' || pg_catalog.quote_ident(${literal(name)})`]);
    }
    const risks = new Map<string, string[]>();
    const found = new Set<string>();
    const note = (key: string, risk: string): void => {
      const list = risks.get(key) ?? [];
      if (list.length < 3) list.push(risk);
      risks.set(key, list);
    };
    if (functions.length > 0) {
      // Every candidate of the name in the schemas searched; an aggregate's own volatility says
      // nothing (CREATE AGGREGATE does not set it), its support functions' does.
      const values = functions.map(([, schemas, name, attribute], index) => `(${index}, ${textArray(schemas)}, ${literal(name)}, ${attribute})`).join(',');
      const rows = await this.query(
        `SELECT q.key::text, n.nspname::text, p.proname::text, p.provolatile::text, (SELECT pg_catalog.string_agg(sn.nspname || '.' || s.proname, ',') FROM pg_catalog.pg_aggregate g ` +
          `JOIN pg_catalog.pg_proc s ON s.oid = ANY (ARRAY[g.aggtransfn, g.aggfinalfn, g.aggcombinefn, g.aggmtransfn, g.aggminvtransfn, g.aggmfinalfn]::oid[]) JOIN pg_catalog.pg_namespace sn ON sn.oid = s.pronamespace ` +
          `WHERE g.aggfnoid = p.oid AND s.provolatile = 'v' AND sn.nspname <> 'pg_catalog') ` +
          `FROM (VALUES ${values}) q(key, schemas, name, attribute) LEFT JOIN (pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace) ` +
          `ON p.proname = q.name AND n.nspname = ANY (q.schemas) AND (NOT q.attribute OR p.pronargs = 1)`,
      );
      for (const [index = null, schema = null, name = null, volatility = null, aggregateSupport = null] of rows) {
        const key = functions[Number(index)]?.[0];
        if (key === undefined || name === null) continue;
        found.add(key);
        if (routineMayWrite(schema, volatility)) note(key, `${schema}.${name} is VOLATILE`);
        if (aggregateSupport) note(key, `aggregate ${schema}.${name} calls VOLATILE ${aggregateSupport}`);
      }
    }
    if (operators.length > 0) {
      // The operator's function and its selectivity estimators (run while planning).
      const values = operators.map(([, schemas, name], index) => `(${index}, ${textArray(schemas)}, ${literal(name)})`).join(',');
      const rows = await this.query(
        `SELECT q.key::text, n.nspname::text, o.oprname::text, fn.nspname::text, f.proname::text, f.provolatile::text ` +
          `FROM (VALUES ${values}) q(key, schemas, name) LEFT JOIN (pg_catalog.pg_operator o JOIN pg_catalog.pg_namespace n ON n.oid = o.oprnamespace) ON o.oprname = q.name AND n.nspname = ANY (q.schemas) ` +
          `LEFT JOIN (pg_catalog.pg_proc f JOIN pg_catalog.pg_namespace fn ON fn.oid = f.pronamespace) ON f.oid = ANY (ARRAY[o.oprcode::oid, o.oprrest::oid, o.oprjoin::oid])`,
      );
      for (const [index = null, schema = null, operator = null, functionSchema = null, name = null, volatility = null] of rows) {
        const key = operators[Number(index)]?.[0];
        if (key === undefined || operator === null) continue;
        found.add(key);
        if (routineMayWrite(functionSchema, volatility)) note(key, `operator ${schema}.${operator} calls VOLATILE ${functionSchema}.${name}`);
      }
    }
    if (types.length > 0) {
      // Casts to the type (whatever their source type), the CHECK constraints of a domain, the type's input function.
      const values = types.map(([, schemas, name], index) => `(${index}, ${textArray(schemas)}, ${literal(name)})`).join(',');
      const rows = await this.query(
        `WITH q(key, schemas, name) AS (VALUES ${values}), t(key, oid) AS (SELECT q.key, ty.oid FROM q JOIN pg_catalog.pg_type ty ON ty.typname = q.name JOIN pg_catalog.pg_namespace n ON n.oid = ty.typnamespace AND n.nspname = ANY (q.schemas)), ` +
          `f(key, proc, via) AS (SELECT t.key, c.castfunc, 'a cast' FROM t JOIN pg_catalog.pg_cast c ON c.casttarget = t.oid WHERE c.castfunc <> 0 ` +
          `UNION ALL SELECT t.key, d.refobjid, 'a domain constraint' FROM t JOIN pg_catalog.pg_constraint k ON k.contypid = t.oid JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_constraint'::pg_catalog.regclass AND d.objid = k.oid AND d.refclassid = 'pg_catalog.pg_proc'::pg_catalog.regclass ` +
          `UNION ALL SELECT t.key, ty.typinput::oid, 'its input function' FROM t JOIN pg_catalog.pg_type ty ON ty.oid = t.oid) ` +
          `SELECT f.key::text, n.nspname::text, p.proname::text, p.provolatile::text, f.via FROM f JOIN pg_catalog.pg_proc p ON p.oid = f.proc JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace`,
      );
      for (const [index = null, schema = null, name = null, volatility = null, via = null] of rows) {
        const key = types[Number(index)]?.[0];
        if (key === undefined) continue;
        if (routineMayWrite(schema, volatility)) note(key, `${via} calls VOLATILE ${schema}.${name}`);
      }
    }
    if (relations.length > 0) {
      // Functions and operators a view's rules (through views of views) or a row-security policy call.
      const values = relations.map(([, qualified], index) => `(${index}, pg_catalog.to_regclass(${qualified})::oid)`).join(',');
      const rows = await this.query(
        `WITH RECURSIVE q(key, rel) AS (VALUES ${values}), ` +
          `rels(key, rel) AS (SELECT key, rel FROM q WHERE rel IS NOT NULL UNION SELECT rels.key, d.refobjid FROM rels JOIN pg_catalog.pg_rewrite r ON r.ev_class = rels.rel ` +
          `JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass AND d.objid = r.oid AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.refobjid <> r.ev_class), ` +
          `deps(key, classid, objid) AS (SELECT rels.key, 'pg_catalog.pg_rewrite'::pg_catalog.regclass::oid, r.oid FROM rels JOIN pg_catalog.pg_rewrite r ON r.ev_class = rels.rel ` +
          `UNION ALL SELECT rels.key, 'pg_catalog.pg_policy'::pg_catalog.regclass::oid, p.oid FROM rels JOIN pg_catalog.pg_policy p ON p.polrelid = rels.rel), ` +
          `procs(key, proc) AS (SELECT deps.key, d.refobjid FROM deps JOIN pg_catalog.pg_depend d ON d.classid = deps.classid AND d.objid = deps.objid AND d.refclassid = 'pg_catalog.pg_proc'::pg_catalog.regclass ` +
          `UNION SELECT deps.key, f.proc FROM deps JOIN pg_catalog.pg_depend d ON d.classid = deps.classid AND d.objid = deps.objid AND d.refclassid = 'pg_catalog.pg_operator'::pg_catalog.regclass ` +
          `JOIN pg_catalog.pg_operator o ON o.oid = d.refobjid CROSS JOIN LATERAL pg_catalog.unnest(ARRAY[o.oprcode::oid, o.oprrest::oid, o.oprjoin::oid]) f(proc)) ` +
          `SELECT procs.key::text, n.nspname::text, p.proname::text, p.provolatile::text FROM procs JOIN pg_catalog.pg_proc p ON p.oid = procs.proc JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace`,
      );
      for (const [index = null, schema = null, name = null, volatility = null] of rows) {
        const key = relations[Number(index)]?.[0];
        if (key === undefined) continue;
        if (routineMayWrite(schema, volatility)) note(key, `it calls VOLATILE ${schema}.${name}`);
      }
    }
    const expires = Date.now() + this.routineTtlMs;
    if (this.routines.size + missing.size > MAX_CACHED_ROUTINES) this.routines.clear();
    for (const key of missing.keys()) {
      const tag = key.slice(0, 1);
      let risk: string | null = risks.get(key)?.join('; ') ?? null;
      // A function call nothing resolves is unknown: it cannot be judged (PostgreSQL would fail it too).
      if (risk === null && (tag === 'f' || tag === 'o') && !found.has(key)) risk = `no ${tag === 'f' ? 'function' : 'operator'} of that name in ${key.split('\u0000')[1]!.split('\u0001').join(', ')}`;
      this.routines.set(key, { expires, risk });
    }
  }

  private *routineKeys(references: RoutineReferences, searchSchemas: readonly string[]): Iterable<[string, string]> {
    const key = (tag: string, schemas: readonly string[], name: string): string => `${tag}\u0000${schemas.join('\u0001')}\u0000${name}`;
    for (const qualified of references.functions) {
      const { schemas, name } = splitRoutineName(qualified, searchSchemas);
      yield [key('f', schemas, name), `function ${qualified}`];
    }
    for (const qualified of references.operators) {
      // Operator names never contain a dot; OPERATOR(schema.op) arrives as `schema.op`.
      const dot = qualified.lastIndexOf('.');
      const schemas = dot > 0 && /[a-z_]/i.test(qualified.slice(0, dot)) ? [qualified.slice(0, dot)] : searchSchemas;
      const name = schemas === searchSchemas ? qualified : qualified.slice(dot + 1);
      yield [key('o', schemas, name), `operator ${qualified}`];
    }
    for (const name of references.attributeNames) yield [key('a', searchSchemas, name), `attribute notation .${name}`];
    for (const qualified of references.typeNames ?? []) {
      const { schemas, name } = splitRoutineName(qualified, searchSchemas);
      yield [key('t', schemas, name), `cast to ${qualified}`];
    }
    for (const relation of references.relations) {
      yield [`r\u0000${relation.schema ?? ''}\u0000${relation.name}`, `relation ${relation.schema === undefined ? '' : `${relation.schema}.`}${relation.name}`];
    }
  }

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
