export type PolicyErrorCode =
  /** The file could not be read (missing, permissions, not UTF-8). */
  | 'POLICY_FILE_UNREADABLE'
  /** Not well-formed YAML. */
  | 'POLICY_YAML_SYNTAX'
  /** Well-formed YAML that breaks the policy schema or a cross-field rule (duplicate ids). */
  | 'POLICY_INVALID'
  /** A reload declares a version lower than, or equal to, the active one with different content. */
  | 'POLICY_VERSION_NOT_INCREASED';

/** One problem in a policy file, located by file, line, column and key. */
export interface PolicyIssue {
  readonly file: string;
  /** 1-based. */
  readonly line: number;
  /** 1-based. */
  readonly column: number;
  /** Dotted key path, e.g. `rules[2].approval.required`; `(root)` for the document itself. */
  readonly key: string;
  readonly message: string;
}

export function formatPolicyIssue(issue: PolicyIssue): string {
  return `${issue.file}:${issue.line}:${issue.column}: ${issue.key}: ${issue.message}`;
}

/**
 * A policy that cannot be activated. The message lists every issue as `file:line:column: key:
 * message`; policy values are never echoed (a message or description could hold anything).
 */
export class PolicyError extends Error {
  override readonly name = 'PolicyError';
  constructor(
    readonly code: PolicyErrorCode,
    message: string,
    readonly issues: readonly PolicyIssue[] = [],
    options?: { cause?: unknown },
  ) {
    super(issues.length > 0 ? `${message}:\n${issues.map((i) => `  ${formatPolicyIssue(i)}`).join('\n')}` : message, options);
  }
}
