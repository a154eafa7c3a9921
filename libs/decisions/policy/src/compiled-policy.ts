import type { Protocol } from '@custodian/event-contracts';
import {
  classifyShell,
  classifyShellSync,
  type ShellClassification,
  type ShellClassifyOptions,
  type ShellFlag,
  type ShellProgram,
} from '@custodian/shell-classification';
import {
  classifySql,
  classifySqlSync,
  type SqlClassification,
  type SqlClassifyOptions,
  type SqlFlag,
  type SqlKind,
  type SqlObject,
  type SqlStatementClassification,
} from '@custodian/sql-classification';
import { NamePattern, NamePatternList } from './name-pattern.js';
import type {
  ApprovalRequirement,
  FlagMatch,
  IdentityKind,
  MaskingRule,
  NameSet,
  PolicyDocument,
  PolicyRule,
  RuleDecision,
} from './policy-document.js';

/** Who is asking, where, over what: everything a rule can match besides the command itself. */
export interface PolicyContext {
  readonly identity: PolicyIdentity;
  /** Configured connection (target) name, e.g. `orders-prod`. */
  readonly connection: string;
  readonly protocol: Protocol;
}

export interface PolicyIdentity {
  readonly subject: string;
  readonly issuer: string;
  readonly groups: readonly string[];
  readonly kind: IdentityKind;
}

export type PolicyVerdict = RuleDecision;

/** The decision for one SQL statement or one program of a command line. */
export interface UnitDecision {
  /** 0-based position of the statement or program in the input. */
  readonly index: number;
  /** SQL command (`SELECT`, `DROP TABLE`) or program name (`rm`). */
  readonly command: string;
  /** SQL statements only. */
  readonly kind?: SqlKind;
  readonly decision: PolicyVerdict;
  readonly ruleId: string | null;
  readonly reason: string;
  readonly clientMessage?: string;
  readonly approval?: ApprovalRequirement;
}

export type PolicyClassification =
  | { readonly language: 'sql'; readonly result: SqlClassification }
  | { readonly language: 'shell'; readonly result: ShellClassification };

export interface PolicyRef {
  readonly name: string;
  readonly version: number;
  readonly digest: string;
}

export interface PolicyDecision {
  /** The most restrictive decision over all statements/programs: block > require-approval > allow. */
  readonly decision: PolicyVerdict;
  /** The rule behind the decisive statement; null when the default deny (or a classification failure) decided. */
  readonly ruleId: string | null;
  readonly reason: string;
  /** Present on block: what the client is told. */
  readonly clientMessage?: string;
  /** Present on require-approval. */
  readonly approval?: ApprovalRequirement;
  readonly perStatement: readonly UnitDecision[];
  readonly classification: PolicyClassification;
  readonly policy: PolicyRef;
}

/** ruleId of the built-in deny for guarded flags no matching rule names (see README). */
export const GUARDED_FLAG_RULE_ID = 'custodian:guarded-flag';
export const DEFAULT_DENY_REASON = 'no rule matched (default deny)';

/**
 * SQL flags that only a rule naming them (in `sql.flags` any/all) can allow or hold for
 * approval. They mark statements whose effect the classifier cannot bound (unknown statements,
 * opaque code, server files and programs) or that change how later statements resolve
 * (search_path, role, transaction escapes, parser settings).
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
  'parser-divergence-setting',
  'set-role',
  'set-session-authorization',
];

/** Shell flags that only a rule naming them (in `shell.flags` any/all) can allow or hold. */
export const GUARDED_SHELL_FLAGS: readonly ShellFlag[] = ['dynamic-command', 'dynamic-code', 'shell-from-stdin'];

/** One SQL statement or program, with how to test rules against it. */
interface DecisionUnit<F extends string> {
  readonly index: number;
  readonly command: string;
  readonly kind?: SqlKind;
  readonly flags: readonly F[];
  readonly guarded: readonly F[];
  readonly matches: (rule: CompiledRule) => boolean;
  readonly namesFlag: (rule: CompiledRule, flag: F) => boolean;
}

const RESTRICTIVENESS: Readonly<Record<PolicyVerdict, number>> = { allow: 0, 'require-approval': 1, block: 2 };

export interface CompiledPolicyMetadata {
  readonly digest: string;
  /** Where the policy came from (absolute file path, or the name given to parsePolicy). */
  readonly source: string;
  /** Effective version: the file's `version`, else the loader's counter. */
  readonly version: number;
}

/** A validated policy, ready to decide commands. Immutable. */
export class CompiledPolicy {
  readonly name: string;
  readonly version: number;
  /** `version` as written in the file, if it was. */
  readonly declaredVersion: number | undefined;
  readonly digest: string;
  readonly source: string;
  readonly rules: readonly PolicyRule[];
  readonly masking: readonly MaskingRule[];
  private readonly compiledRules: readonly CompiledRule[];
  private readonly defaultMessage: string;

  constructor(
    readonly document: PolicyDocument,
    metadata: CompiledPolicyMetadata,
  ) {
    this.name = document.name;
    this.declaredVersion = document.version;
    this.version = metadata.version;
    this.digest = metadata.digest;
    this.source = metadata.source;
    this.rules = document.rules;
    this.masking = document.masking ?? [];
    const sqlSchema = document.defaults?.sqlSchema ?? 'public';
    this.compiledRules = document.rules.map((rule) => new CompiledRule(rule, sqlSchema));
    this.defaultMessage = document.defaults?.message ?? `Blocked by policy "${document.name}": no rule permits this command.`;
  }

  get ref(): PolicyRef {
    return { name: this.name, version: this.version, digest: this.digest };
  }

  /** Classifies SQL with the PostgreSQL parser and decides it. */
  async decideSql(context: PolicyContext, sql: string | Uint8Array, options?: SqlClassifyOptions): Promise<PolicyDecision> {
    return this.decideSqlClassification(context, await classifySql(sql, options));
  }

  /** Decides SQL synchronously; the parser must be loaded (`loadSqlClassifier`). */
  decideSqlSync(context: PolicyContext, sql: string | Uint8Array, options?: SqlClassifyOptions): PolicyDecision {
    return this.decideSqlClassification(context, classifySqlSync(sql, options));
  }

  /** Decides an existing classification (e.g. one made with the session's prepared statements). */
  decideSqlClassification(context: PolicyContext, classification: SqlClassification): PolicyDecision {
    const wrapped: PolicyClassification = { language: 'sql', result: classification };
    if (!classification.ok) return this.classificationFailure(wrapped, classification.error.code, classification.error.position);
    const rules = this.compiledRules.filter((rule) => rule.matchesContext(context));
    if (classification.statements.length === 0) return this.emptyInput(wrapped, rules, 'empty query: nothing to execute');
    const units = classification.statements.map((statement, index) =>
      this.decideUnit(rules, {
        index,
        command: statement.command,
        kind: statement.kind,
        flags: statement.flags,
        guarded: GUARDED_SQL_FLAGS,
        matches: (rule) => rule.matchesSqlStatement(statement),
        namesFlag: (rule, flag) => rule.namesSqlFlag(flag),
      }),
    );
    return this.combine(units, wrapped);
  }

  /** Classifies a shell command line with the bash parser and decides every program it runs. */
  async decideShell(context: PolicyContext, command: string, options?: ShellClassifyOptions): Promise<PolicyDecision> {
    return this.decideShellClassification(context, await classifyShell(command, options));
  }

  /** Decides a command line synchronously; the parser must be loaded (`loadShellClassifier`). */
  decideShellSync(context: PolicyContext, command: string, options?: ShellClassifyOptions): PolicyDecision {
    return this.decideShellClassification(context, classifyShellSync(command, options));
  }

  decideShellClassification(context: PolicyContext, classification: ShellClassification): PolicyDecision {
    const wrapped: PolicyClassification = { language: 'shell', result: classification };
    if (!classification.ok) return this.classificationFailure(wrapped, classification.error.code, classification.error.position);
    const rules = this.compiledRules.filter((rule) => rule.matchesContext(context));
    // Assignments alone (`PATH=/evil`) run nothing but change what later commands resolve to.
    if (classification.programs.length === 0) return this.defaultDeny(wrapped, 'no program to decide (default deny)');
    const flags = classification.flags;
    const units = classification.programs.map((program, index) =>
      this.decideUnit(rules, {
        index,
        command: program.name,
        flags,
        guarded: GUARDED_SHELL_FLAGS,
        matches: (rule) => rule.matchesShellProgram(program, flags),
        namesFlag: (rule, flag) => rule.namesShellFlag(flag),
      }),
    );
    return this.combine(units, wrapped);
  }

  /**
   * First rule in file order that matches the unit decides it. A rule that would allow or hold a
   * unit carrying a guarded flag it does not name is passed over; when nothing else matches, the
   * built-in guard blocks with a reason naming the flag.
   */
  private decideUnit<F extends string>(rules: readonly CompiledRule[], unit: DecisionUnit<F>): UnitDecision {
    const { index, command, kind, flags, guarded, matches, namesFlag } = unit;
    const base = { index, command, ...(kind === undefined ? {} : { kind }) };
    const present = guarded.filter((flag) => flags.includes(flag));
    let passedOver: { rule: CompiledRule; flag: F } | undefined;
    for (const rule of rules) {
      if (!matches(rule)) continue;
      const { decision } = rule.rule;
      if (decision !== 'block') {
        const unnamed = present.find((flag) => !namesFlag(rule, flag));
        if (unnamed !== undefined) {
          passedOver ??= { rule, flag: unnamed };
          continue;
        }
      }
      return { ...base, ...rule.verdict() };
    }
    if (passedOver !== undefined) {
      return {
        ...base,
        decision: 'block',
        ruleId: GUARDED_FLAG_RULE_ID,
        reason: `flag ${passedOver.flag} is only allowed by a rule that names it; rule ${passedOver.rule.rule.id} does not (built-in guard)`,
        clientMessage: `Blocked by policy "${this.name}": ${command} is flagged ${passedOver.flag}, which no rule permits.`,
      };
    }
    return { ...base, decision: 'block', ruleId: null, reason: DEFAULT_DENY_REASON, clientMessage: this.defaultMessage };
  }

  private combine(units: readonly UnitDecision[], classification: PolicyClassification): PolicyDecision {
    let decisive = units[0]!;
    for (const unit of units) if (RESTRICTIVENESS[unit.decision] > RESTRICTIVENESS[decisive.decision]) decisive = unit;
    const multiple = units.length > 1;
    const noun = classification.language === 'sql' ? 'statement' : 'program';
    const label = (unit: UnitDecision): string => (multiple ? `${noun} ${unit.index + 1} (${unit.command}): ${unit.reason}` : unit.reason);
    if (decisive.decision === 'require-approval') {
      const held = units.filter((unit) => unit.decision === 'require-approval');
      const approval = mergeApprovals(held);
      if (approval === undefined) {
        const rules = [...new Set(held.map((unit) => unit.ruleId))].join(', ');
        return {
          decision: 'block',
          ruleId: decisive.ruleId,
          reason: `statements need approval from disjoint approver groups (rules ${rules}); send them separately`,
          clientMessage: `Blocked by policy "${this.name}": these statements need approval from different approvers; send them separately.`,
          perStatement: units,
          classification,
          policy: this.ref,
        };
      }
      return { decision: 'require-approval', ruleId: decisive.ruleId, reason: label(decisive), approval, perStatement: units, classification, policy: this.ref };
    }
    return {
      decision: decisive.decision,
      ruleId: decisive.ruleId,
      reason: label(decisive),
      ...(decisive.clientMessage === undefined ? {} : { clientMessage: decisive.clientMessage }),
      perStatement: units,
      classification,
      policy: this.ref,
    };
  }

  private classificationFailure(classification: PolicyClassification, code: string, position: number | undefined): PolicyDecision {
    const at = position === undefined ? '' : ` at offset ${position}`;
    return {
      decision: 'block',
      ruleId: null,
      // The parser's own message can quote the input (literals, secrets): events get the code only.
      reason: `${code}: the command could not be classified${at} (fail closed)`,
      clientMessage: `Blocked by policy "${this.name}": the command could not be parsed (${code}).`,
      perStatement: [],
      classification,
      policy: this.ref,
    };
  }

  private defaultDeny(classification: PolicyClassification, reason: string): PolicyDecision {
    return { decision: 'block', ruleId: null, reason, clientMessage: this.defaultMessage, perStatement: [], classification, policy: this.ref };
  }

  /**
   * Input with nothing to run (an empty query, which PostgreSQL answers with EmptyQueryResponse
   * and drivers send as a liveness probe) is allowed when an `allow` rule without command
   * criteria covers this identity and connection; otherwise the default deny applies.
   */
  private emptyInput(classification: PolicyClassification, rules: readonly CompiledRule[], reason: string): PolicyDecision {
    const rule = rules.find((candidate) => candidate.rule.decision === 'allow' && candidate.allowsAnyCommand());
    if (rule === undefined) return this.defaultDeny(classification, DEFAULT_DENY_REASON);
    return { decision: 'allow', ruleId: rule.rule.id, reason, perStatement: [], classification, policy: this.ref };
  }
}

/**
 * Several held statements: one approval must satisfy every rule involved, so approvers must be
 * in a group every rule accepts, as many as the strictest rule wants, within the shortest timeout.
 */
function mergeApprovals(units: readonly UnitDecision[]): ApprovalRequirement | undefined {
  const approvals = units.map((unit) => unit.approval).filter((approval): approval is ApprovalRequirement => approval !== undefined);
  const first = approvals[0];
  if (first === undefined) return undefined;
  if (approvals.every((approval) => approval === first)) return first;
  const groups = first.approverGroups.filter((group) => approvals.every((approval) => approval.approverGroups.includes(group)));
  if (groups.length === 0) return undefined;
  const windows = approvals.map((approval) => (approval.grant === 'window' ? approval.windowSeconds : undefined));
  const onlyWindows = windows.every((seconds) => seconds !== undefined);
  return {
    approverGroups: groups,
    required: Math.max(...approvals.map((approval) => approval.required)),
    timeoutSeconds: Math.min(...approvals.map((approval) => approval.timeoutSeconds)),
    ...(onlyWindows ? { grant: 'window' as const, windowSeconds: Math.min(...windows.map((seconds) => seconds ?? 0)) } : { grant: 'once' as const }),
  };
}

interface NormalisedFlagMatch<F extends string> {
  readonly any?: readonly F[];
  readonly all?: readonly F[];
  readonly none?: readonly F[];
}

function normaliseFlags<F extends string>(match: FlagMatch<F> | undefined): NormalisedFlagMatch<F> | undefined {
  if (match === undefined) return undefined;
  return isList(match) ? { any: match } : match;
}

function flagsMatch<F extends string>(match: NormalisedFlagMatch<F> | undefined, flags: readonly F[]): boolean {
  if (match === undefined) return true;
  if (match.any !== undefined && !match.any.some((flag) => flags.includes(flag))) return false;
  if (match.all !== undefined && !match.all.every((flag) => flags.includes(flag))) return false;
  if (match.none !== undefined && match.none.some((flag) => flags.includes(flag))) return false;
  return true;
}

function isList<T>(value: readonly T[] | object): value is readonly T[] {
  return Array.isArray(value);
}

/** `only`/`any` name criteria; each name may have several candidate spellings (see README). */
class NameCriterion {
  private readonly only: NamePatternList | undefined;
  private readonly any: NamePatternList | undefined;

  constructor(set: NameSet, patterns: (sources: readonly string[]) => NamePatternList) {
    const normalised = isList(set) ? { only: set } : set;
    this.only = normalised.only === undefined ? undefined : patterns(normalised.only);
    this.any = normalised.any === undefined ? undefined : patterns(normalised.any);
  }

  matches(names: readonly (readonly string[])[]): boolean {
    const { only, any } = this;
    if (only !== undefined && !names.every((candidates) => candidates.every((name) => only.matches(name)))) return false;
    if (any !== undefined && !names.some((candidates) => candidates.some((name) => any.matches(name)))) return false;
    return true;
  }
}

class CompiledRule {
  private readonly connections: NamePatternList | undefined;
  private readonly objects: NameCriterion | undefined;
  private readonly functions: NameCriterion | undefined;
  private readonly sqlFlags: NormalisedFlagMatch<SqlFlag> | undefined;
  private readonly shellFlags: NormalisedFlagMatch<ShellFlag> | undefined;
  private readonly commands: ReadonlySet<string> | undefined;
  private readonly programs: readonly { readonly pattern: NamePattern; readonly byPath: boolean }[] | undefined;

  constructor(
    readonly rule: PolicyRule,
    private readonly sqlSchema: string,
  ) {
    const { match } = rule;
    this.connections = match.connections === undefined ? undefined : new NamePatternList(match.connections);
    const sql = match.sql;
    this.objects = sql?.objects === undefined ? undefined : new NameCriterion(sql.objects, (sources) => new NamePatternList(sources, '.'));
    // A function glob without a schema also names the built-in (pg_catalog) function.
    this.functions =
      sql?.functions === undefined
        ? undefined
        : new NameCriterion(sql.functions, (sources) => new NamePatternList(sources.flatMap((s) => (s.includes('.') ? [s] : [s, `pg_catalog.${s}`])), '.'));
    this.sqlFlags = normaliseFlags(sql?.flags);
    this.commands = sql?.commands === undefined ? undefined : new Set(sql.commands.map((command) => command.toUpperCase()));
    this.shellFlags = normaliseFlags(match.shell?.flags);
    this.programs = match.shell?.programs?.map((source) =>
      source.includes('/') ? { pattern: new NamePattern(source, '/'), byPath: true } : { pattern: new NamePattern(source), byPath: false },
    );
  }

  matchesContext(context: PolicyContext): boolean {
    const { identity, protocols } = this.rule.match;
    if (identity?.subjects !== undefined && !identity.subjects.includes(context.identity.subject)) return false;
    if (identity?.issuers !== undefined && !identity.issuers.includes(context.identity.issuer)) return false;
    if (identity?.groups !== undefined && !identity.groups.some((group) => context.identity.groups.includes(group))) return false;
    if (identity?.kinds !== undefined && !identity.kinds.includes(context.identity.kind)) return false;
    if (this.connections !== undefined && !this.connections.matches(context.connection)) return false;
    if (protocols !== undefined && !protocols.includes(context.protocol)) return false;
    return true;
  }

  /** No sql/shell criteria: the rule is about who may use which connection. */
  allowsAnyCommand(): boolean {
    return this.rule.match.sql === undefined && this.rule.match.shell === undefined;
  }

  matchesSqlStatement(statement: SqlStatementClassification): boolean {
    if (this.rule.match.shell !== undefined) return false;
    const sql = this.rule.match.sql;
    if (sql === undefined) return true;
    if (sql.kinds !== undefined && !sql.kinds.includes(statement.kind)) return false;
    if (this.commands !== undefined && !this.commands.has(statement.command.toUpperCase())) return false;
    if (this.objects !== undefined && !this.objects.matches(statement.objects.map((object) => this.relationCandidates(object)))) return false;
    if (this.functions !== undefined && !this.functions.matches(statement.functions.map((name) => [name]))) return false;
    return flagsMatch(this.sqlFlags, statement.flags);
  }

  matchesShellProgram(program: ShellProgram, flags: readonly ShellFlag[]): boolean {
    if (this.rule.match.sql !== undefined) return false;
    if (this.rule.match.shell === undefined) return true;
    if (this.programs !== undefined && !this.programs.some(({ pattern, byPath }) => pattern.matches(byPath ? program.path : program.name))) return false;
    return flagsMatch(this.shellFlags, flags);
  }

  namesSqlFlag(flag: SqlFlag): boolean {
    return this.sqlFlags?.any?.includes(flag) === true || this.sqlFlags?.all?.includes(flag) === true;
  }

  namesShellFlag(flag: ShellFlag): boolean {
    return this.shellFlags?.any?.includes(flag) === true || this.shellFlags?.all?.includes(flag) === true;
  }

  verdict(): Pick<UnitDecision, 'decision' | 'ruleId' | 'reason' | 'clientMessage' | 'approval'> {
    const { id, decision, message, approval } = this.rule;
    switch (decision) {
      case 'allow':
        return { decision, ruleId: id, reason: `allowed by rule ${id}` };
      case 'block':
        return { decision, ruleId: id, reason: `blocked by rule ${id}`, clientMessage: message ?? `Blocked by policy rule ${id}.` };
      case 'require-approval':
        return { decision, ruleId: id, reason: `approval required by rule ${id}`, ...(approval === undefined ? {} : { approval }) };
    }
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
