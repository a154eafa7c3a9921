export type EvidenceErrorCode =
  | 'EVIDENCE_CANONICALIZATION_FAILED'
  | 'EVIDENCE_LOG_STATE_CORRUPT'
  | 'EVIDENCE_LOG_CLOSED'
  /** The log's database cannot be reached (PostgreSQL state); nothing is known to be wrong with the log. */
  | 'EVIDENCE_LOG_UNAVAILABLE'
  | 'EVIDENCE_KEY_INVALID'
  | 'EVIDENCE_COSIGNATURE_REJECTED'
  | 'EVIDENCE_CATALOGUE_INVALID'
  | 'EVIDENCE_SCOPE_INVALID'
  | 'EVIDENCE_NOT_CHECKPOINTED'
  | 'EVIDENCE_LEAF_MISMATCH'
  | 'EVIDENCE_PACK_MALFORMED'
  | 'EVIDENCE_PACK_SELF_CHECK_FAILED';

/** Base class of this library's errors; `code` is stable, the message is for people. */
export class EvidenceError extends Error {
  override name = 'EvidenceError';
  constructor(
    readonly code: EvidenceErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
