// Checks a session's custody statement (`custody.attested`) independently of the code that made
// it: the DSSE signature over the PAE with node:crypto and the published Ed25519 key, then what the
// in-toto statement says.
import { createPublicKey, verify } from 'node:crypto';

export interface CustodyEnvelope {
  readonly payloadType: string;
  /** Base64 of the in-toto statement JSON. */
  readonly payload: string;
  readonly signatures: readonly { readonly keyid: string; readonly sig: string }[];
}

export interface VerifiedCustody {
  readonly statement: Record<string, unknown>;
  readonly predicate: Record<string, unknown>;
  readonly keyId: string;
}

export class CustodyVerificationError extends Error {
  override readonly name = 'CustodyVerificationError';
  constructor(
    readonly code: 'CUSTODY_MALFORMED' | 'CUSTODY_SIGNATURE_INVALID' | 'CUSTODY_STATEMENT_INVALID',
    message: string,
  ) {
    super(message);
  }
}

/** DSSE v1 pre-authentication encoding: what the signature covers. */
export function dssePae(payloadType: string, payload: Buffer): Buffer {
  const type = Buffer.from(payloadType, 'utf8');
  return Buffer.concat([Buffer.from(`DSSEv1 ${type.length} `, 'utf8'), type, Buffer.from(` ${payload.length} `, 'utf8'), payload]);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Verifies a `custody.attested` payload (envelope + publicKey PEM): at least one signature by the
 * published key over the PAE, the payload an in-toto Statement v1 for `sessionId`. Throws
 * CustodyVerificationError naming what is wrong.
 */
export function verifyCustodyAttestation(payload: unknown, sessionId: string): VerifiedCustody {
  if (!isRecord(payload)) throw new CustodyVerificationError('CUSTODY_MALFORMED', 'the custody.attested payload is not an object');
  const envelope = payload['envelope'];
  const publicKeyPem = payload['publicKey'];
  if (!isRecord(envelope) || typeof envelope['payload'] !== 'string' || typeof envelope['payloadType'] !== 'string' || !Array.isArray(envelope['signatures'])) {
    throw new CustodyVerificationError('CUSTODY_MALFORMED', 'the event carries no DSSE envelope (payload, payloadType, signatures)');
  }
  if (typeof publicKeyPem !== 'string') throw new CustodyVerificationError('CUSTODY_MALFORMED', 'the event carries no publicKey PEM');
  const key = createPublicKey(publicKeyPem);
  if (key.asymmetricKeyType !== 'ed25519') throw new CustodyVerificationError('CUSTODY_MALFORMED', `the public key is ${key.asymmetricKeyType}, not Ed25519`);
  const body = Buffer.from(envelope['payload'], 'base64');
  const pae = dssePae(envelope['payloadType'], body);
  const valid = (envelope['signatures'] as unknown[]).find(
    (s): s is { keyid: string; sig: string } => isRecord(s) && typeof s['sig'] === 'string' && verify(null, pae, key, Buffer.from(s['sig'], 'base64')),
  );
  if (!valid) throw new CustodyVerificationError('CUSTODY_SIGNATURE_INVALID', 'no signature of the envelope verifies with the published Ed25519 key over the DSSE PAE');
  if (envelope['payloadType'] !== 'application/vnd.in-toto+json') throw new CustodyVerificationError('CUSTODY_STATEMENT_INVALID', `payloadType is ${envelope['payloadType']}, not application/vnd.in-toto+json`);
  let statement: unknown;
  try {
    statement = JSON.parse(body.toString('utf8'));
  } catch {
    throw new CustodyVerificationError('CUSTODY_STATEMENT_INVALID', 'the signed payload is not JSON');
  }
  if (!isRecord(statement) || statement['_type'] !== 'https://in-toto.io/Statement/v1' || !isRecord(statement['predicate'])) {
    throw new CustodyVerificationError('CUSTODY_STATEMENT_INVALID', 'the signed payload is not an in-toto Statement v1 with a predicate');
  }
  const predicate = statement['predicate'];
  if (predicate['sessionId'] !== sessionId) throw new CustodyVerificationError('CUSTODY_STATEMENT_INVALID', `the statement is about session ${String(predicate['sessionId'])}, not ${sessionId}`);
  return { statement, predicate, keyId: valid.keyid };
}
