import { IdentityError } from './identity-error.js';
import { DEFAULT_MAX_TOKEN_BYTES } from './issuer-config.js';

export interface JwsHeader {
  readonly alg: string;
  readonly kid?: string;
  readonly typ?: string;
  readonly [name: string]: unknown;
}

export type JwtClaims = Readonly<Record<string, unknown>>;

export interface UnverifiedJwt {
  readonly header: JwsHeader;
  /** Claims as the token states them: NOT verified, only for routing (which issuer, which key). */
  readonly claims: JwtClaims;
}

const BASE64URL = /^[A-Za-z0-9_-]*$/;

function decodeSegment(segment: string, what: string): Record<string, unknown> {
  if (segment === '' || !BASE64URL.test(segment) || segment.length % 4 === 1) {
    throw new IdentityError('TOKEN_MALFORMED', `token ${what} is not base64url`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(segment, 'base64url').toString('utf8'));
  } catch {
    throw new IdentityError('TOKEN_MALFORMED', `token ${what} is not JSON`);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new IdentityError('TOKEN_MALFORMED', `token ${what} is not a JSON object`);
  }
  return parsed as Record<string, unknown>;
}

/** Size bound checked before any parsing, so an oversized input costs nothing. */
export function assertTokenSize(token: unknown, maxBytes = DEFAULT_MAX_TOKEN_BYTES): asserts token is string {
  if (typeof token !== 'string' || token === '') throw new IdentityError('TOKEN_MALFORMED', 'no token was presented');
  if (token.length > maxBytes || Buffer.byteLength(token, 'utf8') > maxBytes) {
    throw new IdentityError('TOKEN_TOO_LARGE', `token exceeds ${maxBytes} bytes`);
  }
}

/**
 * Splits a compact JWS (three base64url segments) and decodes header and claims without
 * verifying anything. `alg: none` is refused here, before any other processing.
 */
export function decodeUnverifiedJwt(token: unknown, maxBytes = DEFAULT_MAX_TOKEN_BYTES): UnverifiedJwt {
  assertTokenSize(token, maxBytes);
  const parts = token.split('.');
  if (parts.length === 5) throw new IdentityError('TOKEN_MALFORMED', 'encrypted tokens (JWE) are not accepted');
  if (parts.length !== 3) throw new IdentityError('TOKEN_MALFORMED', 'token is not a compact JWS (header.payload.signature)');
  const [headerSegment = '', payloadSegment = '', signatureSegment = ''] = parts;
  const header = decodeSegment(headerSegment, 'header');
  const alg = header['alg'];
  if (typeof alg !== 'string' || alg === '') throw new IdentityError('TOKEN_MALFORMED', 'token header has no alg');
  if (alg.toLowerCase() === 'none') throw new IdentityError('TOKEN_ALG_NOT_ALLOWED', 'unsigned tokens (alg none) are refused');
  if (signatureSegment === '' || !BASE64URL.test(signatureSegment)) throw new IdentityError('TOKEN_MALFORMED', 'token has no signature');
  if ('kid' in header && typeof header['kid'] !== 'string') throw new IdentityError('TOKEN_MALFORMED', 'token header kid is not a string');
  if ('typ' in header && typeof header['typ'] !== 'string') throw new IdentityError('TOKEN_MALFORMED', 'token header typ is not a string');
  if (header['b64'] === false) throw new IdentityError('TOKEN_MALFORMED', 'unencoded payloads (b64: false) are not accepted');
  const claims = decodeSegment(payloadSegment, 'payload');
  return { header: header as JwsHeader, claims };
}
