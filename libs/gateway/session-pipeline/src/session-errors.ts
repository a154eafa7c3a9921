export type SessionRefusalCode =
  /** The token was refused (bad, expired, unknown issuer…); `reasonCode` is the IdentityError code. */
  | 'AUTHENTICATION_FAILED'
  /** The identity is valid but no rule lets it use this connection, or the connection does not exist. */
  | 'CONNECTION_NOT_PERMITTED'
  /** Strict mode: the session's opening events could not be made durable. */
  | 'EVIDENCE_UNAVAILABLE';

/** A session that must not start. The message is safe to show to the client (never the token). */
export class SessionRefusal extends Error {
  override readonly name = 'SessionRefusal';
  constructor(
    readonly code: SessionRefusalCode,
    message: string,
    /** For AUTHENTICATION_FAILED: the identity error code (`TOKEN_EXPIRED`, …). */
    readonly reasonCode?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Why a command was not forwarded. */
export type CommandRefusalCode =
  | 'POLICY_BLOCKED'
  | 'APPROVAL_DENIED'
  | 'APPROVAL_EXPIRED'
  | 'APPROVAL_CANCELLED'
  | 'APPROVAL_UNAVAILABLE'
  | 'EVIDENCE_UNAVAILABLE';
