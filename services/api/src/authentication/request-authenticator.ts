import { createHash } from 'node:crypto';
import type { AuthenticationFailed } from '@custodian/event-contracts';
import {
  authenticationFailedPayload,
  authenticationSucceededPayload,
  toIdentityError,
  type AccessTokenVerifier,
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

const BEARER = /^Bearer +(\S+) *$/i;
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

  constructor(private readonly deps: RequestAuthenticatorDependencies) {
    this.maxRemembered = deps.maxRememberedTokens ?? 10_000;
    this.now = deps.now ?? Date.now;
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
    const verifier = this.deps.verifier;
    if (!verifier) throw await this.refuse(notConfigured(), client, 'oidc-access-token');
    const token = BEARER.exec(header)?.[1];
    if (token === undefined) {
      const code = /^Bearer\b/i.test(header) ? 'TOKEN_MALFORMED' : 'AUTHENTICATION_SCHEME_UNSUPPORTED';
      const message = code === 'TOKEN_MALFORMED' ? 'the bearer token is missing or malformed' : 'only the Bearer authentication scheme is accepted';
      throw await this.refuse(new ApiError(401, code, message, invalidToken()), client, 'oidc-access-token');
    }
    let verified: VerifiedIdentity;
    try {
      verified = await verifier.verify(token);
    } catch (error) {
      const failure = toIdentityError(error);
      const payload = authenticationFailedPayload(failure, { method: 'oidc-access-token', clientAddress: client.address });
      await this.deps.recorder.failed(payload, client.key);
      throw new ApiError(401, failure.code, failure.message, invalidToken());
    }
    await this.recordSuccess(token, verified, client);
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

  private async recordSuccess(token: string, verified: VerifiedIdentity, client: ClientInfo): Promise<void> {
    const now = this.now();
    const key = `${createHash('sha256').update(token).digest('base64url')}|${client.key}`;
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

function invalidToken(): Record<string, string> {
  return { [WWW_AUTHENTICATE]: 'Bearer realm="custodian", error="invalid_token"' };
}

function notConfigured(): ApiError {
  return new ApiError(401, 'IDENTITY_NOT_CONFIGURED', 'no identity issuer is configured: the API refuses every request until one is (identity.issuers)', {
    [WWW_AUTHENTICATE]: 'Bearer realm="custodian"',
  });
}
