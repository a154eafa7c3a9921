import { formatCheckpoint, parseCheckpoint, type Checkpoint } from './checkpoint.js';
import { CheckpointInconsistentError, CheckpointMalformedError, KeyConflictError, ProofInvalidError, formatKeyId } from './errors.js';
import { EMPTY_TREE_ROOT } from './hashing.js';
import { type MerkleTree } from './merkle-tree.js';
import { type NoteSigner, type NoteVerifier } from './note-keys.js';
import { verifyConsistency } from './proof-verification.js';
import { openNote, signNote } from './signed-note.js';

export interface SignedCheckpoint {
  readonly checkpoint: Checkpoint;
  /** The C2SP signed note: checkpoint body, blank line, signature lines. */
  readonly note: string;
}

export interface CheckpointSignerOptions {
  /** The log's origin line; every checkpoint signed names it. */
  readonly origin: string;
  /** The current key: every new checkpoint is signed with it, and only it. */
  readonly signer: NoteSigner;
  /** Retired keys, still accepted when verifying checkpoints signed before a rotation. */
  readonly previousKeys?: readonly NoteVerifier[];
  /**
   * The last checkpoint this log signed (its note, e.g. read back from storage after a restart). It
   * is verified with the known keys before it is trusted as the point every next checkpoint must extend.
   */
  readonly lastSigned?: string;
}

/**
 * Signs a log's checkpoints and refuses to sign a fork: each new checkpoint must come with a
 * consistency proof from the last one it signed (CHECKPOINT_INCONSISTENT otherwise), so a signing
 * key in this object cannot be used to sign two histories. Supports key rotation; keeps private
 * keys inside its NoteSigner.
 */
export class CheckpointSigner {
  readonly origin: string;
  #current: NoteSigner;
  readonly #retired: NoteVerifier[] = [];
  #last: SignedCheckpoint | undefined;

  constructor(options: CheckpointSignerOptions) {
    this.origin = options.origin;
    this.#current = options.signer;
    for (const key of options.previousKeys ?? []) this.addRetired(key);
    if (options.lastSigned !== undefined) this.#last = this.open(options.lastSigned);
  }

  /** The last checkpoint signed (or resumed from), if any. */
  get lastSigned(): SignedCheckpoint | undefined {
    return this.#last;
  }

  /** vkey of the current signing key. */
  get vkey(): string {
    return this.#current.vkey;
  }

  /** Verifiers for every key this log has signed with: current first. */
  get verifiers(): readonly NoteVerifier[] {
    return [this.#current.verifier(), ...this.#retired];
  }

  /**
   * Signs the checkpoint for (size, rootHash) if `consistencyProof` proves it extends the last
   * signed checkpoint (for the first checkpoint, or the same size, the proof is empty).
   */
  sign(head: { readonly size: number; readonly rootHash: Uint8Array; readonly extensions?: readonly string[] }, consistencyProof: readonly Uint8Array[]): SignedCheckpoint {
    const checkpoint: Checkpoint = { origin: this.origin, size: head.size, rootHash: Buffer.from(head.rootHash), extensions: [...(head.extensions ?? [])] };
    const body = formatCheckpoint(checkpoint);
    const last = this.#last?.checkpoint ?? { size: 0, rootHash: EMPTY_TREE_ROOT };
    if (checkpoint.size < last.size) {
      throw new CheckpointInconsistentError(`checkpoint size ${checkpoint.size} is smaller than the last signed size ${last.size}`);
    }
    try {
      verifyConsistency(last.size, checkpoint.size, consistencyProof, last.rootHash, checkpoint.rootHash);
    } catch (error) {
      if (error instanceof ProofInvalidError) {
        throw new CheckpointInconsistentError(`checkpoint (size ${checkpoint.size}) does not extend the last signed one (size ${last.size}): ${error.message}`, { cause: error });
      }
      throw error;
    }
    const signed = { checkpoint, note: signNote(body, [this.#current]) };
    this.#last = signed;
    return signed;
  }

  /** Reads the tree's current head and its consistency proof from the last signed size, and signs it. */
  async signTree(tree: MerkleTree, extensions: readonly string[] = []): Promise<SignedCheckpoint> {
    const size = tree.size;
    const rootHash = await tree.rootAt(size);
    const from = Math.min(this.#last?.checkpoint.size ?? 0, size);
    const proof = await tree.consistencyProof(from, size);
    return this.sign({ size, rootHash, extensions }, proof.hashes);
  }

  /**
   * Makes `next` the signing key. The current key stays known for verification. Key IDs must be
   * distinct, so that a signature line always names exactly one key.
   */
  rotate(next: NoteSigner): void {
    const previous = this.#current;
    if ([previous.verifier(), ...this.#retired].some((k) => k.keyId === next.keyId)) {
      throw new KeyConflictError(`key ID ${formatKeyId(next.keyId)} is already used by a key of this log`);
    }
    this.#retired.unshift(previous.verifier());
    this.#current = next;
  }

  /** Verifies a signed checkpoint of this log with any known key and parses it. */
  open(note: string): SignedCheckpoint {
    const opened = openNote(note, this.verifiers);
    const checkpoint = parseCheckpoint(opened.text);
    if (checkpoint.origin !== this.origin) throw new CheckpointMalformedError(`checkpoint origin ${JSON.stringify(checkpoint.origin)} is not ${JSON.stringify(this.origin)}`);
    return { checkpoint, note };
  }

  toJSON(): { origin: string; keys: string[]; lastSignedSize: number | null } {
    return { origin: this.origin, keys: this.verifiers.map((v) => `${v.name}+${formatKeyId(v.keyId)}`), lastSignedSize: this.#last?.checkpoint.size ?? null };
  }

  private addRetired(key: NoteVerifier): void {
    if ([this.#current.verifier(), ...this.#retired].some((k) => k.keyId === key.keyId)) {
      throw new KeyConflictError(`key ID ${formatKeyId(key.keyId)} is used by two keys of this log`);
    }
    this.#retired.push(key);
  }
}

/** Verifies a signed checkpoint with the given log keys and checks its origin (for auditors and clients). */
export function openCheckpoint(note: string | Uint8Array, origin: string, verifiers: readonly NoteVerifier[]): SignedCheckpoint {
  const opened = openNote(note, verifiers);
  const checkpoint = parseCheckpoint(opened.text);
  if (checkpoint.origin !== origin) throw new CheckpointMalformedError(`checkpoint origin ${JSON.stringify(checkpoint.origin)} is not ${JSON.stringify(origin)}`);
  return { checkpoint, note: typeof note === 'string' ? note : Buffer.from(note).toString('utf8') };
}
