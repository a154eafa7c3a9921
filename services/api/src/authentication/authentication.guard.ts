import { Inject, Injectable, SetMetadata, type CanActivate, type ExecutionContext } from '@nestjs/common';
import type { IncomingMessage } from 'node:http';
import { HealthController } from '@custodian/observability/nest';
import { ApiError } from './api-error.js';
import { attachPrincipal, clientOf } from './principal.js';
import type { RequestAuthenticator } from './request-authenticator.js';
import { isSameOriginRequest } from './same-origin.js';

export const REQUEST_AUTHENTICATOR = Symbol.for('@custodian/api-service/request-authenticator');
/** Origins a browser page of this API is served from (the login redirect URI's origin). */
export const TRUSTED_ORIGINS = Symbol.for('@custodian/api-service/trusted-origins');

const ALLOW_ANONYMOUS = 'custodian:allow-anonymous';
/** Marks a route that answers without authentication (login, callback, logout). */
export const AllowAnonymous = (): MethodDecorator & ClassDecorator => SetMetadata(ALLOW_ANONYMOUS, true);

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * Deny by default: every route needs a bearer token or a session, except the health probes and
 * routes marked @AllowAnonymous(). Deciding per handler (not per path prefix) means no spelling
 * of a URL (`/V1/…`, trailing slashes, encodings) reaches a handler unauthenticated.
 * Session-authenticated requests that change state must also pass the same-origin check (CSRF).
 */
@Injectable()
export class AuthenticationGuard implements CanActivate {
  constructor(
    @Inject(REQUEST_AUTHENTICATOR) private readonly authenticator: RequestAuthenticator,
    @Inject(TRUSTED_ORIGINS) private readonly trustedOrigins: readonly string[],
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    if (context.getType() !== 'http') return false;
    if (context.getClass() === HealthController) return true;
    if (Reflect.getMetadata(ALLOW_ANONYMOUS, context.getHandler()) === true || Reflect.getMetadata(ALLOW_ANONYMOUS, context.getClass()) === true) return true;
    const request = context.switchToHttp().getRequest<IncomingMessage>();
    const authorization = request.headers.authorization;
    const principal = await this.authenticator.authenticate({ authorization, cookie: request.headers.cookie, client: clientOf(request) });
    if (principal.authenticatedBy === 'session' && !SAFE_METHODS.has(request.method ?? 'GET') && !isSameOriginRequest(request.headers, this.trustedOrigins)) {
      throw new ApiError(403, 'CSRF_CHECK_FAILED', 'a cookie-authenticated request that changes state must come from this site (Origin / Sec-Fetch-Site)');
    }
    attachPrincipal(request, principal);
    return true;
  }
}
