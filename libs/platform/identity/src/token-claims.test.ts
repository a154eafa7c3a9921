import { describe, expect, it } from 'vitest';
import { IdentityError, type IdentityErrorCode } from './identity-error.js';
import { resolveIssuerConfig, type IssuerConfig } from './issuer-config.js';
import { validateAccessTokenClaims } from './token-claims.js';

const ISSUER = 'https://idp.example.com';
const AUDIENCE = 'https://gateway.custodian.test';
const NOW = 1_800_000_000;
const issuer = (overrides: Partial<IssuerConfig> = {}) => resolveIssuerConfig({ issuer: ISSUER, audiences: [AUDIENCE], ...overrides });
const header = { alg: 'RS256', typ: 'at+jwt', kid: 'k1' };
const claims = (overrides: Record<string, unknown> = {}): Record<string, unknown> => ({
  iss: ISSUER,
  aud: AUDIENCE,
  sub: 'agent-7',
  client_id: 'agent-7',
  iat: NOW - 10,
  exp: NOW + 290,
  jti: 'jti-1',
  groups: ['readers'],
  custodian_kind: 'agent',
  ...overrides,
});

function codeOf(run: () => unknown): IdentityErrorCode | 'NO_ERROR' {
  try {
    run();
    return 'NO_ERROR';
  } catch (error) {
    if (error instanceof IdentityError) return error.code;
    throw error;
  }
}
const check = (c: Record<string, unknown>, cfg = issuer(), ctx = {}) => validateAccessTokenClaims(header, c, cfg, NOW * 1000, ctx);

describe('validateAccessTokenClaims', () => {
  it('accepts a well-formed agent token and maps identity, times, audience and method', () => {
    const verified = check(claims());
    expect(verified).toEqual({
      identity: { subject: 'agent-7', issuer: ISSUER, groups: ['readers'], kind: 'agent' },
      tokenId: 'jti-1',
      expiresAt: new Date((NOW + 290) * 1000),
      issuedAt: new Date((NOW - 10) * 1000),
      audience: [AUDIENCE],
      method: 'oidc-client-credentials',
    });
    expect(check(claims({ sub: 'alice', client_id: 'custodian-cli' })).method).toBe('oidc-access-token');
  });

  it.each<[string, Record<string, unknown>, IdentityErrorCode]>([
    ['expired', { iat: NOW - 400, exp: NOW - 31 }, 'TOKEN_EXPIRED'],
    ['expired exactly at exp − skew', { iat: NOW - 400, exp: NOW - 30 }, 'TOKEN_EXPIRED'],
    ['not yet valid', { nbf: NOW + 31 }, 'TOKEN_NOT_YET_VALID'],
    ['issued in the future', { iat: NOW + 31, exp: NOW + 300 }, 'TOKEN_ISSUED_IN_FUTURE'],
    ['lifetime over 1 h', { iat: NOW - 10, exp: NOW - 10 + 3_601 }, 'TOKEN_LIFETIME_TOO_LONG'],
    ['back-dated iat with a far exp', { iat: NOW - 86_000, exp: NOW + 5_000 }, 'TOKEN_LIFETIME_TOO_LONG'],
    ['missing exp', { exp: undefined }, 'TOKEN_CLAIMS_INVALID'],
    ['missing iat', { iat: undefined }, 'TOKEN_CLAIMS_INVALID'],
    ['exp as a string', { exp: String(NOW + 10) }, 'TOKEN_CLAIMS_INVALID'],
    ['exp before iat', { iat: NOW, exp: NOW - 1 }, 'TOKEN_CLAIMS_INVALID'],
    ['wrong issuer', { iss: 'https://evil.example.com' }, 'TOKEN_ISSUER_UNKNOWN'],
    ['wrong audience', { aud: 'https://other.example' }, 'TOKEN_AUDIENCE_INVALID'],
    ['no audience', { aud: undefined }, 'TOKEN_AUDIENCE_INVALID'],
    ['audience of non-strings', { aud: [1, 2] }, 'TOKEN_AUDIENCE_INVALID'],
    ['empty subject', { sub: '' }, 'TOKEN_CLAIMS_INVALID'],
    ['groups of numbers', { groups: [1] }, 'TOKEN_CLAIMS_INVALID'],
    ['too many groups', { groups: Array.from({ length: 257 }, (_, i) => `g${i}`) }, 'TOKEN_CLAIMS_INVALID'],
    ['unmapped kind', { custodian_kind: 'root' }, 'TOKEN_CLAIMS_INVALID'],
    ['kind missing and no default', { custodian_kind: undefined }, 'TOKEN_CLAIMS_INVALID'],
    ['jti not a string', { jti: 7 }, 'TOKEN_CLAIMS_INVALID'],
  ])('refuses %s', (_name, overrides, code) => {
    const c = claims(overrides);
    for (const [k, v] of Object.entries(overrides)) if (v === undefined) delete c[k];
    expect(codeOf(() => check(c))).toBe(code);
  });

  it('applies clock skew: 30 s by default, configurable, never above 120 s', () => {
    expect(codeOf(() => check(claims({ iat: NOW - 400, exp: NOW - 29 })))).toBe('NO_ERROR');
    expect(codeOf(() => check(claims({ nbf: NOW + 29 })))).toBe('NO_ERROR');
    expect(codeOf(() => check(claims({ iat: NOW - 400, exp: NOW - 29 }), issuer({ clockSkewSeconds: 0 })))).toBe('TOKEN_EXPIRED');
    expect(() => issuer({ clockSkewSeconds: 121 })).toThrow(/clockSkewSeconds/);
  });

  it('honours a configured maximum lifetime', () => {
    const short = issuer({ maxTokenLifetimeSeconds: 120 });
    expect(codeOf(() => check(claims({ iat: NOW, exp: NOW + 121 }), short))).toBe('TOKEN_LIFETIME_TOO_LONG');
    expect(codeOf(() => check(claims({ iat: NOW, exp: NOW + 120 }), short))).toBe('NO_ERROR');
  });

  it('narrows audiences per call to ones the issuer allows', () => {
    const two = issuer({ audiences: [AUDIENCE, 'https://api.custodian.test'] });
    expect(codeOf(() => check(claims(), two, { audiences: ['https://api.custodian.test'] }))).toBe('TOKEN_AUDIENCE_INVALID');
    expect(codeOf(() => check(claims({ aud: ['x', 'https://api.custodian.test'] }), two, { audiences: ['https://api.custodian.test'] }))).toBe('NO_ERROR');
    // A per-call audience the issuer does not allow widens nothing.
    expect(codeOf(() => check(claims({ aud: 'https://other' }), two, { audiences: ['https://other'] }))).toBe('TOKEN_AUDIENCE_INVALID');
  });

  it('checks the JWS typ when configured (RFC 9068 at+jwt)', () => {
    const typed = issuer({ tokenTypes: ['at+jwt'] });
    expect(validateAccessTokenClaims({ alg: 'RS256', typ: 'application/AT+JWT' }, claims(), typed, NOW * 1000).identity.subject).toBe('agent-7');
    expect(codeOf(() => validateAccessTokenClaims({ alg: 'RS256', typ: 'JWT' }, claims(), typed, NOW * 1000))).toBe('TOKEN_CLAIMS_INVALID');
    expect(codeOf(() => validateAccessTokenClaims({ alg: 'RS256' }, claims(), typed, NOW * 1000))).toBe('TOKEN_CLAIMS_INVALID');
  });
});

describe('claim mapping', () => {
  it('reads groups from a dotted path, accepts a single string, and maps kind values', () => {
    const keycloak = issuer({
      claims: {
        subjectClaim: 'preferred_username',
        groupsClaim: 'realm_access.roles',
        kindClaim: 'principal.type',
        kindValues: { user: 'human', bot: 'agent', svc: 'service' },
      },
    });
    const verified = check(claims({ preferred_username: 'ci-bot', realm_access: { roles: ['deploy', 'deploy', 'read'] }, principal: { type: 'bot' } }), keycloak);
    expect(verified.identity).toEqual({ subject: 'ci-bot', issuer: ISSUER, groups: ['deploy', 'read'], kind: 'agent' });
    expect(check(claims({ preferred_username: 'x', realm_access: { roles: 'ops' }, principal: { type: 'svc' } }), keycloak).identity).toMatchObject({ groups: ['ops'], kind: 'service' });
    // The default value map (human/agent/service) no longer applies once a map is configured.
    expect(codeOf(() => check(claims({ preferred_username: 'x', principal: { type: 'agent' } }), keycloak))).toBe('TOKEN_CLAIMS_INVALID');
  });

  it('uses the default kind only when the claim is absent, and no groups when groups are absent', () => {
    const withDefault = issuer({ claims: { defaultKind: 'service' } });
    const c = claims({ groups: undefined });
    delete c['groups'];
    delete c['custodian_kind'];
    expect(check(c, withDefault).identity).toMatchObject({ groups: [], kind: 'service' });
    expect(codeOf(() => check(claims({ custodian_kind: 'robot' }), withDefault))).toBe('TOKEN_CLAIMS_INVALID');
  });

  it('does not read inherited properties as claims', () => {
    const c = claims();
    delete c['custodian_kind'];
    expect(codeOf(() => check(c, issuer({ claims: { kindClaim: 'constructor.name' } })))).toBe('TOKEN_CLAIMS_INVALID');
  });
});

describe('issuer configuration', () => {
  it.each([
    [{ algorithms: ['none'] }, /not allowed/],
    [{ algorithms: ['HS256'] }, /not allowed/],
    [{ algorithms: [] }, /must not be empty/],
    [{ audiences: [] }, /audiences/],
    [{ issuer: 'http://idp.example.com' }, /https/],
    [{ issuer: 'https://user:pw@idp.example.com' }, /https/],
    [{ jwksUri: 'http://keys.example.com/jwks' }, /jwksUri/],
    [{ maxTokenLifetimeSeconds: 0 }, /maxTokenLifetimeSeconds/],
    [{ maxTokenLifetimeSeconds: 90_000 }, /maxTokenLifetimeSeconds/],
    [{ claims: { groupsClaim: 'a..b' } }, /groupsClaim/],
    [{ claims: { defaultKind: 'root' } }, /defaultKind/],
  ] as const)('refuses %j', (overrides, message) => {
    expect(() => resolveIssuerConfig({ issuer: ISSUER, audiences: [AUDIENCE], ...(overrides as unknown as Partial<IssuerConfig>) })).toThrow(message);
  });

  it('defaults to RS256/ES256/EdDSA/PS256, 30 s skew, 1 h lifetime, and allows http on loopback only', () => {
    const resolved = resolveIssuerConfig({ issuer: 'http://127.0.0.1:4000', audiences: [AUDIENCE] });
    expect(resolved).toMatchObject({ algorithms: ['RS256', 'ES256', 'EdDSA', 'PS256'], clockSkewSeconds: 30, maxTokenLifetimeSeconds: 3_600 });
    expect(resolved.claims).toEqual({ subjectClaim: 'sub', groupsClaim: 'groups', kindClaim: 'custodian_kind', kindValues: { human: 'human', agent: 'agent', service: 'service' }, defaultKind: undefined });
  });
});
