import type { Protocol } from '@custodian/event-contracts';
import { NamePatternList } from './name-pattern.js';
import type { ApprovalRequirement, IdentityKind, MaskingRule, PolicyDocument, PolicyRule, RuleDecision } from './policy-document.js';
import {
  POLICY_LANGUAGE_NAMES,
  PROTOCOL_LANGUAGES,
  PolicyMatchError,
  type AnyPolicyLanguage,
  type PolicyLanguage,
  type PolicyLanguageName,
  type PolicyUnit,
  type UnitMatcher,
} from './policy-language.js';

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

/** The decision for one unit: a SQL statement, a program of a command line, a request, a tool call, a message. */
export interface UnitDecision {
  /** 0-based position of the unit in the input. */
  readonly index: number;
  /** What the unit is (`SELECT`, `rm`, `POST /v1/orders`…), see PolicyUnit.command. */
  readonly command: string;
  /** The language's category of the unit (SQL statements: read, write, ddl…). */
  readonly kind?: string;
  readonly decision: PolicyVerdict;
  readonly ruleId: string | null;
  readonly reason: string;
  readonly clientMessage?: string;
  readonly approval?: ApprovalRequirement;
}

export interface PolicyRef {
  readonly name: string;
  readonly version: number;
  readonly digest: string;
}

export interface PolicyDecision<Classification = unknown> {
  /** The most restrictive decision over all units: block > require-approval > allow. */
  readonly decision: PolicyVerdict;
  /** The rule behind the decisive unit; null when the default deny (or a classification failure) decided. */
  readonly ruleId: string | null;
  readonly reason: string;
  /** Present on block: what the client is told. */
  readonly clientMessage?: string;
  /** Present on require-approval. */
  readonly approval?: ApprovalRequirement;
  /** The language that classified the input. */
  readonly language: PolicyLanguageName;
  /** One decision per unit, in input order (empty when the input has none or could not be classified). */
  readonly units: readonly UnitDecision[];
  /** The language's classification of the input (SqlClassification, ShellClassification…). */
  readonly classification: Classification;
  readonly policy: PolicyRef;
}

/** May this identity use this connection at all (checked once at login)? */
export interface ConnectionAuthorization {
  readonly permitted: boolean;
  /** The first rule that permits it, when permitted. */
  readonly ruleId?: string;
  readonly reason: string;
}

/** ruleId of the built-in deny for guarded flags no matching rule names (see README). */
export const GUARDED_FLAG_RULE_ID = 'custodian:guarded-flag';
export const DEFAULT_DENY_REASON = 'no rule matched (default deny)';

const RESTRICTIVENESS: Readonly<Record<PolicyVerdict, number>> = { allow: 0, 'require-approval': 1, block: 2 };

export interface CompiledPolicyMetadata {
  readonly digest: string;
  /** Where the policy came from (absolute file path, or the name given to parsePolicy). */
  readonly source: string;
  /** Effective version: the file's `version`, else the loader's counter. */
  readonly version: number;
}

/**
 * How one rule applies to the units of one language: it has no language block (it matches every
 * unit), a block for another language (it matches none), or a compiled block for this one.
 */
type RuleUnitMatcher = { readonly kind: 'unconditional' } | { readonly kind: 'other-language' } | { readonly kind: 'block'; readonly matcher: UnitMatcher<PolicyUnit> };

/** The compiled blocks of every rule for one language, or the error that stopped compiling one. */
type LanguageMatchers = { readonly ok: true; readonly rules: readonly RuleUnitMatcher[] } | { readonly ok: false; readonly ruleId: string; readonly error: unknown };

interface ApplicableRule {
  readonly rule: CompiledRule;
  readonly unitMatcher: RuleUnitMatcher;
}

const MAX_CACHED_CONTEXTS_PER_IDENTITY = 64;

/** A validated policy, ready to decide commands. Immutable (matchers are compiled once per language and cached). */
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
  private readonly matchers = new WeakMap<object, LanguageMatchers>();
  /** identity → a language's compiled matchers → `connection NUL protocol` → applicable rules. */
  private readonly applicableCache = new WeakMap<PolicyIdentity, WeakMap<object, Map<string, readonly ApplicableRule[]>>>();

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
    this.compiledRules = document.rules.map((rule) => new CompiledRule(rule));
    this.defaultMessage = document.defaults?.message ?? `Blocked by policy "${document.name}": no rule permits this command.`;
  }

  get ref(): PolicyRef {
    return { name: this.name, version: this.version, digest: this.digest };
  }

  /**
   * Compiles every rule's block for these languages now, so that a criterion a language cannot
   * compile is reported at load (the loaders turn the PolicyMatchError into file:line: key).
   * Throws PolicyMatchError with keys from the document root.
   */
  prepare(languages: readonly AnyPolicyLanguage[]): void {
    for (const language of languages) {
      const compiled = this.matchersFor(language as unknown as PolicyLanguage);
      if (!compiled.ok) {
        const index = this.rules.findIndex((rule) => rule.id === compiled.ruleId);
        const inner = compiled.error instanceof PolicyMatchError ? compiled.error : new PolicyMatchError([], String(compiled.error));
        throw new PolicyMatchError(['rules', String(index), 'match', language.name, ...inner.keys], inner.message);
      }
    }
  }

  /**
   * Classifies the input with the language and decides every unit. Synchronous: the language
   * must be ready (`await language.ready()` once per process).
   */
  decide<Name extends PolicyLanguageName, Input, Classification, Unit extends PolicyUnit>(
    language: PolicyLanguage<Name, Input, Classification, Unit>,
    context: PolicyContext,
    input: Input,
  ): PolicyDecision<Classification> {
    return this.decideClassification(language, context, language.classify(input));
  }

  /** Decides a classification the language made earlier (the caller needed it for something else too). */
  decideClassification<Name extends PolicyLanguageName, Input, Classification, Unit extends PolicyUnit>(
    language: PolicyLanguage<Name, Input, Classification, Unit>,
    context: PolicyContext,
    classification: Classification,
  ): PolicyDecision<Classification> {
    const outcome = new DecisionBuilder(this, language, classification);
    const units = language.units(classification);
    if (!units.ok) return outcome.classificationFailure(units.code, units.position);
    const compiled = this.matchersFor(language as unknown as PolicyLanguage);
    if (!compiled.ok) return outcome.unusablePolicy(compiled.ruleId);
    const applicable = this.applicableRules(compiled, context);
    if (units.units.length === 0) {
      if (language.whenEmpty.decision === 'deny') return outcome.defaultDeny(language.whenEmpty.reason);
      const rule = applicable.find(({ rule: candidate, unitMatcher }) => candidate.rule.decision === 'allow' && unitMatcher.kind === 'unconditional');
      if (rule === undefined) return outcome.defaultDeny(DEFAULT_DENY_REASON);
      return outcome.emptyAllowed(rule.rule.rule.id, language.whenEmpty.reason);
    }
    let decisions: UnitDecision[];
    try {
      decisions = units.units.map((unit, index) => this.decideUnit(applicable, language.guardedFlags, unit, index));
    } catch {
      // A language must not throw while matching; if one does, nothing is let through.
      return outcome.classificationFailure('POLICY_EVALUATION_FAILED', undefined);
    }
    return outcome.combine(decisions);
  }

  /**
   * Whether any allow / require-approval rule covers this identity, connection and protocol. A
   * rule with a language block counts only for the protocols that language serves
   * (PROTOCOL_LANGUAGES): a `sql:` rule never opens an MCP, HTTP, LLM or SSH session. Block rules
   * and the default deny cannot open a session, so an identity no rule mentions never reaches the target.
   */
  authorizeConnection(context: PolicyContext): ConnectionAuthorization {
    const rule = this.permittingRules(context)[0];
    if (rule !== undefined) return { permitted: true, ruleId: rule.id, reason: `rule ${rule.id} covers this identity on ${context.connection}` };
    return { permitted: false, reason: `no rule of policy "${this.name}" lets this identity use connection ${JSON.stringify(context.connection)} over ${context.protocol}` };
  }

  /**
   * The allow and require-approval rules that cover this identity, connection and protocol (a rule
   * with a language block only for that language's protocols), in policy order: everything the
   * session could ever be let do comes from one of these (adapters use it to open an upstream
   * session with no more rights than that, e.g. read-only).
   */
  permittingRules(context: PolicyContext): readonly PolicyRule[] {
    const language = PROTOCOL_LANGUAGES[context.protocol];
    return this.compiledRules
      .filter((rule) => rule.rule.decision !== 'block' && (rule.language === undefined || rule.language === language) && rule.matchesContext(context))
      .map((rule) => rule.rule);
  }

  /**
   * A block the gateway decides itself, outside any rule (a protocol feature that bypasses
   * classification, bytes it cannot decode, a limit), recorded like any policy decision. `ruleId`
   * names the built-in reason (`custodian:…`).
   */
  gatewayBlock(language: PolicyLanguageName, ruleId: string, reason: string, clientMessage: string): PolicyDecision<undefined> {
    return { decision: 'block', ruleId, reason, clientMessage, language, units: [], classification: undefined, policy: this.ref };
  }

  /** @internal Used by DecisionBuilder. */
  get defaultClientMessage(): string {
    return this.defaultMessage;
  }

  /**
   * The rules of this language that apply to the context, in file order. Cached per (identity,
   * connection, protocol, language) when the identity is frozen (the gateway's session identity is:
   * the event factory freezes it), so a session matches its context once, not per statement; a new
   * policy object starts with an empty cache. An identity that could still change is matched afresh.
   */
  private applicableRules(compiled: Extract<LanguageMatchers, { ok: true }>, context: PolicyContext): readonly ApplicableRule[] {
    const { identity } = context;
    const cacheable = Object.isFrozen(identity) && Object.isFrozen(identity.groups);
    const key = `${context.connection}\u0000${context.protocol}`;
    let byContext: Map<string, readonly ApplicableRule[]> | undefined;
    if (cacheable) {
      const perIdentity = this.applicableCache.get(identity);
      byContext = perIdentity?.get(compiled);
      const hit = byContext?.get(key);
      if (hit !== undefined) return hit;
      if (byContext === undefined) {
        byContext = new Map();
        if (perIdentity === undefined) this.applicableCache.set(identity, new WeakMap([[compiled, byContext]]));
        else perIdentity.set(compiled, byContext);
      }
    }
    const applicable: ApplicableRule[] = [];
    this.compiledRules.forEach((rule, index) => {
      const unitMatcher = compiled.rules[index]!;
      if (unitMatcher.kind !== 'other-language' && rule.matchesContext(context)) applicable.push({ rule, unitMatcher });
    });
    // Bounded: connections and protocols are configuration, and the map dies with the identity.
    if (byContext !== undefined && byContext.size < MAX_CACHED_CONTEXTS_PER_IDENTITY) byContext.set(key, applicable);
    return applicable;
  }

  private matchersFor(language: PolicyLanguage): LanguageMatchers {
    const cached = this.matchers.get(language);
    if (cached !== undefined) return cached;
    const rules: RuleUnitMatcher[] = [];
    let compiled: LanguageMatchers | undefined;
    for (const rule of this.compiledRules) {
      if (rule.language === undefined) rules.push({ kind: 'unconditional' });
      else if (rule.language !== language.name) rules.push({ kind: 'other-language' });
      else {
        try {
          const block = rule.rule.match[language.name];
          rules.push({ kind: 'block', matcher: language.compileMatch(block as never, { defaults: this.document.defaults ?? {} }) });
        } catch (error) {
          compiled = { ok: false, ruleId: rule.rule.id, error };
          break;
        }
      }
    }
    compiled ??= { ok: true, rules };
    this.matchers.set(language, compiled);
    return compiled;
  }

  /**
   * First rule in file order that matches the unit decides it. A rule that would allow or hold a
   * unit carrying a guarded flag it does not name is passed over; when nothing else matches, the
   * built-in guard blocks with a reason naming the flag.
   */
  private decideUnit(
    rules: readonly ApplicableRule[],
    guarded: readonly string[],
    unit: PolicyUnit,
    index: number,
  ): UnitDecision {
    const base = { index, command: unit.command, ...(unit.kind === undefined ? {} : { kind: unit.kind }) };
    const present = guarded.filter((flag) => unit.flags.includes(flag));
    let passedOver: { rule: CompiledRule; flag: string } | undefined;
    for (const { rule, unitMatcher } of rules) {
      if (unitMatcher.kind === 'block' && !unitMatcher.matcher.matches(unit)) continue;
      if (rule.rule.decision !== 'block') {
        const unnamed = present.find((flag) => unitMatcher.kind !== 'block' || !unitMatcher.matcher.names(flag));
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
        clientMessage: `Blocked by policy "${this.name}": ${unit.command} is flagged ${passedOver.flag}, which no rule permits.`,
      };
    }
    return { ...base, decision: 'block', ruleId: null, reason: DEFAULT_DENY_REASON, clientMessage: this.defaultMessage };
  }
}

/** Builds the PolicyDecision shapes for one language and classification. */
class DecisionBuilder<Classification> {
  private readonly language: PolicyLanguageName;
  private readonly unitNoun: string;

  constructor(
    private readonly policy: CompiledPolicy,
    language: { readonly name: PolicyLanguageName; readonly unitNoun: string },
    private readonly classification: Classification,
  ) {
    this.language = language.name;
    this.unitNoun = language.unitNoun;
  }

  private decision(fields: Omit<PolicyDecision<Classification>, 'language' | 'classification' | 'policy'>): PolicyDecision<Classification> {
    return { ...fields, language: this.language, classification: this.classification, policy: this.policy.ref };
  }

  combine(units: readonly UnitDecision[]): PolicyDecision<Classification> {
    let decisive = units[0]!;
    for (const unit of units) if (RESTRICTIVENESS[unit.decision] > RESTRICTIVENESS[decisive.decision]) decisive = unit;
    const multiple = units.length > 1;
    const noun = this.unitNoun;
    const label = (unit: UnitDecision): string => (multiple ? `${noun} ${unit.index + 1} (${unit.command}): ${unit.reason}` : unit.reason);
    if (decisive.decision === 'require-approval') {
      const held = units.filter((unit) => unit.decision === 'require-approval');
      const approval = mergeApprovals(held);
      if (approval === undefined) {
        const rules = [...new Set(held.map((unit) => unit.ruleId))].join(', ');
        return this.decision({
          decision: 'block',
          ruleId: decisive.ruleId,
          reason: `${noun}s need approval from disjoint approver groups (rules ${rules}); send them separately`,
          clientMessage: `Blocked by policy "${this.policy.name}": these ${noun}s need approval from different approvers; send them separately.`,
          units,
        });
      }
      return this.decision({ decision: 'require-approval', ruleId: decisive.ruleId, reason: label(decisive), approval, units });
    }
    return this.decision({
      decision: decisive.decision,
      ruleId: decisive.ruleId,
      reason: label(decisive),
      ...(decisive.clientMessage === undefined ? {} : { clientMessage: decisive.clientMessage }),
      units,
    });
  }

  classificationFailure(code: string, position: number | undefined): PolicyDecision<Classification> {
    const at = position === undefined ? '' : ` at offset ${position}`;
    return this.decision({
      decision: 'block',
      ruleId: null,
      // The parser's own message can quote the input (literals, secrets): events get the code only.
      reason: `${code}: the command could not be classified${at} (fail closed)`,
      clientMessage: `Blocked by policy "${this.policy.name}": the command could not be parsed (${code}).`,
      units: [],
    });
  }

  /** A rule's block for this language could not be compiled (only when the policy was loaded without `languages`). */
  unusablePolicy(ruleId: string): PolicyDecision<Classification> {
    return this.decision({
      decision: 'block',
      ruleId: null,
      reason: `POLICY_MATCH_INVALID: rule ${ruleId} has a ${this.language} criterion that cannot be compiled (fail closed)`,
      clientMessage: `Blocked by policy "${this.policy.name}": the policy cannot decide ${this.language} commands.`,
      units: [],
    });
  }

  defaultDeny(reason: string): PolicyDecision<Classification> {
    return this.decision({ decision: 'block', ruleId: null, reason, clientMessage: this.policy.defaultClientMessage, units: [] });
  }

  emptyAllowed(ruleId: string, reason: string): PolicyDecision<Classification> {
    return this.decision({ decision: 'allow', ruleId, reason, units: [] });
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

/** A rule's context criteria (identity, connection, protocol), compiled once. */
class CompiledRule {
  private readonly connections: NamePatternList | undefined;
  /** The language of the rule's match block, if it has one. */
  readonly language: PolicyLanguageName | undefined;

  constructor(readonly rule: PolicyRule) {
    const { match } = rule;
    this.connections = match.connections === undefined ? undefined : new NamePatternList(match.connections);
    this.language = POLICY_LANGUAGE_NAMES.find((name) => match[name] !== undefined);
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
}
