import type { IncomingHttpHeaders } from 'node:http';

/**
 * CSRF check for state-changing requests that carry the session cookie. Browsers send
 * `Sec-Fetch-Site` (modern) and `Origin` (all POSTs) and page scripts cannot forge either:
 * - `Sec-Fetch-Site` present: it must be `same-origin`;
 * - otherwise `Origin` must be one of `allowedOrigins` or the origin the request was sent to (its Host);
 * - neither header: refused (a non-browser client sends `Origin` itself).
 */
export function isSameOriginRequest(headers: IncomingHttpHeaders, allowedOrigins: readonly string[]): boolean {
  const site = single(headers['sec-fetch-site']);
  if (site !== undefined) return site === 'same-origin';
  const origin = single(headers.origin);
  if (origin === undefined || origin === 'null') return false;
  if (allowedOrigins.includes(origin)) return true;
  const host = single(headers.host);
  if (host === undefined) return false;
  let parsed: URL;
  try {
    parsed = new URL(origin);
  } catch {
    return false;
  }
  return (parsed.protocol === 'http:' || parsed.protocol === 'https:') && parsed.host === host.toLowerCase();
}

function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? undefined : value;
}
