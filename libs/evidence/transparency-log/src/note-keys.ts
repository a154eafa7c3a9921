// Ed25519 keys for C2SP signed notes, in the vkey/skey text format of Go's golang.org/x/mod/sumdb/note:
//   vkey: <name>+<key ID hex>+<base64(type ‖ 32-byte public key)>
//   skey: PRIVATE+KEY+<name>+<key ID hex>+<base64(type ‖ 32-byte seed)>
// key ID = first 4 bytes (big-endian) of SHA-256(name ‖ 0x0A ‖ type ‖ public key). Type 0x01 signs
// notes directly; type 0x04 is a c2sp.org/tlog-cosignature key (see cosignature.ts).
import { createPrivateKey, createPublicKey, generateKeyPairSync, sign as cryptoSign, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import { inspect } from 'node:util';
import { decodeBase64Strict, encodeBase64 } from './base64-strict.js';
import { KeyInvalidError, formatKeyId } from './errors.js';
import { sha256Digest } from './hashing.js';

export const ED25519_KEY_TYPE = 0x01;
export const ED25519_COSIGNATURE_KEY_TYPE = 0x04;
export type NoteKeyType = typeof ED25519_KEY_TYPE | typeof ED25519_COSIGNATURE_KEY_TYPE;

const PKCS8_ED25519_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
const SPKI_ED25519_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');
const ED25519_KEY_SIZE = 32;
export const ED25519_SIGNATURE_SIZE = 64;

/** Checks a signed-note key name: non-empty, no Unicode space (as Go's unicode.IsSpace), no '+'. */
const GO_UNICODE_SPACE = /[\t\n\v\f\r \u0085\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]/u;
export function isValidKeyName(name: string): boolean {
  return name.length > 0 && isWellFormedUtf16(name) && !GO_UNICODE_SPACE.test(name) && !name.includes('+');
}

// Lone surrogates do not survive a UTF-8 round trip (they become U+FFFD).
function isWellFormedUtf16(text: string): boolean {
  return Buffer.from(text, 'utf8').toString('utf8') === text;
}

function assertKeyName(name: string): void {
  if (!isValidKeyName(name)) throw new KeyInvalidError(`invalid key name ${JSON.stringify(name)}: must be non-empty without spaces or '+'`);
}

/** Key ID of a key: SHA-256(name ‖ 0x0A ‖ type ‖ public key)[0:4] as a big-endian uint32. */
export function computeKeyId(name: string, type: NoteKeyType, publicKey: Uint8Array): number {
  const digest = sha256Digest(Buffer.concat([Buffer.from(`${name}\n`, 'utf8'), Buffer.of(type), publicKey]));
  return digest.readUInt32BE(0);
}

/** Verifies signatures by one key in a signed note. `verify` gets the note text and the signature bytes after the key ID. */
export interface NoteVerifier {
  readonly name: string;
  readonly keyId: number;
  verify(message: Uint8Array, signature: Uint8Array): boolean;
}

/** Signs note text with one key. Implementations keep the private key to themselves. */
export interface NoteSigner {
  readonly name: string;
  readonly keyId: number;
  /** The signature bytes that follow the key ID in a signature line. */
  sign(message: Uint8Array): Buffer;
  /** The verifier key (vkey) for this signer's public key. */
  readonly vkey: string;
  verifier(): NoteVerifier;
}

/**
 * A private key in skey text form. It says "[redacted]" to JSON, String(), template literals and
 * util.inspect; only `reveal()` gives the text, for writing it to a secret store.
 */
export class SecretKeyText {
  readonly #text: string;
  constructor(text: string) {
    this.#text = text;
  }
  reveal(): string {
    return this.#text;
  }
  toJSON(): string {
    return '[redacted]';
  }
  toString(): string {
    return '[redacted]';
  }
  [Symbol.toPrimitive](): string {
    return '[redacted]';
  }
  [inspect.custom](): string {
    return 'SecretKeyText [redacted]';
  }
}

export interface ParsedVerifierKey {
  readonly name: string;
  readonly keyId: number;
  readonly type: NoteKeyType;
  readonly publicKey: Buffer;
}

/** Parses and checks a vkey (the key ID must match the key). */
export function parseVerifierKey(vkey: string): ParsedVerifierKey {
  // Base64 may contain '+': cut the first two fields off, as Go's strings.Cut does.
  const parts = cutFields(vkey, 2);
  if (!parts) throw new KeyInvalidError('a verifier key is <name>+<key ID hex>+<base64 key>');
  const [name, idHex, keyB64] = parts;
  assertKeyName(name);
  const keyId = parseKeyIdHex(idHex);
  const raw = decodeBase64Strict(keyB64);
  if (!raw || raw.length !== 1 + ED25519_KEY_SIZE) throw new KeyInvalidError(`verifier key ${name}: not a base64 type byte and 32-byte Ed25519 key`);
  const type = keyType(raw[0]!);
  const publicKey = raw.subarray(1);
  if (computeKeyId(name, type, publicKey) !== keyId) throw new KeyInvalidError(`verifier key ${name}: key ID ${idHex} does not match the key`);
  return { name, keyId, type, publicKey: Buffer.from(publicKey) };
}

export function formatVerifierKey(name: string, type: NoteKeyType, publicKey: Uint8Array): string {
  assertKeyName(name);
  if (publicKey.length !== ED25519_KEY_SIZE) throw new KeyInvalidError('an Ed25519 public key is 32 bytes');
  return `${name}+${formatKeyId(computeKeyId(name, type, publicKey))}+${encodeBase64(Buffer.concat([Buffer.of(type), publicKey]))}`;
}

/** The first `count` '+'-separated fields and the rest, or undefined when there are fewer. */
function cutFields<N extends 2 | 4>(text: string, count: N): (N extends 2 ? [string, string, string] : [string, string, string, string, string]) | undefined {
  const out: string[] = [];
  let rest = text;
  for (let i = 0; i < count; i += 1) {
    const plus = rest.indexOf('+');
    if (plus < 0) return undefined;
    out.push(rest.slice(0, plus));
    rest = rest.slice(plus + 1);
  }
  out.push(rest);
  return out as N extends 2 ? [string, string, string] : [string, string, string, string, string];
}

function parseKeyIdHex(hex: string): number {
  if (!/^[0-9a-fA-F]{8}$/.test(hex)) throw new KeyInvalidError('a key ID is 8 hex digits');
  return Number.parseInt(hex, 16);
}

function keyType(byte: number): NoteKeyType {
  if (byte !== ED25519_KEY_TYPE && byte !== ED25519_COSIGNATURE_KEY_TYPE) throw new KeyInvalidError(`unsupported key type 0x${byte.toString(16).padStart(2, '0')}`);
  return byte;
}

/** An Ed25519 private key (seed) as a cached KeyObject, with its raw public key. */
export interface Ed25519KeyMaterial {
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
  readonly rawPublicKey: Buffer;
}

export function ed25519FromSeed(seed: Uint8Array): Ed25519KeyMaterial {
  if (seed.length !== ED25519_KEY_SIZE) throw new KeyInvalidError('an Ed25519 seed is 32 bytes');
  const privateKey = createPrivateKey({ key: Buffer.concat([PKCS8_ED25519_PREFIX, seed]), format: 'der', type: 'pkcs8' });
  const publicKey = createPublicKey(privateKey);
  const spki = publicKey.export({ format: 'der', type: 'spki' });
  return { privateKey, publicKey, rawPublicKey: Buffer.from(spki.subarray(spki.length - ED25519_KEY_SIZE)) };
}

export function ed25519PublicKeyObject(rawPublicKey: Uint8Array): KeyObject {
  return createPublicKey({ key: Buffer.concat([SPKI_ED25519_PREFIX, rawPublicKey]), format: 'der', type: 'spki' });
}

export function generateEd25519Seed(): Buffer {
  const { privateKey } = generateKeyPairSync('ed25519');
  const pkcs8 = privateKey.export({ format: 'der', type: 'pkcs8' });
  return Buffer.from(pkcs8.subarray(pkcs8.length - ED25519_KEY_SIZE));
}

/** Parses an skey into its name, declared type and seed; checks the key ID against the derived public key. */
export function parseSignerKey(skey: string | SecretKeyText): { name: string; keyId: number; type: NoteKeyType; key: Ed25519KeyMaterial } {
  const text = typeof skey === 'string' ? skey : skey.reveal();
  const parts = cutFields(text, 4);
  // Errors never quote the key text: it is secret.
  if (!parts || parts[0] !== 'PRIVATE' || parts[1] !== 'KEY') throw new KeyInvalidError('a signer key is PRIVATE+KEY+<name>+<key ID hex>+<base64 key>');
  const [, , name, idHex, keyB64] = parts;
  assertKeyName(name);
  const keyId = parseKeyIdHex(idHex);
  const raw = decodeBase64Strict(keyB64);
  if (!raw || raw.length !== 1 + ED25519_KEY_SIZE) throw new KeyInvalidError(`signer key ${name}: not a base64 type byte and 32-byte Ed25519 seed`);
  const type = keyType(raw[0]!);
  const key = ed25519FromSeed(raw.subarray(1));
  raw.fill(0);
  if (computeKeyId(name, type, key.rawPublicKey) !== keyId) throw new KeyInvalidError(`signer key ${name}: key ID ${idHex} does not match the key`);
  return { name, keyId, type, key };
}

export function formatSignerKey(name: string, type: NoteKeyType, seed: Uint8Array, rawPublicKey: Uint8Array): SecretKeyText {
  assertKeyName(name);
  const keyId = computeKeyId(name, type, rawPublicKey);
  return new SecretKeyText(`PRIVATE+KEY+${name}+${formatKeyId(keyId)}+${encodeBase64(Buffer.concat([Buffer.of(type), seed]))}`);
}

/** Verifies plain Ed25519 note signatures (key type 0x01), as note.NewVerifier does. */
export class Ed25519NoteVerifier implements NoteVerifier {
  readonly name: string;
  readonly keyId: number;
  readonly vkey: string;
  readonly #publicKey: KeyObject;

  constructor(vkey: string) {
    const parsed = parseVerifierKey(vkey);
    if (parsed.type !== ED25519_KEY_TYPE) throw new KeyInvalidError(`verifier key ${parsed.name}: type 0x04 is a cosignature key, not a note signing key`);
    this.name = parsed.name;
    this.keyId = parsed.keyId;
    this.vkey = vkey;
    this.#publicKey = ed25519PublicKeyObject(parsed.publicKey);
  }

  verify(message: Uint8Array, signature: Uint8Array): boolean {
    return signature.length === ED25519_SIGNATURE_SIZE && cryptoVerify(null, message, this.#publicKey, signature);
  }

  toJSON(): { name: string; keyId: string; vkey: string } {
    return { name: this.name, keyId: formatKeyId(this.keyId), vkey: this.vkey };
  }
}

/**
 * Signs notes with an Ed25519 key (type 0x01). The private key lives in a #private field as a
 * KeyObject: JSON, util.inspect and enumeration show only the name, key ID and vkey.
 */
export class Ed25519NoteSigner implements NoteSigner {
  readonly name: string;
  readonly keyId: number;
  readonly vkey: string;
  readonly #privateKey: KeyObject;
  readonly #verifier: Ed25519NoteVerifier;

  private constructor(name: string, keyId: number, key: Ed25519KeyMaterial) {
    this.name = name;
    this.keyId = keyId;
    this.#privateKey = key.privateKey;
    this.vkey = formatVerifierKey(name, ED25519_KEY_TYPE, key.rawPublicKey);
    this.#verifier = new Ed25519NoteVerifier(this.vkey);
  }

  /** A signer from an skey (as note.NewSigner accepts). */
  static fromSkey(skey: string | SecretKeyText): Ed25519NoteSigner {
    const parsed = parseSignerKey(skey);
    if (parsed.type !== ED25519_KEY_TYPE) throw new KeyInvalidError(`signer key ${parsed.name}: type 0x04 is a cosignature key, not a note signing key`);
    return new Ed25519NoteSigner(parsed.name, parsed.keyId, parsed.key);
  }

  /** A new random key (as note.GenerateKey): the signer, its vkey, and its skey for a secret store. */
  static generate(name: string): { signer: Ed25519NoteSigner; vkey: string; skey: SecretKeyText } {
    assertKeyName(name);
    const seed = generateEd25519Seed();
    const key = ed25519FromSeed(seed);
    const skey = formatSignerKey(name, ED25519_KEY_TYPE, seed, key.rawPublicKey);
    seed.fill(0);
    const signer = new Ed25519NoteSigner(name, computeKeyId(name, ED25519_KEY_TYPE, key.rawPublicKey), key);
    return { signer, vkey: signer.vkey, skey };
  }

  sign(message: Uint8Array): Buffer {
    return cryptoSign(null, message, this.#privateKey);
  }

  verifier(): NoteVerifier {
    return this.#verifier;
  }

  toJSON(): { name: string; keyId: string; vkey: string } {
    return { name: this.name, keyId: formatKeyId(this.keyId), vkey: this.vkey };
  }

  [inspect.custom](): string {
    return `Ed25519NoteSigner { name: ${JSON.stringify(this.name)}, keyId: ${formatKeyId(this.keyId)} }`;
  }
}
