// SQL through the policy-language interface: statements classified by the real PostgreSQL
// parser (@custodian/sql-classification), matched by kind, command, relations, functions, flags.
import {
  FlagCriterion,
  NameCriterion,
  NamePatternList,
  protocolsOfLanguage,
  type CompiledPolicy,
  type PolicyContext,
  type PolicyLanguage,
  type PolicyUnit,
  type SqlMatch,
  type UnitMatcher,
} from '@custodian/policy';
import {
  classifySqlCachedSync,
  loadSqlClassifier,
  type SqlClassification,
  type SqlClassifyOptions,
  type SqlFlag,
  type SqlObject,
  type SqlStatementClassification,
} from '@custodian/sql-classification';

/** What the SQL language decides: the text, and the session's prepared statements for `EXECUTE`. */
export interface SqlPolicyInput extends SqlClassifyOptions {
  readonly sql: string | Uint8Array;
  /**
   * The classification of exactly `sql` with these options, made elsewhere (a worker thread that
   * keeps large statements off the event loop): used as is instead of classifying again.
   */
  readonly classification?: SqlClassification;
}

/** One statement. */
export interface SqlUnit extends PolicyUnit {
  readonly kind: SqlStatementClassification['kind'];
  readonly statement: SqlStatementClassification;
}

/**
 * SQL flags that only a rule naming them (in `sql.flags` any/all) can allow or hold for
 * approval. They mark statements whose effect the classifier cannot bound (unknown statements,
 * opaque code, server files and programs) or that change how later statements resolve
 * (search_path, role, transaction escapes, parser settings), or that read other sessions' data (LISTEN, pg_stat_activity).
 */
export const GUARDED_SQL_FLAGS: readonly SqlFlag[] = [
  'unknown-statement',
  'unknown-prepared-statement',
  'dangerous-function',
  'unrecognised-function',
  'do-block',
  'copy-program',
  'copy-to-file',
  'copy-from-file',
  'alter-system',
  'load-library',
  'transaction-escape',
  'transaction-read-write',
  'set-search-path',
  // The gateway sets application_name to custodian/<session id>: a client must not rename its session (or take another's name).
  'set-application-name',
  'parser-divergence-setting',
  'set-role',
  'set-session-authorization',
  // LISTEN reads every session's notifications on a channel (agents sharing an upstream role see each other's).
  'listen',
  // pg_stat_activity shows the statements of every session of the same upstream role, literals included.
  'session-activity',
];

const MAX_SUMMARY_STATEMENTS = 50;
const MAX_SUMMARY_OBJECTS = 50;

export const sqlLanguage: PolicyLanguage<'sql', SqlPolicyInput, SqlClassification, SqlUnit> = {
  name: 'sql',
  protocols: protocolsOfLanguage('sql'),
  unitNoun: 'statement',
  guardedFlags: GUARDED_SQL_FLAGS,
  whenEmpty: { decision: 'allow-if-unconditional', reason: 'empty query: nothing to execute' },
  ready: loadSqlClassifier,
  // Agents repeat statements: classifications are cached by exact text (see classifySqlCachedSync).
  classify: ({ sql, classification, ...options }) => classification ?? classifySqlCachedSync(sql, options),
  units: (classification) =>
    classification.ok
      ? { ok: true, units: classification.statements.map((statement) => ({ command: statement.command, kind: statement.kind, flags: statement.flags, statement })) }
      : { ok: false, code: classification.error.code, ...(classification.error.position === undefined ? {} : { position: classification.error.position }) },
  compileMatch: (match, { defaults }) => new SqlMatcher(match, defaults.sqlSchema ?? 'public'),
  summary: sqlClassificationSummary,
};

/** Statement kinds that change nothing (PostgreSQL runs them in a read-only transaction). */
const NON_WRITING_KINDS: ReadonlySet<string> = new Set(['read', 'transaction']);

/**
 * Whether any rule that covers this identity on this connection could let a statement write:
 * a rule without an SQL block, without `kinds`, with a kind other than read/transaction, or one
 * that names the `transaction-read-write` flag. When none can, the adapter opens the upstream
 * session read-only, so a write hidden behind a read (a writing function in a view, an operator,
 * an overload) fails in PostgreSQL itself, whatever the classifier saw.
 */
export function sqlWritesPermitted(policy: CompiledPolicy, context: PolicyContext): boolean {
  return policy.permittingRules(context).some((rule) => {
    const sql = rule.match.sql;
    if (sql?.kinds === undefined) return true;
    if (sql.kinds.some((kind) => !NON_WRITING_KINDS.has(kind))) return true;
    return FlagCriterion.of(sql.flags)?.names('transaction-read-write') === true;
  });
}

/** The classification's shape (kinds, commands, relations, flags) without any literal, clipped to stay small. */
export function sqlClassificationSummary(classification: SqlClassification): Record<string, unknown> {
  if (!classification.ok) return { ok: false, error: classification.error.code };
  return {
    ok: true,
    kind: classification.kind,
    flags: classification.flags,
    statements: classification.statements.slice(0, MAX_SUMMARY_STATEMENTS).map((statement) => ({
      command: statement.command,
      kind: statement.kind,
      objects: statement.objects.slice(0, MAX_SUMMARY_OBJECTS).map((object) => `${object.schema === undefined ? '' : `${object.schema}.`}${object.name}`),
      flags: statement.flags,
    })),
    ...(classification.statements.length > MAX_SUMMARY_STATEMENTS ? { statementsTruncated: true } : {}),
  };
}

class SqlMatcher implements UnitMatcher<SqlUnit> {
  private readonly kinds: readonly string[] | undefined;
  private readonly commands: ReadonlySet<string> | undefined;
  private readonly objects: NameCriterion | undefined;
  private readonly functions: NameCriterion | undefined;
  private readonly flags: FlagCriterion | undefined;

  constructor(
    match: SqlMatch,
    private readonly sqlSchema: string,
  ) {
    this.kinds = match.kinds;
    this.commands = match.commands === undefined ? undefined : new Set(match.commands.map((command) => command.toUpperCase()));
    this.objects = match.objects === undefined ? undefined : new NameCriterion(match.objects, (sources) => new NamePatternList(sources, '.'));
    // A function glob without a schema also names the built-in (pg_catalog) function.
    this.functions =
      match.functions === undefined
        ? undefined
        : new NameCriterion(match.functions, (sources) => new NamePatternList(sources.flatMap((s) => (s.includes('.') ? [s] : [s, `pg_catalog.${s}`])), '.'));
    this.flags = FlagCriterion.of(match.flags);
  }

  matches({ statement }: SqlUnit): boolean {
    if (this.kinds !== undefined && !this.kinds.includes(statement.kind)) return false;
    if (this.commands !== undefined && !this.commands.has(statement.command.toUpperCase())) return false;
    if (this.objects !== undefined && !this.objects.matches(statement.objects.map((object) => this.relationCandidates(object)))) return false;
    if (this.functions !== undefined && !this.functions.matches(statement.functions.map((name) => [name]))) return false;
    return this.flags === undefined || this.flags.matches(statement.flags);
  }

  names(flag: string): boolean {
    return this.flags?.names(flag) === true;
  }

  /**
   * Names a relation could resolve to. Unqualified names are matched as the policy's default
   * schema; an unqualified `pg_*` name may also be a system catalog (pg_catalog is searched
   * first), so it must pass as both.
   */
  private relationCandidates(object: SqlObject): readonly string[] {
    if (object.schema !== undefined) return [`${object.schema}.${object.name}`];
    const inDefault = `${this.sqlSchema}.${object.name}`;
    return object.name.startsWith('pg_') ? [`pg_catalog.${object.name}`, inDefault] : [inDefault];
  }
}
