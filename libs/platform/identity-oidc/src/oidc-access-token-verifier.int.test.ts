// Attack corpus against the real OIDC provider from the test harness. Tokens the provider cannot
// be made to issue (nbf in the future, no exp, foreign keys, key confusion) are crafted with
// jose; claims that need a trusted signature come from a second, real issuer served below.
import { createPublicKey, randomUUID, type JsonWebKeyInput } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { IdentityError, authenticationFailedPayload, type IdentityErrorCode, type VerifiedIdentity } from '@custodian/identity';
import { freePort, startOidcProvider, type StartedOidcProvider } from '@custodian/test-harness';
import { SignJWT, UnsecuredJWT, exportJWK, generateKeyPair, type CryptoKey, type JWK, type JWTPayload } from 'jose';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { FetchFunction } from './idp-http.js';
import type { IdentityLogger } from './issuer-key-set.js';
import { OidcAccessTokenVerifier, type OidcAccessTokenVerifierOptions } from './oidc-access-token-verifier.js';

const CRAFTED_AUDIENCE = 'https://gateway.custodian.test';
const CRAFTED_KID = 'crafted-rs256';

/** A second, real issuer (discovery + JWKS over HTTP) whose private key the tests hold. */
interface CraftedIssuer {
  readonly issuer: string;
  readonly privateKey: CryptoKey;
  stop(): Promise<void>;
}

async function startCraftedIssuer(): Promise<CraftedIssuer> {
  const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
  const jwk = { ...(await exportJWK(publicKey)), kid: CRAFTED_KID, alg: 'RS256', use: 'sig' };
  const port = await freePort();
  const issuer = `http://127.0.0.1:${port}`;
  const server: Server = createServer((req, res) => {
    const body =
      req.url === '/.well-known/openid-configuration' ? { issuer, jwks_uri: `${issuer}/jwks` } : req.url === '/jwks' ? { keys: [jwk] } : undefined;
    res.writeHead(body ? 200 : 404, { 'content-type': 'application/json' }).end(JSON.stringify(body ?? { error: 'not found' }));
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return { issuer, privateKey, stop: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

let idp: StartedOidcProvider;
let otherIdp: StartedOidcProvider;
let crafted: CraftedIssuer;
let harnessRsaJwk: JWK & { kid: string };

const fetched: string[] = [];
const countingFetch: FetchFunction = (input, init) => {
  fetched.push(String(input));
  return fetch(input, init);
};
const logLines: string[] = [];
const logger: IdentityLogger = {
  info: (fields, message) => logLines.push(JSON.stringify({ level: 'info', message, ...fields })),
  warn: (fields, message) => logLines.push(JSON.stringify({ level: 'warn', message, ...fields })),
};
/** Every token presented in this file, to prove none leaks into errors, logs or events. */
const presented: string[] = [];

function verifierFor(overrides: Partial<OidcAccessTokenVerifierOptions> = {}): OidcAccessTokenVerifier {
  return new OidcAccessTokenVerifier({
    issuers: [
      { issuer: idp.issuer, audiences: [idp.defaultAudience] },
      { issuer: crafted.issuer, audiences: [CRAFTED_AUDIENCE], algorithms: ['RS256'] },
    ],
    fetch: countingFetch,
    logger,
    ...overrides,
  });
}

async function accept(verifier: OidcAccessTokenVerifier, token: string): Promise<VerifiedIdentity> {
  presented.push(token);
  return verifier.verify(token);
}

/** Asserts the exact code, and that neither the token nor its signature appears in the error or its event. */
async function expectDenied(verifier: OidcAccessTokenVerifier, token: string, code: IdentityErrorCode): Promise<IdentityError> {
  presented.push(token);
  const error = await verifier.verify(token).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error, `expected ${code}`).toBeInstanceOf(IdentityError);
  const identityError = error as IdentityError;
  expect(identityError.code).toBe(code);
  const event = authenticationFailedPayload(identityError, { method: 'oidc-access-token', clientAddress: '127.0.0.1:40000', protocol: 'postgres' });
  expect(event.reasonCode).toBe(code);
  const signature = token.split('.')[2] ?? '';
  const surfaces = [identityError.message, identityError.stack ?? '', JSON.stringify(identityError), String(identityError.cause ?? ''), JSON.stringify(event)];
  for (const surface of surfaces) {
    if (token.length >= 8) expect(surface).not.toContain(token);
    if (signature.length >= 8) expect(surface).not.toContain(signature);
  }
  return identityError;
}

const nowSeconds = () => Math.floor(Date.now() / 1000);

async function craft(
  claims: JWTPayload,
  options: { key?: CryptoKey | Uint8Array; kid?: string | null; alg?: string; iss?: string | null } = {},
): Promise<string> {
  const payload: JWTPayload = { aud: CRAFTED_AUDIENCE, sub: 'crafted-agent', custodian_kind: 'agent', groups: ['readers'], iat: nowSeconds(), exp: nowSeconds() + 300, ...claims };
  if (options.iss === null) delete payload.iss;
  else payload.iss = options.iss ?? claims.iss ?? crafted.issuer;
  for (const [name, value] of Object.entries(payload)) if (value === undefined) delete payload[name];
  const header = { alg: options.alg ?? 'RS256', typ: 'at+jwt', ...(options.kid === null ? {} : { kid: options.kid ?? CRAFTED_KID }) };
  return new SignJWT(payload).setProtectedHeader(header).sign(options.key ?? crafted.privateKey);
}

function segment(token: string, index: number): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[index] ?? '', 'base64url').toString('utf8')) as Record<string, unknown>;
}

beforeAll(async () => {
  idp = await startOidcProvider({
    clients: [
      { clientId: 'agent-orders', groups: ['orders-readers', 'oncall'], kind: 'agent' },
      { clientId: 'ci-deploy', groups: ['deployers'], kind: 'service', accessTokenAlg: 'ES256' },
    ],
    users: [{ subject: 'alice', groups: ['dba'] }],
  });
  otherIdp = await startOidcProvider({ clients: [{ clientId: 'agent-orders', groups: ['orders-readers'] }] });
  crafted = await startCraftedIssuer();
  const jwks = (await (await fetch(idp.jwksUri)).json()) as { keys: (JWK & { kid: string })[] };
  const rsa = jwks.keys.find((k) => k.kty === 'RSA');
  if (!rsa) throw new Error('harness JWKS has no RSA key');
  harnessRsaJwk = rsa;
});

afterAll(async () => {
  await Promise.all([idp?.stop(), otherIdp?.stop(), crafted?.stop()]);
});

beforeEach(() => {
  fetched.length = 0;
});

describe('OidcAccessTokenVerifier — valid tokens from the real provider', () => {
  it('verifies a client-credentials agent token: identity with groups and kind, method, times, audience', async () => {
    const { accessToken } = await idp.issueToken({ clientId: 'agent-orders' });
    const verified = await accept(verifierFor(), accessToken);
    expect(verified.identity).toEqual({ subject: 'agent-orders', issuer: idp.issuer, groups: ['orders-readers', 'oncall'], kind: 'agent' });
    expect(verified.method).toBe('oidc-client-credentials');
    expect(verified.audience).toEqual([idp.defaultAudience]);
    expect(verified.tokenId).toBe(segment(accessToken, 1)['jti']);
    expect(verified.expiresAt.getTime() - verified.issuedAt.getTime()).toBe(300_000);
    // Discovery first, then the JWKS it names; nothing else.
    expect(fetched).toEqual([idp.discoveryUrl, idp.jwksUri]);
  });

  it('verifies an ES256 token of a service identity (CI job, client credentials)', async () => {
    const { accessToken } = await idp.issueToken({ clientId: 'ci-deploy' });
    expect(segment(accessToken, 0)['alg']).toBe('ES256');
    const verified = await accept(verifierFor(), accessToken);
    expect(verified.identity).toMatchObject({ subject: 'ci-deploy', groups: ['deployers'], kind: 'service' });
    expect(verified.method).toBe('oidc-client-credentials');
  });

  it("verifies a human's access token from the authorization-code login through the same path", async () => {
    const { accessToken } = await idp.loginWithAuthorizationCode({ subject: 'alice' });
    const verified = await accept(verifierFor(), accessToken);
    expect(verified.identity).toEqual({ subject: 'alice', issuer: idp.issuer, groups: ['dba'], kind: 'human' });
    expect(verified.method).toBe('oidc-access-token');
  });

  it('caches keys: many verifications, concurrent and cold, fetch discovery and JWKS once', async () => {
    const verifier = verifierFor();
    const tokens = await Promise.all(Array.from({ length: 5 }, () => idp.issueToken({ clientId: 'agent-orders' })));
    const results = await Promise.all(tokens.map((t) => accept(verifier, t.accessToken)));
    await accept(verifier, tokens[0]?.accessToken ?? '');
    expect(results.map((r) => r.identity.subject)).toEqual(Array(5).fill('agent-orders'));
    expect(fetched).toEqual([idp.discoveryUrl, idp.jwksUri]);
  });

  it('verifies a crafted token without kid from the second issuer (key chosen by alg)', async () => {
    const verified = await accept(verifierFor(), await craft({}, { kid: null }));
    expect(verified.identity).toEqual({ subject: 'crafted-agent', issuer: crafted.issuer, groups: ['readers'], kind: 'agent' });
    expect(verified.method).toBe('oidc-access-token');
  });
});

describe('OidcAccessTokenVerifier — attack corpus', () => {
  it('alg none (unsecured JWT) → TOKEN_ALG_NOT_ALLOWED, without any fetch', async () => {
    const claims = { iss: idp.issuer, aud: idp.defaultAudience, sub: 'agent-orders', custodian_kind: 'agent', iat: nowSeconds(), exp: nowSeconds() + 60 };
    await expectDenied(verifierFor(), new UnsecuredJWT(claims).encode(), 'TOKEN_ALG_NOT_ALLOWED');
    // Same with a fake signature appended, and with alg spelled differently.
    const header = Buffer.from(JSON.stringify({ alg: 'nOnE', typ: 'JWT' })).toString('base64url');
    const body = Buffer.from(JSON.stringify(claims)).toString('base64url');
    await expectDenied(verifierFor(), `${header}.${body}.AAAA`, 'TOKEN_ALG_NOT_ALLOWED');
    expect(fetched).toEqual([]);
  });

  it("HS256 signed with the issuer's RSA public key (key confusion) → TOKEN_ALG_NOT_ALLOWED", async () => {
    const pem = createPublicKey({ key: harnessRsaJwk as JsonWebKeyInput['key'], format: 'jwk' }).export({ type: 'spki', format: 'pem' });
    const claims = { iss: idp.issuer, aud: idp.defaultAudience, sub: 'agent-orders', custodian_kind: 'agent', groups: ['admins'] };
    for (const secret of [Buffer.from(pem), Buffer.from(JSON.stringify(harnessRsaJwk))]) {
      const token = await new SignJWT(claims).setProtectedHeader({ alg: 'HS256', kid: harnessRsaJwk.kid }).setIssuedAt().setExpirationTime('5m').sign(secret);
      await expectDenied(verifierFor(), token, 'TOKEN_ALG_NOT_ALLOWED');
    }
  });

  it('an algorithm outside the issuer allow-list (RS512 for an RS256-only issuer) → TOKEN_ALG_NOT_ALLOWED', async () => {
    const { privateKey } = await generateKeyPair('RS512');
    await expectDenied(verifierFor(), await craft({}, { alg: 'RS512', key: privateKey }), 'TOKEN_ALG_NOT_ALLOWED');
  });

  it('expired (real token, clock past exp + skew) → TOKEN_EXPIRED', async () => {
    const { accessToken } = await idp.issueToken({ clientId: 'agent-orders' });
    await expectDenied(verifierFor({ now: () => Date.now() + 331_000 }), accessToken, 'TOKEN_EXPIRED');
    await expectDenied(verifierFor(), await craft({ iat: nowSeconds() - 400, exp: nowSeconds() - 60 }), 'TOKEN_EXPIRED');
  });

  it('not yet valid (nbf in the future) → TOKEN_NOT_YET_VALID', async () => {
    await expectDenied(verifierFor(), await craft({ nbf: nowSeconds() + 120 }), 'TOKEN_NOT_YET_VALID');
  });

  it('issued in the future → TOKEN_ISSUED_IN_FUTURE', async () => {
    await expectDenied(verifierFor(), await craft({ iat: nowSeconds() + 120, exp: nowSeconds() + 400 }), 'TOKEN_ISSUED_IN_FUTURE');
    // A real token seen by a gateway whose clock is a minute behind the IdP's.
    const { accessToken } = await idp.issueToken({ clientId: 'agent-orders' });
    await expectDenied(verifierFor({ now: () => Date.now() - 60_000 }), accessToken, 'TOKEN_ISSUED_IN_FUTURE');
  });

  it('lifetime too long (real token with a 2 h lifetime, max 1 h) → TOKEN_LIFETIME_TOO_LONG', async () => {
    const { accessToken } = await idp.issueToken({ clientId: 'agent-orders', ttlSeconds: 7_200 });
    await expectDenied(verifierFor(), accessToken, 'TOKEN_LIFETIME_TOO_LONG');
    // The same token is fine for an issuer configured to allow 2 h.
    const lenient = verifierFor({ issuers: [{ issuer: idp.issuer, audiences: [idp.defaultAudience], maxTokenLifetimeSeconds: 7_200 }] });
    expect((await accept(lenient, accessToken)).identity.subject).toBe('agent-orders');
  });

  it('missing exp or iat (standing credential) → TOKEN_CLAIMS_INVALID', async () => {
    await expectDenied(verifierFor(), await craft({ exp: undefined }), 'TOKEN_CLAIMS_INVALID');
    await expectDenied(verifierFor(), await craft({ iat: undefined }), 'TOKEN_CLAIMS_INVALID');
  });

  it('wrong issuer: a valid token of another real provider → TOKEN_ISSUER_UNKNOWN, nothing fetched', async () => {
    const { accessToken } = await otherIdp.issueToken({ clientId: 'agent-orders' });
    await expectDenied(verifierFor(), accessToken, 'TOKEN_ISSUER_UNKNOWN');
    // Look-alike issuer strings are different issuers.
    await expectDenied(verifierFor(), await craft({}, { iss: `${idp.issuer}/` }), 'TOKEN_ISSUER_UNKNOWN');
    await expectDenied(verifierFor(), await craft({}, { iss: idp.issuer.replace('127.0.0.1', 'localhost') }), 'TOKEN_ISSUER_UNKNOWN');
    await expectDenied(verifierFor(), await craft({}, { iss: null }), 'TOKEN_ISSUER_UNKNOWN');
    expect(fetched).toEqual([]);
  });

  it('unconfigured issuer pointing at an internal URL (SSRF) → TOKEN_ISSUER_UNKNOWN, no JWKS or discovery fetch', async () => {
    const verifier = verifierFor();
    for (const iss of ['http://169.254.169.254/latest/meta-data', `http://127.0.0.1:${idp.port + 1}`, 'file:///etc/passwd']) {
      await expectDenied(verifier, await craft({}, { iss, kid: randomUUID() }), 'TOKEN_ISSUER_UNKNOWN');
    }
    expect(fetched).toEqual([]);
  });

  it('wrong audience (real token for another resource) → TOKEN_AUDIENCE_INVALID', async () => {
    const { accessToken } = await idp.issueToken({ clientId: 'agent-orders', audience: 'https://billing.internal.example' });
    expect(segment(accessToken, 1)['aud']).toBe('https://billing.internal.example');
    await expectDenied(verifierFor(), accessToken, 'TOKEN_AUDIENCE_INVALID');
  });

  it('unknown kid → one rate-limited JWKS refresh, then TOKEN_KEY_UNKNOWN', async () => {
    let clock = Date.now();
    const verifier = verifierFor({ now: () => clock });
    const { accessToken } = await idp.issueToken({ clientId: 'agent-orders' });
    await accept(verifier, accessToken);
    expect(fetched).toEqual([idp.discoveryUrl, idp.jwksUri]);

    const { privateKey } = await generateKeyPair('RS256');
    const rotated = await craft({ iss: idp.issuer, aud: idp.defaultAudience }, { key: privateKey, kid: 'rotated-key-2' });
    // Keys were fetched a moment ago: within the cooldown the unknown kid is denied without a fetch.
    await expectDenied(verifier, rotated, 'TOKEN_KEY_UNKNOWN');
    expect(fetched).toHaveLength(2);

    clock += 31_000;
    await expectDenied(verifier, rotated, 'TOKEN_KEY_UNKNOWN');
    expect(fetched.slice(2)).toEqual([idp.jwksUri]);

    // A second unknown kid right after: rate-limited, no fetch.
    await expectDenied(verifier, await craft({ iss: idp.issuer, aud: idp.defaultAudience }, { key: privateKey, kid: 'rotated-key-3' }), 'TOKEN_KEY_UNKNOWN');
    expect(fetched).toHaveLength(3);
    // Known keys keep working during the cooldown.
    expect((await accept(verifier, accessToken)).identity.subject).toBe('agent-orders');
  });

  it('tampered payload (groups changed) with the original signature → TOKEN_SIGNATURE_INVALID', async () => {
    const { accessToken } = await idp.issueToken({ clientId: 'agent-orders' });
    const [header, payload, signature] = accessToken.split('.');
    const claims = JSON.parse(Buffer.from(payload ?? '', 'base64url').toString('utf8')) as Record<string, unknown>;
    const tampered = Buffer.from(JSON.stringify({ ...claims, groups: ['admins'] })).toString('base64url');
    await expectDenied(verifierFor(), `${header}.${tampered}.${signature}`, 'TOKEN_SIGNATURE_INVALID');
  });

  it('signed by a different key under the right kid → TOKEN_SIGNATURE_INVALID', async () => {
    const { privateKey } = await generateKeyPair('RS256');
    const forged = await craft({ iss: idp.issuer, aud: idp.defaultAudience, sub: 'agent-orders', groups: ['admins'] }, { key: privateKey, kid: harnessRsaJwk.kid });
    await expectDenied(verifierFor(), forged, 'TOKEN_SIGNATURE_INVALID');
  });

  it('a signature truncated or emptied → TOKEN_SIGNATURE_INVALID / TOKEN_MALFORMED', async () => {
    const { accessToken } = await idp.issueToken({ clientId: 'agent-orders' });
    await expectDenied(verifierFor(), accessToken.slice(0, -10), 'TOKEN_SIGNATURE_INVALID');
    await expectDenied(verifierFor(), accessToken.slice(0, accessToken.lastIndexOf('.') + 1), 'TOKEN_MALFORMED');
  });

  it('JWKS endpoint down (provider stopped) → IDP_UNAVAILABLE, also for cached keys once they are stale', async () => {
    const doomed = await startOidcProvider({ clients: [{ clientId: 'agent-orders' }] });
    const early = await doomed.issueToken({ clientId: 'agent-orders' });
    const late = await doomed.issueToken({ clientId: 'agent-orders' });
    let clock = Date.now();
    const verifier = new OidcAccessTokenVerifier({
      issuers: [{ issuer: doomed.issuer, audiences: [doomed.defaultAudience] }],
      fetch: countingFetch,
      logger,
      now: () => clock,
      jwksMaxAgeMs: 60_000,
      httpTimeoutMs: 2_000,
    });
    expect((await accept(verifier, early.accessToken)).identity.subject).toBe('agent-orders');
    await doomed.stop();
    // Fresh cached keys still verify...
    expect((await accept(verifier, late.accessToken)).identity.subject).toBe('agent-orders');
    // ...stale ones are not trusted without the IdP.
    clock += 61_000;
    await expectDenied(verifier, late.accessToken, 'IDP_UNAVAILABLE');
    const fetchesAfterFailure = fetched.length;
    await expectDenied(verifier, late.accessToken, 'IDP_UNAVAILABLE');
    expect(fetched).toHaveLength(fetchesAfterFailure);
  });

  it('issuer on a closed port (discovery unreachable) → IDP_UNAVAILABLE with a clear message', async () => {
    const closed = `http://127.0.0.1:${await freePort()}`;
    const verifier = new OidcAccessTokenVerifier({ issuers: [{ issuer: closed, audiences: [CRAFTED_AUDIENCE] }], fetch: countingFetch, logger, httpTimeoutMs: 2_000 });
    const error = await expectDenied(verifier, await craft({}, { iss: closed }), 'IDP_UNAVAILABLE');
    expect(error.message).toContain(`discovery document of "${closed}" unreachable`);
    expect(error.issuer).toBe(closed);
  });

  it('oversized token → TOKEN_TOO_LARGE before any parsing or fetch', async () => {
    const big = await craft({ padding: 'x'.repeat(20_000) });
    await expectDenied(verifierFor(), big, 'TOKEN_TOO_LARGE');
    await expectDenied(verifierFor({ maxTokenBytes: 512 }), (await idp.issueToken({ clientId: 'agent-orders' })).accessToken, 'TOKEN_TOO_LARGE');
    expect(fetched).toEqual([]);
  });

  it.each([
    '',
    'garbage',
    'not.a.jwt',
    '...',
    'Bearer abc.def.ghi',
    '{"alg":"RS256"}',
    'eyJhbGciOiJSUzI1NiJ9',
    'eyJhbGciOiJSUzI1NiJ9.e30',
    'eyJhbGciOiJSUzI1NiJ9.e30.c2ln.ZXh0cmE.bW9yZQ',
    'eyJhbGciOiJSUzI1NiJ9.!!!.c2ln',
    '\u0000\u0001\u0002.\u0003.\u0004',
    'x'.repeat(100),
  ])('garbage %j → TOKEN_MALFORMED, nothing fetched', async (garbage) => {
    presented.push(garbage);
    const error = await verifierFor().verify(garbage).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(IdentityError);
    expect((error as IdentityError).code).toBe('TOKEN_MALFORMED');
    expect(fetched).toEqual([]);
  });

  it('a kind claim the issuer does not map → TOKEN_CLAIMS_INVALID; a validly signed token with a JSON-array payload is malformed', async () => {
    await expectDenied(verifierFor(), await craft({ custodian_kind: 'superuser' }), 'TOKEN_CLAIMS_INVALID');
    const arrayPayload = await new SignJWT({}).setProtectedHeader({ alg: 'RS256', kid: CRAFTED_KID }).sign(crafted.privateKey);
    const [h, , s] = arrayPayload.split('.');
    await expectDenied(verifierFor(), `${h}.${Buffer.from('[1]').toString('base64url')}.${s}`, 'TOKEN_MALFORMED');
  });
});

describe('no token material anywhere', () => {
  it('no presented token or signature appears in any log line', () => {
    expect(presented.length).toBeGreaterThan(30);
    expect(logLines.length).toBeGreaterThan(0);
    const logs = logLines.join('\n');
    for (const token of presented) {
      if (token.length >= 8) expect(logs).not.toContain(token);
      const signature = token.split('.')[2] ?? '';
      if (signature.length >= 8) expect(logs).not.toContain(signature);
    }
  });
});
