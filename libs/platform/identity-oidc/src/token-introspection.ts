// Token introspection (RFC 7662) at one issuer: asks whether an opaque access token is active and
// what it stands for. The endpoint comes from discovery (`introspection_endpoint`) unless
// configured; Custodian authenticates with its client id and secret (HTTP Basic, RFC 6749 §2.3.1).
// The token and the secret are sent to the endpoint only: never logged, never in an error.
import { IdentityError, isAllowedIdpUrl, type ResolvedIntrospection } from '@custodian/identity';
import { fetchIdpJson, type FetchFunction } from './idp-http.js';

/** What an opaque access token may look like (RFC 6750 b64token, without dots: a dotted token is a JWT). */
const OPAQUE_TOKEN = /^[A-Za-z0-9\-_~+/]+=*$/;

export function isOpaqueToken(token: string): boolean {
  return OPAQUE_TOKEN.test(token);
}

export interface TokenIntrospectorOptions {
  readonly fetch: FetchFunction;
  readonly httpTimeoutMs: number;
}

export class TokenIntrospector {
  private endpoint: string | undefined;

  constructor(
    private readonly issuer: string,
    private readonly config: ResolvedIntrospection,
    private readonly options: TokenIntrospectorOptions,
  ) {
    this.endpoint = config.endpoint;
  }

  /** The endpoint's answer for `token` (a JSON object; `active` is the caller's to check). */
  async introspect(token: string, signal?: AbortSignal): Promise<Record<string, unknown>> {
    const endpoint = this.endpoint ?? (await this.discover(signal));
    let secret: string;
    try {
      secret = await this.config.clientSecret();
    } catch (cause) {
      // The reference's own error names it (never the value); the cause is not carried on.
      throw new IdentityError('IDP_UNAVAILABLE', `the introspection client secret for ${JSON.stringify(this.issuer)} could not be read (${cause instanceof Error ? cause.name : 'error'})`, this.issuer);
    }
    const basic = Buffer.from(`${encodeURIComponent(this.config.clientId)}:${encodeURIComponent(secret)}`).toString('base64');
    return fetchIdpJson(this.options.fetch, endpoint, 'introspection response', this.issuer, this.options.httpTimeoutMs, signal, {
      form: new URLSearchParams({ token, token_type_hint: 'access_token' }),
      authorization: `Basic ${basic}`,
    });
  }

  private async discover(signal?: AbortSignal): Promise<string> {
    const url = `${this.issuer.replace(/\/$/, '')}/.well-known/openid-configuration`;
    const metadata = await fetchIdpJson(this.options.fetch, url, 'discovery document', this.issuer, this.options.httpTimeoutMs, signal);
    if (metadata['issuer'] !== this.issuer) throw new IdentityError('IDP_UNAVAILABLE', `discovery document of ${JSON.stringify(this.issuer)} names a different issuer`, this.issuer);
    const endpoint = metadata['introspection_endpoint'];
    if (typeof endpoint !== 'string' || !isAllowedIdpUrl(endpoint)) {
      throw new IdentityError('IDP_UNAVAILABLE', `discovery document of ${JSON.stringify(this.issuer)} has no usable introspection_endpoint`, this.issuer);
    }
    this.endpoint = endpoint;
    return endpoint;
  }
}
