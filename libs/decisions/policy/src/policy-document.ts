import type { Protocol } from '@custodian/event-contracts';

// The policy file as schemas/policy/policy.schema.json describes it, after validation. The match
// blocks of each language are plain data here; their meaning lives in the language plugins
// (@custodian/policy-languages), which compile them into unit matchers.

export type IdentityKind = 'human' | 'agent' | 'service';
export type RuleDecision = 'allow' | 'block' | 'require-approval';

export interface PolicyDocument {
  readonly name: string;
  readonly version?: number;
  readonly description?: string;
  readonly defaults?: PolicyDefaults;
  readonly rules: readonly PolicyRule[];
  readonly masking?: readonly MaskingRule[];
}

export interface PolicyDefaults {
  readonly decision?: 'block';
  readonly message?: string;
  readonly sqlSchema?: string;
}

export interface PolicyRule {
  readonly id: string;
  readonly description?: string;
  readonly match: RuleMatch;
  readonly decision: RuleDecision;
  readonly message?: string;
  readonly approval?: ApprovalRequirement;
  /** llm rules: mask what the rule's detectors find in the prompt before it leaves (see the schema). */
  readonly maskPrompt?: boolean;
  readonly limits?: RuleLimits;
}

/** Bounds on what a rule lets through once it allows a command. */
export interface RuleLimits {
  /** File transfers (SFTP, scp): the most bytes one file may move in each direction. */
  readonly transferBytes?: number;
}

export interface RuleMatch {
  readonly identity?: IdentityMatch;
  readonly connections?: readonly string[];
  readonly protocols?: readonly Protocol[];
  /** At most one language block per rule (the schema enforces it). */
  readonly sql?: SqlMatch;
  readonly shell?: ShellMatch;
  readonly http?: HttpMatch;
  readonly mcp?: McpMatch;
  readonly llm?: LlmMatch;
  /** Where a Kubernetes exec runs (context, not a language block). */
  readonly kubernetes?: KubernetesMatch;
}

export interface KubernetesMatch {
  readonly namespaces?: readonly string[];
  readonly pods?: readonly string[];
  readonly containers?: readonly string[];
}

/** The `match.<language>` block of each language, by language name. */
export interface LanguageMatches {
  readonly sql: SqlMatch;
  readonly shell: ShellMatch;
  readonly http: HttpMatch;
  readonly mcp: McpMatch;
  readonly llm: LlmMatch;
}

export interface IdentityMatch {
  readonly subjects?: readonly string[];
  readonly issuers?: readonly string[];
  readonly groups?: readonly string[];
  readonly kinds?: readonly IdentityKind[];
}

/** A list is shorthand for `{ only: list }`. */
export type NameSet = readonly string[] | { readonly only?: readonly string[]; readonly any?: readonly string[] };

/** A list is shorthand for `{ any: list }`. */
export type FlagMatch<F extends string = string> = readonly F[] | { readonly any?: readonly F[]; readonly all?: readonly F[]; readonly none?: readonly F[] };

export interface SqlMatch {
  /** read, transaction, write, ddl, dcl, utility. */
  readonly kinds?: readonly string[];
  readonly commands?: readonly string[];
  readonly objects?: NameSet;
  readonly functions?: NameSet;
  readonly flags?: FlagMatch;
}

export interface ShellMatch {
  readonly programs?: readonly string[];
  /** Path globs over the program's arguments (`*` within a segment, `**` any segments): at least one argument matches. */
  readonly arguments?: readonly string[];
  readonly flags?: FlagMatch;
}

/** A scalar JSON value a condition can compare with. */
export type JsonScalar = string | number | boolean | null;

/**
 * A condition on the values a JSON path (or a header, a query parameter) selects. Every key
 * given must hold. `values: all` (default): at least one value is selected and every one passes;
 * `values: any`: at least one passes. `exists` ignores `values`.
 */
export interface ValueCondition {
  readonly equals?: JsonScalar;
  readonly oneOf?: readonly JsonScalar[];
  /** Globs (`*`, `?`) over string values; any of them. */
  readonly pattern?: string | readonly string[];
  readonly exists?: boolean;
  readonly values?: 'all' | 'any';
}

/** Header and query conditions: a glob or list of globs is shorthand for `{ pattern }`. */
export type TextCondition = string | readonly string[] | ValueCondition;

export interface HttpMatch {
  readonly hosts?: readonly string[];
  readonly methods?: readonly string[];
  /** `*` one path segment, `**` any number of segments. */
  readonly paths?: readonly string[];
  readonly query?: Readonly<Record<string, TextCondition>>;
  /** Header names are case-insensitive. */
  readonly headers?: Readonly<Record<string, TextCondition>>;
  /** JSON path (`$.a.b`, `$.items[*].x`, `$..token`) → condition on the parsed JSON body. */
  readonly body?: Readonly<Record<string, ValueCondition>>;
  readonly flags?: FlagMatch;
}

/** MCP tool annotations (hints the server declares for a tool). */
export interface McpAnnotationsMatch {
  readonly readOnlyHint?: boolean;
  readonly destructiveHint?: boolean;
  readonly idempotentHint?: boolean;
  readonly openWorldHint?: boolean;
}

export interface McpMatch {
  readonly servers?: readonly string[];
  readonly methods?: readonly string[];
  readonly tools?: readonly string[];
  readonly arguments?: Readonly<Record<string, ValueCondition>>;
  readonly annotations?: McpAnnotationsMatch;
  readonly flags?: FlagMatch;
}

export interface LlmMatch {
  readonly models?: readonly string[];
  readonly maxTokens?: { readonly atMost: number };
  /** Tools offered to the model: a list means only these; `{ any }` at least one of these. */
  readonly tools?: NameSet;
  /** Masking detectors run over the prompt text; matches when any of them finds something. */
  readonly detectors?: readonly MaskingDetector[];
  readonly flags?: FlagMatch;
}

export interface ApprovalRequirement {
  /** Members of any of these groups may approve; never the requester. */
  readonly approverGroups: readonly string[];
  /** Distinct approvals needed (N of M). */
  readonly required: number;
  readonly timeoutSeconds: number;
  readonly grant: 'once' | 'window';
  /** Present exactly when grant is `window`. */
  readonly windowSeconds?: number;
}

export type MaskingDetector = 'private-key' | 'jwt' | 'secret' | 'card' | 'iban' | 'ssn' | 'email' | 'phone' | 'ipv6' | 'ipv4';

/** Consumed by the masking engine (libs/decisions/masking); the policy engine only validates and exposes it. */
export interface MaskingRule {
  readonly id: string;
  readonly description?: string;
  /** `schema.table.column`, `*` globs per segment. */
  readonly columns?: readonly string[];
  /** `$.user.ssn`, `$.items[*].card`, `$..password`. */
  readonly jsonPaths?: readonly string[];
  readonly detectors?: readonly MaskingDetector[];
  readonly strategy: 'redact' | 'partial' | 'hmac';
  readonly keepFirst?: number;
  readonly keepLast?: number;
}
