import { SqlClassificationError } from './errors.js';
import { normalizeCheckedText } from './normalize-sql.js';
import { derivedColumnReferences } from './column-lineage.js';
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
  try {
    const text = checkedSqlText(input, options.maxLength ?? DEFAULT_MAX_SQL_LENGTH);
    const { statements: trees } = parsePostgres(text);
    const prepared = new PreparedInThisText(options.preparedStatements);
    const statements: SqlStatementClassification[] = [];
    for (const tree of trees) {
      const statement = StatementAnalysis.classify(tree, prepared);
      if (readsSessionActivity(statement)) statement.flags = [...statement.flags, 'session-activity' as const].sort();
      const derived = derivedColumnReferences(tree);
      if (derived.length > 0) statement.derivedColumns = derived;
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
    return {
      ok: true,
      kind: mostPrivilegedKind(statements.map((statement) => statement.kind)),
      statements,
      multiStatement,
      flags: [...flags].sort(),
      normalized: normalizeCheckedText(text),
      fingerprint: fingerprintPostgres(text),
    };
  } catch (error) {
    if (error instanceof SqlClassificationError) return { ok: false, error };
    // JavaScript stack exhaustion on pathological trees: refuse, do not crash the gateway.
    if (error instanceof RangeError) return { ok: false, error: new SqlClassificationError('SQL_TOO_COMPLEX', error.message, undefined, { cause: error }) };
    throw error;
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

  constructor(private readonly session: ReadonlyMap<string, SqlStatementClassification> | undefined) {}

  get(name: string): SqlStatementClassification | undefined {
    const added = this.added.get(name);
    if (added !== undefined) return added;
    if (this.droppedAll || this.dropped.has(name)) return undefined;
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
