// Opaque access tokens through token introspection (RFC 7662), against the real OIDC provider of
// the test harness (node-oidc-provider issues opaque tokens for the audience configured so, and
// answers introspection and revocation requests). Issue 19 §5.
import { IdentityConfigError, IdentityError, type IdentityErrorCode } from '@custodian/identity';
import { freePort, startOidcProvider, type StartedOidcProvider } from '@custodian/test-harness';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FetchFunction } from './idp-http.js';
import { OidcAccessTokenVerifier } from './oidc-access-token-verifier.js';

const OPAQUE = 'https://opaque.custodian.test';
const GATEWAY_CLIENT = 'custodian-gateway';
const GATEWAY_SECRET = 'introspection-secret-6f1d2c';

let idp: StartedOidcProvider;
const requests: { url: string; body: string }[] = [];
/** The real fetch, with what it sent kept (to check the token goes to the introspection endpoint only). */
const recordingFetch: FetchFunction = async (input, init) => {
  requests.push({ url: String(input), body: init?.body === undefined || init.body === null ? '' : String(init.body) });
  return fetch(input, init);
};

beforeAll(async () => {
  idp = await startOidcProvider({
    opaqueAudiences: [OPAQUE],
    clients: [
      { clientId: 'agent-opaque', kind: 'agent', groups: ['analysts'] },
      { clientId: GATEWAY_CLIENT, clientSecret: GATEWAY_SECRET, kind: 'service' },
    ],
  });
});
afterAll(async () => {
  await idp?.stop();
});

function verifier(overrides: { secret?: string; endpoint?: string; audiences?: string[] } = {}): OidcAccessTokenVerifier {
  return new OidcAccessTokenVerifier({
    issuers: [
      {
        issuer: idp.issuer,
        audiences: overrides.audiences ?? [OPAQUE, idp.defaultAudience],
        introspection: {
          clientId: GATEWAY_CLIENT,
          clientSecret: () => overrides.secret ?? GATEWAY_SECRET,
          recheckIntervalSeconds: 30,
          ...(overrides.endpoint ? { endpoint: overrides.endpoint } : {}),
        },
      },
    ],
    fetch: recordingFetch,
    httpTimeoutMs: 2_000,
  });
}

async function refusal(promise: Promise<unknown>): Promise<IdentityError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof IdentityError) return error;
    throw error;
  }
  throw new Error('expected a refusal');
}

async function expectCode(promise: Promise<unknown>, code: IdentityErrorCode): Promise<IdentityError> {
  const error = await refusal(promise);
  expect(error.code).toBe(code);
  return error;
}

describe('opaque access tokens through introspection', () => {
  it('accepts an active opaque token: identity, groups and kind mapped as from a JWT, with a re-check interval', async () => {
    const { accessToken } = await idp.issueToken({ clientId: 'agent-opaque', audience: OPAQUE });
    expect(accessToken).not.toContain('.');
    const verified = await verifier().verify(accessToken);
    expect(verified.identity).toMatchObject({ subject: 'agent-opaque', issuer: idp.issuer, kind: 'agent', groups: ['analysts'] });
    expect(verified.audience).toEqual([OPAQUE]);
    expect(verified.method).toBe('oidc-client-credentials');
    expect(verified.recheckIntervalMs).toBe(30_000);
    expect(verified.expiresAt.getTime()).toBeGreaterThan(Date.now());
    // The token went to the discovered introspection endpoint, and nowhere else.
    const carrying = requests.filter((request) => request.body.includes(accessToken));
    expect(carrying.map((request) => request.url)).toEqual([idp.introspectionEndpoint]);
  });

  it('a revoked token is inactive: refused at login, and stillActive says so for a session on it', async () => {
    const check = verifier();
    const { accessToken } = await idp.issueToken({ clientId: 'agent-opaque', audience: OPAQUE });
    await check.verify(accessToken);
    await check.stillActive(accessToken);
    await idp.revokeToken({ clientId: 'agent-opaque', token: accessToken });
    await expectCode(check.stillActive(accessToken), 'TOKEN_INACTIVE');
    await expectCode(check.verify(accessToken), 'TOKEN_INACTIVE');
    await expectCode(check.verify('never-issued-by-anyone'), 'TOKEN_INACTIVE');
  });

  it('checks the audience as for a JWT', async () => {
    const { accessToken } = await idp.issueToken({ clientId: 'agent-opaque', audience: OPAQUE });
    await expectCode(verifier({ audiences: [idp.defaultAudience] }).verify(accessToken), 'TOKEN_AUDIENCE_INVALID');
  });

  it('fails closed when introspection cannot be done: a wrong client secret, an unreachable endpoint; the secret is never in an error', async () => {
    const { accessToken } = await idp.issueToken({ clientId: 'agent-opaque', audience: OPAQUE });
    const badSecret = await expectCode(verifier({ secret: 'wrong-secret-value' }).verify(accessToken), 'IDP_UNAVAILABLE');
    const closedPort = await freePort();
    const unreachable = await expectCode(verifier({ endpoint: `http://127.0.0.1:${closedPort}/introspect` }).verify(accessToken), 'IDP_UNAVAILABLE');
    const check = verifier({ endpoint: `http://127.0.0.1:${closedPort}/introspect` });
    await expectCode(check.stillActive(accessToken), 'IDP_UNAVAILABLE');
    for (const error of [badSecret, unreachable]) {
      const text = `${error.message} ${JSON.stringify(error)}`;
      expect(text).not.toContain('wrong-secret-value');
      expect(text).not.toContain(GATEWAY_SECRET);
      expect(text).not.toContain(accessToken);
    }
  });

  it('JWT access tokens of the same issuer are still verified by signature, without introspection', async () => {
    const { accessToken } = await idp.issueToken({ clientId: 'agent-opaque' });
    expect(accessToken.split('.')).toHaveLength(3);
    const before = requests.length;
    const verified = await verifier().verify(accessToken);
    expect(verified.identity.subject).toBe('agent-opaque');
    expect(verified.recheckIntervalMs).toBeUndefined();
    expect(requests.slice(before).some((request) => request.url === idp.introspectionEndpoint)).toBe(false);
  });

  it('without introspection configured an opaque token is malformed; two introspecting issuers are a configuration error', async () => {
    const { accessToken } = await idp.issueToken({ clientId: 'agent-opaque', audience: OPAQUE });
    const jwtOnly = new OidcAccessTokenVerifier({ issuers: [{ issuer: idp.issuer, audiences: [OPAQUE] }] });
    await expectCode(jwtOnly.verify(accessToken), 'TOKEN_MALFORMED');
    const introspection = { clientId: GATEWAY_CLIENT, clientSecret: () => GATEWAY_SECRET };
    expect(
      () =>
        new OidcAccessTokenVerifier({
          issuers: [
            { issuer: idp.issuer, audiences: [OPAQUE], introspection },
            { issuer: 'https://other.example', audiences: [OPAQUE], introspection },
          ],
        }),
    ).toThrow(IdentityConfigError);
  });
});
