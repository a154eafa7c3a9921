import type { VerificationContext, VerifiedIdentity } from './access-token-verifier.js';
import { mapIdentity } from './claim-mapping.js';
import type { JwsHeader, JwtClaims } from './compact-jwt.js';
import { IdentityError, quoteClaim } from './identity-error.js';
import { normaliseTokenType, type ResolvedIssuerConfig } from './issuer-config.js';

function numericDate(claims: JwtClaims, name: 'exp' | 'iat' | 'nbf', issuer: string, required: boolean): number | undefined {
  const value = claims[name];
  if (value === undefined) {
    if (required) {
      throw new IdentityError('TOKEN_CLAIMS_INVALID', `token has no ${name} claim; tokens without ${name === 'exp' ? 'an expiry' : 'an issue time'} are refused`, issuer);
    }
    return undefined;
  }
  if (typeof value !== 'number' || !Number.isFinite(value)) throw new IdentityError('TOKEN_CLAIMS_INVALID', `${name} is not a NumericDate`, issuer);
  return value;
}

/**
 * Checks the claims of a token whose signature has already been verified against `issuer`:
 * issuer, audience, time window, maximum lifetime, then maps the identity.
 */
export function validateAccessTokenClaims(
  header: JwsHeader,
  claims: JwtClaims,
  issuer: ResolvedIssuerConfig,
  nowMs: number,
  ctx: VerificationContext = {},
): VerifiedIdentity {
  const iss = issuer.issuer;
  if (claims['iss'] !== iss) throw new IdentityError('TOKEN_ISSUER_UNKNOWN', `token issuer ${quoteClaim(claims['iss'])} is not ${JSON.stringify(iss)}`, iss);

  if (issuer.tokenTypes !== undefined && (header.typ === undefined || !issuer.tokenTypes.includes(normaliseTokenType(header.typ)))) {
    throw new IdentityError('TOKEN_CLAIMS_INVALID', `token type ${quoteClaim(header.typ ?? '')} is not one of ${issuer.tokenTypes.join(', ')}`, iss);
  }
  return validateClaims(claims, issuer, nowMs, ctx);
}

/**
 * Checks what an issuer's introspection endpoint (RFC 7662) said of an opaque token, as the claims
 * of a JWT are checked: issuer, audience, time window, maximum lifetime, then the identity. The
 * response must say `active: true`; a missing `iss` is the issuer asked; a token issued to a client
 * for itself (client credentials, no `sub`) has its `client_id` as subject.
 */
export function validateIntrospectedClaims(response: JwtClaims, issuer: ResolvedIssuerConfig, nowMs: number, ctx: VerificationContext = {}): VerifiedIdentity {
  const iss = issuer.issuer;
  if (response['active'] !== true) throw new IdentityError('TOKEN_INACTIVE', 'the issuer says the token is not active (revoked, expired or unknown)', iss);
  const claims: Record<string, unknown> = { ...response, iss: response['iss'] ?? iss };
  if (claims['sub'] === undefined && typeof claims['client_id'] === 'string') claims['sub'] = claims['client_id'];
  if (claims['iss'] !== iss) throw new IdentityError('TOKEN_ISSUER_UNKNOWN', `token issuer ${quoteClaim(claims['iss'])} is not ${JSON.stringify(iss)}`, iss);
  return validateClaims(claims, issuer, nowMs, ctx);
}

function validateClaims(claims: JwtClaims, issuer: ResolvedIssuerConfig, nowMs: number, ctx: VerificationContext): VerifiedIdentity {
  const iss = issuer.issuer;

  const rawAud = claims['aud'];
  const audience = typeof rawAud === 'string' ? [rawAud] : Array.isArray(rawAud) && rawAud.every((a): a is string => typeof a === 'string') ? [...rawAud] : undefined;
  if (audience === undefined || audience.length === 0) throw new IdentityError('TOKEN_AUDIENCE_INVALID', 'token has no audience', iss);
  const expected = ctx.audiences ? ctx.audiences.filter((a) => issuer.audiences.includes(a)) : issuer.audiences;
  if (!audience.some((a) => expected.includes(a))) {
    throw new IdentityError('TOKEN_AUDIENCE_INVALID', `token audience ${quoteClaim(audience)} does not include ${expected.map((a) => JSON.stringify(a)).join(' or ') || 'an accepted audience'}`, iss);
  }

  const exp = numericDate(claims, 'exp', iss, true) as number;
  const iat = numericDate(claims, 'iat', iss, true) as number;
  const nbf = numericDate(claims, 'nbf', iss, false);
  const now = nowMs / 1000;
  const skew = issuer.clockSkewSeconds;
  if (now - skew >= exp) throw new IdentityError('TOKEN_EXPIRED', `token expired at ${new Date(exp * 1000).toISOString()}`, iss);
  if (nbf !== undefined && nbf > now + skew) throw new IdentityError('TOKEN_NOT_YET_VALID', `token is not valid before ${new Date(nbf * 1000).toISOString()}`, iss);
  if (iat > now + skew) throw new IdentityError('TOKEN_ISSUED_IN_FUTURE', `token claims to be issued at ${new Date(iat * 1000).toISOString()}, in the future`, iss);
  if (exp <= iat) throw new IdentityError('TOKEN_CLAIMS_INVALID', 'token expires before it was issued', iss);
  const max = issuer.maxTokenLifetimeSeconds;
  // The second bound stops a back-dated iat from stretching a token past the maximum.
  if (exp - iat > max || exp - now > max + skew) {
    throw new IdentityError('TOKEN_LIFETIME_TOO_LONG', `token lifetime ${Math.round(exp - iat)} s exceeds the maximum of ${max} s (no standing credentials)`, iss);
  }

  const identity = mapIdentity(claims, iss, issuer.claims);
  const jti = claims['jti'];
  if (jti !== undefined && (typeof jti !== 'string' || jti === '' || jti.length > 256)) throw new IdentityError('TOKEN_CLAIMS_INVALID', 'jti is not a short string', iss);
  const clientId = claims['client_id'] ?? claims['azp'];
  const selfIssued = typeof clientId === 'string' && clientId === claims['sub'];
  return {
    identity,
    ...(jti !== undefined ? { tokenId: jti } : {}),
    expiresAt: new Date(exp * 1000),
    issuedAt: new Date(iat * 1000),
    audience,
    method: selfIssued ? 'oidc-client-credentials' : 'oidc-access-token',
  };
}
