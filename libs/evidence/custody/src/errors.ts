export type CustodyErrorCode =
  /** A secret to scan for is empty, too long, or not bytes. */
  | 'CUSTODY_SECRET_INVALID'
  /** The scanner was used after finish() (its needles are wiped). */
  | 'CUSTODY_SCANNER_FINISHED'
  /** A signing or verifying key is not an Ed25519 key. */
  | 'CUSTODY_KEY_INVALID'
  /** A DSSE envelope or its in-toto statement is malformed. */
  | 'CUSTODY_ENVELOPE_MALFORMED'
  /** The DSSE signature does not verify with the key(s) given. */
  | 'CUSTODY_SIGNATURE_INVALID'
  /** The signed statement disagrees with the event that carries it. */
  | 'CUSTODY_STATEMENT_MISMATCH';

/** Base class of this library's errors; `code` is stable, the message is for people and never quotes a secret. */
export class CustodyError extends Error {
  override name = 'CustodyError';
  constructor(
    readonly code: CustodyErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
