// Configuration of the HTTP gateway: one listener serving every connection under
// `/c/<connection>/…` (see docs/http-gateway.md for why a path prefix and not a listener each).
import type { SessionPipeline } from '@custodian/session-pipeline';

/** How the gateway presents the credential it holds to the upstream. */
export type UpstreamCredentialKind =
  /** `Authorization: Bearer <secret>`. */
  | { readonly kind: 'bearer' }
  /** `Authorization: Basic base64(username:secret)`. */
  | { readonly kind: 'basic'; readonly username: string }
  /** An API-key header, e.g. `x-api-key: <secret>` (the Anthropic API's). */
  | { readonly kind: 'header'; readonly name: string }
  /** An API-key query parameter, e.g. `?api_key=<secret>`. */
  | { readonly kind: 'query'; readonly name: string };

export type UpstreamCredential = UpstreamCredentialKind & {
  /** The held secret, read at each use (a gateway-kit CredentialReference's `read`), so rotation applies at once. */
  readonly secret: () => string | Promise<string>;
  /** What events name (`env:NAME`, `file:/path`), never the value. */
  readonly credentialRef: string;
};

export interface HttpUpstream {
  /** Origin and optional base path: `https://api.internal:8443/v2`. */
  readonly url: string;
  readonly credential: UpstreamCredential;
  /** CAs the upstream's certificate must chain to (PEM); default the system CAs. Verification is never off. */
  readonly ca?: string | Buffer | readonly (string | Buffer)[];
  /** Deadline for the upstream's response head (default 60 s; Messages streams can think long). */
  readonly responseTimeoutMs?: number;
}

export interface HttpConnection {
  readonly name: string;
  /** `http`: a reverse proxy under the `http` policy language; `anthropic`: the Messages API adapter (`llm` language). Default `http`. */
  readonly kind?: 'http' | 'anthropic';
  readonly upstream: HttpUpstream;
  /** Request bodies parsed as JSON for policy up to this size (default 1 MiB); larger ones are `too-large` for the policy. */
  readonly maxRequestBodyBytes?: number;
  /**
   * JSON responses up to this size (default 1 MiB; 4 MiB on `anthropic` connections) are masked
   * whole: every byte outside masked values kept, `Content-Length` set. Larger ones stream through
   * the JSON stream masker (re-serialised compact, chunked, bounded memory); on `anthropic`
   * connections larger Messages responses are refused.
   */
  readonly maxJsonResponseBytes?: number;
  /** Streamed JSON: the longest single string or number (characters, default 4 Mi); a longer one cuts the response off. */
  readonly maxJsonValueChars?: number;
  /** `anthropic` connections: mask the detectors' findings in the prompt (system, user turns, tool results) before it leaves. Default false. */
  readonly maskPrompt?: boolean;
  /** `anthropic` connections: `thinking` / `redacted_thinking` blocks (signed, never rewritten) are passed (default) or refused: a stream ends with an `error` event, a whole response gets 502. */
  readonly thinking?: 'pass' | 'refuse';
  /** Responses whose content the gateway cannot mask (images, octet streams…): passed unchanged, or refused with 502 (default `refuse`). */
  readonly unmaskableResponses?: 'pass' | 'refuse';
}

export interface HttpGatewayLogger {
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
}

export interface HttpGatewayOptions {
  readonly host: string;
  readonly port: number;
  /** Serve HTTPS with this certificate; without it plain HTTP/1.1 (loopback / behind a TLS terminator). */
  readonly tls?: { readonly cert: string | Buffer; readonly key: string | Buffer };
  /** With `tls`: offer HTTP/2 through ALPN as well (HTTP/1.1 stays for clients that do not ask for h2). Default false. */
  readonly http2?: boolean;
  readonly pipeline: SessionPipeline;
  readonly connections: readonly HttpConnection[];
  readonly logger?: HttpGatewayLogger;
  /** Largest request head (default 16 KiB): a header flood gets 431. */
  readonly maxHeaderBytes?: number;
  /** Most header lines (default 100). */
  readonly maxHeadersCount?: number;
  /** A client must send the whole request head within this (default 10 s): slowloris. */
  readonly headersTimeoutMs?: number;
}
