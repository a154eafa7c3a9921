export type ConfigErrorCode =
  | 'CONFIG_FILE_UNREADABLE'
  | 'CONFIG_YAML_SYNTAX'
  | 'CONFIG_INVALID'
  | 'CONFIG_UNKNOWN_OVERRIDE'
  | 'CONFIG_SECRET_UNRESOLVED';

/** Where a bad value came from. */
export type ConfigIssueSource =
  | { readonly kind: 'file'; readonly file: string; readonly line: number; readonly column: number }
  | { readonly kind: 'env'; readonly variable: string }
  | { readonly kind: 'default' };

export interface ConfigIssue {
  /** JSON pointer into the config, e.g. `/services/api/http/port`. */
  readonly pointer: string;
  /** The same path dotted, e.g. `services.api.http.port`; `(root)` for the document itself. */
  readonly path: string;
  readonly message: string;
  readonly source: ConfigIssueSource;
}

/**
 * A configuration that cannot be used. Messages name the file, key and line (or the
 * environment variable), and the rule broken — never a configured value, so a secret
 * that ends up in the wrong place is not echoed to a terminal or a log.
 */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(
    readonly code: ConfigErrorCode,
    message: string,
    readonly issues: readonly ConfigIssue[] = [],
  ) {
    super(issues.length > 0 ? `${message}:\n${issues.map((i) => `  ${formatIssue(i)}`).join('\n')}` : message);
  }
}

export function formatIssue(issue: ConfigIssue): string {
  const where =
    issue.source.kind === 'file'
      ? `${issue.source.file}:${issue.source.line}:${issue.source.column}`
      : issue.source.kind === 'env'
        ? `environment variable ${issue.source.variable}`
        : 'built-in default';
  return `${where}: ${issue.path} (${issue.pointer || '/'}) ${issue.message}`;
}
