import type { AuthenticationFailed, AuthenticationSucceeded, ConnectionRef, Protocol } from '@custodian/event-contracts';
import type { AuthenticationMethod, VerifiedIdentity } from './access-token-verifier.js';
import { IdentityError, isIdentityError } from './identity-error.js';

/** How a protocol adapter received the credential on the wire. */
export type CredentialPresentation = NonNullable<AuthenticationSucceeded['presentedAs']>;

export interface AuthenticationAttempt {
  readonly method: AuthenticationMethod;
  readonly clientAddress: string;
  readonly protocol?: Protocol;
  /** The connection asked for (gateways): evidence filters select the attempt by it. */
  readonly connection?: ConnectionRef;
  readonly sessionId?: string;
  /** How the protocol adapter received the credential (token as password, bearer header, …). */
  readonly presentedAs?: CredentialPresentation;
}

const MAX_CLAIMED_SUBJECT_LENGTH = 256;
const MAX_REASON_LENGTH = 500;

/** Any failure (typed or not) as an IdentityError; unknown faults become IDENTITY_INTERNAL_ERROR without their message, which could carry anything. */
export function toIdentityError(error: unknown): IdentityError {
  if (isIdentityError(error)) return error;
  return new IdentityError('IDENTITY_INTERNAL_ERROR', 'authentication could not be completed');
}

/**
 * The `authentication.failed` payload for a refusal. `reasonCode` is the IdentityError code.
 * The token is never part of it: the reason is the error's message (which never contains
 * the token), and the claimed subject is the client's unverified hint (e.g. the startup user).
 */
export function authenticationFailedPayload(
  error: unknown,
  attempt: AuthenticationAttempt & { readonly claimedSubject?: string },
): AuthenticationFailed {
  const failure = toIdentityError(error);
  const claimed = attempt.claimedSubject?.slice(0, MAX_CLAIMED_SUBJECT_LENGTH);
  return {
    ...(attempt.sessionId !== undefined ? { sessionId: attempt.sessionId } : {}),
    method: attempt.method,
    ...(attempt.presentedAs !== undefined ? { presentedAs: attempt.presentedAs } : {}),
    ...(attempt.protocol !== undefined ? { protocol: attempt.protocol } : {}),
    ...(attempt.connection !== undefined ? { connection: attempt.connection } : {}),
    clientAddress: attempt.clientAddress,
    reasonCode: failure.code,
    reason: failure.message.slice(0, MAX_REASON_LENGTH),
    ...(claimed !== undefined && claimed !== '' ? { claimedSubject: claimed } : {}),
  };
}

/** The `authentication.succeeded` payload; the identity itself goes into the event envelope. */
export function authenticationSucceededPayload(verified: VerifiedIdentity, attempt: Omit<AuthenticationAttempt, 'method'> & { readonly method?: AuthenticationMethod }): AuthenticationSucceeded {
  return {
    ...(attempt.sessionId !== undefined ? { sessionId: attempt.sessionId } : {}),
    method: attempt.method ?? verified.method,
    ...(attempt.presentedAs !== undefined ? { presentedAs: attempt.presentedAs } : {}),
    ...(attempt.protocol !== undefined ? { protocol: attempt.protocol } : {}),
    ...(attempt.connection !== undefined ? { connection: attempt.connection } : {}),
    clientAddress: attempt.clientAddress,
    ...(verified.tokenId !== undefined ? { tokenId: verified.tokenId } : {}),
    tokenExpiresAt: verified.expiresAt.toISOString(),
  };
}
