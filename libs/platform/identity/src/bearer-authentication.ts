// `Authorization: Bearer <access token>` (RFC 6750) for every HTTP surface: the API, and the HTTP,
// Anthropic, MCP and Kubernetes gateways. The token goes through the AccessTokenVerifier port,
// narrowed to the audiences of the listener that received it; a refusal carries the code, a
// message for the client and the `WWW-Authenticate` value to answer with. Recording the attempt
// (authentication.succeeded / .failed) is the caller's: each surface has its own recorder.
import { createHash } from 'node:crypto';
import type { AccessTokenVerifier, VerifiedIdentity } from './access-token-verifier.js';
import { toIdentityError } from './authentication-events.js';
import type { IdentityError, IdentityErrorCode } from './identity-error.js';

export type BearerRefusalCode =
  /** No Authorization header at all. */
  | 'AUTHENTICATION_REQUIRED'
  /** An Authorization header with another scheme (Basic, Digest …). */
  | 'AUTHENTICATION_SCHEME_UNSUPPORTED'
  /** No issuer is configured: every token is refused (fail closed). */
  | 'IDENTITY_NOT_CONFIGURED'
  /** The verifier's reasons (TOKEN_MALFORMED, TOKEN_EXPIRED, TOKEN_AUDIENCE_INVALID, IDP_UNAVAILABLE …). */
  | IdentityErrorCode;

/**
 * A refused bearer authentication: answer HTTP 401 with `wwwAuthenticate` as the
 * `WWW-Authenticate` header. The message never contains the token.
 */
export class BearerRefusal extends Error {
  override readonly name = 'BearerRefusal';
  readonly status = 401;
  constructor(
    readonly code: BearerRefusalCode,
    message: string,
    readonly wwwAuthenticate: string,
    /** The verifier's error, when the token itself was refused (for the authentication.failed payload). */
    readonly identityError?: IdentityError,
  ) {
    super(message);
  }
}

export interface BearerAuthenticatorOptions {
  /** Undefined when no issuer is configured: every request is refused. */
  readonly verifier: AccessTokenVerifier | undefined;
  /** Audiences this listener accepts (each one an issuer allows); default: the issuers' audiences. */
  readonly audiences?: readonly string[];
  /** The `realm` of the challenge (default `custodian`). */
  readonly realm?: string;
}

export interface BearerAuthentication {
  readonly verified: VerifiedIdentity;
  /** SHA-256 of the token (base64url): a key to remember a token by without keeping it. */
  readonly tokenDigest: string;
}

const BEARER = /^Bearer +(\S+) *$/i;

/** Quotes a value for an auth-param (RFC 9110 quoted-string). */
function quoted(value: string): string {
  return `"${value.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

export class BearerAuthenticator {
  private readonly challenge: string;

  constructor(private readonly options: BearerAuthenticatorOptions) {
    this.challenge = `Bearer realm=${quoted(options.realm ?? 'custodian')}`;
  }

  get configured(): boolean {
    return this.options.verifier !== undefined;
  }

  /** The challenge to send with a 401 when no credentials came at all. */
  get wwwAuthenticate(): string {
    return this.challenge;
  }

  /** Verifies the `Authorization` header's bearer token; throws BearerRefusal. */
  async authenticate(authorization: string | undefined, context: { readonly signal?: AbortSignal } = {}): Promise<BearerAuthentication> {
    const verifier = this.options.verifier;
    if (!verifier) throw new BearerRefusal('IDENTITY_NOT_CONFIGURED', 'no identity issuer is configured: every request is refused until one is (identity.issuers)', this.challenge);
    if (authorization === undefined || authorization.trim() === '') throw new BearerRefusal('AUTHENTICATION_REQUIRED', 'send Authorization: Bearer <access token>', this.challenge);
    const token = BEARER.exec(authorization)?.[1];
    if (token === undefined) {
      if (/^Bearer\b/i.test(authorization)) throw new BearerRefusal('TOKEN_MALFORMED', 'the bearer token is missing or malformed', this.invalidToken());
      throw new BearerRefusal('AUTHENTICATION_SCHEME_UNSUPPORTED', 'only the Bearer authentication scheme is accepted', this.invalidToken());
    }
    let verified: VerifiedIdentity;
    try {
      verified = await verifier.verify(token, { ...(this.options.audiences ? { audiences: this.options.audiences } : {}), ...(context.signal ? { signal: context.signal } : {}) });
    } catch (error) {
      const failure = toIdentityError(error);
      throw new BearerRefusal(failure.code, failure.message, this.invalidToken(), failure);
    }
    return { verified, tokenDigest: createHash('sha256').update(token).digest('base64url') };
  }

  private invalidToken(): string {
    return `${this.challenge}, error="invalid_token"`;
  }
}
