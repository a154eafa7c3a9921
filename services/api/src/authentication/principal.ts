import type { IncomingMessage } from 'node:http';
import type { Identity } from '@custodian/event-contracts';

/** Who made an authenticated request, and until when that proof holds. */
export interface Principal {
  readonly identity: Identity;
  /** Token expiry (bearer) or session expiry (cookie). */
  readonly expiresAt: Date;
  readonly authenticatedBy: 'bearer' | 'session';
  readonly sessionId?: string;
}

const principals = new WeakMap<IncomingMessage, Principal>();

export function attachPrincipal(request: IncomingMessage, principal: Principal): void {
  principals.set(request, principal);
}

/** The principal the authentication guard attached; undefined on routes that allow anonymous access. */
export function principalOf(request: IncomingMessage): Principal | undefined {
  return principals.get(request);
}

/** Where a request came from: `address` for events (ip:port), `key` (the ip) for rate limits. */
export interface ClientInfo {
  readonly address: string;
  readonly key: string;
}

export function clientOf(request: IncomingMessage): ClientInfo {
  const ip = request.socket.remoteAddress ?? 'unknown';
  const port = request.socket.remotePort;
  const host = ip.includes(':') ? `[${ip}]` : ip;
  return { address: port === undefined ? host : `${host}:${port}`, key: ip };
}
