// The gateway's side toward an upstream MCP server over streamable HTTP: it posts one message at a
// time with the credential the gateway holds (never the client's token) and hands back the
// response as JSON-RPC messages, one by one as they stream, so each is decided and masked alone.
// node:http(s) with a keep-alive agent per upstream rather than fetch: a profile of the MCP
// benchmark showed fetch's WHATWG streams, Request/Response objects and combined abort signals as
// the largest share of the gateway's own CPU per call.
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { McpGatewayError } from './gateway-errors.js';
import { CLIENT_CAPABILITIES_META_KEY, CLIENT_INFO_META_KEY, LATEST_MODERN_VERSION, MODERN_PROTOCOL_VERSIONS, PROTOCOL_VERSION_META_KEY, routingHeaders } from './protocol-eras.js';
import { SseReader } from './sse-reader.js';

/** Which protocol era an upstream speaks: `stateless` when it answers `server/discover` with a 2026-07-28 version. */
export type UpstreamEra = 'stateless' | 'session';

/** How long an upstream's era is trusted before it is asked again (a server may be upgraded). */
const ERA_TTL_MS = 60_000;

/** The credential the gateway presents upstream, read at each use (a rotated secret applies at once). */
export interface McpUpstreamCredential {
  /** Header that carries it (default `authorization`). */
  readonly header?: string;
  /** Put before the value (default `Bearer ` for `authorization`, nothing otherwise). */
  readonly scheme?: string;
  readonly read: () => Promise<string> | string;
  /** Where it comes from (`env:NAME`, `file:/path`): all events say about it. */
  readonly ref: string;
}

export interface McpUpstreamTarget {
  /** The upstream's MCP endpoint, e.g. `http://127.0.0.1:3001/mcp`. */
  readonly url: string;
  readonly credential?: McpUpstreamCredential;
  /** Deadline for the response to start (default 30 s); a stream may then run as long as it lasts. */
  readonly timeoutMs?: number;
}

export interface UpstreamState {
  sessionId: string | undefined;
  protocolVersion: string | undefined;
}

export type UpstreamReply =
  | { readonly kind: 'accepted'; readonly status: number }
  | { readonly kind: 'messages'; readonly status: number; readonly stream: boolean; readonly sessionId: string | undefined; readonly messages: AsyncIterable<string> }
  | { readonly kind: 'error'; readonly status: number; readonly body: string };

const MAX_ERROR_BODY = 4096;

async function* jsonBody(response: IncomingMessage, maxBytes: number): AsyncIterable<string> {
  const declared = Number(response.headers['content-length'] ?? '0');
  if (declared > maxBytes) {
    response.destroy();
    throw new McpGatewayError('MESSAGE_TOO_LARGE', `the upstream's response exceeds ${maxBytes} bytes`);
  }
  const chunks: Buffer[] = [];
  let total = 0;
  try {
    for await (const chunk of response as AsyncIterable<Buffer>) {
      total += chunk.length;
      if (total > maxBytes) throw new McpGatewayError('MESSAGE_TOO_LARGE', `the upstream's response exceeds ${maxBytes} bytes`);
      chunks.push(chunk);
    }
  } finally {
    // Whether read to the end, abandoned by the consumer or over the limit: the socket goes back or away.
    if (!response.complete) response.destroy();
  }
  yield Buffer.concat(chunks).toString('utf8');
}

async function* sseBody(response: IncomingMessage, maxBytes: number): AsyncIterable<string> {
  const reader = new SseReader(maxBytes);
  try {
    for await (const chunk of response as AsyncIterable<Buffer>) {
      for (const event of reader.push(chunk)) if (event.event === 'message' && event.data !== '') yield event.data;
    }
    for (const event of reader.finish()) if (event.event === 'message' && event.data !== '') yield event.data;
  } finally {
    if (!response.complete) response.destroy();
  }
}

/** Reads a (bounded) error body as text. */
async function errorText(response: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let total = 0;
  try {
    for await (const chunk of response as AsyncIterable<Buffer>) {
      chunks.push(chunk);
      total += chunk.length;
      if (total >= MAX_ERROR_BODY) break;
    }
  } catch {
    // What arrived is enough to say what went wrong.
  } finally {
    if (!response.complete) response.destroy();
  }
  return Buffer.concat(chunks).toString('utf8').slice(0, MAX_ERROR_BODY);
}

/** Drops a body nobody reads (keeps the socket for the next request when it is short). */
function discard(response: IncomingMessage): void {
  if (response.complete) return;
  response.resume();
}

class DeadlineExceeded extends Error {}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export class McpUpstream {
  private eraProbe: { readonly at: number; readonly era: Promise<UpstreamEra> } | undefined;
  private discovered: Record<string, unknown> | undefined;
  private readonly url: URL;
  private readonly https: boolean;
  /** Keeps connections to the upstream open between requests. */
  private readonly agent: HttpAgent;

  constructor(
    private readonly target: McpUpstreamTarget,
    private readonly maxMessageBytes: number,
  ) {
    this.url = new URL(target.url);
    if (this.url.protocol !== 'http:' && this.url.protocol !== 'https:') throw new McpGatewayError('GATEWAY_CONFIG_INVALID', `the MCP server URL must be http or https, not ${this.url.protocol}`);
    this.https = this.url.protocol === 'https:';
    this.agent = this.https ? new HttpsAgent({ keepAlive: true }) : new HttpAgent({ keepAlive: true });
  }

  get credentialRef(): string | undefined {
    return this.target.credential?.ref;
  }

  /** Reads the held credential (for the custody scan of the session that will use it). */
  async readCredential(): Promise<string | undefined> {
    const credential = this.target.credential;
    return credential ? await credential.read() : undefined;
  }

  private async headers(state: UpstreamState, extra: Record<string, string>): Promise<Record<string, string>> {
    const headers: Record<string, string> = { ...extra };
    if (state.sessionId !== undefined) headers['mcp-session-id'] = state.sessionId;
    if (state.protocolVersion !== undefined) headers['mcp-protocol-version'] = state.protocolVersion;
    const credential = this.target.credential;
    if (credential) {
      const header = (credential.header ?? 'authorization').toLowerCase();
      const scheme = credential.scheme ?? (header === 'authorization' ? 'Bearer ' : '');
      headers[header] = `${scheme}${await credential.read()}`;
    }
    return headers;
  }

  /**
   * Sends one request; resolves when the response has started. Past the deadline (`timeoutMs`) for
   * that the request is aborted (no socket is left hanging on a stalled upstream). `signal` (the
   * client going away) aborts the request and, once started, the response.
   */
  private async send(method: 'POST' | 'GET' | 'DELETE', state: UpstreamState, body: string | undefined, accept: string, signal: AbortSignal | undefined, extra: Readonly<Record<string, string>> = {}): Promise<IncomingMessage> {
    const headers: OutgoingHttpHeaders = await this.headers(state, { ...extra, accept, ...(body === undefined ? {} : { 'content-type': 'application/json' }) });
    if (body !== undefined) headers['content-length'] = Buffer.byteLength(body);
    if (signal?.aborted) throw new McpGatewayError('UPSTREAM_UNAVAILABLE', 'the request was cancelled');
    const request = this.https ? httpsRequest : httpRequest;
    const attempt = (retried: boolean): Promise<IncomingMessage> =>
      new Promise<IncomingMessage>((resolve, reject) => {
        const req = request(this.url, { method, headers, agent: this.agent });
        const onAbort = (): void => {
          req.destroy(signal?.reason instanceof Error ? signal.reason : new Error('aborted'));
        };
        const timer = setTimeout(() => req.destroy(new DeadlineExceeded()), this.target.timeoutMs ?? 30_000);
        signal?.addEventListener('abort', onAbort, { once: true });
        req.once('response', (response) => {
          clearTimeout(timer);
          if (signal) response.once('close', () => signal.removeEventListener('abort', onAbort));
          const status = response.statusCode ?? 0;
          if (status >= 300 && status < 400) {
            response.destroy();
            reject(new McpGatewayError('UPSTREAM_UNAVAILABLE', `the MCP server answered with a redirect (HTTP ${status}), which the gateway does not follow`));
            return;
          }
          resolve(response);
        });
        req.once('error', (error: NodeJS.ErrnoException) => {
          clearTimeout(timer);
          signal?.removeEventListener('abort', onAbort);
          // A kept-alive connection the server closed meanwhile: the request never reached it; once more on a new one.
          if (!retried && req.reusedSocket && (error.code === 'ECONNRESET' || error.code === 'EPIPE') && !signal?.aborted) {
            resolve(attempt(true));
            return;
          }
          if (error instanceof DeadlineExceeded) reject(new McpGatewayError('UPSTREAM_UNAVAILABLE', 'the MCP server did not answer in time'));
          else reject(new McpGatewayError('UPSTREAM_UNAVAILABLE', `the MCP server did not answer (${signal?.aborted ? 'AbortError' : (error.code ?? error.name)})`, { cause: error }));
        });
        req.end(body);
      });
    return await attempt(false);
  }

  /**
   * Posts one JSON-RPC message; resolves once the upstream's response has started. In the stateless
   * era (`state.protocolVersion` 2026-07-28) the routing headers are derived from the message itself
   * and `extraHeaders` (the client's `Mcp-Param-*`) go along.
   */
  async post(state: UpstreamState, message: string, signal?: AbortSignal, extraHeaders?: Readonly<Record<string, string>>): Promise<UpstreamReply> {
    const modern = state.protocolVersion !== undefined && MODERN_PROTOCOL_VERSIONS.includes(state.protocolVersion);
    let routing: Record<string, string> = {};
    if (modern) {
      const parsed = JSON.parse(message) as Record<string, unknown>;
      if (typeof parsed['method'] === 'string') routing = routingHeaders(parsed['method'], isObject(parsed['params']) ? parsed['params'] : undefined, state.protocolVersion!);
    }
    const response = await this.send('POST', state, message, 'application/json, text/event-stream', signal, { ...(extraHeaders ?? {}), ...routing });
    return this.reply(response, modern);
  }

  /** The last `server/discover` result of a stateless upstream (capabilities, server info, instructions). */
  discovery(): Record<string, unknown> | undefined {
    return this.discovered;
  }

  /** The upstream's era, probed with `server/discover` and kept for a minute; an unreachable upstream is no verdict (it throws). */
  era(): Promise<UpstreamEra> {
    const cached = this.eraProbe;
    if (cached && Date.now() - cached.at < ERA_TTL_MS) return cached.era;
    const era = this.probeEra();
    this.eraProbe = { at: Date.now(), era };
    era.catch(() => {
      if (this.eraProbe?.era === era) this.eraProbe = undefined;
    });
    return era;
  }

  private async probeEra(): Promise<UpstreamEra> {
    const body = JSON.stringify({
      jsonrpc: '2.0',
      id: 'custodian-era-probe',
      method: 'server/discover',
      params: { _meta: { [PROTOCOL_VERSION_META_KEY]: LATEST_MODERN_VERSION, [CLIENT_CAPABILITIES_META_KEY]: {}, [CLIENT_INFO_META_KEY]: { name: 'custodian-mcp-gateway', version: '1' } } },
    });
    let reply: UpstreamReply;
    try {
      reply = await this.post({ sessionId: undefined, protocolVersion: LATEST_MODERN_VERSION }, body, AbortSignal.timeout(this.target.timeoutMs ?? 30_000));
    } catch (error) {
      // A session-era server may answer a session-less request with 404 or a content type of its own: that is a verdict.
      if (error instanceof McpGatewayError && (error.code === 'UPSTREAM_SESSION_EXPIRED' || error.code === 'UPSTREAM_PROTOCOL_ERROR')) return 'session';
      throw error;
    }
    if (reply.kind !== 'messages') return 'session';
    for await (const text of reply.messages) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch {
        continue;
      }
      const result = isObject(parsed) ? parsed['result'] : undefined;
      const versions = isObject(result) ? result['supportedVersions'] : undefined;
      if (Array.isArray(versions) && versions.some((v) => typeof v === 'string' && MODERN_PROTOCOL_VERSIONS.includes(v))) {
        this.discovered = result as Record<string, unknown>;
        return 'stateless';
      }
    }
    return 'session';
  }

  /** Opens the upstream's GET stream (server-initiated messages), when it offers one. */
  async openStream(state: UpstreamState, signal?: AbortSignal): Promise<UpstreamReply> {
    const response = await this.send('GET', state, undefined, 'text/event-stream', signal);
    return this.reply(response);
  }

  /** Closes the kept-alive connections. */
  async close(): Promise<void> {
    this.agent.destroy();
  }

  /** Ends the upstream session (best effort). */
  async terminate(state: UpstreamState): Promise<void> {
    if (state.sessionId === undefined) return;
    try {
      const response = await this.send('DELETE', state, undefined, 'application/json, text/event-stream', AbortSignal.timeout(5_000));
      discard(response);
    } catch {
      // The upstream may already have forgotten the session.
    }
  }

  private async reply(response: IncomingMessage, modern = false): Promise<UpstreamReply> {
    const header = response.headers['mcp-session-id'];
    const sessionId = typeof header === 'string' ? header : undefined;
    const status = response.statusCode ?? 0;
    if (status === 202 || status === 204) {
      discard(response);
      return { kind: 'accepted', status };
    }
    const type = (response.headers['content-type'] ?? '').toLowerCase();
    // Stateless era: a JSON-RPC error travels with an HTTP status of its own (400 for -32020/-32022,
    // 404 for an unknown method); it is the answer to relay, not a lost session.
    if (modern && status >= 400 && status < 500 && type.startsWith('application/json')) {
      return { kind: 'messages', status, stream: false, sessionId, messages: jsonBody(response, this.maxMessageBytes) };
    }
    if (status < 200 || status >= 300) {
      const text = await errorText(response);
      if (status === 404) throw new McpGatewayError('UPSTREAM_SESSION_EXPIRED', 'the MCP server no longer knows this session');
      return { kind: 'error', status, body: text };
    }
    if (type.startsWith('text/event-stream')) return { kind: 'messages', status, stream: true, sessionId, messages: sseBody(response, this.maxMessageBytes) };
    if (type.startsWith('application/json')) return { kind: 'messages', status, stream: false, sessionId, messages: jsonBody(response, this.maxMessageBytes) };
    response.destroy();
    throw new McpGatewayError('UPSTREAM_PROTOCOL_ERROR', `the MCP server answered with content type ${JSON.stringify(type.slice(0, 100))}`);
  }
}
