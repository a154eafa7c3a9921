// The gateway's side toward an upstream MCP server over streamable HTTP: it posts one message at a
// time with the credential the gateway holds (never the client's token) and hands back the
// response as JSON-RPC messages, one by one as they stream, so each is decided and masked alone.
import { McpGatewayError } from './gateway-errors.js';
import { SseReader } from './sse-reader.js';

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

async function* jsonBody(response: Response, maxBytes: number): AsyncIterable<string> {
  const declared = Number(response.headers.get('content-length') ?? '0');
  if (declared > maxBytes) {
    await response.body?.cancel();
    throw new McpGatewayError('MESSAGE_TOO_LARGE', `the upstream's response exceeds ${maxBytes} bytes`);
  }
  const chunks: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of response.body ?? []) {
    total += chunk.length;
    if (total > maxBytes) {
      await response.body?.cancel().catch(() => undefined);
      throw new McpGatewayError('MESSAGE_TOO_LARGE', `the upstream's response exceeds ${maxBytes} bytes`);
    }
    chunks.push(chunk);
  }
  yield Buffer.concat(chunks).toString('utf8');
}

async function* sseBody(response: Response, maxBytes: number): AsyncIterable<string> {
  const reader = new SseReader(maxBytes);
  try {
    for await (const chunk of response.body ?? []) {
      for (const event of reader.push(chunk)) if (event.event === 'message' && event.data !== '') yield event.data;
    }
    for (const event of reader.finish()) if (event.event === 'message' && event.data !== '') yield event.data;
  } finally {
    await response.body?.cancel().catch(() => undefined);
  }
}

export class McpUpstream {
  constructor(
    private readonly target: McpUpstreamTarget,
    private readonly maxMessageBytes: number,
  ) {}

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

  private async send(method: 'POST' | 'GET' | 'DELETE', state: UpstreamState, body: string | undefined, accept: string, signal: AbortSignal | undefined): Promise<Response> {
    try {
      return await fetch(this.target.url, {
        method,
        headers: await this.headers(state, { accept, ...(body === undefined ? {} : { 'content-type': 'application/json' }) }),
        ...(body === undefined ? {} : { body }),
        ...(signal ? { signal } : {}),
        redirect: 'error',
      });
    } catch (error) {
      if (error instanceof McpGatewayError) throw error;
      throw new McpGatewayError('UPSTREAM_UNAVAILABLE', `the MCP server did not answer (${error instanceof Error ? error.name : 'error'})`, { cause: error });
    }
  }

  /** Posts one JSON-RPC message; resolves once the upstream's response has started. */
  async post(state: UpstreamState, message: string, signal?: AbortSignal): Promise<UpstreamReply> {
    const response = await this.withDeadline(this.send('POST', state, message, 'application/json, text/event-stream', signal));
    return this.reply(response);
  }

  /** Opens the upstream's GET stream (server-initiated messages), when it offers one. */
  async openStream(state: UpstreamState, signal?: AbortSignal): Promise<UpstreamReply> {
    const response = await this.withDeadline(this.send('GET', state, undefined, 'text/event-stream', signal));
    return this.reply(response);
  }

  /** Ends the upstream session (best effort). */
  async terminate(state: UpstreamState): Promise<void> {
    if (state.sessionId === undefined) return;
    try {
      const response = await this.withDeadline(this.send('DELETE', state, undefined, 'application/json, text/event-stream', AbortSignal.timeout(5_000)));
      await response.body?.cancel();
    } catch {
      // The upstream may already have forgotten the session.
    }
  }

  private async withDeadline<T>(promise: Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new McpGatewayError('UPSTREAM_UNAVAILABLE', 'the MCP server did not answer in time')), this.target.timeoutMs ?? 30_000);
    });
    try {
      return await Promise.race([promise, deadline]);
    } finally {
      clearTimeout(timer);
    }
  }

  private async reply(response: Response): Promise<UpstreamReply> {
    const sessionId = response.headers.get('mcp-session-id') ?? undefined;
    if (response.status === 202 || response.status === 204) {
      await response.body?.cancel();
      return { kind: 'accepted', status: response.status };
    }
    const type = (response.headers.get('content-type') ?? '').toLowerCase();
    if (!response.ok) {
      const text = (await response.text().catch(() => '')).slice(0, MAX_ERROR_BODY);
      if (response.status === 404) throw new McpGatewayError('UPSTREAM_SESSION_EXPIRED', 'the MCP server no longer knows this session');
      return { kind: 'error', status: response.status, body: text };
    }
    if (type.startsWith('text/event-stream')) return { kind: 'messages', status: response.status, stream: true, sessionId, messages: sseBody(response, this.maxMessageBytes) };
    if (type.startsWith('application/json')) return { kind: 'messages', status: response.status, stream: false, sessionId, messages: jsonBody(response, this.maxMessageBytes) };
    await response.body?.cancel();
    throw new McpGatewayError('UPSTREAM_PROTOCOL_ERROR', `the MCP server answered with content type ${JSON.stringify(type.slice(0, 100))}`);
  }
}
