import { Controller, Get, Inject, Post, Query, Req, Res } from '@nestjs/common';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Identity } from '@custodian/event-contracts';
import { EVIDENCE_ACCESS, type EvidenceAccess } from '../evidence/evidence-access.js';
import { ApiError } from './api-error.js';
import { AllowAnonymous, TRUSTED_ORIGINS } from './authentication.guard.js';
import type { BrowserLogin, LoginRedirect } from './browser-login.js';
import { clientOf, principalOf } from './principal.js';
import { isSameOriginRequest } from './same-origin.js';

export const BROWSER_LOGIN = Symbol.for('@custodian/api-service/browser-login');

export interface MeResponse {
  readonly identity: Identity;
  /** Session expiry (cookie) or token expiry (bearer), RFC 3339. */
  readonly expiresAt: string;
  readonly authenticatedBy: 'bearer' | 'session';
  /** In one of `evidence.auditorGroups`: reads every session, the controls and the evidence (the dashboard shows those pages). */
  readonly auditor: boolean;
}

/** Human login (authorization code + PKCE), the current identity, and logout. */
@Controller('auth')
export class AuthController {
  constructor(
    @Inject(BROWSER_LOGIN) private readonly login: BrowserLogin,
    @Inject(TRUSTED_ORIGINS) private readonly trustedOrigins: readonly string[],
    @Inject(EVIDENCE_ACCESS) private readonly access: EvidenceAccess,
  ) {}

  /** 302 to the IdP; `returnTo` (a local path) is where the callback sends the browser afterwards. */
  @Get('login')
  @AllowAnonymous()
  async begin(@Query('returnTo') returnTo: unknown, @Res() res: ServerResponse): Promise<void> {
    redirect(res, await this.login.begin(returnTo));
  }

  /** The IdP sends the browser here with `code` and `state`: session cookie, then 302 to `returnTo`. */
  @Get('callback')
  @AllowAnonymous()
  async callback(@Req() req: IncomingMessage & { readonly originalUrl?: string }, @Res() res: ServerResponse): Promise<void> {
    const url = req.originalUrl ?? req.url ?? '';
    const query = url.includes('?') ? url.slice(url.indexOf('?')) : '';
    redirect(res, await this.login.complete(query, req.headers.cookie, clientOf(req)));
  }

  /** Who is calling (session or bearer), and until when. */
  @Get('me')
  me(@Req() req: IncomingMessage): MeResponse {
    const principal = principalOf(req);
    if (!principal) throw new ApiError(401, 'AUTHENTICATION_REQUIRED', 'not authenticated');
    const auditorGroups = this.access.evidence?.auditorGroups ?? [];
    return { identity: principal.identity, expiresAt: principal.expiresAt.toISOString(), authenticatedBy: principal.authenticatedBy, auditor: principal.identity.groups.some((g) => auditorGroups.includes(g)) };
  }

  /** Ends the session and clears the cookie (204). Same-origin only: a cross-site page cannot log a user out. */
  @Post('logout')
  @AllowAnonymous()
  async logout(@Req() req: IncomingMessage, @Res() res: ServerResponse): Promise<void> {
    if (!isSameOriginRequest(req.headers, this.trustedOrigins)) {
      throw new ApiError(403, 'CSRF_CHECK_FAILED', 'logout must come from this site (Origin / Sec-Fetch-Site)');
    }
    const setCookies = await this.login.logout(req.headers.cookie);
    res.statusCode = 204;
    res.setHeader('set-cookie', [...setCookies]);
    res.setHeader('cache-control', 'no-store');
    res.end();
  }
}

function redirect(res: ServerResponse, target: LoginRedirect): void {
  res.statusCode = 302;
  res.setHeader('location', target.location);
  res.setHeader('cache-control', 'no-store');
  if (target.setCookies.length > 0) res.setHeader('set-cookie', [...target.setCookies]);
  res.end();
}
