import type { Protocol } from '@custodian/event-contracts';
import type { ShellFlag } from '@custodian/shell-classification';
import type { SqlFlag, SqlKind } from '@custodian/sql-classification';

// The policy file as schemas/policy/policy.schema.json describes it, after validation.

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
}

export interface RuleMatch {
  readonly identity?: IdentityMatch;
  readonly connections?: readonly string[];
  readonly protocols?: readonly Protocol[];
  readonly sql?: SqlMatch;
  readonly shell?: ShellMatch;
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
export type FlagMatch<F extends string> = readonly F[] | { readonly any?: readonly F[]; readonly all?: readonly F[]; readonly none?: readonly F[] };

export interface SqlMatch {
  readonly kinds?: readonly SqlKind[];
  readonly commands?: readonly string[];
  readonly objects?: NameSet;
  readonly functions?: NameSet;
  readonly flags?: FlagMatch<SqlFlag>;
}

export interface ShellMatch {
  readonly programs?: readonly string[];
  readonly flags?: FlagMatch<ShellFlag>;
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
