// DSSE (github.com/secure-systems-lab/dsse) envelopes over in-toto Statement v1, signed with
// Ed25519: the pack's attestation, checkable with cosign (verify-blob-attestation) or any DSSE tool.
import { createHash, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import { ed25519PublicKeyObject, type NoteSigner } from '@custodian/transparency-log';
import { EvidenceError } from '../errors.js';

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

export interface DsseEnvelope {
  readonly payloadType: string;
  /** base64 of the payload bytes. */
  readonly payload: string;
  readonly signatures: readonly { readonly keyid: string; readonly sig: string }[];
}

/** DSSE pre-authentication encoding: "DSSEv1" SP len(type) SP type SP len(body) SP body. */
export function preAuthEncoding(payloadType: string, payload: Uint8Array): Buffer {
  const type = Buffer.from(payloadType, 'utf8');
  return Buffer.concat([Buffer.from(`DSSEv1 ${type.length} `, 'utf8'), type, Buffer.from(` ${payload.length} `, 'utf8'), payload]);
}

export function sha256Hex(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Signs a statement. `signer` is an Ed25519 note signer: its signature over the PAE bytes is a plain Ed25519 signature. */
export function signStatement(statement: InTotoStatement, signer: NoteSigner, keyid: string): DsseEnvelope {
  const payload = Buffer.from(JSON.stringify(statement), 'utf8');
  const sig = signer.sign(preAuthEncoding(IN_TOTO_PAYLOAD_TYPE, payload));
  return { payloadType: IN_TOTO_PAYLOAD_TYPE, payload: payload.toString('base64'), signatures: [{ keyid, sig: sig.toString('base64') }] };
}

/** PEM (SubjectPublicKeyInfo) of a raw Ed25519 public key: the form cosign and openssl read. */
export function ed25519PublicKeyPem(rawPublicKey: Uint8Array): string {
  return ed25519PublicKeyObject(rawPublicKey).export({ format: 'pem', type: 'spki' }).toString();
}

/**
 * Verifies the envelope with any of `keys` and returns its statement. Throws
 * EVIDENCE_PACK_MALFORMED naming what failed (JSON, payload type, signature, statement type).
 */
export function openStatement(envelopeJson: string, keys: readonly KeyObject[]): { statement: InTotoStatement; keyIndex: number } {
  let envelope: DsseEnvelope;
  try {
    envelope = JSON.parse(envelopeJson) as DsseEnvelope;
  } catch {
    throw new EvidenceError('EVIDENCE_PACK_MALFORMED', 'the attestation is not JSON');
  }
  if (envelope.payloadType !== IN_TOTO_PAYLOAD_TYPE) throw new EvidenceError('EVIDENCE_PACK_MALFORMED', `the attestation's payloadType is ${JSON.stringify(envelope.payloadType)}, not ${IN_TOTO_PAYLOAD_TYPE}`);
  if (typeof envelope.payload !== 'string' || !Array.isArray(envelope.signatures) || envelope.signatures.length === 0) throw new EvidenceError('EVIDENCE_PACK_MALFORMED', 'the attestation has no payload or no signature');
  const payload = Buffer.from(envelope.payload, 'base64');
  const pae = preAuthEncoding(envelope.payloadType, payload);
  let keyIndex = -1;
  for (const s of envelope.signatures) {
    const sig = Buffer.from(typeof s.sig === 'string' ? s.sig : '', 'base64');
    keyIndex = keys.findIndex((k) => sig.length === 64 && cryptoVerify(null, pae, k, sig));
    if (keyIndex >= 0) break;
  }
  if (keyIndex < 0) throw new EvidenceError('EVIDENCE_PACK_MALFORMED', 'the attestation signature does not verify with any trusted log key');
  let statement: InTotoStatement;
  try {
    statement = JSON.parse(payload.toString('utf8')) as InTotoStatement;
  } catch {
    throw new EvidenceError('EVIDENCE_PACK_MALFORMED', 'the attestation payload is not JSON');
  }
  if (statement._type !== IN_TOTO_STATEMENT_V1 || !Array.isArray(statement.subject)) throw new EvidenceError('EVIDENCE_PACK_MALFORMED', `the attestation is not an in-toto Statement v1`);
  return { statement, keyIndex };
}
