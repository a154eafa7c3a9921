import type { SqlClassificationError } from './errors.js';

/**
 * What a statement does, ordered from least to most privileged. `utility` is the top:
 * arbitrary code, server administration and anything the classifier does not recognise.
 */
export type SqlKind = 'read' | 'transaction' | 'write' | 'ddl' | 'dcl' | 'utility';

export const SQL_KIND_RANK: Readonly<Record<SqlKind, number>> = {
  read: 0,
  transaction: 1,
  write: 2,
  ddl: 3,
  dcl: 4,
  utility: 5,
};

export function mostPrivilegedKind(kinds: Iterable<SqlKind>): SqlKind {
  let top: SqlKind = 'read';
  for (const kind of kinds) if (SQL_KIND_RANK[kind] > SQL_KIND_RANK[top]) top = kind;
  return top;
}

/** How a statement touches a relation. */
export type SqlAccess = 'read' | 'write' | 'ddl';

export interface SqlObject {
  schema?: string;
  name: string;
  access: SqlAccess;
  /** Columns written (INSERT column list, UPDATE SET targets) where the statement names them. */
  columns?: string[];
}

export type SqlFlag =
  | 'update-without-where'
  | 'delete-without-where'
  | 'constant-true-where'
  | 'dml-in-cte'
  | 'nested-dml'
  | 'do-block'
  | 'copy'
  | 'copy-program'
  | 'copy-to-file'
  | 'copy-from-file'
  | 'dangerous-function'
  | 'side-effect-function'
  | 'unrecognised-function'
  | 'set-role'
  | 'set-session-authorization'
  | 'set-search-path'
  | 'set-application-name'
  | 'parser-divergence-setting'
  | 'transaction-end'
  | 'transaction-escape'
  | 'transaction-read-write'
  | 'prepare'
  | 'execute'
  | 'unknown-prepared-statement'
  | 'explain-analyze'
  | 'create-function'
  | 'create-trigger'
  | 'create-rule'
  | 'create-extension'
  | 'alter-system'
  | 'load-library'
  | 'password'
  | 'row-lock'
  | 'row-security-change'
  | 'listen'
  | 'session-activity'
  | 'notify'
  | 'select-into'
  | 'cursor'
  | 'unknown-statement';

export interface SqlStatementClassification {
  kind: SqlKind;
  /** Upper-case SQL command, e.g. `SELECT`, `DELETE`, `CREATE TABLE`, `COPY`. */
  command: string;
  objects: SqlObject[];
  /** Qualified names of every function called anywhere in the statement (CTEs, subqueries, defaults…). */
  functions: string[];
  flags: SqlFlag[];
  /**
   * Operators named anywhere in the statement (`=`, `##`, `public.##`), BETWEEN as `<=` and `>=`.
   * Absent when there are none. The classifier cannot tell which function an operator runs: the
   * PostgreSQL gateway resolves them through the catalog for identities that may only read.
   */
  operators?: string[];
  /**
   * The last name of every qualified column reference (`c.touch_row` → `touch_row`): a column, or
   * a call of a one-argument function of that name when no such column exists (attribute notation).
   * Absent when there are none.
   */
  attributeNames?: string[];
  /** Types the statement casts to (`x::public.positive_int`, `CAST(… AS int)` → `pg_catalog.int4`). Absent when there are none. */
  typeNames?: string[];
  /** The libpg-query node type, for audit and debugging (`DeleteStmt`, …). */
  nodeType: string;
  /** Name given by `PREPARE name AS …`; the classification is that of the prepared statement. */
  preparedName?: string;
  /** The SQL prepared statement `DEALLOCATE name` drops, or `*` for `DEALLOCATE ALL` / `DISCARD ALL`. */
  deallocates?: string;
  /**
   * Column names whose values the statement can return other than as a plain output column
   * (through an expression, aggregate, set operation, subquery; `*` for a whole-row reference or a
   * star in such a place): see derivedColumnReferences. Absent when there are none.
   */
  derivedColumns?: string[];
  /**
   * True when derivedColumns were not computed (classified with `columnLineage: false`, or an
   * `EXECUTE` of a statement prepared so): a column rule must then assume any column may be derived.
   */
  derivedColumnsUnknown?: boolean;
}

export interface SqlClassificationOk {
  ok: true;
  /** The most privileged kind among all statements (`read` for an empty input). */
  kind: SqlKind;
  statements: SqlStatementClassification[];
  multiStatement: boolean;
  /** Union of every statement's flags. */
  flags: SqlFlag[];
  /** Literal-free text for events (see normalizeSql). */
  normalized: string;
}

export interface SqlClassificationFailure {
  ok: false;
  error: SqlClassificationError;
}

export type SqlClassification = SqlClassificationOk | SqlClassificationFailure;

export interface SqlClassifyOptions {
  /** Longest accepted input in UTF-16 code units; longer input is refused (default 1 MiB). */
  maxLength?: number;
  /**
   * Statements prepared earlier in the same session, by name, so that `EXECUTE name` is
   * classified as what it runs. Unknown names are classified `utility` (fail closed).
   */
  preparedStatements?: ReadonlyMap<string, SqlStatementClassification>;
  /**
   * Whether statements list their `derivedColumns` (default true). Only a policy that masks
   * columns by name reads them; a caller whose policy has no column rule passes false and saves
   * the lineage walk (about a fifth of a classification).
   */
  columnLineage?: boolean;
}
