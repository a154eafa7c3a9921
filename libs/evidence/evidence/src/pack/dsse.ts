// The pack's attestation: a DSSE envelope over an in-toto Statement v1, signed with the log's
// Ed25519 key, checkable with cosign (verify-blob-attestation) or any DSSE tool. The DSSE / PAE
// implementation is @custodian/custody's (shared with the per-session custody statements); this
// adapts it to note signers and to this library's errors.
import type { KeyObject } from 'node:crypto';
import { CustodyError, openStatementEnvelope, signStatementEnvelope, type DsseEnvelope, type InTotoStatement } from '@custodian/custody';
import { ed25519PublicKeyObject, type NoteSigner } from '@custodian/transparency-log';
import { EvidenceError } from '../errors.js';

export { IN_TOTO_PAYLOAD_TYPE, IN_TOTO_STATEMENT_V1, preAuthEncoding, sha256Hex, type DsseEnvelope, type InTotoStatement, type InTotoSubject } from '@custodian/custody';

/** Signs a statement. `signer` is an Ed25519 note signer: its signature over the PAE bytes is a plain Ed25519 signature. */
export function signStatement(statement: InTotoStatement, signer: NoteSigner, keyid: string): DsseEnvelope {
  return signStatementEnvelope(statement, signer, keyid);
}

/** PEM (SubjectPublicKeyInfo) of a raw Ed25519 public key: the form cosign and openssl read. */
export function ed25519PublicKeyPem(rawPublicKey: Uint8Array): string {
  return ed25519PublicKeyObject(rawPublicKey).export({ format: 'pem', type: 'spki' }).toString();
}

/**
 * Verifies the attestation with any of `keys` and returns its statement. Throws
 * EVIDENCE_PACK_MALFORMED naming what failed (JSON, payload type, signature, statement type).
 */
export function openStatement(envelopeJson: string, keys: readonly KeyObject[]): { statement: InTotoStatement; keyIndex: number } {
  try {
    const { statement, keyIndex } = openStatementEnvelope(envelopeJson, keys);
    return { statement, keyIndex };
  } catch (error) {
    if (!(error instanceof CustodyError)) throw error;
    const message = error.code === 'CUSTODY_SIGNATURE_INVALID' ? 'the attestation signature does not verify with any trusted attestation key (nor, for packs from before the keys were split, a trusted log key)' : `the attestation: ${error.message}`;
    throw new EvidenceError('EVIDENCE_PACK_MALFORMED', message, { cause: error });
  }
}
