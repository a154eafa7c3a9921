// The browser's side of a human session: an opaque random id in an HttpOnly cookie. The identity
// stays in the server-side HumanSessionStore, so the cookie needs no signature.

export const SESSION_COOKIE = 'custodian_session';
/** Binds a started login to the browser that started it (login CSRF): holds the login's `state`. */
export const LOGIN_COOKIE = 'custodian_login';

/** Ids and states are base64url; anything else in the cookie is ignored rather than looked up. */
const COOKIE_VALUE = /^[A-Za-z0-9_-]{16,128}$/;

export interface CookieAttributes {
  /** `Secure` unless the API is reached over plain http on loopback. */
  readonly secure: boolean;
}

/** The value of cookie `name` in a Cookie header, if well-formed. */
export function readCookie(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0 || part.slice(0, eq).trim() !== name) continue;
    const value = part.slice(eq + 1).trim();
    return COOKIE_VALUE.test(value) ? value : undefined;
  }
  return undefined;
}

/** Set-Cookie for a cookie living `maxAgeSeconds`: HttpOnly, SameSite=Lax, Path=/. */
export function setCookie(name: string, value: string, maxAgeSeconds: number, attributes: CookieAttributes): string {
  return `${name}=${value}; ${common(attributes)}; Max-Age=${Math.max(0, Math.floor(maxAgeSeconds))}`;
}

/** Set-Cookie that removes the cookie. */
export function clearCookie(name: string, attributes: CookieAttributes): string {
  return `${name}=; ${common(attributes)}; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT`;
}

function common(attributes: CookieAttributes): string {
  // Lax: the cookie still arrives on the top-level GET back from the IdP, never on cross-site POSTs.
  return `Path=/; HttpOnly; SameSite=Lax${attributes.secure ? '; Secure' : ''}`;
}

const LOOPBACK_HOSTS = new Set(['127.0.0.1', '::1', 'localhost']);

/**
 * Cookies are `Secure` unless browsers reach the API over plain http on loopback: the API
 * listens on loopback and the login redirect URI (its public URL) is not https.
 */
export function cookiesNeedSecure(listenHost: string | undefined, redirectUri: string | undefined): boolean {
  if (listenHost === undefined || !LOOPBACK_HOSTS.has(listenHost.replace(/^\[|\]$/g, ''))) return true;
  return redirectUri !== undefined && new URL(redirectUri).protocol === 'https:';
}
