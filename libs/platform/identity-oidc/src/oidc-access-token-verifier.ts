import {
  DEFAULT_MAX_TOKEN_BYTES,
  IdentityConfigError,
  IdentityError,
  decodeUnverifiedJwt,
  quoteClaim,
  resolveIssuerConfigs,
  toIdentityError,
  validateAccessTokenClaims,
  validateIntrospectedClaims,
  type AccessTokenVerifier,
  type IssuerConfig,
  type JwtClaims,
  type ResolvedIssuerConfig,
  type VerificationContext,
  type VerifiedIdentity,
} from '@custodian/identity';
import { compactVerify, errors as joseErrors, type CompactVerifyResult, type CryptoKey } from 'jose';
import type { FetchFunction } from './idp-http.js';
import { IssuerKeySet, type IdentityLogger, type KeyResolver } from './issuer-key-set.js';
import { TokenIntrospector, isOpaqueToken } from './token-introspection.js';

export interface OidcAccessTokenVerifierOptions {
  readonly issuers: readonly IssuerConfig[];
  /** Tokens above this size are refused before parsing (default 16 KiB). */
  readonly maxTokenBytes?: number;
  /** Timeout of each discovery / JWKS request (default 5 s). */
  readonly httpTimeoutMs?: number;
  /** At most one key-set fetch per issuer in this interval (default 30 s). */
  readonly jwksRefreshCooldownMs?: number;
  /** Cached keys older than this are re-fetched before use (default 10 min). */
  readonly jwksMaxAgeMs?: number;
  readonly fetch?: FetchFunction;
  /** Milliseconds since the epoch (default Date.now). */
  readonly now?: () => number;
  readonly logger?: IdentityLogger;
}

/**
 * Verifies OIDC JWT access tokens (RFC 9068 style) against the configured issuers' JWKS.
 * Order matters for safety: size → structure → alg none → issuer is configured (before any
 * network fetch, so a token cannot make Custodian fetch from a URL of its choosing) → alg
 * allow-list → key → signature → claims.
 *
 * With `introspection` configured for an issuer (at most one), an opaque token (no dots) is sent to
 * that issuer's introspection endpoint (RFC 7662) and its answer checked like a JWT's claims; such
 * a token carries `recheckIntervalMs`, and `stillActive` asks again (revocation ends sessions).
 */
export class OidcAccessTokenVerifier implements AccessTokenVerifier {
  private readonly issuers: ReadonlyMap<string, ResolvedIssuerConfig>;
  private readonly keySets = new Map<string, IssuerKeySet>();
  private readonly maxTokenBytes: number;
  private readonly now: () => number;
  private readonly logger: IdentityLogger | undefined;
  private readonly introspecting: { readonly issuer: ResolvedIssuerConfig; readonly introspector: TokenIntrospector } | undefined;

  constructor(options: OidcAccessTokenVerifierOptions) {
    this.issuers = resolveIssuerConfigs(options.issuers);
    this.maxTokenBytes = options.maxTokenBytes ?? DEFAULT_MAX_TOKEN_BYTES;
    this.now = options.now ?? Date.now;
    this.logger = options.logger;
    const refreshCooldownMs = options.jwksRefreshCooldownMs ?? 30_000;
    const maxKeyAgeMs = options.jwksMaxAgeMs ?? 600_000;
    if (maxKeyAgeMs < refreshCooldownMs) throw new IdentityConfigError('jwksMaxAgeMs must not be shorter than jwksRefreshCooldownMs');
    for (const issuer of this.issuers.values()) {
      this.keySets.set(
        issuer.issuer,
        new IssuerKeySet(issuer, {
          fetch: options.fetch ?? fetch,
          now: this.now,
          httpTimeoutMs: options.httpTimeoutMs ?? 5_000,
          refreshCooldownMs,
          maxKeyAgeMs,
          ...(options.logger ? { logger: options.logger } : {}),
        }),
      );
    }
    const introspecting = [...this.issuers.values()].find((issuer) => issuer.introspection !== undefined);
    this.introspecting =
      introspecting?.introspection === undefined
        ? undefined
        : { issuer: introspecting, introspector: new TokenIntrospector(introspecting.issuer, introspecting.introspection, { fetch: options.fetch ?? fetch, httpTimeoutMs: options.httpTimeoutMs ?? 5_000 }) };
  }

  /** Issuers this verifier trusts. */
  get issuerUrls(): readonly string[] {
    return [...this.issuers.keys()];
  }

  async verify(token: string, ctx: VerificationContext = {}): Promise<VerifiedIdentity> {
    try {
      return await this.verifyOrThrow(token, ctx);
    } catch (error) {
      if (error instanceof IdentityError) throw error;
      // A fault of ours, not a verdict on the token: still a denial. Only the error's name is
      // logged; its message or properties could hold token material.
      this.logger?.warn({ error: error instanceof Error ? error.name : typeof error }, 'identity: unexpected verification failure');
      throw toIdentityError(error);
    }
  }

  async stillActive(token: string, ctx: VerificationContext = {}): Promise<void> {
    try {
      await this.introspect(token, ctx);
    } catch (error) {
      if (error instanceof IdentityError) throw error;
      this.logger?.warn({ error: error instanceof Error ? error.name : typeof error }, 'identity: unexpected introspection failure');
      throw toIdentityError(error);
    }
  }

  private async verifyOrThrow(token: string, ctx: VerificationContext): Promise<VerifiedIdentity> {
    if (this.introspecting && typeof token === 'string' && token.length > 0 && !token.includes('.')) return this.introspect(token, ctx);
    const { header, claims: unverified } = decodeUnverifiedJwt(token, this.maxTokenBytes);
    const iss = unverified['iss'];
    const issuer = typeof iss === 'string' ? this.issuers.get(iss) : undefined;
    const keySet = issuer ? this.keySets.get(issuer.issuer) : undefined;
    if (!issuer || !keySet) throw new IdentityError('TOKEN_ISSUER_UNKNOWN', `token issuer ${quoteClaim(iss ?? '(none)')} is not configured`);
    if (!(issuer.algorithms as readonly string[]).includes(header.alg)) {
      throw new IdentityError('TOKEN_ALG_NOT_ALLOWED', `algorithm ${quoteClaim(header.alg)} is not allowed for ${JSON.stringify(issuer.issuer)} (allowed: ${issuer.algorithms.join(', ')})`, issuer.issuer);
    }

    const resolver = await keySet.resolverFor(header.kid, ctx.signal);
    let verified: CompactVerifyResult;
    try {
      verified = await verifySignature(token, resolver, header.alg);
    } catch (error) {
      // A kid-less token that matched no key: the IdP may have rotated; refresh once (rate-limited).
      if (error instanceof joseErrors.JWKSNoMatchingKey && header.kid === undefined && keySet.mayRefresh()) {
        await keySet.refresh('no key matches a token without kid', ctx.signal);
        verified = await verifySignature(token, await keySet.resolverFor(undefined, ctx.signal), header.alg).catch((retryError: unknown) => {
          throw signatureFailure(retryError, issuer.issuer);
        });
      } else {
        throw signatureFailure(error, issuer.issuer);
      }
    }

    let claims: JwtClaims;
    try {
      claims = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(verified.payload)) as JwtClaims;
    } catch {
      throw new IdentityError('TOKEN_MALFORMED', 'token payload is not JSON', issuer.issuer);
    }
    return validateAccessTokenClaims(header, claims, issuer, this.now(), ctx);
  }

  /** An opaque token, checked by the introspecting issuer (fail closed: an unreachable endpoint is a denial). */
  private async introspect(token: string, ctx: VerificationContext): Promise<VerifiedIdentity> {
    const introspecting = this.introspecting;
    const config = introspecting?.issuer.introspection;
    if (!introspecting || !config) throw new IdentityError('TOKEN_MALFORMED', 'token is not a compact JWS (header.payload.signature)');
    if (Buffer.byteLength(token, 'utf8') > this.maxTokenBytes) throw new IdentityError('TOKEN_TOO_LARGE', `token exceeds ${this.maxTokenBytes} bytes`);
    // Only what can be a token is sent to the issuer.
    if (!isOpaqueToken(token)) throw new IdentityError('TOKEN_MALFORMED', 'token is neither a compact JWS nor an opaque token');
    const { issuer, introspector } = introspecting;
    const response = await introspector.introspect(token, ctx.signal);
    const verified = validateIntrospectedClaims(response, issuer, this.now(), ctx);
    return { ...verified, recheckIntervalMs: config.recheckIntervalMs };
  }
}

async function verifySignature(token: string, resolver: KeyResolver, alg: string): Promise<CompactVerifyResult> {
  try {
    return await compactVerify(token, resolver, { algorithms: [alg] });
  } catch (error) {
    if (!(error instanceof joseErrors.JWKSMultipleMatchingKeys)) throw error;
    // Several keys fit a token without kid: try each (jose yields them); one must verify.
    for await (const key of error as unknown as AsyncIterable<CryptoKey>) {
      try {
        return await compactVerify(token, key, { algorithms: [alg] });
      } catch {
        // try the next candidate
      }
    }
    throw new joseErrors.JWSSignatureVerificationFailed();
  }
}

/** Maps jose failures to codes without carrying jose's error along (it can hold the payload). */
function signatureFailure(error: unknown, issuer: string): IdentityError {
  if (error instanceof IdentityError) return error;
  if (error instanceof joseErrors.JWSSignatureVerificationFailed) return new IdentityError('TOKEN_SIGNATURE_INVALID', 'token signature does not verify', issuer);
  if (error instanceof joseErrors.JWKSNoMatchingKey) return new IdentityError('TOKEN_KEY_UNKNOWN', `no key of ${JSON.stringify(issuer)} matches the token`, issuer);
  if (error instanceof joseErrors.JWSInvalid || error instanceof joseErrors.JOSENotSupported) return new IdentityError('TOKEN_MALFORMED', 'token is not a valid JWS', issuer);
  if (error instanceof joseErrors.JWKSInvalid) return new IdentityError('IDP_UNAVAILABLE', `key set of ${JSON.stringify(issuer)} is invalid`, issuer);
  if (error instanceof joseErrors.JOSEAlgNotAllowed) return new IdentityError('TOKEN_ALG_NOT_ALLOWED', 'token algorithm is not allowed', issuer);
  return new IdentityError('TOKEN_SIGNATURE_INVALID', 'token signature could not be verified', issuer);
}
