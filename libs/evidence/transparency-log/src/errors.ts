export type TransparencyLogErrorCode =
  | 'TREE_INVALID_ARGUMENT'
  | 'TREE_SIZE_CONFLICT'
  | 'TREE_STORAGE_CORRUPT'
  | 'TREE_CLOSED'
  | 'PROOF_INVALID'
  | 'PROOF_MALFORMED'
  | 'NOTE_MALFORMED'
  | 'NOTE_SIGNATURE_INVALID'
  | 'NOTE_UNVERIFIED'
  | 'KEY_INVALID'
  | 'KEY_CONFLICT'
  | 'CHECKPOINT_MALFORMED'
  | 'CHECKPOINT_INCONSISTENT'
  | 'COSIGNATURE_INVALID';

/** Base class of every error this library raises; `code` is stable, the message is for people. */
export class TransparencyLogError extends Error {
  override name = 'TransparencyLogError';
  constructor(
    readonly code: TransparencyLogErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** A caller passed an index, size or hash the tree cannot accept. */
export class InvalidTreeArgumentError extends TransparencyLogError {
  override name = 'InvalidTreeArgumentError';
  constructor(message: string) {
    super('TREE_INVALID_ARGUMENT', message);
  }
}

/** The stored tree is not the size the writer expected: another writer appended, or state is stale. */
export class TreeSizeConflictError extends TransparencyLogError {
  override name = 'TreeSizeConflictError';
  constructor(
    readonly expectedSize: number,
    readonly actualSize: number,
  ) {
    super('TREE_SIZE_CONFLICT', `tree storage has size ${actualSize}, the writer expected ${expectedSize}`);
  }
}

/** Storage holds something a correct append could not have produced (a missing node, a wrong-length hash). */
export class TreeStorageCorruptError extends TransparencyLogError {
  override name = 'TreeStorageCorruptError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('TREE_STORAGE_CORRUPT', message, options);
  }
}

export class TreeClosedError extends TransparencyLogError {
  override name = 'TreeClosedError';
  constructor() {
    super('TREE_CLOSED', 'the Merkle tree is closed');
  }
}

/** An inclusion or consistency proof does not prove what it claims. */
export class ProofInvalidError extends TransparencyLogError {
  override name = 'ProofInvalidError';
  constructor(message: string) {
    super('PROOF_INVALID', message);
  }
}

/** A `c2sp.org/tlog-proof@v1` text does not parse. */
export class ProofMalformedError extends TransparencyLogError {
  override name = 'ProofMalformedError';
  constructor(message: string) {
    super('PROOF_MALFORMED', message);
  }
}

/** Text is not a well-formed C2SP signed note. */
export class NoteMalformedError extends TransparencyLogError {
  override name = 'NoteMalformedError';
  constructor(message: string) {
    super('NOTE_MALFORMED', message);
  }
}

/** A signature by a key the verifier knows does not verify: the note was altered or forged. */
export class NoteSignatureInvalidError extends TransparencyLogError {
  override name = 'NoteSignatureInvalidError';
  constructor(
    readonly keyName: string,
    readonly keyId: number,
  ) {
    super('NOTE_SIGNATURE_INVALID', `invalid signature by ${keyName} (key ID ${formatKeyId(keyId)})`);
  }
}

/** None of the note's signatures is by a key the verifier knows. */
export class NoteUnverifiedError extends TransparencyLogError {
  override name = 'NoteUnverifiedError';
  constructor(message = 'no signature by a known key') {
    super('NOTE_UNVERIFIED', message);
  }
}

/** A key string (vkey/skey) or key name is malformed, or its key ID does not match its key. */
export class KeyInvalidError extends TransparencyLogError {
  override name = 'KeyInvalidError';
  constructor(message: string) {
    super('KEY_INVALID', message);
  }
}

/** Two different keys share a name and key ID, so signatures could not be told apart. */
export class KeyConflictError extends TransparencyLogError {
  override name = 'KeyConflictError';
  constructor(message: string) {
    super('KEY_CONFLICT', message);
  }
}

/** A checkpoint body does not follow c2sp.org/tlog-checkpoint, or names another origin. */
export class CheckpointMalformedError extends TransparencyLogError {
  override name = 'CheckpointMalformedError';
  constructor(message: string) {
    super('CHECKPOINT_MALFORMED', message);
  }
}

/** Signing this checkpoint would fork or rewrite the history already signed. */
export class CheckpointInconsistentError extends TransparencyLogError {
  override name = 'CheckpointInconsistentError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('CHECKPOINT_INCONSISTENT', message, options);
  }
}

export class CosignatureInvalidError extends TransparencyLogError {
  override name = 'CosignatureInvalidError';
  constructor(message: string) {
    super('COSIGNATURE_INVALID', message);
  }
}

export function formatKeyId(keyId: number): string {
  return keyId.toString(16).padStart(8, '0');
}
