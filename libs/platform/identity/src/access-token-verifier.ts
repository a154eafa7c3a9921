import type { AuthenticationSucceeded, Identity } from '@custodian/event-contracts';

export type AuthenticationMethod = AuthenticationSucceeded['method'];

/** What a verified access token proves. Never contains the token itself. */
export interface VerifiedIdentity {
  readonly identity: Identity;
  /** The token's `jti`, when present. */
  readonly tokenId?: string;
  readonly expiresAt: Date;
  readonly issuedAt: Date;
  /** The token's `aud`, always as a list. */
  readonly audience: readonly string[];
  /** `oidc-client-credentials` when the token was issued to a client for itself (`sub` = `client_id`), else `oidc-access-token`. */
  readonly method: AuthenticationMethod;
  /**
   * Set when the token was accepted by introspection (an opaque token): a session on it asks the
   * verifier again this often (`stillActive`) and ends when the issuer says it is no longer active.
   */
  readonly recheckIntervalMs?: number;
}

export interface VerificationContext {
  /** Narrows the accepted audiences for this call (e.g. per listener); each must be one the issuer config allows. */
  readonly audiences?: readonly string[];
  readonly signal?: AbortSignal;
}

/**
 * Port: turns a bearer access token into an identity, or throws `IdentityError`.
 * Implementations fail closed: any doubt (unknown issuer or key, IdP unreachable) is a denial.
 */
export interface AccessTokenVerifier {
  verify(token: string, ctx?: VerificationContext): Promise<VerifiedIdentity>;
  /**
   * For a token `verify` accepted with `recheckIntervalMs`: resolves when the issuer still says it
   * is active, throws `IdentityError` otherwise (`TOKEN_INACTIVE` when revoked or expired,
   * `IDP_UNAVAILABLE` when the issuer cannot be asked: the caller ends the session either way).
   */
  stillActive?(token: string, ctx?: VerificationContext): Promise<void>;
}
