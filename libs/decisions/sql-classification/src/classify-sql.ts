import { SqlClassificationError } from './errors.js';
import { normalizeCheckedText } from './normalize-sql.js';
import { derivedColumnReferences } from './column-lineage.js';
import { stringField, unwrapNode } from './json-node.js';
import { checkedSqlText, DEFAULT_MAX_SQL_LENGTH, fingerprintPostgres, loadPostgresParser, parsePostgres } from './postgres-parser.js';
import {
  mostPrivilegedKind,
  type SqlClassification,
  type SqlClassifyOptions,
  type SqlFlag,
  type SqlStatementClassification,
} from './sql-classification.js';
import { StatementAnalysis } from './statement-analysis.js';

/** Loads the PostgreSQL parser (WebAssembly) once; afterwards classifySqlSync may be used. */
export async function loadSqlClassifier(): Promise<void> {
  await loadPostgresParser();
}

/**
 * Classifies SQL text with the real PostgreSQL grammar. Never throws for bad input: text that
 * cannot be parsed, is too large or is not clean UTF-8 yields `ok: false`, which policy denies.
 */
export async function classifySql(input: string | Uint8Array, options: SqlClassifyOptions = {}): Promise<SqlClassification> {
  await loadPostgresParser();
  return classifySqlSync(input, options);
}

export function classifySqlSync(input: string | Uint8Array, options: SqlClassifyOptions = {}): SqlClassification {
  let text: string;
  try {
    text = checkedSqlText(input, options.maxLength ?? DEFAULT_MAX_SQL_LENGTH);
  } catch (error) {
    if (error instanceof SqlClassificationError) return { ok: false, error };
    throw error;
  }
  return classifyCheckedText(text, new PreparedInThisText(options.preparedStatements), options.columnLineage !== false);
}

/**
 * Like classifySqlSync, through a bounded cache keyed by the exact text (never a normalized form
 * or a fingerprint: tautology detection reads literal values, so `WHERE 1=1` and `WHERE 1=2`
 * must not share an entry). A result that read the session's prepared statements (`EXECUTE
 * name`) depends on them and is never cached. Cached results are deeply frozen and shared.
 */
export function classifySqlCachedSync(input: string | Uint8Array, options: SqlClassifyOptions = {}, cache: SqlClassificationCache = defaultClassificationCache): SqlClassification {
  let text: string;
  try {
    text = checkedSqlText(input, options.maxLength ?? DEFAULT_MAX_SQL_LENGTH);
  } catch (error) {
    if (error instanceof SqlClassificationError) return { ok: false, error };
    throw error;
  }
  const lineage = options.columnLineage !== false;
  const hit = cache.get(text);
  // An entry made without the lineage walk does not serve a caller that needs derivedColumns.
  if (hit !== undefined && (!lineage || !withoutLineage.has(hit))) return hit;
  const prepared = new PreparedInThisText(options.preparedStatements);
  const result = classifyCheckedText(text, prepared, lineage);
  // RangeError (stack exhaustion) depends on the stack at the time, not on the text alone.
  const deterministic = result.ok || result.error.code !== 'SQL_TOO_COMPLEX';
  if (!prepared.readSession && deterministic) {
    if (!lineage) withoutLineage.add(result);
    cache.set(text, result);
  }
  return result;
}

/** Cached classifications made with `columnLineage: false` (their statements lack derivedColumns). */
const withoutLineage = new WeakSet<SqlClassification>();

/** A bounded LRU of classifications by exact statement text. */
export class SqlClassificationCache {
  private readonly entries = new Map<string, SqlClassification>();
  private chars = 0;

  /**
   * @param maxEntries most texts kept (default 4096)
   * @param maxTextLength longer texts are not cached (default 8192 UTF-16 units)
   * @param maxTotalChars most text held in all keys together (default 4 Mi UTF-16 units)
   */
  constructor(
    readonly maxEntries = 4096,
    readonly maxTextLength = 8192,
    readonly maxTotalChars = 4 * 1024 * 1024,
  ) {}

  get size(): number {
    return this.entries.size;
  }

  get(text: string): SqlClassification | undefined {
    const hit = this.entries.get(text);
    if (hit === undefined) return undefined;
    // Most recently used last: the first key is the one to evict.
    this.entries.delete(text);
    this.entries.set(text, hit);
    return hit;
  }

  set(text: string, classification: SqlClassification): void {
    if (text.length > this.maxTextLength) return;
    freezeClassification(classification);
    // Replacing an entry (one made without the lineage walk, by one with it) keeps its place.
    if (!this.entries.has(text)) this.chars += text.length;
    else this.entries.delete(text);
    this.entries.set(text, classification);
    for (const key of this.entries.keys()) {
      if (this.entries.size <= this.maxEntries && this.chars <= this.maxTotalChars) break;
      this.entries.delete(key);
      this.chars -= key.length;
    }
  }

  clear(): void {
    this.entries.clear();
    this.chars = 0;
  }
}

const defaultClassificationCache = new SqlClassificationCache();

function deepFreeze(value: unknown): void {
  if (typeof value !== 'object' || value === null || Object.isFrozen(value)) return;
  // SqlClassificationError is an Error: freezing it is fine, its cause chain is not ours to walk.
  Object.freeze(value);
  if (value instanceof Error) return;
  for (const child of Object.values(value)) deepFreeze(child);
}

/** Freezes a classification for sharing without reading its lazy `normalized` (which would compute it). */
function freezeClassification(classification: SqlClassification): void {
  Object.freeze(classification);
  if (classification.ok) {
    deepFreeze(classification.statements);
    deepFreeze(classification.flags);
  } else {
    deepFreeze(classification.error);
  }
}

function classifyCheckedText(text: string, prepared: PreparedInThisText, lineage: boolean): SqlClassification {
  try {
    const { statements: trees } = parsePostgres(text);
    const statements: SqlStatementClassification[] = [];
    for (const tree of trees) {
      const statement = StatementAnalysis.classify(tree, prepared);
      if (readsSessionActivity(statement)) statement.flags = [...statement.flags, 'session-activity' as const].sort();
      if (lineage) {
        const derived = derivedColumnReferences(tree);
        // EXECUTE returns what its prepared statement derives (its own tree names no column).
        const executed = executedStatement(tree, prepared);
        if (executed?.derivedColumnsUnknown === true) statement.derivedColumnsUnknown = true;
        for (const column of executed?.derivedColumns ?? []) if (!derived.includes(column)) derived.push(column);
        if (derived.length > 0) statement.derivedColumns = derived.sort();
      } else {
        statement.derivedColumnsUnknown = true;
      }
      // PREPARE then EXECUTE in one text: the EXECUTE runs what was just prepared; DEALLOCATE forgets it.
      if (statement.preparedName !== undefined) prepared.set(statement.preparedName, statement);
      if (statement.deallocates !== undefined) prepared.drop(statement.deallocates);
      statements.push(statement);
    }
    const multiStatement = statements.length > 1;
    if (multiStatement) {
      // COMMIT/ROLLBACK stacked with other statements ends the transaction the gateway opened
      // (e.g. READ ONLY) and lets the rest run outside it.
      for (const statement of statements) {
        if (statement.flags.includes('transaction-end')) statement.flags = [...statement.flags, 'transaction-escape' as const].sort();
      }
    }
    const flags = new Set<SqlFlag>(statements.flatMap((statement) => statement.flags));
    const result = {
      ok: true as const,
      kind: mostPrivilegedKind(statements.map((statement) => statement.kind)),
      statements,
      multiStatement,
      flags: [...flags].sort(),
    };
    // The literal-free text costs a second WebAssembly call (the scanner) and is read rarely (a
    // statement that sets a password): made on first read, once, then kept.
    let normalized: string | undefined;
    return Object.defineProperty(result, 'normalized', {
      enumerable: true,
      get: () => (normalized ??= normalizedOrPlaceholder(text)),
    }) as typeof result & { readonly normalized: string };
  } catch (error) {
    if (error instanceof SqlClassificationError) return { ok: false, error };
    // JavaScript stack exhaustion on pathological trees: refuse, do not crash the gateway.
    if (error instanceof RangeError) return { ok: false, error: new SqlClassificationError('SQL_TOO_COMPLEX', error.message, undefined, { cause: error }) };
    throw error;
  }
}

/** The prepared statement an `EXECUTE name` runs, when known (as StatementAnalysis resolved it). */
function executedStatement(tree: unknown, prepared: PreparedInThisText): SqlStatementClassification | undefined {
  const node = unwrapNode(tree);
  if (node?.[0] !== 'ExecuteStmt') return undefined;
  return prepared.get(stringField(node[1], 'name') ?? '');
}

/** normalizeCheckedText of text that parsed; should the scanner still refuse it, a literal-free placeholder (a getter must not throw). */
function normalizedOrPlaceholder(text: string): string {
  try {
    return normalizeCheckedText(text);
  } catch (error) {
    return `[statement not normalized: ${error instanceof SqlClassificationError ? error.code : 'error'}]`;
  }
}

/** Views that show other sessions' statements, literals included (to every session of the same role). */
const SESSION_ACTIVITY_RELATIONS = new Set(['pg_stat_activity']);

function readsSessionActivity(statement: SqlStatementClassification): boolean {
  return statement.objects.some((object) => (object.schema === undefined || object.schema === 'pg_catalog') && SESSION_ACTIVITY_RELATIONS.has(object.name));
}

/**
 * The session's prepared statements as seen from a statement of this text: the session's map
 * (never copied: it can be large) overlaid with what earlier statements of the same text
 * prepared or deallocated.
 */
class PreparedInThisText implements Pick<ReadonlyMap<string, SqlStatementClassification>, 'get'> {
  private readonly added = new Map<string, SqlStatementClassification>();
  private readonly dropped = new Set<string>();
  private droppedAll = false;
  /** Whether a lookup reached the session's map: the result then depends on it (not cacheable). */
  readSession = false;

  constructor(private readonly session: ReadonlyMap<string, SqlStatementClassification> | undefined) {}

  get(name: string): SqlStatementClassification | undefined {
    const added = this.added.get(name);
    if (added !== undefined) return added;
    if (this.droppedAll || this.dropped.has(name)) return undefined;
    this.readSession = true;
    return this.session?.get(name);
  }

  set(name: string, statement: SqlStatementClassification): void {
    this.added.set(name, statement);
  }

  /** `*`: every prepared statement (DEALLOCATE ALL, DISCARD ALL). */
  drop(name: string): void {
    if (name === '*') {
      this.droppedAll = true;
      this.added.clear();
      return;
    }
    this.added.delete(name);
    this.dropped.add(name);
  }
}

/**
 * libpg-query's fingerprint of the text (equal for statements that differ only in literals), or
 * null for blank or unparseable text. Not part of a classification: nothing on the hot path reads
 * it, and it costs a third WebAssembly call. Never use it as a cache key for decisions.
 */
export function fingerprintSqlSync(input: string | Uint8Array, options: Pick<SqlClassifyOptions, 'maxLength'> = {}): string | null {
  try {
    return fingerprintPostgres(checkedSqlText(input, options.maxLength ?? DEFAULT_MAX_SQL_LENGTH));
  } catch (error) {
    if (error instanceof SqlClassificationError) return null;
    throw error;
  }
}
