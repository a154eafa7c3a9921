// The gateway's own access token for an upstream MCP server: an OAuth 2.0 client_credentials grant
// at the upstream's authorization server (openid-client, discovery from the issuer), with an RFC 8707
// resource indicator so the token is bound to that upstream. Cached until shortly before it
// expires; the client secret is read by reference at each grant and only ever sent to the token
// endpoint. The client's own token never goes upstream.
import * as oidc from 'openid-client';
import { McpGatewayError } from './gateway-errors.js';
import type { McpUpstreamCredential } from './upstream-client.js';

export interface ClientCredentialsOptions {
  /** The authorization server's issuer URL (discovery at `/.well-known/openid-configuration`); http only on loopback. */
  readonly issuer: string;
  readonly clientId: string;
  /** Read at each grant (a rotated secret applies at the next one). */
  readonly clientSecret: () => Promise<string> | string;
  /** Where the secret comes from (`env:NAME`, `file:/path`): what events name as the upstream credential. */
  readonly clientSecretRef: string;
  /** RFC 8707 resource indicator: the upstream's audience. */
  readonly resource?: string;
  readonly scope?: string;
  /** How the secret goes to the token endpoint: HTTP Basic (default) or in the form body (RFC 6749 §2.3.1), as the client is registered. */
  readonly authMethod?: ClientSecretMethod;
  /** A token is renewed this long before it expires (default 60 s). */
  readonly renewBeforeSeconds?: number;
  readonly httpTimeoutMs?: number;
}

export type ClientSecretMethod = 'client_secret_basic' | 'client_secret_post';

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]', '::1']);

export class ClientCredentialsToken {
  private current: { readonly token: string; readonly renewAt: number } | undefined;
  private pending: Promise<string> | undefined;

  constructor(private readonly options: ClientCredentialsOptions) {
    const url = new URL(options.issuer);
    if (url.protocol !== 'https:' && !(url.protocol === 'http:' && LOOPBACK.has(url.hostname))) {
      throw new McpGatewayError('GATEWAY_CONFIG_INVALID', `client-credentials issuer ${JSON.stringify(options.issuer)} must be https (http only on loopback)`);
    }
  }

  /** What events name: the reference of the client secret the tokens are obtained with (never a secret or a token). */
  get ref(): string {
    return this.options.clientSecretRef;
  }

  /** The credential shape the upstream client presents as `Authorization: Bearer`. */
  asCredential(): McpUpstreamCredential {
    return { ref: this.ref, read: () => this.read() };
  }

  /** A valid access token (granted, or the cached one while it is fresh). Concurrent callers share one grant. */
  read(): Promise<string> {
    if (this.current && Date.now() < this.current.renewAt) return Promise.resolve(this.current.token);
    this.pending ??= this.grant().finally(() => {
      this.pending = undefined;
    });
    return this.pending;
  }

  private async grant(): Promise<string> {
    const secret = await this.options.clientSecret();
    const { issuer, clientId } = this.options;
    try {
      // Discovered again at each grant (minutes apart): a rotated secret or moved endpoint applies.
      const authentication = this.options.authMethod === 'client_secret_post' ? oidc.ClientSecretPost(secret) : oidc.ClientSecretBasic(secret);
      const configuration = await oidc.discovery(new URL(issuer), clientId, secret, authentication, {
        execute: new URL(issuer).protocol === 'http:' ? [oidc.allowInsecureRequests] : [],
        timeout: Math.max(1, Math.ceil((this.options.httpTimeoutMs ?? 10_000) / 1000)),
      });
      const parameters: Record<string, string> = {};
      if (this.options.resource) parameters['resource'] = this.options.resource;
      if (this.options.scope) parameters['scope'] = this.options.scope;
      const response = await oidc.clientCredentialsGrant(configuration, parameters);
      const lifetime = response.expiresIn() ?? 300;
      const renewBefore = Math.min(this.options.renewBeforeSeconds ?? 60, Math.floor(lifetime / 2));
      this.current = { token: response.access_token, renewAt: Date.now() + (lifetime - renewBefore) * 1000 };
      return response.access_token;
    } catch (cause) {
      // The IdP's answer may quote the request; only the kind of failure goes on.
      throw new McpGatewayError('UPSTREAM_UNAVAILABLE', `could not obtain the gateway's token for the MCP server from ${issuer} (${cause instanceof Error ? cause.name : 'error'})`, { cause });
    }
  }
}
