import { createHash, generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { CredentialExposureScanner } from './credential-exposure-scanner.js';
import { CUSTODY_PREDICATE_TYPE, attestCustody, custodyStatement, verifyCustodyAttestation, type CustodySigningKey, type CustodyStatementInput } from './custody-statement.js';
import { IN_TOTO_PAYLOAD_TYPE, openStatementEnvelope, preAuthEncoding } from './dsse.js';
import { CustodyError } from './errors.js';

function gatewayKey(keyId = 'gw-key-1'): CustodySigningKey {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return { keyId, privateKey, publicKeyPem: publicKey.export({ format: 'pem', type: 'spki' }).toString() };
}

const SECRET = Buffer.from('orders-db-password-7Hq!', 'utf8');
const SESSION = '01890a5d-ac96-774b-bcce-b302099a8057';

function input(clientBytes: Buffer[], events: string[] = []): CustodyStatementInput {
  const scanner = new CredentialExposureScanner([SECRET]);
  for (const c of clientBytes) scanner.scanClientBytes(c);
  for (const e of events) scanner.scanEvent(e);
  return {
    sessionId: SESSION,
    identity: { subject: 'agent-7', issuer: 'https://idp.example', kind: 'agent' },
    connection: { name: 'orders-prod', protocol: 'postgres' },
    credentialRef: 'env:PGPASSWORD',
    method: 'scram-sha-256',
    scan: scanner.finish(),
    window: { openedAt: '2026-03-01T00:00:00.000000Z', closedAt: '2026-03-01T00:05:00.000000Z' },
    gateway: { instance: 'gw-1' },
  };
}

function codeOf(run: () => unknown): string {
  try {
    run();
  } catch (error) {
    return error instanceof CustodyError ? error.code : `not a CustodyError: ${String(error)}`;
  }
  return 'no error';
}

describe('custody statement', () => {
  it('is an in-toto Statement v1 about the session\'s client-bound bytes, naming the credential by reference only', () => {
    const bytes = [Buffer.from('R\0\0\0\x08\0\0\0\0'), Buffer.from('Z\0\0\0\x05I')];
    const statement = custodyStatement(input(bytes, ['{"type":"session.opened"}']));
    expect(statement).toMatchObject({
      _type: 'https://in-toto.io/Statement/v1',
      subject: [{ name: `session-${SESSION}/client-bytes`, digest: { sha256: createHash('sha256').update(Buffer.concat(bytes)).digest('hex') } }],
      predicateType: CUSTODY_PREDICATE_TYPE,
      predicate: {
        sessionId: SESSION,
        identity: { subject: 'agent-7', issuer: 'https://idp.example', kind: 'agent' },
        connection: { name: 'orders-prod', protocol: 'postgres' },
        credential: { ref: 'env:PGPASSWORD', method: 'scram-sha-256' },
        clientBytes: { length: 15 },
        scan: { exposed: false, eventsScanned: 1, detections: [], detectionCount: { total: 0, clientBytes: 0, events: 0 } },
        window: { openedAt: '2026-03-01T00:00:00.000000Z', closedAt: '2026-03-01T00:05:00.000000Z' },
        gateway: { instance: 'gw-1' },
      },
    });
    expect(JSON.stringify(statement)).not.toContain('orders-db-password');
    expect(codeOf(() => custodyStatement({ ...input([]), credentialRef: 'hunter2 is the password' }))).toBe('CUSTODY_STATEMENT_MISMATCH');
  });

  it('signs (DSSE, Ed25519 over the PAE) and verifies round trip; the event payload carries no secret', () => {
    const key = gatewayKey();
    const { envelope, payload, statement } = attestCustody(input([Buffer.from('hello')]), key);
    expect(envelope.payloadType).toBe(IN_TOTO_PAYLOAD_TYPE);
    expect(JSON.parse(Buffer.from(envelope.payload, 'base64').toString('utf8'))).toEqual(statement);
    expect(payload).toMatchObject({ sessionId: SESSION, credentialRef: 'env:PGPASSWORD', exposed: false, keyId: 'gw-key-1', detections: { total: 0, encodings: [] } });
    expect(payload.publicKey).toMatch(/^-----BEGIN PUBLIC KEY-----\n/);
    const verified = verifyCustodyAttestation(payload, { identity: { subject: 'agent-7', issuer: 'https://idp.example' } });
    expect(verified).toMatchObject({ sessionId: SESSION, keyId: 'gw-key-1', exposed: false, pinned: false });
    expect(verifyCustodyAttestation(payload, { trustedKeys: [key.publicKeyPem] }).pinned).toBe(true);
    // The same signature checks as plain Ed25519 over "DSSEv1 <len> <type> <len> <body>".
    expect(preAuthEncoding('t', Buffer.from('ab')).toString()).toBe('DSSEv1 1 t 2 ab');
    expect(JSON.stringify(payload)).not.toContain('orders-db-password');
  });

  it('states an exposure with where and how it was found, never the value', () => {
    const leaked = input([Buffer.from('ok'), Buffer.from(`ERROR: password ${SECRET.toString('base64')} rejected`)], [JSON.stringify({ text: SECRET.toString('hex') })]);
    const { payload, statement } = attestCustody(leaked, gatewayKey());
    expect(payload.exposed).toBe(true);
    expect(payload.detections).toEqual({ total: 2, clientBytes: 1, events: 1, encodings: ['base64', 'hex-lower'] });
    expect(statement.predicate.scan.detections).toEqual([
      { where: 'client-bytes', encoding: 'base64', offset: 2 + 'ERROR: password '.length, secret: 0, alignment: 0 },
      { where: 'events', encoding: 'hex-lower', offset: 9, event: 0, secret: 0 },
    ]);
    expect(verifyCustodyAttestation(payload).exposed).toBe(true);
    expect(JSON.stringify(payload)).not.toContain(SECRET.toString('base64').slice(0, 12));
  });

  it('fails when any one byte of the envelope changes', () => {
    const { payload } = attestCustody(input([Buffer.from('abc')]), gatewayKey());
    const text = JSON.stringify(payload.envelope);
    let failures = 0;
    for (let i = 0; i < text.length; i++) {
      const changed = `${text.slice(0, i)}${String.fromCharCode(text.charCodeAt(i) ^ 0x01)}${text.slice(i + 1)}`;
      let envelope: unknown;
      try {
        envelope = JSON.parse(changed);
      } catch {
        failures += 1; // not JSON any more: an event store would not even hold it
        continue;
      }
      const code = codeOf(() => verifyCustodyAttestation({ ...payload, envelope }));
      expect(['CUSTODY_SIGNATURE_INVALID', 'CUSTODY_ENVELOPE_MALFORMED', 'CUSTODY_STATEMENT_MISMATCH'], `byte ${i}`).toContain(code);
      failures += 1;
    }
    expect(failures).toBe(text.length);
  });

  it('fails when the event disagrees with what was signed, or the key is not the pinned one', () => {
    const key = gatewayKey();
    const { payload } = attestCustody(input([Buffer.from('abc')]), key);
    const cases: [string, unknown, string][] = [
      ['exposed flipped on the event', { ...payload, exposed: true, detections: { ...payload.detections, total: 1, clientBytes: 1 } }, 'CUSTODY_STATEMENT_MISMATCH'],
      ['another session id on the event', { ...payload, sessionId: '01890a5d-ac96-774b-bcce-b302099a8058' }, 'CUSTODY_STATEMENT_MISMATCH'],
      ['another credential on the event', { ...payload, credentialRef: 'env:OTHER' }, 'CUSTODY_STATEMENT_MISMATCH'],
      ['another key id on the event', { ...payload, keyId: 'gw-key-2' }, 'CUSTODY_STATEMENT_MISMATCH'],
      ['another public key on the event', { ...payload, publicKey: gatewayKey().publicKeyPem }, 'CUSTODY_SIGNATURE_INVALID'],
      ['not a PEM key', { ...payload, publicKey: 'nope' }, 'CUSTODY_KEY_INVALID'],
      ['no envelope', { ...payload, envelope: undefined }, 'CUSTODY_ENVELOPE_MALFORMED'],
    ];
    for (const [name, forged, code] of cases) expect(codeOf(() => verifyCustodyAttestation(forged)), name).toBe(code);
    // Re-signed by someone else's key, with their key in the event: self-consistent, but not pinned.
    const mallory = gatewayKey('gw-key-1');
    const forged = attestCustody(input([Buffer.from('abc')]), mallory).payload;
    expect(verifyCustodyAttestation(forged).pinned).toBe(false);
    expect(codeOf(() => verifyCustodyAttestation(forged, { trustedKeys: [key.publicKeyPem] }))).toBe('CUSTODY_SIGNATURE_INVALID');
    expect(codeOf(() => verifyCustodyAttestation(payload, { identity: { subject: 'someone-else', issuer: 'https://idp.example' } }))).toBe('CUSTODY_STATEMENT_MISMATCH');
  });

  it('opens a statement only as in-toto JSON with the in-toto payload type', () => {
    const key = gatewayKey();
    const { envelope } = attestCustody(input([]), key);
    const pub = verifyCustodyAttestation(attestCustody(input([]), key).payload).statement;
    expect(pub.predicateType).toBe(CUSTODY_PREDICATE_TYPE);
    expect(codeOf(() => openStatementEnvelope({ ...envelope, payloadType: 'text/plain' }, []))).toBe('CUSTODY_ENVELOPE_MALFORMED');
    expect(codeOf(() => openStatementEnvelope('{', []))).toBe('CUSTODY_ENVELOPE_MALFORMED');
  });
});
