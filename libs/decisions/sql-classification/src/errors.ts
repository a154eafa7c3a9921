export type SqlClassificationErrorCode =
  /** The PostgreSQL grammar rejected the text. */
  | 'SQL_PARSE_ERROR'
  /** Longer than the configured limit. */
  | 'SQL_INPUT_TOO_LARGE'
  /** NUL bytes, invalid UTF-8 or lone surrogates: the parser and the server could read different text. */
  | 'SQL_INVALID_INPUT'
  /** Nested deeper than the classifier walks; refused rather than partially classified. */
  | 'SQL_TOO_COMPLEX';

/**
 * Why a text could not be classified. The policy layer denies every such text (fail closed),
 * so the classifier returns this instead of a guess.
 */
export class SqlClassificationError extends Error {
  override name = 'SqlClassificationError';
  constructor(
    readonly code: SqlClassificationErrorCode,
    message: string,
    /** 0-based UTF-16 offset into the input where the parser stopped, when known. */
    readonly position?: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
