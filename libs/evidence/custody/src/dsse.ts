// DSSE (github.com/secure-systems-lab/dsse, protocol v1) envelopes over in-toto Statement v1,
// Ed25519 signatures: the one implementation behind both the evidence pack's attestation
// (@custodian/evidence) and the per-session custody statements. cosign's
// `verify-blob-attestation --key` reads these envelopes.
import { createHash, createPublicKey, sign as cryptoSign, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import { CustodyError } from './errors.js';

export const IN_TOTO_PAYLOAD_TYPE = 'application/vnd.in-toto+json';
export const IN_TOTO_STATEMENT_V1 = 'https://in-toto.io/Statement/v1';

export interface InTotoSubject {
  readonly name: string;
  readonly digest: { readonly sha256: string };
}

export interface InTotoStatement<P = unknown> {
  readonly _type: typeof IN_TOTO_STATEMENT_V1;
  readonly subject: readonly InTotoSubject[];
  readonly predicateType: string;
  readonly predicate: P;
}

export interface DsseSignature {
  readonly keyid: string;
  /** base64 of the signature over PAE(payloadType, payload). */
  readonly sig: string;
}

export interface DsseEnvelope {
  readonly payloadType: string;
  /** base64 of the payload bytes. */
  readonly payload: string;
  readonly signatures: readonly DsseSignature[];
}

/** Anything that signs bytes with Ed25519 (a transparency-log NoteSigner fits; so does `ed25519DsseSigner`). */
export interface DsseSigner {
  sign(message: Uint8Array): Uint8Array;
}

/** DSSE pre-authentication encoding: "DSSEv1" SP len(type) SP type SP len(body) SP body (lengths in bytes, decimal). */
export function preAuthEncoding(payloadType: string, payload: Uint8Array): Buffer {
  const type = Buffer.from(payloadType, 'utf8');
  return Buffer.concat([Buffer.from(`DSSEv1 ${type.length} `, 'utf8'), type, Buffer.from(` ${payload.length} `, 'utf8'), payload]);
}

export function sha256Hex(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** A DsseSigner over an Ed25519 private KeyObject. */
export function ed25519DsseSigner(privateKey: KeyObject): DsseSigner {
  if (privateKey.type !== 'private' || privateKey.asymmetricKeyType !== 'ed25519') throw new CustodyError('CUSTODY_KEY_INVALID', 'the signing key must be an Ed25519 private key');
  // Ed25519 signs the message itself (no pre-hash): algorithm null.
  return { sign: (message) => cryptoSign(null, message, privateKey) };
}

/** An Ed25519 public key from PEM (SubjectPublicKeyInfo). Errors never quote the text. */
export function ed25519PublicKeyFromPem(pem: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPublicKey({ key: pem, format: 'pem' });
  } catch {
    throw new CustodyError('CUSTODY_KEY_INVALID', 'not a PEM public key');
  }
  if (key.asymmetricKeyType !== 'ed25519') throw new CustodyError('CUSTODY_KEY_INVALID', `the public key is ${key.asymmetricKeyType ?? 'of an unknown type'}, not Ed25519`);
  return key;
}

/** Signs a statement: the payload is the statement's JSON, the signature is over its PAE. */
export function signStatementEnvelope(statement: InTotoStatement, signer: DsseSigner, keyid: string): DsseEnvelope {
  const payload = Buffer.from(JSON.stringify(statement), 'utf8');
  const sig = signer.sign(preAuthEncoding(IN_TOTO_PAYLOAD_TYPE, payload));
  return { payloadType: IN_TOTO_PAYLOAD_TYPE, payload: payload.toString('base64'), signatures: [{ keyid, sig: Buffer.from(sig).toString('base64') }] };
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/**
 * Canonical base64 only: Buffer.from(…, 'base64') skips bad characters and ignores the unused low
 * bits of the last character, so a changed byte could decode to the same bytes and go unnoticed.
 */
function decodeBase64(text: string, what: string): Buffer {
  const bytes = text.length % 4 === 0 && BASE64.test(text) ? Buffer.from(text, 'base64') : undefined;
  if (!bytes || bytes.toString('base64') !== text) throw new CustodyError('CUSTODY_ENVELOPE_MALFORMED', `the ${what} is not canonical base64`);
  return bytes;
}

export interface OpenedStatement<P = unknown> {
  readonly statement: InTotoStatement<P>;
  /** Index in `keys` of the key that verified. */
  readonly keyIndex: number;
  /** The keyid of the signature that verified. */
  readonly keyid: string;
}

/**
 * Verifies a DSSE envelope (JSON text or parsed) with any of `keys` and returns its in-toto
 * statement. Throws CustodyError: CUSTODY_ENVELOPE_MALFORMED (JSON, payload type, base64, not a
 * Statement v1) or CUSTODY_SIGNATURE_INVALID, the message naming what failed.
 */
export function openStatementEnvelope<P = unknown>(envelope: string | unknown, keys: readonly KeyObject[]): OpenedStatement<P> {
  let parsed: unknown = envelope;
  if (typeof envelope === 'string') {
    try {
      parsed = JSON.parse(envelope);
    } catch {
      throw new CustodyError('CUSTODY_ENVELOPE_MALFORMED', 'the envelope is not JSON');
    }
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new CustodyError('CUSTODY_ENVELOPE_MALFORMED', 'the envelope is not a JSON object');
  const e = parsed as Partial<Record<keyof DsseEnvelope, unknown>>;
  if (e.payloadType !== IN_TOTO_PAYLOAD_TYPE) throw new CustodyError('CUSTODY_ENVELOPE_MALFORMED', `the envelope's payloadType is ${JSON.stringify(e.payloadType)}, not ${IN_TOTO_PAYLOAD_TYPE}`);
  if (typeof e.payload !== 'string' || !Array.isArray(e.signatures) || e.signatures.length === 0) throw new CustodyError('CUSTODY_ENVELOPE_MALFORMED', 'the envelope has no payload or no signature');
  const payload = decodeBase64(e.payload, 'envelope payload');
  const pae = preAuthEncoding(IN_TOTO_PAYLOAD_TYPE, payload);
  let keyIndex = -1;
  let keyid = '';
  for (const s of e.signatures as unknown[]) {
    const signature = s as Partial<DsseSignature> | null;
    if (typeof signature?.sig !== 'string') continue;
    const sig = decodeBase64(signature.sig, 'signature');
    keyIndex = keys.findIndex((k) => sig.length === 64 && cryptoVerify(null, pae, k, sig));
    if (keyIndex >= 0) {
      keyid = typeof signature.keyid === 'string' ? signature.keyid : '';
      break;
    }
  }
  if (keyIndex < 0) throw new CustodyError('CUSTODY_SIGNATURE_INVALID', `the DSSE signature does not verify with ${keys.length === 1 ? 'the key' : `any of the ${keys.length} keys`} given`);
  let statement: InTotoStatement<P>;
  try {
    statement = JSON.parse(payload.toString('utf8')) as InTotoStatement<P>;
  } catch {
    throw new CustodyError('CUSTODY_ENVELOPE_MALFORMED', 'the envelope payload is not JSON');
  }
  if (typeof statement !== 'object' || statement === null || statement._type !== IN_TOTO_STATEMENT_V1 || !Array.isArray(statement.subject)) {
    throw new CustodyError('CUSTODY_ENVELOPE_MALFORMED', 'the envelope payload is not an in-toto Statement v1');
  }
  return { statement, keyIndex, keyid };
}
