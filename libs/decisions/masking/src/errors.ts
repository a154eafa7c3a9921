/** Every failure this library raises carries a stable `code` the caller can branch on. */
export type MaskingErrorCode =
  | 'MASKING_INVALID_KEY'
  | 'MASKING_INVALID_PATTERN'
  | 'MASKING_UNKNOWN_DETECTOR'
  | 'MASKING_STREAM_ENDED'
  | 'MASKING_INVALID_OPTION'
  | 'MASKING_JSON_INVALID'
  | 'MASKING_JSON_VALUE_TOO_LARGE';

export class MaskingError extends Error {
  readonly code: MaskingErrorCode;

  constructor(code: MaskingErrorCode, message: string) {
    super(message);
    this.code = code;
    this.name = 'MaskingError';
  }
}
