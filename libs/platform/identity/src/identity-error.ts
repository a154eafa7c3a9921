/** Why a token or login was refused. Each code is also the `reasonCode` of `authentication.failed`. */
export type IdentityErrorCode =
  | 'TOKEN_MALFORMED'
  | 'TOKEN_ALG_NOT_ALLOWED'
  | 'TOKEN_SIGNATURE_INVALID'
  | 'TOKEN_EXPIRED'
  | 'TOKEN_NOT_YET_VALID'
  | 'TOKEN_ISSUED_IN_FUTURE'
  | 'TOKEN_LIFETIME_TOO_LONG'
  | 'TOKEN_ISSUER_UNKNOWN'
  | 'TOKEN_AUDIENCE_INVALID'
  | 'TOKEN_KEY_UNKNOWN'
  | 'TOKEN_CLAIMS_INVALID'
  | 'TOKEN_TOO_LARGE'
  /** Token introspection (RFC 7662) says the token is not active: revoked, expired or unknown to the issuer. */
  | 'TOKEN_INACTIVE'
  | 'IDP_UNAVAILABLE'
  /** Human login: the callback's `state` matches no pending login (forged, replayed or expired). */
  | 'LOGIN_STATE_INVALID'
  /** Human login: the IdP answered with an error or the code exchange / ID token check failed. */
  | 'LOGIN_FAILED'
  /** A verifier fault that is not the token's doing; still a denial (fail closed). */
  | 'IDENTITY_INTERNAL_ERROR';

export const IDENTITY_ERROR_CODES: readonly IdentityErrorCode[] = [
  'TOKEN_MALFORMED',
  'TOKEN_ALG_NOT_ALLOWED',
  'TOKEN_SIGNATURE_INVALID',
  'TOKEN_EXPIRED',
  'TOKEN_NOT_YET_VALID',
  'TOKEN_ISSUED_IN_FUTURE',
  'TOKEN_LIFETIME_TOO_LONG',
  'TOKEN_ISSUER_UNKNOWN',
  'TOKEN_AUDIENCE_INVALID',
  'TOKEN_KEY_UNKNOWN',
  'TOKEN_CLAIMS_INVALID',
  'TOKEN_TOO_LARGE',
  'TOKEN_INACTIVE',
  'IDP_UNAVAILABLE',
  'LOGIN_STATE_INVALID',
  'LOGIN_FAILED',
  'IDENTITY_INTERNAL_ERROR',
];

/**
 * A refused authentication. The message is meant for the client and the audit log, so it
 * never contains the token (nor any signature or key material): only codes, configured
 * issuer URLs and short, sanitised claim values.
 */
export class IdentityError extends Error {
  override readonly name = 'IdentityError';
  constructor(
    readonly code: IdentityErrorCode,
    message: string,
    /** The configured issuer the failure relates to, when known. */
    readonly issuer?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export function isIdentityError(value: unknown): value is IdentityError {
  return value instanceof IdentityError;
}

/** Errors configuring identity (bad issuer settings): raised at start-up, never per request. */
export class IdentityConfigError extends Error {
  override readonly name = 'IdentityConfigError';
  readonly code = 'IDENTITY_CONFIG_INVALID';
}

const MAX_QUOTED_LENGTH = 120;

/**
 * Quotes an untrusted claim value (e.g. an unknown `iss`) for an error message: JSON-escaped
 * and truncated, so it can neither forge log lines nor smuggle a large payload.
 */
export function quoteClaim(value: unknown): string {
  const text = typeof value === 'string' ? value : JSON.stringify(value) ?? String(value);
  const clipped = text.length > MAX_QUOTED_LENGTH ? `${text.slice(0, MAX_QUOTED_LENGTH)}…` : text;
  return JSON.stringify(clipped);
}
