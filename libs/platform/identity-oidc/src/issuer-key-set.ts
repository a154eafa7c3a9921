import { IdentityError, isAllowedIdpUrl, type ResolvedIssuerConfig } from '@custodian/identity';
import { createLocalJWKSet, type JSONWebKeySet, type JWK } from 'jose';
import { fetchIdpJson, type FetchFunction } from './idp-http.js';

export type KeyResolver = ReturnType<typeof createLocalJWKSet>;

/** Minimal structured logger (a pino logger fits). Never handed a token. */
export interface IdentityLogger {
  info(fields: Record<string, unknown>, message: string): void;
  warn(fields: Record<string, unknown>, message: string): void;
}

export interface IssuerKeySetOptions {
  readonly fetch: FetchFunction;
  readonly now: () => number;
  readonly httpTimeoutMs: number;
  /** Minimum time between two key-set fetches, successful or not. */
  readonly refreshCooldownMs: number;
  /** Keys older than this are re-fetched before use (so removed keys stop verifying). */
  readonly maxKeyAgeMs: number;
  readonly logger?: IdentityLogger;
}

const PRIVATE_JWK_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'] as const;

/**
 * One issuer's signing keys: discovery (once) then the JWKS, cached. A fetch happens when
 * there are no keys yet, when they are older than maxKeyAgeMs, or when a token names an
 * unknown kid — but never more often than refreshCooldownMs, so unknown kids cannot be used
 * to hammer the IdP.
 */
export class IssuerKeySet {
  private jwksUri: string | undefined;
  private resolver: KeyResolver | undefined;
  private kids = new Set<string>();
  private fetchedAt: number | undefined;
  private lastAttemptAt: number | undefined;
  private lastFailure: IdentityError | undefined;
  private inflight: Promise<void> | undefined;

  constructor(
    private readonly issuer: ResolvedIssuerConfig,
    private readonly options: IssuerKeySetOptions,
  ) {
    this.jwksUri = issuer.jwksUri;
  }

  /** Keys for a token with this kid: current ones, refreshed if stale or (rate-limited) if the kid is unknown. */
  async resolverFor(kid: string | undefined, signal?: AbortSignal): Promise<KeyResolver> {
    const now = this.options.now();
    if (this.resolver === undefined || this.fetchedAt === undefined || now - this.fetchedAt >= this.options.maxKeyAgeMs) {
      if (this.inCooldown(now) && this.inflight === undefined) {
        // The last attempt failed recently (or keys are stale and a refresh just failed): stay closed.
        throw this.cooldownFailure();
      }
      await this.refresh('initial or stale keys', signal);
    }
    if (kid !== undefined && !this.kids.has(kid)) {
      if (this.inCooldown(this.options.now()) && this.inflight === undefined) {
        throw new IdentityError('TOKEN_KEY_UNKNOWN', `key ${JSON.stringify(kid.slice(0, 100))} is not in the key set of ${JSON.stringify(this.issuer.issuer)} (refresh rate-limited)`, this.issuer.issuer);
      }
      await this.refresh('unknown kid', signal);
      if (!this.kids.has(kid)) {
        throw new IdentityError('TOKEN_KEY_UNKNOWN', `key ${JSON.stringify(kid.slice(0, 100))} is not in the key set of ${JSON.stringify(this.issuer.issuer)}`, this.issuer.issuer);
      }
    }
    if (this.resolver === undefined) throw this.cooldownFailure();
    return this.resolver;
  }

  /** Whether a no-kid token that matched no key may trigger a refresh now. */
  mayRefresh(): boolean {
    return !this.inCooldown(this.options.now());
  }

  async refresh(reason: string, signal?: AbortSignal): Promise<void> {
    // Concurrent callers share one fetch.
    this.inflight ??= this.fetchKeys(reason, signal).finally(() => {
      this.inflight = undefined;
    });
    return this.inflight;
  }

  private inCooldown(now: number): boolean {
    return this.lastAttemptAt !== undefined && now - this.lastAttemptAt < this.options.refreshCooldownMs;
  }

  private cooldownFailure(): IdentityError {
    const last = this.lastFailure;
    return new IdentityError('IDP_UNAVAILABLE', last ? `${last.message}; retrying after a cooldown` : `no signing keys for ${JSON.stringify(this.issuer.issuer)}`, this.issuer.issuer);
  }

  private async fetchKeys(reason: string, signal?: AbortSignal): Promise<void> {
    const { issuer } = this.issuer;
    this.lastAttemptAt = this.options.now();
    try {
      const jwksUri = this.jwksUri ?? (await this.discover(signal));
      const document = await fetchIdpJson(this.options.fetch, jwksUri, 'key set', issuer, this.options.httpTimeoutMs, signal);
      const keys = publicSigningKeys(document['keys']);
      if (keys === undefined) throw new IdentityError('IDP_UNAVAILABLE', `key set of ${JSON.stringify(issuer)} has no keys array`, issuer);
      const jwks: JSONWebKeySet = { keys };
      this.resolver = createLocalJWKSet(jwks);
      this.kids = new Set(keys.flatMap((k) => (typeof k.kid === 'string' ? [k.kid] : [])));
      this.fetchedAt = this.options.now();
      this.lastFailure = undefined;
      this.options.logger?.info({ issuer, reason, keys: keys.length }, 'identity: signing keys fetched');
    } catch (error) {
      const failure = error instanceof IdentityError ? error : new IdentityError('IDP_UNAVAILABLE', `signing keys of ${JSON.stringify(issuer)} could not be loaded`, issuer, { cause: error });
      this.lastFailure = failure;
      // Fail closed: keys that could not be re-validated are not used any more once stale.
      if (this.fetchedAt !== undefined && this.options.now() - this.fetchedAt >= this.options.maxKeyAgeMs) this.resolver = undefined;
      this.options.logger?.warn({ issuer, reason, code: failure.code, error: failure.message }, 'identity: signing keys could not be fetched');
      throw failure;
    }
  }

  private async discover(signal?: AbortSignal): Promise<string> {
    const { issuer } = this.issuer;
    const url = `${issuer.replace(/\/$/, '')}/.well-known/openid-configuration`;
    const metadata = await fetchIdpJson(this.options.fetch, url, 'discovery document', issuer, this.options.httpTimeoutMs, signal);
    // OpenID Connect Discovery 1.0 §4.3: the document must name exactly the issuer asked for.
    if (metadata['issuer'] !== issuer) {
      throw new IdentityError('IDP_UNAVAILABLE', `discovery document of ${JSON.stringify(issuer)} names a different issuer`, issuer);
    }
    const jwksUri = metadata['jwks_uri'];
    if (typeof jwksUri !== 'string' || !isAllowedIdpUrl(jwksUri)) {
      throw new IdentityError('IDP_UNAVAILABLE', `discovery document of ${JSON.stringify(issuer)} has no usable jwks_uri`, issuer);
    }
    this.jwksUri = jwksUri;
    return jwksUri;
  }
}

/** Asymmetric public keys only: symmetric (`oct`) members are dropped, private members stripped. */
function publicSigningKeys(raw: unknown): JWK[] | undefined {
  if (!Array.isArray(raw)) return undefined;
  const keys: JWK[] = [];
  for (const entry of raw) {
    if (entry === null || typeof entry !== 'object' || Array.isArray(entry)) continue;
    const jwk = { ...(entry as Record<string, unknown>) };
    if (jwk['kty'] !== 'RSA' && jwk['kty'] !== 'EC' && jwk['kty'] !== 'OKP') continue;
    if (jwk['use'] !== undefined && jwk['use'] !== 'sig') continue;
    for (const member of PRIVATE_JWK_MEMBERS) delete jwk[member];
    keys.push(jwk as JWK);
  }
  return keys;
}
