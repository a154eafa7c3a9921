import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOidcProvider, type StartedOidcProvider } from './oidc-provider.js';

const AUDIENCE = 'https://gateway.custodian.test';

describe('startOidcProvider (real oidc-provider over HTTP)', () => {
  let idp: StartedOidcProvider;
  let jwks: ReturnType<typeof createRemoteJWKSet>;

  beforeAll(async () => {
    idp = await startOidcProvider({
      clients: [{ clientId: 'agent-reporter', clientSecret: 's3cret', kind: 'agent', groups: ['agents', 'reporting'] }],
      users: [{ subject: 'alice@example.test', groups: ['admins'] }],
    });
    jwks = createRemoteJWKSet(new URL(idp.jwksUri));
  });

  afterAll(async () => {
    await idp?.stop();
  });

  it('serves a discovery document that points at its own endpoints', async () => {
    const response = await fetch(idp.discoveryUrl);
    expect(response.status).toBe(200);
    const discovery = (await response.json()) as Record<string, unknown>;
    expect(discovery['issuer']).toBe(idp.issuer);
    expect(discovery['jwks_uri']).toBe(idp.jwksUri);
    expect(discovery['token_endpoint']).toBe(idp.tokenEndpoint);
    expect(discovery['grant_types_supported']).toContain('client_credentials');
    expect(discovery['code_challenge_methods_supported']).toContain('S256');
  });

  it('issues a client-credentials JWT that verifies against the published JWKS', async () => {
    const token = await idp.issueToken({ clientId: 'agent-reporter', scope: 'custodian:access' });
    expect(token.tokenType).toBe('Bearer');
    const { payload, protectedHeader } = await jwtVerify(token.accessToken, jwks, { issuer: idp.issuer, audience: AUDIENCE });
    expect(protectedHeader.alg).toBe('RS256');
    expect(payload.sub).toBe('agent-reporter');
    expect(payload['groups']).toEqual(['agents', 'reporting']);
    expect(payload['custodian_kind']).toBe('agent');
    expect(payload['scope']).toBe('custodian:access');
    expect(payload.exp! - payload.iat!).toBe(300);
  });

  it('honours a requested audience, ES256 per client and a per-token lifetime', async () => {
    idp.registerClient({ clientId: 'svc-billing', kind: 'service', groups: ['billing'], accessTokenAlg: 'ES256', accessTokenTtlSeconds: 60 });
    const short = await idp.issueToken({ clientId: 'svc-billing', audience: 'https://other.custodian.test' });
    expect(decodeProtectedHeader(short.accessToken).alg).toBe('ES256');
    const { payload } = await jwtVerify(short.accessToken, jwks, { issuer: idp.issuer, audience: 'https://other.custodian.test' });
    expect(payload['custodian_kind']).toBe('service');
    expect(payload.exp! - payload.iat!).toBe(60);
    await expect(jwtVerify(short.accessToken, jwks, { issuer: idp.issuer, audience: AUDIENCE })).rejects.toMatchObject({ code: 'ERR_JWT_CLAIM_VALIDATION_FAILED' });

    const long = await idp.issueToken({ clientId: 'svc-billing', ttlSeconds: 86_400 });
    const verified = await jwtVerify(long.accessToken, jwks, { issuer: idp.issuer, audience: AUDIENCE });
    expect(verified.payload.exp! - verified.payload.iat!).toBe(86_400);
    expect(long.expiresIn).toBe(86_400);
  });

  it('refuses a client with a wrong secret', async () => {
    idp.registerClient({ clientId: 'agent-other', clientSecret: 'right' });
    const basic = Buffer.from('agent-other:wrong').toString('base64');
    const response = await fetch(idp.tokenEndpoint, {
      method: 'POST',
      headers: { authorization: `Basic ${basic}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'client_credentials', resource: AUDIENCE }),
    });
    expect(response.status).toBe(401);
    expect(((await response.json()) as { error: string }).error).toBe('invalid_client');
  });

  it('logs a registered human in headlessly with authorization code + PKCE', async () => {
    const token = await idp.loginWithAuthorizationCode({ subject: 'alice@example.test' });
    const { payload } = await jwtVerify(token.accessToken, jwks, { issuer: idp.issuer, audience: AUDIENCE });
    expect(payload.sub).toBe('alice@example.test');
    expect(payload['groups']).toEqual(['admins']);
    expect(payload['custodian_kind']).toBe('human');
    expect(payload['client_id']).toBe(idp.authorizationCodeClient.clientId);
    expect(token.idToken).toBeDefined();
  });

  it('refuses to log in an unregistered user', async () => {
    await expect(idp.loginWithAuthorizationCode({ subject: 'mallory@example.test' })).rejects.toMatchObject({ code: 'HARNESS_UNAVAILABLE' });
  });
});

describe('oidc-provider stop()', () => {
  it('closes the listening port', async () => {
    const idp = await startOidcProvider();
    expect((await fetch(idp.discoveryUrl)).status).toBe(200);
    await idp.stop();
    await expect(fetch(idp.discoveryUrl)).rejects.toThrow();
  });
});
