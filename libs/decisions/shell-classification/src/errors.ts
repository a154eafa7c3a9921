export type ShellClassificationErrorCode =
  /** The bash grammar found an error or had to invent a missing token. */
  | 'SHELL_PARSE_ERROR'
  /** Longer than the configured limit (default 64 KiB). */
  | 'SHELL_INPUT_TOO_LARGE'
  /** NUL bytes or lone surrogates: the parser and the shell could read different text. */
  | 'SHELL_INVALID_INPUT'
  /** Syntax or `sh -c` / `eval` strings nested deeper than the classifier follows. */
  | 'SHELL_TOO_DEEP';

/** Why a command line could not be classified; the policy layer denies it (fail closed). */
export class ShellClassificationError extends Error {
  override name = 'ShellClassificationError';
  constructor(
    readonly code: ShellClassificationErrorCode,
    message: string,
    /** 0-based offset (UTF-8 bytes, as tree-sitter reports) of the first error, when known. */
    readonly position?: number,
  ) {
    super(message);
  }
}
