// @custodian/identity's BearerAuthenticator (what the API and the HTTP-based gateways use) over the
// real OIDC verifier and the harness's OIDC provider: a good token, an expired one, a token for
// another listener's audience, no header, another scheme. The token never appears in a refusal.
import { BearerAuthenticator, BearerRefusal } from '@custodian/identity';
import { startOidcProvider, type StartedOidcProvider } from '@custodian/test-harness';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OidcAccessTokenVerifier } from './oidc-access-token-verifier.js';

const MCP_AUDIENCE = 'https://mcp.custodian.test';
let idp: StartedOidcProvider;

beforeAll(async () => {
  idp = await startOidcProvider({ clients: [{ clientId: 'agent-1', groups: ['analysts'], kind: 'agent' }] });
});

afterAll(async () => {
  await idp?.stop();
});

function verifier(now?: () => number): OidcAccessTokenVerifier {
  // The issuer allows two audiences; each listener narrows to its own.
  return new OidcAccessTokenVerifier({ issuers: [{ issuer: idp.issuer, audiences: [idp.defaultAudience, MCP_AUDIENCE] }], ...(now ? { now } : {}) });
}

async function refusal(promise: Promise<unknown>, token?: string): Promise<BearerRefusal> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(BearerRefusal);
  const refused = error as BearerRefusal;
  expect(refused.status).toBe(401);
  if (token) for (const surface of [refused.message, refused.wwwAuthenticate, JSON.stringify(refused)]) expect(surface).not.toContain(token);
  return refused;
}

describe('BearerAuthenticator', () => {
  it('a valid token for this listener: the verified identity and a digest of the token (not the token)', async () => {
    const token = (await idp.issueToken({ clientId: 'agent-1', audience: MCP_AUDIENCE })).accessToken;
    const authenticator = new BearerAuthenticator({ verifier: verifier(), audiences: [MCP_AUDIENCE] });
    const { verified, tokenDigest } = await authenticator.authenticate(`Bearer ${token}`);
    expect(verified.identity).toMatchObject({ subject: 'agent-1', issuer: idp.issuer, groups: ['analysts'], kind: 'agent' });
    expect(verified.audience).toEqual([MCP_AUDIENCE]);
    expect(tokenDigest).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(tokenDigest).not.toContain(token.slice(0, 16));
    // The scheme is case-insensitive (RFC 9110).
    await expect(authenticator.authenticate(`bearer ${token}`)).resolves.toMatchObject({ tokenDigest });
  });

  it('an expired token: TOKEN_EXPIRED with an invalid_token challenge', async () => {
    const token = (await idp.issueToken({ clientId: 'agent-1' })).accessToken;
    // Past exp (300 s) and the default clock skew (30 s).
    const authenticator = new BearerAuthenticator({ verifier: verifier(() => Date.now() + 331_000) });
    const refused = await refusal(authenticator.authenticate(`Bearer ${token}`), token);
    expect(refused.code).toBe('TOKEN_EXPIRED');
    expect(refused.identityError?.code).toBe('TOKEN_EXPIRED');
    expect(refused.wwwAuthenticate).toBe('Bearer realm="custodian", error="invalid_token"');
  });

  it("a token for another listener's audience: TOKEN_AUDIENCE_INVALID, though the issuer allows that audience", async () => {
    const token = (await idp.issueToken({ clientId: 'agent-1' })).accessToken;
    await expect(new BearerAuthenticator({ verifier: verifier() }).authenticate(`Bearer ${token}`)).resolves.toBeDefined();
    const refused = await refusal(new BearerAuthenticator({ verifier: verifier(), audiences: [MCP_AUDIENCE], realm: 'custodian-mcp' }).authenticate(`Bearer ${token}`), token);
    expect(refused.code).toBe('TOKEN_AUDIENCE_INVALID');
    expect(refused.wwwAuthenticate).toBe('Bearer realm="custodian-mcp", error="invalid_token"');
  });

  it('no header, another scheme, an empty bearer, no issuer configured: typed refusals, none of them verified', async () => {
    const authenticator = new BearerAuthenticator({ verifier: verifier() });
    const missing = await refusal(authenticator.authenticate(undefined));
    expect(missing.code).toBe('AUTHENTICATION_REQUIRED');
    expect(missing.wwwAuthenticate).toBe('Bearer realm="custodian"');
    expect(missing.identityError).toBeUndefined();
    expect((await refusal(authenticator.authenticate('Basic YWdlbnQ6c2VjcmV0'), 'YWdlbnQ6c2VjcmV0')).code).toBe('AUTHENTICATION_SCHEME_UNSUPPORTED');
    expect((await refusal(authenticator.authenticate('Bearer '))).code).toBe('TOKEN_MALFORMED');
    const garbage = 'not-a-jwt-but-a-secret-guess';
    expect((await refusal(authenticator.authenticate(`Bearer ${garbage}`), garbage)).code).toBe('TOKEN_MALFORMED');
    const unconfigured = await refusal(new BearerAuthenticator({ verifier: undefined }).authenticate('Bearer x.y.z'));
    expect(unconfigured.code).toBe('IDENTITY_NOT_CONFIGURED');
  });
});
