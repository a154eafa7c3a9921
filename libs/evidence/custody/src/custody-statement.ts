// The per-session custody statement: an in-toto Statement v1 whose subject is the session's
// client-bound byte stream (by SHA-256) and whose predicate says which credential the gateway
// injected, for whom, on which connection, and what the scan of every client byte and event found.
// Signed as a DSSE envelope with the gateway's Ed25519 key, carried by a custody.attested event.
import type { KeyObject } from 'node:crypto';
import type { ConnectionRef, CredentialInjected, CustodyAttested, Identity } from '@custodian/event-contracts';
import type { CredentialScanResult, ExposureDetection } from './credential-exposure-scanner.js';
import { ed25519DsseSigner, ed25519PublicKeyFromPem, openStatementEnvelope, signStatementEnvelope, type DsseEnvelope, type InTotoStatement } from './dsse.js';
import { CustodyError } from './errors.js';

export const CUSTODY_PREDICATE_TYPE = 'https://custodian.dev/attestations/credential-custody/v1';

/** The statement's one subject: `session-<id>/client-bytes`. */
export const custodySubjectName = (sessionId: string): string => `session-${sessionId}/client-bytes`;

const CREDENTIAL_REF = /^(config|env|file):[A-Za-z0-9._/-]+$/;
const SHA256_HEX = /^[0-9a-f]{64}$/;

export interface CustodyStatementInput {
  readonly sessionId: string;
  readonly identity: Pick<Identity, 'subject' | 'issuer' | 'kind'>;
  readonly connection: ConnectionRef;
  /** Where the secret came from (`env:PGPASSWORD`); never the value. */
  readonly credentialRef: string;
  readonly method: CredentialInjected['method'];
  /** `scanner.finish()`. */
  readonly scan: CredentialScanResult;
  /** When the session opened and closed (RFC 3339). */
  readonly window: { readonly openedAt: string; readonly closedAt: string };
  readonly gateway: { readonly instance: string };
}

export interface CustodyPredicate {
  readonly sessionId: string;
  readonly identity: { readonly subject: string; readonly issuer: string; readonly kind: Identity['kind'] };
  readonly connection: { readonly name: string; readonly protocol: ConnectionRef['protocol'] };
  readonly credential: { readonly ref: string; readonly method: CredentialInjected['method'] };
  readonly clientBytes: { readonly sha256: string; readonly length: number };
  readonly scan: {
    readonly exposed: boolean;
    readonly eventsScanned: number;
    readonly encodings: readonly string[];
    readonly shortSecret: boolean;
    readonly detectionCount: { readonly total: number; readonly clientBytes: number; readonly events: number };
    readonly detections: readonly ExposureDetection[];
  };
  readonly window: { readonly openedAt: string; readonly closedAt: string };
  readonly gateway: { readonly instance: string };
}

export type CustodyStatement = InTotoStatement<CustodyPredicate>;

/** The gateway's signing key (kept in its data directory). */
export interface CustodySigningKey {
  readonly keyId: string;
  readonly privateKey: KeyObject;
  /** SubjectPublicKeyInfo PEM of the public half: shipped in every custody.attested event. */
  readonly publicKeyPem: string;
}

export function custodyStatement(input: CustodyStatementInput): CustodyStatement {
  if (!CREDENTIAL_REF.test(input.credentialRef)) throw new CustodyError('CUSTODY_STATEMENT_MISMATCH', 'credentialRef must be a reference such as env:NAME, config:NAME or file:/path (never a value)');
  const { scan } = input;
  return {
    _type: 'https://in-toto.io/Statement/v1',
    subject: [{ name: custodySubjectName(input.sessionId), digest: { sha256: scan.clientBytes.sha256 } }],
    predicateType: CUSTODY_PREDICATE_TYPE,
    predicate: {
      sessionId: input.sessionId,
      identity: { subject: input.identity.subject, issuer: input.identity.issuer, kind: input.identity.kind },
      connection: { name: input.connection.name, protocol: input.connection.protocol },
      credential: { ref: input.credentialRef, method: input.method },
      clientBytes: { sha256: scan.clientBytes.sha256, length: scan.clientBytes.length },
      scan: { exposed: scan.exposed, eventsScanned: scan.eventsScanned, encodings: [...scan.encodings], shortSecret: scan.shortSecret, detectionCount: { ...scan.detectionCount }, detections: [...scan.detections] },
      window: { openedAt: input.window.openedAt, closedAt: input.window.closedAt },
      gateway: { instance: input.gateway.instance },
    },
  };
}

export interface CustodyAttestation {
  readonly statement: CustodyStatement;
  readonly envelope: DsseEnvelope;
  /** The custody.attested event payload, ready to record in the session's stream. */
  readonly payload: CustodyAttested;
}

/** Builds the statement, signs it (DSSE, Ed25519) and returns the custody.attested payload. */
export function attestCustody(input: CustodyStatementInput, key: CustodySigningKey): CustodyAttestation {
  ed25519PublicKeyFromPem(key.publicKeyPem);
  const statement = custodyStatement(input);
  const envelope = signStatementEnvelope(statement, ed25519DsseSigner(key.privateKey), key.keyId);
  const { detectionCount } = input.scan;
  const payload: CustodyAttested = {
    sessionId: input.sessionId,
    credentialRef: input.credentialRef,
    exposed: input.scan.exposed,
    detections: { total: detectionCount.total, clientBytes: detectionCount.clientBytes, events: detectionCount.events, encodings: [...new Set(input.scan.detections.map((d) => d.encoding))] },
    envelope: { payloadType: 'application/vnd.in-toto+json', payload: envelope.payload, signatures: [envelope.signatures[0]!, ...envelope.signatures.slice(1)] },
    publicKey: key.publicKeyPem.endsWith('\n') ? key.publicKeyPem : `${key.publicKeyPem}\n`,
    keyId: key.keyId,
  };
  return { statement, envelope, payload };
}

export interface CustodyVerificationOptions {
  /** Keys the auditor trusts (PEM or KeyObject), obtained independently: the signature must verify under one of them. */
  readonly trustedKeys?: readonly (string | KeyObject)[];
  /** The identity on the event carrying the statement: it must be the statement's. */
  readonly identity?: Pick<Identity, 'subject' | 'issuer'> | null;
}

export interface CustodyVerification {
  readonly sessionId: string;
  readonly keyId: string;
  readonly exposed: boolean;
  /** Whether the signature was checked against trusted keys (else only against the key the event carries). */
  readonly pinned: boolean;
  readonly statement: CustodyStatement;
}

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

function mismatch(condition: boolean, message: string): void {
  if (!condition) throw new CustodyError('CUSTODY_STATEMENT_MISMATCH', message);
}

/**
 * Checks a custody.attested payload: the DSSE signature under the key it carries (and under a
 * trusted key when given), the signing keyid, and that the signed statement says what the event
 * says (session, credential, exposed, counts). Throws CustodyError naming what failed.
 */
export function verifyCustodyAttestation(payload: unknown, options: CustodyVerificationOptions = {}): CustodyVerification {
  if (!isObject(payload) || typeof payload.sessionId !== 'string' || typeof payload.keyId !== 'string' || typeof payload.publicKey !== 'string' || typeof payload.exposed !== 'boolean' || !isObject(payload.detections)) {
    throw new CustodyError('CUSTODY_ENVELOPE_MALFORMED', 'not a custody.attested payload (sessionId, keyId, publicKey, exposed, detections, envelope)');
  }
  const p = payload as unknown as CustodyAttested;
  const carried = ed25519PublicKeyFromPem(p.publicKey);
  const opened = openStatementEnvelope<CustodyPredicate>(p.envelope, [carried]);
  let pinned = false;
  if (options.trustedKeys && options.trustedKeys.length > 0) {
    const trusted = options.trustedKeys.map((k) => (typeof k === 'string' ? ed25519PublicKeyFromPem(k) : k));
    try {
      openStatementEnvelope(p.envelope, trusted);
    } catch (error) {
      if (error instanceof CustodyError && error.code === 'CUSTODY_SIGNATURE_INVALID') throw new CustodyError('CUSTODY_SIGNATURE_INVALID', `signed by key ${p.keyId}, which is not one of the ${trusted.length} trusted custody key(s)`);
      throw error;
    }
    pinned = true;
  }
  mismatch(opened.keyid === p.keyId, `the envelope was signed as keyid ${JSON.stringify(opened.keyid)}, the event names ${JSON.stringify(p.keyId)}`);
  const { statement } = opened;
  mismatch(statement.predicateType === CUSTODY_PREDICATE_TYPE, `predicateType is ${JSON.stringify(statement.predicateType)}, not ${CUSTODY_PREDICATE_TYPE}`);
  const predicate = statement.predicate as unknown;
  mismatch(isObject(predicate) && isObject(predicate.scan) && isObject(predicate.clientBytes) && isObject(predicate.credential), 'the predicate is not a credential-custody predicate');
  const pred = predicate as unknown as CustodyPredicate;
  mismatch(pred.sessionId === p.sessionId, `the statement is about session ${String(pred.sessionId)}, the event about ${p.sessionId}`);
  const subject = statement.subject;
  mismatch(subject.length === 1 && subject[0]?.name === custodySubjectName(p.sessionId), `the subject must be exactly ${custodySubjectName(p.sessionId)}`);
  mismatch(SHA256_HEX.test(subject[0]!.digest?.sha256 ?? '') && subject[0]!.digest.sha256 === pred.clientBytes.sha256, 'the subject digest is not the predicate\'s client-bytes SHA-256');
  mismatch(pred.scan.exposed === p.exposed, `the statement says exposed=${String(pred.scan.exposed)}, the event exposed=${String(p.exposed)}`);
  mismatch(pred.credential.ref === p.credentialRef, `the statement names credential ${String(pred.credential.ref)}, the event ${p.credentialRef}`);
  const counts = pred.scan.detectionCount as Partial<CustodyPredicate['scan']['detectionCount']> | undefined;
  mismatch(counts?.total === p.detections.total && counts.clientBytes === p.detections.clientBytes && counts.events === p.detections.events, 'the event\'s detection counts are not the statement\'s');
  mismatch(pred.scan.exposed === (p.detections.total > 0), `exposed=${String(pred.scan.exposed)} contradicts ${p.detections.total} detection(s)`);
  if (options.identity !== undefined) {
    const who = options.identity;
    mismatch(who !== null && isObject(pred.identity) && pred.identity.subject === who.subject && pred.identity.issuer === who.issuer, 'the statement\'s identity is not the identity of the event that carries it');
  }
  return { sessionId: p.sessionId, keyId: p.keyId, exposed: p.exposed, pinned, statement: statement as CustodyStatement };
}
