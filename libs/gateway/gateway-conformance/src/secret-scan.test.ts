// The checks the conformance suite relies on must be able to fail: the secret scanner finds a
// secret under each encoding and at every alignment inside base64; the custody verifier rejects a
// changed byte or a foreign key.
import { generateKeyPairSync, sign } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { dssePae, verifyCustodyAttestation } from './custody-verification.js';
import { findSecret, scanForSecrets } from './secret-scan.js';

const SECRET = 'tok3n-Value_With/Special+chars';

describe('secret scan', () => {
  it('finds the secret raw, hex, URL-encoded, and inside base64 at every offset', () => {
    expect(findSecret(`x${SECRET}y`, SECRET, 'raw').map((f) => f.encoding)).toEqual(['raw']);
    expect(findSecret(Buffer.from(SECRET).toString('hex'), SECRET, 'hex').map((f) => f.encoding)).toContain('hex-lower');
    expect(findSecret(encodeURIComponent(SECRET), SECRET, 'url').map((f) => f.encoding)).toContain('url-encoded');
    for (const prefix of ['', 'a', 'ab', 'abc', 'abcd']) {
      const framed = Buffer.concat([Buffer.from(prefix), Buffer.from(SECRET), Buffer.from('trailing bytes')]);
      expect(findSecret(framed.toString('base64'), SECRET, 'b64').map((f) => f.encoding)).toContain('base64');
      expect(findSecret(framed.toString('base64url'), SECRET, 'b64url').map((f) => f.encoding)).toContain('base64url');
    }
  });

  it('finds nothing where the secret is not, and names the place otherwise', () => {
    expect(findSecret(Buffer.from('SELECT 1; nothing here'), SECRET, 'frame')).toEqual([]);
    expect(scanForSecrets([{ where: 'log line 3', data: `login with ${SECRET}` }], [{ name: 'the token', value: SECRET }])).toEqual(['the token (raw) in log line 3']);
  });
});

describe('custody verification', () => {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const sessionId = '0190d7a0-0000-7000-8000-000000000001';
  const attestation = (statement: object, key = privateKey) => {
    const body = Buffer.from(JSON.stringify(statement));
    const payloadType = 'application/vnd.in-toto+json';
    return {
      sessionId,
      exposed: false,
      envelope: { payloadType, payload: body.toString('base64'), signatures: [{ keyid: 'k1', sig: sign(null, dssePae(payloadType, body), key).toString('base64') }] },
      publicKey: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    };
  };
  const statement = { _type: 'https://in-toto.io/Statement/v1', subject: [], predicateType: 'https://custodian.dev/attestations/credential-custody/v1', predicate: { sessionId, scan: { exposed: false } } };

  it('accepts a statement signed over the DSSE PAE by the published key', () => {
    expect(verifyCustodyAttestation(attestation(statement), sessionId).predicate).toMatchObject({ scan: { exposed: false } });
  });

  it('rejects a changed payload, another key, and another session', () => {
    const tampered = attestation(statement);
    const changed = Buffer.from(tampered.envelope.payload, 'base64');
    changed[changed.length - 2]! ^= 1;
    expect(() => verifyCustodyAttestation({ ...tampered, envelope: { ...tampered.envelope, payload: changed.toString('base64') } }, sessionId)).toThrow(/no signature/);
    const other = generateKeyPairSync('ed25519').privateKey;
    expect(() => verifyCustodyAttestation(attestation(statement, other), sessionId)).toThrow(/no signature/);
    expect(() => verifyCustodyAttestation(attestation(statement), '0190d7a0-0000-7000-8000-000000000002')).toThrow(/not 0190d7a0/);
  });
});
