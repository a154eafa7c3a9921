// The HTTP gateway: one listener, every connection under `/c/<connection>/…`. Each request:
// token (Authorization: Bearer, or x-api-key on Messages API connections) → session → body read
// (bounded) → decision (`http` or `llm` language) → issue (hold for approval) → forward with the
// held credential (the client's token never goes upstream) → response masked → every byte recorded.
import { listenOn } from '@custodian/gateway-kit';
import { createServer as createHttpServer, request as httpRequest, type IncomingHttpHeaders, type IncomingMessage, type OutgoingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import { createSecureServer as createHttp2Server, type Http2SecureServer, type Http2ServerRequest, type Http2ServerResponse } from 'node:http2';
import { createServer as createHttpsServer, request as httpsRequest } from 'node:https';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { Readable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import { createBrotliDecompress, createGunzip, createInflate } from 'node:zlib';
import { DETECTOR_IDS, JSON_LIMIT_RULE, JsonStreamError, MaskingFindings, MaskingPolicy, type DetectorId } from '@custodian/masking';
import type { PolicyDecision, PolicyRule } from '@custodian/policy';
import { decideHttp, decideLlm, httpBody, httpLanguage, llmLanguage, type HttpClassification, type LlmClassification } from '@custodian/policy-languages';
import { SessionRefusal, type PipelineSession } from '@custodian/session-pipeline';
import { ClientLink } from './client-link.js';
import type { HttpConnection, HttpGatewayLogger, HttpGatewayOptions } from './gateway-options.js';
import { MessagesStreamMasker, THINKING_REFUSED_MESSAGE, THINKING_REFUSED_RULE, maskMessagesPrompt, maskMessagesResponse } from './messages-masking.js';
import { sendProblem, type Problem } from './problem.js';
import { SseDecoder, type SseEvent } from './sse-codec.js';

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authorization', 'proxy-authenticate', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'host']);
const ROUTE = /^\/c\/([A-Za-z0-9._-]{1,100})(\/[^?]*)?(\?.*)?$/;
const BEARER = /^Bearer +(\S+) *$/i;
const SILENT: HttpGatewayLogger = { info: () => undefined, warn: () => undefined, error: () => undefined };
const MESSAGES_PATHS = new Set(['/v1/messages', '/v1/messages/count_tokens']);
/** JSON responses up to this are masked whole (byte for byte, Content-Length); larger ones stream. */
const DEFAULT_WHOLE_JSON_BYTES = 1024 * 1024;

type Style = 'problem' | 'anthropic';

interface ResolvedConnection {
  readonly config: HttpConnection;
  readonly kind: 'http' | 'anthropic';
  readonly origin: URL;
  readonly basePath: string;
}

interface BufferedBody {
  readonly chunks: Buffer[];
  readonly bytes: number;
  /** The body ended within the limit. */
  readonly complete: boolean;
}

type Classification = 'json' | 'text' | 'sse' | 'none' | 'other';

function contentClass(contentType: string | undefined, status: number, method: string): Classification {
  if (method === 'HEAD' || status === 204 || status === 304 || (status >= 100 && status < 200)) return 'none';
  const type = (contentType ?? '').split(';')[0]!.trim().toLowerCase();
  if (type === '') return 'text';
  if (type === 'text/event-stream') return 'sse';
  if (type === 'application/json' || type.endsWith('+json')) return 'json';
  if (type.startsWith('text/') || type === 'application/x-ndjson' || type === 'application/xml' || type.endsWith('+xml') || type === 'application/javascript' || type === 'application/x-www-form-urlencoded') return 'text';
  return 'other';
}

function refusalProblem(error: SessionRefusal): Problem {
  if (error.code === 'EVIDENCE_UNAVAILABLE') return { status: 503, code: error.code, title: 'Evidence unavailable', detail: error.message };
  if (error.code === 'CONNECTION_NOT_PERMITTED') return { status: 403, code: error.code, title: 'Connection not permitted', detail: error.message };
  return { status: 401, code: error.code, title: 'Authentication failed', detail: error.message, wwwAuthenticate: 'Bearer realm="custodian", error="invalid_token"' };
}

const REFUSAL_STATUS: Readonly<Record<string, number>> = { POLICY_BLOCKED: 403, APPROVAL_DENIED: 403, APPROVAL_EXPIRED: 408, APPROVAL_CANCELLED: 403, APPROVAL_UNAVAILABLE: 403, EVIDENCE_UNAVAILABLE: 503 };

/** HTTP/2: a request's frames are on its stream's channel (streams of one connection run concurrently). */
function frameOptions(req: IncomingMessage): { channel?: number } {
  const id = req.httpVersionMajor === 2 ? (req as unknown as Http2ServerRequest).stream.id : undefined;
  return id === undefined ? {} : { channel: id };
}

/** The request head as recorded: the client's token replaced, everything else as the client sent it. */
function recordedHead(req: IncomingMessage): Buffer {
  const lines = [`${req.method ?? ''} ${req.url ?? ''} HTTP/${req.httpVersion}`];
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    const name = req.rawHeaders[i]!;
    const lower = name.toLowerCase();
    lines.push(`${name}: ${lower === 'authorization' || lower === 'x-api-key' || lower === 'proxy-authorization' ? '[client token]' : req.rawHeaders[i + 1]!}`);
  }
  return Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1');
}

export class HttpGateway {
  private server: Server | Http2SecureServer | undefined;
  private readonly links = new Set<ClientLink>();
  private readonly connections = new Map<string, ResolvedConnection>();
  private readonly logger: HttpGatewayLogger;
  private boundPort = 0;

  constructor(private readonly options: HttpGatewayOptions) {
    this.logger = options.logger ?? SILENT;
    for (const config of options.connections) {
      const url = new URL(config.upstream.url);
      if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`connection ${config.name}: upstream.url must be http(s)`);
      if (url.username || url.password || url.search) throw new Error(`connection ${config.name}: upstream.url must not carry credentials or a query (credentials are held by reference)`);
      this.connections.set(config.name, { config, kind: config.kind ?? 'http', origin: url, basePath: url.pathname.replace(/\/+$/, '') });
    }
  }

  get host(): string {
    return this.options.host;
  }

  get port(): number {
    return this.boundPort;
  }

  async listen(): Promise<void> {
    const serverOptions = {
      maxHeaderSize: this.options.maxHeaderBytes ?? 16 * 1024,
      headersTimeout: this.options.headersTimeoutMs ?? 10_000,
      // How often Node checks that deadline (default 30 s, which would let a slow head live that much longer).
      connectionsCheckingInterval: Math.min(1_000, this.options.headersTimeoutMs ?? 10_000),
      requestTimeout: 0,
      keepAliveTimeout: 30_000,
      // Refuse what a lenient parser would let through (CL+TE, bad chunk sizes): request smuggling.
      insecureHTTPParser: false,
      requireHostHeader: true,
    };
    // HTTP/2 compat requests and responses offer the IncomingMessage / ServerResponse API this code uses.
    const handler = (req: IncomingMessage | Http2ServerRequest, res: ServerResponse | Http2ServerResponse): void => this.onRequest(req as IncomingMessage, res as ServerResponse);
    const tls = this.options.tls;
    let server: Server | Http2SecureServer;
    if (tls && this.options.http2) {
      // ALPN: h2 for clients that offer it, HTTP/1.1 (with the options above) for the rest.
      server = createHttp2Server({ ...serverOptions, cert: tls.cert, key: tls.key, allowHTTP1: true, settings: { maxHeaderListSize: serverOptions.maxHeaderSize } }, handler);
    } else if (tls) server = createHttpsServer({ ...serverOptions, cert: tls.cert, key: tls.key }, handler);
    else server = createHttpServer(serverOptions, handler);
    (server as Server).maxHeadersCount = this.options.maxHeadersCount ?? 100;
    server.on(tls ? 'secureConnection' : 'connection', (socket: Socket) => {
      const link = new ClientLink(socket, this.options.pipeline, (socket as TLSSocket).alpnProtocol === 'h2' ? 'http/2' : 'http/1.1');
      this.links.add(link);
      socket.once('close', () => this.links.delete(link));
    });
    server.on('clientError', (error: Error & { code?: string }, socket: Socket) => {
      this.logger.warn({ code: error.code }, 'http gateway: malformed request refused');
      if (!socket.writable) return socket.destroy();
      const status = error.code === 'HPE_HEADER_OVERFLOW' ? 431 : error.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
      const body = JSON.stringify({ type: 'urn:custodian:problem:malformed-request', title: 'Malformed request', status, detail: `the request was refused (${error.code ?? 'parse error'})` });
      socket.end(`HTTP/1.1 ${status} ${status === 431 ? 'Request Header Fields Too Large' : status === 408 ? 'Request Timeout' : 'Bad Request'}\r\ncontent-type: application/problem+json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
    });
    this.boundPort = await listenOn(server, this.options.port, this.options.host);
    this.server = server;
    this.logger.info({ host: this.options.host, port: this.boundPort, connections: [...this.connections.keys()] }, 'http gateway listening');
  }

  async close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const link of this.links) {
      await link.endSession('shutdown');
      link.socket.destroy();
    }
    if ('closeAllConnections' in server) server.closeAllConnections();
    await closed;
  }

  private linkOf(req: IncomingMessage): ClientLink | undefined {
    for (const link of this.links) if (link.socket === req.socket) return link;
    if (req.httpVersionMajor !== 2) return undefined;
    // An HTTP/2 request's socket is a proxy of the session's: the TCP peer identifies the connection.
    for (const link of this.links) if (link.version === 'http/2' && link.socket.remotePort === req.socket.remotePort && link.socket.remoteAddress === req.socket.remoteAddress) return link;
    return undefined;
  }

  private onRequest(req: IncomingMessage, res: ServerResponse): void {
    const link = this.linkOf(req);
    if (!link) {
      res.destroy();
      return;
    }
    if (link.version === 'http/2') link.tapStream((req as unknown as Http2ServerRequest).stream);
    req.pause();
    // HTTP/2 streams are served concurrently; HTTP/1.1 requests on one socket in order (pipelining).
    const run = link.version === 'http/2' ? this.handle(link, req, res) : link.queue.then(() => this.handle(link, req, res));
    const settled = run.catch((error: unknown) => {
      this.logger.error({ error: error instanceof Error ? error.message : String(error) }, 'http gateway: request failed');
      if (!res.headersSent) sendProblem(res, { status: 502, code: 'GATEWAY_ERROR', title: 'Gateway error', detail: 'the gateway could not complete the request' }, 'problem', true);
      else res.destroy();
    });
    if (link.version !== 'http/2') link.queue = settled;
  }

  private async handle(link: ClientLink, req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (link.closed) return;
    // Node's parser refuses CL together with TE; this is the belt to those braces.
    if (req.headers['transfer-encoding'] !== undefined && req.headers['content-length'] !== undefined) {
      sendProblem(res, { status: 400, code: 'REQUEST_SMUGGLING', title: 'Ambiguous request framing', detail: 'Content-Length and Transfer-Encoding together are refused' }, 'problem', true);
      return;
    }
    const route = ROUTE.exec(req.url ?? '');
    const resolved = route ? this.connections.get(route[1]!) : undefined;
    const style: Style = resolved?.kind === 'anthropic' ? 'anthropic' : 'problem';
    if (!route) {
      sendProblem(res, { status: 404, code: 'NO_ROUTE', title: 'Not found', detail: 'requests go to /c/<connection>/<path>' }, 'problem');
      return;
    }
    const connectionName = route[1]!;
    const path = route[2] ?? '/';
    const query = route[3] ?? '';
    const protocol = resolved?.kind === 'anthropic' ? 'anthropic' : 'http';
    // The token: Authorization: Bearer; Messages API clients may send it as x-api-key (ANTHROPIC_API_KEY).
    const bearer = BEARER.exec(req.headers.authorization ?? '')?.[1];
    const apiKey = resolved?.kind === 'anthropic' && typeof req.headers['x-api-key'] === 'string' ? req.headers['x-api-key'] : undefined;
    const token = bearer ?? apiKey;
    if (token === undefined) {
      sendProblem(res, { status: 401, code: 'AUTHENTICATION_REQUIRED', title: 'Authentication required', detail: 'send Authorization: Bearer <access token>', wwwAuthenticate: 'Bearer realm="custodian"' }, style);
      return;
    }
    let session: PipelineSession;
    try {
      session = await link.sessionFor(protocol, connectionName, resolved !== undefined, token, bearer !== undefined ? 'bearer-header' : 'api-key-header', frameOptions(req).channel);
    } catch (error) {
      if (error instanceof SessionRefusal) {
        sendProblem(res, refusalProblem(error), style);
        return;
      }
      throw error;
    }
    try {
      await this.handleInSession(link, session, resolved, req, res, route[2], path, query);
    } finally {
      link.release(session);
    }
  }

  private async handleInSession(link: ClientLink, session: PipelineSession, resolved: ResolvedConnection | undefined, req: IncomingMessage, res: ServerResponse, routedPath: string | undefined, path: string, query: string): Promise<void> {
    if (!resolved) throw new Error('unreachable: a session for an unknown connection');
    if (routedPath === undefined && (req.method === 'HEAD' || req.method === 'GET')) {
      // `HEAD` or `GET /c/<connection>` (no path): checks the token and the connection (opening the session) without touching the upstream.
      res.writeHead(204, { 'x-custodian-session': session.id });
      res.end();
      req.resume();
      return;
    }
    link.flushClientBound();
    session.recordFrame('client-to-upstream', 'http-request-head', recordedHead(req), frameOptions(req));
    const body = await this.readBody(req, resolved.config.maxRequestBodyBytes ?? (resolved.kind === 'anthropic' ? 32 * 1024 * 1024 : 1024 * 1024), session);
    if (resolved.kind === 'anthropic') await this.handleMessages(link, session, resolved, req, res, path, query, body);
    else await this.handleHttp(link, session, resolved, req, res, path, query, body);
  }

  /** Reads the body up to `limit` (recording it); the rest stays in `req`, paused, to be streamed on. */
  private readBody(req: IncomingMessage, limit: number, session: PipelineSession): Promise<BufferedBody> {
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let bytes = 0;
      const onData = (chunk: Buffer): void => {
        chunks.push(chunk);
        bytes += chunk.length;
        session.recordFrame('client-to-upstream', 'http-request-body', chunk, frameOptions(req));
        if (bytes > limit) {
          cleanup();
          req.pause();
          resolve({ chunks, bytes, complete: false });
        }
      };
      const onEnd = (): void => {
        cleanup();
        resolve({ chunks, bytes, complete: true });
      };
      const onError = (error: Error): void => {
        cleanup();
        reject(error);
      };
      const cleanup = (): void => {
        req.off('data', onData).off('end', onEnd).off('error', onError);
      };
      if (req.readableEnded) return resolve({ chunks, bytes, complete: true });
      req.on('data', onData).on('end', onEnd).on('error', onError);
      req.resume();
    });
  }

  private async handleHttp(link: ClientLink, session: PipelineSession, connection: ResolvedConnection, req: IncomingMessage, res: ServerResponse, path: string, query: string, body: BufferedBody): Promise<void> {
    const method = req.method ?? 'GET';
    const bodyInput = body.complete ? httpBody(Buffer.concat(body.chunks), { maxBytes: connection.config.maxRequestBodyBytes ?? 1024 * 1024 }) : { bodyState: 'too-large' as const };
    const headers: Record<string, string | string[]> = {};
    for (const [name, value] of Object.entries(req.headers)) if (value !== undefined && name !== 'authorization' && !name.startsWith(':')) headers[name] = value;
    const decision = decideHttp(session.policy, session.policyContext, { host: connection.origin.host, method, path: `${connection.basePath}${path}`, query: query.replace(/^\?/, ''), headers, ...bodyInput });
    const masking = session.masking;
    const url = `${connection.origin.origin}${connection.basePath}${path}${query}`;
    const text = masking.maskText(`${method} ${url}`, 'request.url');
    const bodyText = bodyInput.bodyState === 'parsed' ? masking.maskText(Buffer.concat(body.chunks).toString('utf8').slice(0, 65_536), 'request.body') : undefined;
    const outcome = await session.issue({
      language: 'http',
      kind: 'http',
      text,
      ...(bodyText === undefined ? {} : { parameters: [bodyText] }),
      summary: httpLanguage.summary(decision.classification) as Record<string, unknown>,
      decision: decision as PolicyDecision<HttpClassification>,
      signal: link.abort.signal,
    });
    if (!outcome.forward) {
      // The refusal's evidence is durable before the client hears of it (it may ask for it at once).
      await session.whenRecorded();
      sendProblem(res, { status: REFUSAL_STATUS[outcome.code] ?? 403, code: outcome.code, title: 'Request refused', detail: outcome.message, rule: outcome.ruleId }, 'problem');
      req.resume();
      return;
    }
    await this.forward(link, session, connection, req, res, method, path, query, body, outcome.commandId, 'problem');
  }

  private async handleMessages(link: ClientLink, session: PipelineSession, connection: ResolvedConnection, req: IncomingMessage, res: ServerResponse, path: string, query: string, body: BufferedBody): Promise<void> {
    const method = req.method ?? 'GET';
    const masking = session.masking;
    if (method === 'GET' && (path === '/v1/models' || path.startsWith('/v1/models/'))) {
      // Model listing carries no prompt: decided as an empty LLM request would be is meaningless, so it is
      // forwarded and recorded (frames) without a command.
      await this.forward(link, session, connection, req, res, method, path, query, body, undefined, 'anthropic');
      return;
    }
    if (method !== 'POST' || !MESSAGES_PATHS.has(path)) {
      sendProblem(res, { status: 404, code: 'NOT_SERVED', title: 'Not served', detail: `the Messages API gateway serves POST /v1/messages, POST /v1/messages/count_tokens and GET /v1/models, not ${method} ${path}` }, 'anthropic');
      return;
    }
    if (!body.complete) {
      const decision = session.gatewayBlock('llm', 'custodian:request-too-large', 'the request body exceeds the size the gateway inspects', 'the request body is larger than the gateway inspects');
      const outcome = await session.issue({ language: 'llm', kind: 'llm', text: `${method} ${path} (body too large to inspect)`, decision, signal: link.abort.signal });
      await session.whenRecorded();
      sendProblem(res, { status: 413, code: 'REQUEST_TOO_LARGE', title: 'Request too large', detail: outcome.forward ? 'too large' : outcome.message, rule: 'custodian:request-too-large' }, 'anthropic', true);
      return;
    }
    const raw = Buffer.concat(body.chunks).toString('utf8');
    let parsed: unknown;
    try {
      parsed = JSON.parse(raw);
    } catch {
      parsed = undefined;
    }
    const decision = decideLlm(session.policy, session.policyContext, parsed);
    const text = masking.maskText(`${method} ${path}${query}\n${raw.slice(0, 60_000)}`, 'request.body');
    const outcome = await session.issue({
      language: 'llm',
      kind: 'llm',
      text,
      summary: llmLanguage.summary(decision.classification) as Record<string, unknown>,
      decision: decision as PolicyDecision<LlmClassification>,
      signal: link.abort.signal,
    });
    if (!outcome.forward) {
      await session.whenRecorded();
      sendProblem(res, { status: REFUSAL_STATUS[outcome.code] ?? 403, code: outcome.code, title: 'Request refused', detail: outcome.message, rule: outcome.ruleId }, 'anthropic');
      return;
    }
    let forwarded = body;
    // Decided on the prompt as sent; what leaves has the findings masked: by the deciding rule
    // (`maskPrompt`, a policy decision) and/or by the connection's setting.
    const rule = decision.ruleId === null ? undefined : session.policy.rules.find((candidate) => candidate.id === decision.ruleId);
    const maskings = [...(rule?.maskPrompt === true ? [promptMaskingOf(rule)] : []), ...(connection.config.maskPrompt ? [masking] : [])];
    if (maskings.length > 0 && typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) {
      const promptFindings = new MaskingFindings();
      let changed = false;
      for (const promptMasking of maskings) changed = maskMessagesPrompt(promptMasking, parsed as Record<string, unknown>, promptFindings) || changed;
      if (changed) {
        const bytes = Buffer.from(JSON.stringify(parsed), 'utf8');
        forwarded = { chunks: [bytes], bytes: bytes.length, complete: true };
        session.recordMasked(outcome.commandId, promptFindings);
      }
    }
    await this.forward(link, session, connection, req, res, method, path, query, forwarded, outcome.commandId, 'anthropic');
  }

  /** Sends the request upstream with the held credential and streams the masked response back. */
  private async forward(
    link: ClientLink,
    session: PipelineSession,
    connection: ResolvedConnection,
    req: IncomingMessage,
    res: ServerResponse,
    method: string,
    path: string,
    query: string,
    body: BufferedBody,
    commandId: string | undefined,
    style: Style,
  ): Promise<void> {
    const { config, origin } = connection;
    const credential = config.upstream.credential;
    const secret = await credential.secret();
    const headers: OutgoingHttpHeaders = {};
    for (const [name, value] of Object.entries(req.headers)) {
      if (value === undefined || HOP_BY_HOP.has(name) || name.startsWith(':') || name === 'authorization' || name === 'x-api-key' || name === 'content-length' || name === 'accept-encoding') continue;
      headers[name] = value;
    }
    // Only encodings the gateway can decode to mask; it answers the client uncompressed.
    headers['accept-encoding'] = 'gzip, deflate, br';
    let search = query;
    let method_: 'api-key' | 'bearer' | 'password' = 'bearer';
    switch (credential.kind) {
      case 'bearer':
        headers['authorization'] = `Bearer ${secret}`;
        break;
      case 'basic':
        headers['authorization'] = `Basic ${Buffer.from(`${credential.username}:${secret}`).toString('base64')}`;
        method_ = 'password';
        break;
      case 'header':
        headers[credential.name.toLowerCase()] = secret;
        method_ = 'api-key';
        break;
      case 'query':
        search = `${query === '' ? '?' : `${query}&`}${encodeURIComponent(credential.name)}=${encodeURIComponent(secret)}`;
        method_ = 'api-key';
        break;
    }
    if (body.complete) headers['content-length'] = String(body.bytes);
    else headers['transfer-encoding'] = 'chunked';
    link.credentialInjected(session, credential.credentialRef, method_, secret);
    const requestOf = origin.protocol === 'https:' ? httpsRequest : httpRequest;
    const upstreamAbort = new AbortController();
    const onClientGone = (): void => upstreamAbort.abort();
    link.abort.signal.addEventListener('abort', onClientGone, { once: true });
    const timeoutMs = config.upstream.responseTimeoutMs ?? 60_000;
    try {
      const upstream = await new Promise<IncomingMessage>((resolve, reject) => {
        const outgoing = requestOf({
          protocol: origin.protocol,
          hostname: origin.hostname,
          port: origin.port || undefined,
          method,
          path: `${connection.basePath}${path}${search}`,
          headers,
          signal: upstreamAbort.signal,
          ...(origin.protocol === 'https:' ? { rejectUnauthorized: true, ...(config.upstream.ca ? { ca: config.upstream.ca as string | Buffer | (string | Buffer)[] } : {}), servername: origin.hostname } : {}),
        });
        const timer = setTimeout(() => outgoing.destroy(new Error('the upstream did not answer in time')), timeoutMs);
        outgoing.once('response', (response) => {
          clearTimeout(timer);
          resolve(response);
        });
        outgoing.once('error', (error) => {
          clearTimeout(timer);
          reject(error);
        });
        for (const chunk of body.chunks) outgoing.write(chunk);
        if (body.complete) outgoing.end();
        else {
          // The rest of a large body streams on with backpressure, recorded as it goes.
          req.on('data', (chunk: Buffer) => session.recordFrame('client-to-upstream', 'http-request-body', chunk, frameOptions(req)));
          req.pipe(outgoing);
          req.resume();
        }
      });
      await this.respond(link, session, connection, res, method, upstream, commandId, style);
    } catch (error) {
      const code = (error as { code?: string }).code;
      this.logger.warn({ connection: config.name, code }, 'http gateway: upstream request failed');
      if (link.closed) return;
      const tls = typeof code === 'string' && /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS/.test(code);
      sendProblem(res, { status: 502, code: tls ? 'UPSTREAM_TLS_VERIFICATION_FAILED' : 'UPSTREAM_UNAVAILABLE', title: 'Upstream unavailable', detail: tls ? 'the upstream certificate could not be verified' : 'the upstream could not be reached or broke off' }, style);
    } finally {
      link.abort.signal.removeEventListener('abort', onClientGone);
    }
  }

  private async respond(link: ClientLink, session: PipelineSession, connection: ResolvedConnection, res: ServerResponse, method: string, upstream: IncomingMessage, commandId: string | undefined, style: Style): Promise<void> {
    const status = upstream.statusCode ?? 502;
    const cls = contentClass(upstream.headers['content-type'], status, method);
    const encoding = (upstream.headers['content-encoding'] ?? 'identity').trim().toLowerCase();
    const headers = this.responseHeaders(upstream.headers);
    if (cls === 'other' && (connection.config.unmaskableResponses ?? 'refuse') === 'pass') {
      if (upstream.headers['content-length'] !== undefined) headers['content-length'] = upstream.headers['content-length'];
      if (upstream.headers['content-encoding'] !== undefined) headers['content-encoding'] = upstream.headers['content-encoding'];
      res.writeHead(status, headers);
      await pump(upstream, res, session);
      return;
    }
    if (cls === 'other') {
      upstream.destroy();
      const type = (upstream.headers['content-type'] ?? '').split(';')[0];
      sendProblem(res, { status: 502, code: 'UNMASKABLE_RESPONSE', title: 'Response refused', detail: `the upstream answered with ${type || 'a body'} the gateway cannot mask, and this connection refuses such responses`, rule: 'custodian:unmaskable-response' }, style);
      return;
    }
    let decoded: Readable = upstream;
    if (encoding !== 'identity' && cls !== 'none') {
      const decoder = encoding === 'gzip' || encoding === 'x-gzip' ? createGunzip() : encoding === 'deflate' ? createInflate() : encoding === 'br' ? createBrotliDecompress() : undefined;
      if (!decoder) {
        upstream.destroy();
        sendProblem(res, { status: 502, code: 'UNSUPPORTED_CONTENT_ENCODING', title: 'Response refused', detail: `the upstream's content encoding ${JSON.stringify(encoding.slice(0, 40))} cannot be decoded to mask it`, rule: 'custodian:unmaskable-response' }, style);
        return;
      }
      decoded = upstream.pipe(decoder);
      upstream.on('error', (error) => decoder.destroy(error));
    }
    const findings = new MaskingFindings();
    const masking = session.masking;
    try {
      if (cls === 'none') {
        res.writeHead(status, headers);
        res.end();
        upstream.resume();
      } else if (cls === 'json') {
        const anthropic = connection.kind === 'anthropic' && status < 300;
        const limit = connection.config.maxJsonResponseBytes ?? (anthropic ? 4 * 1024 * 1024 : DEFAULT_WHOLE_JSON_BYTES);
        const collected = await collect(decoded, limit);
        if (!collected.complete) {
          if (anthropic) {
            // A Messages response is masked per content block, whole: too large is refused, never passed unmasked.
            decoded.destroy();
            sendProblem(res, { status: 502, code: 'RESPONSE_TOO_LARGE', title: 'Response refused', detail: `the Messages response exceeds ${limit} bytes, the most the gateway masks`, rule: 'custodian:json-limit' }, style);
            return;
          }
          // Larger than is masked whole: streamed through the JSON stream masker (bounded memory, chunked).
          await this.streamJson(session, connection, status, headers, collected.chunks, decoded, res, findings, style);
          return;
        }
        const text = Buffer.concat(collected.chunks).toString('utf8');
        let out: string;
        if (anthropic) {
          if (connection.config.thinking === 'refuse' && hasThinkingBlock(text)) {
            findings.add('response.content', THINKING_REFUSED_RULE);
            sendProblem(res, { status: 502, code: 'THINKING_REFUSED', title: 'Response refused', detail: THINKING_REFUSED_MESSAGE, rule: THINKING_REFUSED_RULE }, style);
            return;
          }
          const toolUses: { id: string; name: string; input: string }[] = [];
          out = maskMessagesResponse(masking, text, findings, toolUses);
          link.flushClientBound();
          for (const use of toolUses) session.recordToolUse(commandId, { id: use.id, name: use.name, maskedInput: use.input });
        } else {
          // The connection's limit, not the masker's default (4 Mi chars): a document the gateway collected is masked whole.
          const result = masking.maskJsonText(text, { location: 'response.body', findings, maxChars: limit });
          if (result.outcome === 'refused') {
            // Nested deeper than the masker follows: refused like an oversized one, never a 200 with a replaced body.
            sendProblem(res, { status: 502, code: 'RESPONSE_TOO_DEEP', title: 'Response refused', detail: 'the JSON response is nested deeper than the gateway masks by path', rule: 'custodian:json-limit' }, style);
            return;
          }
          out = result.outcome === 'invalid' ? masking.maskText(text, 'response.body', findings) : result.text;
        }
        const bytes = Buffer.from(out, 'utf8');
        headers['content-length'] = String(bytes.length);
        res.writeHead(status, headers);
        res.end(bytes);
      } else if (cls === 'sse' && connection.kind === 'anthropic') {
        res.writeHead(status, headers);
        await this.streamMessages(link, session, decoded, res, findings, commandId, connection.config.thinking ?? 'pass');
      } else {
        res.writeHead(status, headers);
        const decoder = new StringDecoder('utf8');
        const masker = masking.createStreamMasker('response.body', findings);
        for await (const chunk of decoded) {
          const out = masker.push(decoder.write(chunk as Buffer));
          if (out !== '' && !res.write(utf8(out))) await drained(res);
          await recorderReady(session);
        }
        res.end(utf8(masker.push(decoder.end()) + masker.end()));
      }
    } catch (error) {
      this.logger.warn({ connection: connection.config.name, error: error instanceof Error ? error.message : String(error) }, 'http gateway: upstream response broke off');
      // Headers already sent: the client sees the response cut off (never the unmasked rest).
      res.destroy();
    } finally {
      if (commandId !== undefined) session.recordMasked(commandId, findings);
    }
  }

  /**
   * A JSON response larger than is masked whole: tokenized as it arrives, path rules and detectors
   * applied per value, re-serialised and sent chunked. Memory is bounded by the largest single
   * value, not the document. Input that turns out not to be JSON (or a value beyond the limit)
   * cuts the response off: what was sent is masked, the rest is never sent.
   */
  private async streamJson(session: PipelineSession, connection: ResolvedConnection, status: number, headers: OutgoingHttpHeaders, head: readonly Buffer[], body: Readable, res: ServerResponse, findings: MaskingFindings, style: Style): Promise<void> {
    const masker = session.masking.createJsonStreamMasker({ location: 'response.body', findings, ...(connection.config.maxJsonValueChars ? { maxValueChars: connection.config.maxJsonValueChars } : {}) });
    // The head goes out with the first masked bytes: input refused before then gets a clear 502 instead.
    const headed = (out: string): string => {
      if (out !== '' && !res.headersSent) res.writeHead(status, headers);
      return out;
    };
    try {
      const send = async (out: string): Promise<void> => {
        if (headed(out) !== '' && !res.write(utf8(out))) await drained(res);
      };
      for (const chunk of head) await send(masker.push(chunk));
      for await (const chunk of body) {
        await send(masker.push(chunk as Buffer));
        await recorderReady(session);
      }
      const last = masker.end();
      if (!res.headersSent) res.writeHead(status, headers);
      res.end(utf8(last));
    } catch (error) {
      if (!(error instanceof JsonStreamError)) throw error;
      body.destroy();
      findings.add('response.body', JSON_LIMIT_RULE);
      this.logger.warn({ connection: connection.config.name, code: error.code }, 'http gateway: streamed JSON response cut off');
      if (!res.headersSent) {
        const tooLarge = error.reason === 'value-too-large';
        sendProblem(res, { status: 502, code: tooLarge ? 'RESPONSE_VALUE_TOO_LARGE' : 'RESPONSE_NOT_JSON', title: 'Response refused', detail: tooLarge ? 'a value in the JSON response is longer than the gateway masks' : 'the response is labelled JSON but is not', rule: JSON_LIMIT_RULE }, style);
      } else res.destroy();
    }
  }

  /** Anthropic Messages SSE: every event through the stream masker; order and framing kept. */
  private async streamMessages(link: ClientLink, session: PipelineSession, body: Readable, res: ServerResponse, findings: MaskingFindings, commandId: string | undefined, thinking: 'pass' | 'refuse'): Promise<void> {
    const decoder = new SseDecoder();
    const masker = new MessagesStreamMasker(session.masking, thinking);
    // All the bytes one upstream chunk yields go out in one write (one HTTP chunk, not one per event).
    const masked = (events: readonly SseEvent[]): Buffer => {
      const out: Buffer[] = [];
      for (const event of events) for (const bytes of masker.transform(event)) out.push(bytes);
      return out.length === 1 ? out[0]! : out.length === 0 ? EMPTY : Buffer.concat(out);
    };
    try {
      for await (const chunk of body) {
        const out = masked(decoder.push(chunk as Buffer));
        if (masker.ended) {
          // The gateway ended the stream (error event sent): the upstream is not read on.
          body.destroy();
          res.end(out);
          return;
        }
        if (out.length > 0 && !res.write(out)) await drained(res);
        await recorderReady(session);
      }
      res.end(masked(decoder.end()));
    } finally {
      masker.abandon();
      findings.merge(masker.findings);
      // Each tool call the model made is an event of its own (name, masked input), after the bytes that carried it.
      link.flushClientBound();
      for (const use of masker.toolUses) session.recordToolUse(commandId, { id: use.id, name: use.name, maskedInput: use.input });
    }
  }

  private responseHeaders(upstream: IncomingHttpHeaders): OutgoingHttpHeaders {
    const out: OutgoingHttpHeaders = {};
    for (const [name, value] of Object.entries(upstream)) {
      if (value === undefined || HOP_BY_HOP.has(name) || name === 'content-length' || name === 'content-encoding') continue;
      out[name] = value;
    }
    return out;
  }
}

/** Per rule object (one per policy version): the detectors its `maskPrompt` masks, built once (detector sets are costly). */
const PROMPT_MASKINGS = new WeakMap<PolicyRule, MaskingPolicy>();

/** The masking a `maskPrompt` rule applies: the detectors its `llm.detectors` names (else all), redacted as `[REDACTED:<rule id>]`. */
function promptMaskingOf(rule: PolicyRule): MaskingPolicy {
  let policy = PROMPT_MASKINGS.get(rule);
  if (!policy) {
    const named = (rule.match.llm?.detectors ?? []).filter((id): id is DetectorId => (DETECTOR_IDS as readonly string[]).includes(id));
    const enabled = named.length > 0 ? named : [...DETECTOR_IDS];
    policy = MaskingPolicy.create({ detection: { enabled, strategy: { kind: 'redact', label: rule.id }, ruleIds: Object.fromEntries(enabled.map((id) => [id, rule.id])) } });
    PROMPT_MASKINGS.set(rule, policy);
  }
  return policy;
}

/** True when a whole Messages response carries a `thinking` or `redacted_thinking` block. */
function hasThinkingBlock(text: string): boolean {
  try {
    const message = JSON.parse(text) as { content?: unknown };
    return Array.isArray(message.content) && message.content.some((block: unknown) => typeof block === 'object' && block !== null && ['thinking', 'redacted_thinking'].includes(String((block as { type?: unknown }).type)));
  } catch {
    return false;
  }
}

function drained(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      res.off('drain', done).off('close', done);
      resolve();
    };
    res.on('drain', done).on('close', done);
  });
}

/**
 * Output as bytes. Strings built by concatenation (the maskers' output) written to an HTTP/2
 * response arrived corrupted under load (other heap memory in the body, seen with Node 24's
 * http2 compat layer); bytes never did, so masked text is encoded before it is written.
 */
function utf8(out: string): Buffer {
  return Buffer.from(out, 'utf8');
}

const EMPTY = Buffer.alloc(0);

async function pump(from: Readable, to: ServerResponse, session: PipelineSession): Promise<void> {
  for await (const chunk of from) {
    if (!to.write(chunk as Buffer)) await drained(to);
    await recorderReady(session);
  }
  to.end();
}

/**
 * Backpressure from the evidence side: while the session's recorder holds more than its limit
 * of events not yet durable, the upstream is not read on (the client-bound bytes are recorded,
 * so a fast upstream would otherwise pile frames up in memory).
 */
async function recorderReady(session: PipelineSession): Promise<void> {
  if (session.recorderSaturated) await session.whenRecorderReady();
}

/**
 * Reads up to `limit` bytes: the whole stream (`complete`), or the chunks read so far once it
 * passes the limit (the rest stays in the stream, paused: `for await` is left without destroying it).
 */
async function collect(stream: Readable, limit: number): Promise<{ readonly chunks: Buffer[]; readonly complete: boolean }> {
  const chunks: Buffer[] = [];
  let bytes = 0;
  return new Promise((resolve, reject) => {
    const onData = (chunk: Buffer): void => {
      chunks.push(chunk);
      bytes += chunk.length;
      if (bytes > limit) {
        stream.pause();
        cleanup();
        resolve({ chunks, complete: false });
      }
    };
    const onEnd = (): void => {
      cleanup();
      resolve({ chunks, complete: true });
    };
    const onError = (error: Error): void => {
      cleanup();
      reject(error);
    };
    const cleanup = (): void => {
      stream.off('data', onData).off('end', onEnd).off('error', onError);
    };
    stream.on('data', onData).on('end', onEnd).on('error', onError);
  });
}
