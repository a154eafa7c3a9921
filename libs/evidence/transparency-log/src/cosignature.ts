// C2SP tlog-cosignature (c2sp.org/tlog-cosignature), Ed25519 only. A witness signs
//   "cosignature/v1\ntime <unix seconds>\n" ‖ checkpoint body
// and its note signature is key ID ‖ 8-byte big-endian timestamp ‖ 64-byte Ed25519 signature, where
// the key ID is computed with key type 0x04 (so a witness key never collides with a log key).
import { sign as cryptoSign, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import { inspect } from 'node:util';
import { type Checkpoint, parseCheckpoint } from './checkpoint.js';
import { CosignatureInvalidError, KeyInvalidError, formatKeyId } from './errors.js';
import {
  ED25519_COSIGNATURE_KEY_TYPE,
  ED25519_KEY_TYPE,
  ED25519_SIGNATURE_SIZE,
  computeKeyId,
  ed25519FromSeed,
  ed25519PublicKeyObject,
  formatSignerKey,
  formatVerifierKey,
  generateEd25519Seed,
  parseSignerKey,
  parseVerifierKey,
  type NoteSigner,
  type NoteVerifier,
  type SecretKeyText,
} from './note-keys.js';
import { openNote, parseNote } from './signed-note.js';

const TIMESTAMP_SIZE = 8;

/** The message a cosigner signs for `checkpointText` at `timestamp` (unix seconds). */
export function cosignedMessage(timestamp: number, checkpointText: string): Buffer {
  if (!Number.isSafeInteger(timestamp) || timestamp < 0) throw new CosignatureInvalidError(`timestamp must be a non-negative integer, got ${String(timestamp)}`);
  if (checkpointText.split('\n').length < 4) throw new CosignatureInvalidError('a cosigned note must be a checkpoint (origin, size, root hash)');
  return Buffer.from(`cosignature/v1\ntime ${timestamp}\n${checkpointText}`, 'utf8');
}

/** Verifies Ed25519 cosignature/v1 signatures of one witness. Accepts a type 0x04 vkey, or a type 0x01 vkey re-typed as 0x04 (as Go's formats/note does). */
export class Ed25519CosignatureVerifier implements NoteVerifier {
  readonly name: string;
  readonly keyId: number;
  /** The witness key as a type 0x04 vkey. */
  readonly vkey: string;
  readonly #publicKey: KeyObject;

  constructor(vkey: string) {
    const parsed = parseVerifierKey(vkey);
    this.name = parsed.name;
    this.keyId = computeKeyId(parsed.name, ED25519_COSIGNATURE_KEY_TYPE, parsed.publicKey);
    this.vkey = parsed.type === ED25519_COSIGNATURE_KEY_TYPE ? vkey : formatVerifierKey(parsed.name, ED25519_COSIGNATURE_KEY_TYPE, parsed.publicKey);
    this.#publicKey = ed25519PublicKeyObject(parsed.publicKey);
  }

  verify(message: Uint8Array, signature: Uint8Array): boolean {
    if (signature.length !== TIMESTAMP_SIZE + ED25519_SIGNATURE_SIZE) return false;
    const timestamp = Buffer.from(signature).readBigUInt64BE(0);
    if (timestamp > BigInt(Number.MAX_SAFE_INTEGER)) return false;
    let signed: Buffer;
    try {
      signed = cosignedMessage(Number(timestamp), Buffer.from(message).toString('utf8'));
    } catch {
      return false;
    }
    return cryptoVerify(null, signed, this.#publicKey, signature.subarray(TIMESTAMP_SIZE));
  }

  toJSON(): { name: string; keyId: string; vkey: string } {
    return { name: this.name, keyId: formatKeyId(this.keyId), vkey: this.vkey };
  }
}

/** A witness's Ed25519 cosigning key, for tests and for running a witness. Private key kept as a #private KeyObject. */
export class Ed25519CosignatureSigner implements NoteSigner {
  readonly name: string;
  readonly keyId: number;
  readonly vkey: string;
  readonly #privateKey: KeyObject;
  readonly #verifier: Ed25519CosignatureVerifier;
  readonly #now: () => number;

  private constructor(name: string, seed: Uint8Array, now: () => number) {
    const key = ed25519FromSeed(seed);
    this.name = name;
    this.#privateKey = key.privateKey;
    this.keyId = computeKeyId(name, ED25519_COSIGNATURE_KEY_TYPE, key.rawPublicKey);
    this.vkey = formatVerifierKey(name, ED25519_COSIGNATURE_KEY_TYPE, key.rawPublicKey);
    this.#verifier = new Ed25519CosignatureVerifier(this.vkey);
    this.#now = now;
  }

  /** From an skey of type 0x04 (or 0x01, used as a cosignature key). `now` gives unix seconds. */
  static fromSkey(skey: string | SecretKeyText, now: () => number = () => Math.floor(Date.now() / 1000)): Ed25519CosignatureSigner {
    const parsed = parseSignerKey(skey);
    if (parsed.type !== ED25519_COSIGNATURE_KEY_TYPE && parsed.type !== ED25519_KEY_TYPE) throw new KeyInvalidError('not an Ed25519 key');
    const seed = parsed.key.privateKey.export({ format: 'der', type: 'pkcs8' }).subarray(-32);
    const signer = new Ed25519CosignatureSigner(parsed.name, seed, now);
    seed.fill(0);
    return signer;
  }

  static generate(name: string, now?: () => number): { signer: Ed25519CosignatureSigner; vkey: string; skey: SecretKeyText } {
    const seed = generateEd25519Seed();
    const key = ed25519FromSeed(seed);
    const skey = formatSignerKey(name, ED25519_COSIGNATURE_KEY_TYPE, seed, key.rawPublicKey);
    const signer = new Ed25519CosignatureSigner(name, seed, now ?? (() => Math.floor(Date.now() / 1000)));
    seed.fill(0);
    return { signer, vkey: signer.vkey, skey };
  }

  /** timestamp ‖ signature over the cosigned message for the note text `message`. */
  sign(message: Uint8Array): Buffer {
    const timestamp = this.#now();
    const signed = cosignedMessage(timestamp, Buffer.from(message).toString('utf8'));
    const out = Buffer.alloc(TIMESTAMP_SIZE);
    out.writeBigUInt64BE(BigInt(timestamp), 0);
    return Buffer.concat([out, cryptoSign(null, signed, this.#privateKey)]);
  }

  verifier(): NoteVerifier {
    return this.#verifier;
  }

  toJSON(): { name: string; keyId: string; vkey: string } {
    return { name: this.name, keyId: formatKeyId(this.keyId), vkey: this.vkey };
  }

  [inspect.custom](): string {
    return `Ed25519CosignatureSigner { name: ${JSON.stringify(this.name)}, keyId: ${formatKeyId(this.keyId)} }`;
  }
}

export interface VerifiedCosignature {
  readonly name: string;
  readonly keyId: number;
  /** When the witness cosigned (unix seconds), as it states. */
  readonly timestamp: number;
}

/**
 * Verifies the cosignatures on a signed checkpoint: each named witness must have a valid
 * cosignature on it (COSIGNATURE_INVALID otherwise). The log's own signature is not checked here;
 * use openCheckpoint for that.
 */
export function verifyCosignatures(note: string | Uint8Array, witnesses: readonly Ed25519CosignatureVerifier[]): { checkpoint: Checkpoint; cosignatures: VerifiedCosignature[] } {
  const { text, signatures } = parseNote(note);
  const checkpoint = parseCheckpoint(text);
  const cosignatures: VerifiedCosignature[] = [];
  for (const witness of witnesses) {
    const sig = signatures.find((s) => s.name === witness.name && s.keyId === witness.keyId);
    if (!sig) throw new CosignatureInvalidError(`no cosignature by ${witness.name} (key ID ${formatKeyId(witness.keyId)})`);
    try {
      openNote(note, [witness]);
    } catch (error) {
      throw new CosignatureInvalidError(`cosignature by ${witness.name} does not verify: ${error instanceof Error ? error.message : String(error)}`);
    }
    cosignatures.push({ name: witness.name, keyId: witness.keyId, timestamp: Number(sig.signature.readBigUInt64BE(0)) });
  }
  return { checkpoint, cosignatures };
}
