import { timingSafeEqual } from 'node:crypto';
import { IdentityError, authenticationFailedPayload, authenticationSucceededPayload, toIdentityError, type HumanSessionStore } from '@custodian/identity';
import type { HumanLogin } from '@custodian/identity-oidc';
import type { AuthenticationEventRecorder, ConfiguredHumanLogin } from '@custodian/service-host';
import { ApiError } from './api-error.js';
import type { ClientInfo } from './principal.js';
import { localReturnPath } from './return-to.js';
import { LOGIN_COOKIE, SESSION_COOKIE, clearCookie, readCookie, setCookie, type CookieAttributes } from './session-cookie.js';

export interface BrowserLoginDependencies {
  /** Undefined: `identity.login` is not configured (or no issuer is), so login is refused. */
  readonly login: ConfiguredHumanLogin | undefined;
  readonly sessions: HumanSessionStore;
  readonly recorder: AuthenticationEventRecorder;
  readonly cookies: CookieAttributes;
}

/** A redirect to send, with the cookies to set on the way. */
export interface LoginRedirect {
  readonly location: string;
  readonly setCookies: readonly string[];
}

/**
 * Human login for the API and dashboard: authorization code + PKCE through the login client,
 * then a server-side session whose opaque id goes into the `custodian_session` cookie.
 *
 * The login's `state` is also put in a short-lived `custodian_login` cookie and the callback
 * must carry the same state as that cookie, so a callback URL produced by someone else's login
 * cannot log this browser in as them (login CSRF). Replayed callbacks fail in the login client
 * (state consumed on first use).
 */
export class BrowserLogin {
  constructor(private readonly deps: BrowserLoginDependencies) {}

  /** Where to send the browser to log in; `returnTo` must be a local path. */
  async begin(returnToRaw: unknown): Promise<LoginRedirect> {
    const login = this.requireLogin();
    const returnTo = returnToRaw === undefined ? '/' : localReturnPath(returnToRaw);
    if (returnTo === undefined) throw new ApiError(400, 'RETURN_TO_INVALID', 'returnTo must be a path on this site, e.g. /approvals');
    let started: Awaited<ReturnType<ConfiguredHumanLogin['client']['beginLogin']>>;
    try {
      started = await login.client.beginLogin({ returnTo });
    } catch (error) {
      const failure = toIdentityError(error);
      throw new ApiError(failure.code === 'IDP_UNAVAILABLE' ? 503 : 500, failure.code, failure.message);
    }
    return {
      location: started.authorizationUrl.toString(),
      setCookies: [setCookie(LOGIN_COOKIE, started.state, login.loginTtlMs / 1000, this.deps.cookies)],
    };
  }

  /**
   * Completes a login from the callback's query string (`?code=…&state=…`): records
   * `authentication.succeeded` (method oidc-authorization-code), creates the session and
   * redirects to where the login was started from. Refusals are recorded and answered 401.
   */
  async complete(query: string, cookieHeader: string | undefined, client: ClientInfo): Promise<LoginRedirect> {
    const login = this.requireLogin();
    const clearLogin = clearCookie(LOGIN_COOKIE, this.deps.cookies);
    const callbackUrl = new URL(login.redirectUri);
    callbackUrl.search = query;
    const state = callbackUrl.searchParams.get('state');
    const bound = readCookie(cookieHeader, LOGIN_COOKIE);
    let human: HumanLogin;
    try {
      if (state === null || bound === undefined || !sameText(state, bound)) {
        throw new IdentityError('LOGIN_STATE_INVALID', 'the login callback does not belong to a login started in this browser');
      }
      human = await login.client.completeLogin(callbackUrl);
    } catch (error) {
      const failure = toIdentityError(error);
      await this.deps.recorder.failed(authenticationFailedPayload(failure, { method: 'oidc-authorization-code', clientAddress: client.address }), client.key);
      throw new ApiError(failure.code === 'IDP_UNAVAILABLE' ? 503 : 401, failure.code, failure.message, { 'Set-Cookie': [clearLogin] });
    }
    const returnTo = localReturnPath(human.returnTo) ?? '/';
    try {
      await this.deps.recorder.succeeded(
        human.identity,
        authenticationSucceededPayload(
          {
            identity: human.identity,
            expiresAt: human.expiresAt,
            issuedAt: new Date(human.idToken.iat * 1000),
            audience: human.idToken.aud,
            method: 'oidc-authorization-code',
          },
          { clientAddress: client.address },
        ),
      );
    } catch {
      throw new ApiError(503, 'AUDIT_UNAVAILABLE', 'the login could not be recorded; try again later', { 'Set-Cookie': [clearLogin] });
    }
    // A fresh id for every login (no session fixation); the browser's previous session ends.
    const previous = readCookie(cookieHeader, SESSION_COOKIE);
    if (previous !== undefined) await this.deps.sessions.delete(previous);
    const session = await this.deps.sessions.create(human.identity, human.expiresAt);
    const maxAge = (session.expiresAt.getTime() - Date.now()) / 1000;
    return { location: returnTo, setCookies: [clearLogin, setCookie(SESSION_COOKIE, session.id, maxAge, this.deps.cookies)] };
  }

  /** Ends the browser's session (if any) and clears its cookie. The caller checks same-origin first. */
  async logout(cookieHeader: string | undefined): Promise<readonly string[]> {
    const sessionId = readCookie(cookieHeader, SESSION_COOKIE);
    if (sessionId !== undefined) await this.deps.sessions.delete(sessionId);
    return [clearCookie(SESSION_COOKIE, this.deps.cookies)];
  }

  private requireLogin(): ConfiguredHumanLogin {
    if (!this.deps.login) throw new ApiError(503, 'LOGIN_NOT_CONFIGURED', 'human login is not configured (identity.login and identity.issuers)');
    return this.deps.login;
  }
}

function sameText(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}
