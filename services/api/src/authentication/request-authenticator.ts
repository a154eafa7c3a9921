import type { AuthenticationFailed } from '@custodian/event-contracts';
import {
  BearerAuthenticator,
  BearerRefusal,
  authenticationFailedPayload,
  authenticationSucceededPayload,
  type AccessTokenVerifier,
  type BearerAuthentication,
  type HumanSessionStore,
  type VerifiedIdentity,
} from '@custodian/identity';
import type { AuthenticationEventRecorder } from '@custodian/service-host';
import { ApiError } from './api-error.js';
import type { ClientInfo, Principal } from './principal.js';
import { SESSION_COOKIE, readCookie } from './session-cookie.js';

export interface AuthenticationRequest {
  readonly authorization: string | undefined;
  readonly cookie: string | undefined;
  readonly client: ClientInfo;
}

export interface RequestAuthenticatorDependencies {
  /** Undefined: no issuer configured, every request is refused. */
  readonly verifier: AccessTokenVerifier | undefined;
  readonly sessions: HumanSessionStore;
  readonly recorder: AuthenticationEventRecorder;
  /** Bound on remembered (token, client) successes (default 10 000). */
  readonly maxRememberedTokens?: number;
  readonly now?: () => number;
}

const WWW_AUTHENTICATE = 'WWW-Authenticate';

/**
 * Authenticates one API request: `Authorization: Bearer <access token>` through the
 * AccessTokenVerifier port (agents and CI jobs with client-credentials tokens alike), else the
 * human session cookie. Refusals are ApiError 401 with `WWW-Authenticate: Bearer`; the token
 * never appears in a response, a log line or an event.
 *
 * Events: each refusal is an `authentication.failed` (rate-limited by the recorder). A bearer
 * token is recorded as `authentication.succeeded` the first time it is seen from a client (and
 * again after it drops out of the bounded memory), not on every request: the event records a
 * proof of identity, not an access log. Sessions were recorded when the human logged in.
 */
export class RequestAuthenticator {
  private readonly recorded = new Map<string, number>();
  private readonly maxRemembered: number;
  private readonly now: () => number;
  private readonly bearerTokens: BearerAuthenticator;

  constructor(private readonly deps: RequestAuthenticatorDependencies) {
    this.maxRemembered = deps.maxRememberedTokens ?? 10_000;
    this.now = deps.now ?? Date.now;
    this.bearerTokens = new BearerAuthenticator({ verifier: deps.verifier });
  }

  get configured(): boolean {
    return this.deps.verifier !== undefined;
  }

  async authenticate(request: AuthenticationRequest): Promise<Principal> {
    if (request.authorization !== undefined) return this.bearer(request.authorization, request.client);
    const sessionId = readCookie(request.cookie, SESSION_COOKIE);
    if (sessionId !== undefined) return this.session(sessionId, request.client);
    if (!this.deps.verifier) throw await this.refuse(notConfigured(), request.client, 'oidc-access-token');
    throw await this.refuse(
      new ApiError(401, 'AUTHENTICATION_REQUIRED', 'send Authorization: Bearer <access token>, or log in at /auth/login', { [WWW_AUTHENTICATE]: 'Bearer realm="custodian"' }),
      request.client,
      'oidc-access-token',
    );
  }

  private async bearer(header: string, client: ClientInfo): Promise<Principal> {
    if (!this.deps.verifier) throw await this.refuse(notConfigured(), client, 'oidc-access-token');
    let authenticated: BearerAuthentication;
    try {
      authenticated = await this.bearerTokens.authenticate(header);
    } catch (error) {
      if (!(error instanceof BearerRefusal)) throw error;
      const refusal = new ApiError(401, error.code, error.message, { [WWW_AUTHENTICATE]: error.wwwAuthenticate });
      if (!error.identityError) throw await this.refuse(refusal, client, 'oidc-access-token');
      await this.deps.recorder.failed(authenticationFailedPayload(error.identityError, { method: 'oidc-access-token', clientAddress: client.address }), client.key);
      throw refusal;
    }
    const { verified, tokenDigest } = authenticated;
    await this.recordSuccess(tokenDigest, verified, client);
    return { identity: verified.identity, expiresAt: verified.expiresAt, authenticatedBy: 'bearer' };
  }

  private async session(sessionId: string, client: ClientInfo): Promise<Principal> {
    if (!this.deps.verifier) throw await this.refuse(notConfigured(), client, 'oidc-authorization-code');
    const session = await this.deps.sessions.get(sessionId);
    if (!session) {
      throw await this.refuse(
        new ApiError(401, 'SESSION_INVALID', 'the session is unknown or expired: log in again at /auth/login', { [WWW_AUTHENTICATE]: 'Bearer realm="custodian"' }),
        client,
        'oidc-authorization-code',
      );
    }
    return { identity: session.identity, expiresAt: session.expiresAt, authenticatedBy: 'session', sessionId: session.id };
  }

  private async recordSuccess(tokenDigest: string, verified: VerifiedIdentity, client: ClientInfo): Promise<void> {
    const now = this.now();
    const key = `${tokenDigest}|${client.key}`;
    const until = this.recorded.get(key);
    if (until !== undefined && until > now) return;
    try {
      await this.deps.recorder.succeeded(verified.identity, authenticationSucceededPayload(verified, { clientAddress: client.address }));
    } catch {
      // No unaudited access: when the proof cannot be recorded, the request is refused.
      throw new ApiError(503, 'AUDIT_UNAVAILABLE', 'the authentication could not be recorded; try again later');
    }
    this.remember(key, verified.expiresAt.getTime(), now);
  }

  private remember(key: string, until: number, now: number): void {
    if (this.recorded.size >= this.maxRemembered) {
      for (const [k, expiry] of this.recorded) if (expiry <= now) this.recorded.delete(k);
      while (this.recorded.size >= this.maxRemembered) {
        const oldest = this.recorded.keys().next();
        if (oldest.done) break;
        this.recorded.delete(oldest.value);
      }
    }
    this.recorded.set(key, until);
  }

  private async refuse(error: ApiError, client: ClientInfo, method: AuthenticationFailed['method']): Promise<ApiError> {
    await this.deps.recorder.failed({ method, clientAddress: client.address, reasonCode: error.code, reason: error.message }, client.key);
    return error;
  }
}

function notConfigured(): ApiError {
  return new ApiError(401, 'IDENTITY_NOT_CONFIGURED', 'no identity issuer is configured: the API refuses every request until one is (identity.issuers)', {
    [WWW_AUTHENTICATE]: 'Bearer realm="custodian"',
  });
}
