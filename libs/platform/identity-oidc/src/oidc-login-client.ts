import { randomBytes } from 'node:crypto';
import type { Identity } from '@custodian/event-contracts';
import {
  IdentityError,
  isAllowedIdpUrl,
  mapGroups,
  mapSubject,
  resolveClaimMapping,
  type AccessTokenVerifier,
  type ClaimMapping,
  type JwtClaims,
  type ResolvedClaimMapping,
} from '@custodian/identity';
import * as oidc from 'openid-client';
import type { FetchFunction } from './idp-http.js';

export interface OidcLoginClientOptions {
  /** The OpenID Provider (its discovery document is read from `<issuer>/.well-known/openid-configuration`). */
  readonly issuer: string;
  readonly clientId: string;
  /** Confidential clients (client_secret_basic); omit for a public client (PKCE only). */
  readonly clientSecret?: string;
  /** Where the IdP sends the browser back; must be registered with the IdP. */
  readonly redirectUri: string;
  /** Default `openid`; `openid` is always included. */
  readonly scope?: string;
  /** RFC 8707 resource indicator for the access token issued alongside (e.g. the gateway audience). */
  readonly resource?: string;
  /** How subject and groups are read from the ID token (the kind is always `human`). */
  readonly claims?: ClaimMapping;
  /**
   * When the ID token carries no groups claim, groups are taken from the access token issued
   * in the same exchange, verified through this verifier (same subject and issuer required).
   */
  readonly accessTokenVerifier?: AccessTokenVerifier;
  /** How long a started login may take to come back (default 10 min). */
  readonly loginTtlMs?: number;
  /** Bound on pending logins (default 10 000; the oldest is dropped first). */
  readonly maxPendingLogins?: number;
  /** Timeout of each request to the IdP (default 10 s). */
  readonly httpTimeoutMs?: number;
  readonly fetch?: FetchFunction;
  readonly now?: () => number;
}

export interface StartedLogin {
  /** Send the browser here. */
  readonly authorizationUrl: URL;
  /** Opaque state; the callback must carry it back. */
  readonly state: string;
  readonly expiresAt: Date;
}

/** Claims of the verified ID token, standard members only (no token, no signature). */
export interface IdTokenSummary {
  readonly sub: string;
  readonly iss: string;
  readonly aud: readonly string[];
  readonly iat: number;
  readonly exp: number;
  readonly authTime?: number;
  readonly amr?: readonly string[];
  readonly acr?: string;
}

export interface HumanLogin {
  /** Kind is always `human`: this is an interactive browser login. */
  readonly identity: Identity;
  readonly idToken: IdTokenSummary;
  /** When the ID token expires: a natural upper bound for the server-side session. */
  readonly expiresAt: Date;
  /** Where the login was started from, if the caller passed it to beginLogin. */
  readonly returnTo?: string;
}

interface PendingLogin {
  readonly codeVerifier: string;
  readonly nonce: string;
  readonly expiresAt: number;
  readonly returnTo?: string;
}

/**
 * Human login for the API and dashboard: OIDC authorization code + PKCE (S256) + state +
 * nonce, on openid-client. The pending-login secrets (code verifier, nonce) stay server-side,
 * keyed by the state, and are consumed on first use, so a callback cannot be replayed.
 */
export class OidcLoginClient {
  private configuration: oidc.Configuration | undefined;
  private discovering: Promise<oidc.Configuration> | undefined;
  private readonly pending = new Map<string, PendingLogin>();
  private readonly mapping: ResolvedClaimMapping;
  private readonly now: () => number;

  // The client secret lives in a true private field so that serializing or inspecting the
  // client (JSON.stringify, util.inspect, a logger) can never reveal it.
  readonly #clientSecret: string | undefined;
  private readonly options: Omit<OidcLoginClientOptions, 'clientSecret'>;

  constructor(options: OidcLoginClientOptions) {
    const { clientSecret, ...rest } = options;
    this.#clientSecret = clientSecret;
    this.options = rest;
    if (!isAllowedIdpUrl(options.issuer)) throw new IdentityError('LOGIN_FAILED', `issuer ${JSON.stringify(options.issuer)} must be https (http only on loopback)`);
    this.mapping = resolveClaimMapping(options.issuer, options.claims);
    this.now = options.now ?? Date.now;
  }

  /** Starts a login: returns the IdP URL to redirect the browser to. */
  async beginLogin(request: { readonly returnTo?: string } = {}): Promise<StartedLogin> {
    const configuration = await this.discover();
    const now = this.now();
    this.sweep(now);
    const codeVerifier = oidc.randomPKCECodeVerifier();
    const state = randomBytes(24).toString('base64url');
    const nonce = randomBytes(24).toString('base64url');
    const expiresAt = now + (this.options.loginTtlMs ?? 600_000);
    const scopes = new Set(['openid', ...(this.options.scope ?? '').split(' ').filter(Boolean)]);
    const parameters: Record<string, string> = {
      redirect_uri: this.options.redirectUri,
      scope: [...scopes].join(' '),
      code_challenge: await oidc.calculatePKCECodeChallenge(codeVerifier),
      code_challenge_method: 'S256',
      state,
      nonce,
      ...(this.options.resource ? { resource: this.options.resource } : {}),
    };
    const maxPending = this.options.maxPendingLogins ?? 10_000;
    while (this.pending.size >= maxPending) {
      const oldest = this.pending.keys().next();
      if (oldest.done) break;
      this.pending.delete(oldest.value);
    }
    this.pending.set(state, { codeVerifier, nonce, expiresAt, ...(request.returnTo !== undefined ? { returnTo: request.returnTo } : {}) });
    return { authorizationUrl: oidc.buildAuthorizationUrl(configuration, parameters), state, expiresAt: new Date(expiresAt) };
  }

  /**
   * Completes a login from the callback URL the browser arrived at (with `code` and `state`, or
   * an `error`). Throws IdentityError: LOGIN_STATE_INVALID, LOGIN_FAILED, IDP_UNAVAILABLE or a
   * TOKEN_* code from the access-token check.
   */
  async completeLogin(callbackUrl: URL | string): Promise<HumanLogin> {
    const url = new URL(callbackUrl);
    const state = url.searchParams.get('state');
    const login = state === null ? undefined : this.pending.get(state);
    if (state !== null) this.pending.delete(state);
    if (state === null || login === undefined || login.expiresAt <= this.now()) {
      throw new IdentityError('LOGIN_STATE_INVALID', 'the login callback matches no pending login (unknown, replayed or expired state)', this.options.issuer);
    }
    const configuration = await this.discover();
    let response: Awaited<ReturnType<typeof oidc.authorizationCodeGrant>>;
    try {
      response = await oidc.authorizationCodeGrant(
        configuration,
        url,
        { pkceCodeVerifier: login.codeVerifier, expectedState: state, expectedNonce: login.nonce, idTokenExpected: true },
        this.options.resource ? { resource: this.options.resource } : undefined,
      );
    } catch (error) {
      throw loginFailure(error, this.options.issuer);
    }
    const claims = response.claims();
    if (!claims) throw new IdentityError('LOGIN_FAILED', 'the IdP returned no ID token', this.options.issuer);
    const issuer = this.options.issuer;
    const idClaims = claims as unknown as JwtClaims;
    const subject = mapSubject(idClaims, issuer, this.mapping);
    let groups = mapGroups(idClaims, issuer, this.mapping);
    if (groups.length === 0 && this.options.accessTokenVerifier && response.access_token) {
      const verified = await this.options.accessTokenVerifier.verify(response.access_token);
      if (verified.identity.issuer !== issuer || verified.identity.subject !== subject) {
        throw new IdentityError('LOGIN_FAILED', 'the access token names a different subject than the ID token', issuer);
      }
      groups = [...verified.identity.groups];
    }
    const aud = Array.isArray(claims.aud) ? [...claims.aud] : [claims.aud];
    return {
      identity: { subject, issuer, groups, kind: 'human' },
      idToken: {
        sub: claims.sub,
        iss: claims.iss,
        aud,
        iat: claims.iat,
        exp: claims.exp,
        ...(typeof claims.auth_time === 'number' ? { authTime: claims.auth_time } : {}),
        ...(Array.isArray(claims.amr) ? { amr: claims.amr.filter((v): v is string => typeof v === 'string') } : {}),
        ...(typeof claims.acr === 'string' ? { acr: claims.acr } : {}),
      },
      expiresAt: new Date(claims.exp * 1000),
      ...(login.returnTo !== undefined ? { returnTo: login.returnTo } : {}),
    };
  }

  /** Logins started and not yet completed or expired. */
  get pendingLogins(): number {
    this.sweep(this.now());
    return this.pending.size;
  }

  private sweep(now: number): void {
    for (const [state, login] of this.pending) if (login.expiresAt <= now) this.pending.delete(state);
  }

  private async discover(): Promise<oidc.Configuration> {
    if (this.configuration) return this.configuration;
    this.discovering ??= this.runDiscovery().finally(() => {
      this.discovering = undefined;
    });
    return this.discovering;
  }

  private async runDiscovery(): Promise<oidc.Configuration> {
    const { issuer, clientId } = this.options;
    const clientSecret = this.#clientSecret;
    const insecure = new URL(issuer).protocol === 'http:';
    try {
      const configuration = await oidc.discovery(
        new URL(issuer),
        clientId,
        clientSecret === undefined ? { token_endpoint_auth_method: 'none' } : clientSecret,
        clientSecret === undefined ? oidc.None() : oidc.ClientSecretBasic(clientSecret),
        {
          // http is only accepted on loopback (checked in the constructor).
          // Non-repudiation: the ID token's signature is checked against the IdP's JWKS too, not
          // only trusted because it came over the token endpoint connection.
          execute: [...(insecure ? [oidc.allowInsecureRequests] : []), oidc.enableNonRepudiationChecks],
          timeout: Math.max(1, Math.ceil((this.options.httpTimeoutMs ?? 10_000) / 1000)),
        },
      );
      if (this.options.fetch) configuration[oidc.customFetch] = this.options.fetch as oidc.CustomFetch;
      this.configuration = configuration;
      return configuration;
    } catch (cause) {
      throw new IdentityError('IDP_UNAVAILABLE', `discovery of ${JSON.stringify(issuer)} failed`, issuer, { cause });
    }
  }
}

function loginFailure(error: unknown, issuer: string): IdentityError {
  if (error instanceof IdentityError) return error;
  if (error instanceof oidc.AuthorizationResponseError) return new IdentityError('LOGIN_FAILED', `the IdP refused the login: ${error.error}`, issuer);
  if (error instanceof oidc.ResponseBodyError) return new IdentityError('LOGIN_FAILED', `the IdP refused the code exchange: ${error.error}`, issuer);
  if (error instanceof TypeError || (error instanceof Error && (error.name === 'AbortError' || error.name === 'TimeoutError'))) {
    return new IdentityError('IDP_UNAVAILABLE', `token endpoint of ${JSON.stringify(issuer)} is unreachable`, issuer);
  }
  const code = error instanceof oidc.ClientError && error.code ? ` (${error.code})` : '';
  return new IdentityError('LOGIN_FAILED', `the login response did not pass validation${code}`, issuer);
}
