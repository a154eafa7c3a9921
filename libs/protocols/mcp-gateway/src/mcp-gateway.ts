// The MCP gateway: streamable HTTP toward clients (`/mcp/<connection>`) and toward upstream MCP
// servers, session era (2025-06-18 / 2025-11-25). The gateway is an OAuth resource server (RFC 9728
// metadata, `WWW-Authenticate` with `resource_metadata`); the client's token opens a pipeline
// session and never goes upstream, where the gateway presents the credential it holds. Every
// JSON-RPC message is parsed and decided here: protocol plumbing (initialize, ping, lists,
// notifications, responses) passes, every call (`tools/call`, `resources/read`, `prompts/get`, any
// other request) is decided with the `mcp` policy language, held calls keep the client's request
// open (SSE keep-alive) until the approval ends, results are masked, and every message both ways is
// recorded as a frame after masking.
import { listenOn } from '@custodian/gateway-kit';
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { BearerAuthenticator } from '@custodian/identity';
import { MaskingFindings } from '@custodian/masking';
import type { PolicyDecision } from '@custodian/policy';
import { decideMcp, type McpToolAnnotations } from '@custodian/policy-languages';
import { SessionRefusal, type PipelineSession } from '@custodian/session-pipeline';
import { McpGatewayError } from './gateway-errors.js';
import { NO_LOGGER, type GatewayLogger, type McpConnection, type McpGatewayOptions } from './gateway-options.js';
import { JsonRpcErrorCode, canonicalJson, jsonRpcError, parseJsonRpc, type JsonRpcId, type JsonRpcMessage } from './json-rpc.js';
import {
  CLIENT_CAPABILITIES_META_KEY,
  CLIENT_INFO_META_KEY,
  HANDSHAKE_PROTOCOL_VERSIONS,
  LATEST_MODERN_VERSION,
  MODERN_PROTOCOL_VERSIONS,
  PROTOCOL_VERSION_META_KEY,
  checkStatelessMessage,
  isRejection,
  isStatelessMessage,
  type StatelessRejection,
} from './protocol-eras.js';
import { maskMessage, type StructuredMaskingConflict } from './result-masking.js';
import { SSE_KEEP_ALIVE, encodeSseEvent } from './sse-reader.js';
import { ApprovedContinuations, type ApprovedCall } from './approved-continuations.js';
import { toolFingerprint } from './tool-pins.js';
import { ToolPinLedger, type ToolPin } from '@custodian/tool-pins';
import { McpStdioUpstream } from './stdio-upstream.js';
import { McpUpstream, type UpstreamReply, type UpstreamState } from './upstream-client.js';

/** What the gateway needs of an upstream: an HTTP server or a child process speaking stdio. */
type Upstream = Pick<McpUpstream, 'credentialRef' | 'readCredential' | 'post' | 'openStream' | 'terminate' | 'era' | 'discovery' | 'close'>;

/** A session-era client bridged to an upstream that speaks 2026-07-28 only: what each forwarded request's `_meta` carries. */
interface EraBridge {
  readonly clientVersion: string;
  readonly clientCapabilities: unknown;
  readonly clientInfo: unknown;
}

const DEFAULT_MAX_MESSAGE_BYTES = 4 * 1024 * 1024;
const SUPPORTED_VERSIONS = new Set(['2025-03-26', '2025-06-18', '2025-11-25']);
/** Requests the gateway passes without a policy decision: they read nothing and run nothing. */
const PLUMBING = new Set(['initialize', 'server/discover', 'ping', 'tools/list', 'resources/list', 'resources/templates/list', 'prompts/list', 'logging/setLevel', 'completion/complete']);
/** Rule id of calls to a tool whose definition changed since it was pinned. */
export const TOOL_CHANGED_RULE = 'custodian:mcp-tool-definition-changed';
/** Rule id of stateless-era requests whose routing headers disagree with their body. */
export const HEADER_MISMATCH_RULE = 'custodian:mcp-header-mismatch';
const BEARER = /^Bearer +(\S+) *$/i;
/** The rule id approvals name when the default decision (no rule) required approval, as the pipeline does. */
const APPROVAL_RULE_FALLBACK = 'custodian:approval';

interface GatewaySession {
  readonly id: string;
  /** A stateless-era (2026-07-28) client's requests, grouped per access token: no `Mcp-Session-Id` goes to the client. */
  readonly statelessKey: string | undefined;
  readonly connection: McpConnection;
  readonly upstream: Upstream;
  readonly pipeline: PipelineSession;
  readonly subject: string;
  readonly state: UpstreamState;
  tokenDigest: Buffer;
  tokenExpiresAt: number;
  readonly tools: Map<string, Record<string, unknown>>;
  /** Fingerprints of `tools`' definitions (computed once per tools/list, not per call). */
  readonly fingerprints: Map<string, string>;
  toolsListed: boolean;
  bridge: EraBridge | undefined;
  readonly inFlight: Set<AbortController>;
  idleTimer: NodeJS.Timeout | undefined;
  closed: boolean;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** SHA-256 of a token: kept instead of the token to recognise it on the session's next request. */
function tokenDigestOf(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}

/** Where a response goes: JSON until something forces a stream (a held call, an upstream stream). */
class ClientReply {
  private streaming = false;
  private keepAlive: NodeJS.Timeout | undefined;

  constructor(
    private readonly res: ServerResponse,
    private readonly session: GatewaySession | undefined,
    private readonly label: string,
  ) {}

  get gone(): boolean {
    return this.res.destroyed || this.res.writableEnded;
  }

  private record(bytes: Buffer, label: string): void {
    this.session?.pipeline.recordFrame('upstream-to-client', label, bytes);
  }

  private baseHeaders(): Record<string, string> {
    return this.session && this.session.statelessKey === undefined ? { 'mcp-session-id': this.session.id } : {};
  }

  /** Switches to SSE (once) and sends keep-alive comments until the reply ends. */
  startStream(keepAliveMs?: number): void {
    if (this.streaming || this.gone) return;
    this.streaming = true;
    this.res.writeHead(200, { ...this.baseHeaders(), 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
    this.res.flushHeaders();
    if (keepAliveMs !== undefined) {
      this.keepAlive = setInterval(() => {
        if (this.gone) return;
        this.record(SSE_KEEP_ALIVE, 'sse:keep-alive');
        this.res.write(SSE_KEEP_ALIVE);
      }, keepAliveMs);
      this.keepAlive.unref();
    }
  }

  /** One JSON-RPC message to the client (as the body, or as an event when streaming). */
  send(message: string, label = this.label, status = 200): void {
    if (this.gone) return;
    if (this.streaming) {
      const bytes = encodeSseEvent(message);
      this.record(bytes, label);
      this.res.write(bytes);
      return;
    }
    const bytes = Buffer.from(message, 'utf8');
    this.record(bytes, label);
    this.res.writeHead(status, { ...this.baseHeaders(), 'content-type': 'application/json', 'content-length': String(bytes.length) });
    this.res.end(bytes);
  }

  end(): void {
    if (this.keepAlive) clearInterval(this.keepAlive);
    this.keepAlive = undefined;
    if (!this.gone) this.res.end();
  }
}

export class McpGateway {
  private server: Server | undefined;
  private readonly connections: ReadonlyMap<string, McpConnection>;
  private readonly upstreams = new Map<string, Upstream>();
  private readonly pins = new Map<string, ToolPinLedger>();
  private readonly sessions = new Map<string, GatewaySession>();
  private readonly statelessSessions = new Map<string, GatewaySession>();
  private readonly continuations: ApprovedContinuations;
  private readonly logger: GatewayLogger;
  private readonly maxMessageBytes: number;
  private readonly keepAliveMs: number;
  private readonly idleTimeoutMs: number;
  private readonly conflict: StructuredMaskingConflict;
  private readonly authenticator: BearerAuthenticator;
  private boundPort: number | undefined;
  private closing = false;

  constructor(private readonly options: McpGatewayOptions & { readonly structuredMaskingConflict?: StructuredMaskingConflict }) {
    this.logger = options.logger ?? NO_LOGGER;
    this.maxMessageBytes = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
    this.keepAliveMs = options.keepAliveMs ?? 15_000;
    this.idleTimeoutMs = options.idleTimeoutMs ?? 30 * 60_000;
    this.conflict = options.structuredMaskingConflict ?? 'placeholder';
    this.authenticator = options.authenticator;
    this.continuations = new ApprovedContinuations({ eventStore: options.toolPins.eventStore, source: options.toolPins.source });
    const byName = new Map<string, McpConnection>();
    for (const connection of options.connections) {
      if (!/^[A-Za-z0-9._-]{1,128}$/.test(connection.name)) throw new McpGatewayError('GATEWAY_CONFIG_INVALID', `connection name ${JSON.stringify(connection.name)} must be 1-128 letters, digits, '.', '_' or '-'`);
      if (byName.has(connection.name)) throw new McpGatewayError('GATEWAY_CONFIG_INVALID', `connection ${connection.name} is configured twice`);
      byName.set(connection.name, connection);
      this.upstreams.set(connection.name, 'command' in connection.upstream ? new McpStdioUpstream(connection.upstream, this.maxMessageBytes) : new McpUpstream(connection.upstream, this.maxMessageBytes));
      this.pins.set(connection.name, new ToolPinLedger({ eventStore: options.toolPins.eventStore, source: options.toolPins.source, connection: connection.name }));
    }
    this.connections = byName;
  }

  async listen(): Promise<number> {
    const handler = (req: IncomingMessage, res: ServerResponse): void => {
      void this.handle(req, res).catch((error: unknown) => {
        this.logger.error({ err: error instanceof Error ? error.message : String(error) }, 'mcp gateway: unexpected failure');
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' });
        res.end();
      });
    };
    const server = this.options.tls ? createHttpsServer({ cert: this.options.tls.cert, key: this.options.tls.key, minVersion: 'TLSv1.2' }, handler) : createHttpServer(handler);
    // Held calls wait for a human: the request must outlive Node's default timeouts.
    server.requestTimeout = 0;
    server.headersTimeout = 30_000;
    this.server = server;
    this.boundPort = await listenOn(server, this.options.port, this.options.host);
    return this.boundPort;
  }

  get port(): number {
    if (this.boundPort === undefined) throw new McpGatewayError('GATEWAY_CONFIG_INVALID', 'the gateway is not listening');
    return this.boundPort;
  }

  get host(): string {
    return this.options.host;
  }

  /** Base URL of the gateway as clients reach it. */
  get publicUrl(): string {
    return (this.options.publicUrl ?? `${this.options.tls ? 'https' : 'http'}://${this.options.host.includes(':') ? `[${this.options.host}]` : this.options.host}:${this.port}`).replace(/\/$/, '');
  }

  /** The MCP endpoint of one connection. */
  endpoint(connection: string): string {
    return `${this.publicUrl}/mcp/${connection}`;
  }

  get sessionCount(): number {
    return this.sessions.size;
  }

  /**
   * The tool-definition pins of a connection as this gateway last read them from the event log
   * (a human accepts a changed definition through the API: `POST /v1/mcp/connections/{connection}/tools/{tool}/accept`).
   */
  toolPins(connection: string): ToolPinLedger | undefined {
    return this.pins.get(connection);
  }

  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    const server = this.server;
    const closed = server ? new Promise<void>((resolve) => server.close(() => resolve())) : Promise.resolve();
    await Promise.all([...this.sessions.values(), ...this.statelessSessions.values()].map((session) => this.endSession(session, 'gateway-shutdown')));
    await Promise.all([...this.upstreams.values()].map((upstream) => upstream.close().catch(() => undefined)));
    server?.closeAllConnections();
    await closed;
  }

  private metadataPath(connection: string): string {
    return `/.well-known/oauth-protected-resource/mcp/${connection}`;
  }

  private challenge(base: string, connection: string | undefined): string {
    const metadata = `${this.publicUrl}${connection === undefined ? '/.well-known/oauth-protected-resource' : this.metadataPath(connection)}`;
    return `${base}, resource_metadata="${metadata}"`;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://gateway');
    const path = url.pathname;
    if (path === '/.well-known/oauth-protected-resource' || path.startsWith('/.well-known/oauth-protected-resource/mcp/')) {
      this.metadata(path, res);
      return;
    }
    const match = /^\/mcp\/([A-Za-z0-9._-]{1,128})\/?$/.exec(path);
    if (!match) {
      plain(res, 404, 'not an MCP endpoint of this gateway: use /mcp/<connection>');
      return;
    }
    const connectionName = match[1]!;
    if (req.method === 'POST') await this.post(req, res, connectionName);
    else if (req.method === 'GET') await this.get(req, res, connectionName);
    else if (req.method === 'DELETE') await this.delete(req, res, connectionName);
    else {
      res.writeHead(405, { allow: 'GET, POST, DELETE' });
      res.end();
    }
  }

  private metadata(path: string, res: ServerResponse): void {
    const connection = path.startsWith('/.well-known/oauth-protected-resource/mcp/') ? path.slice('/.well-known/oauth-protected-resource/mcp/'.length) : undefined;
    const body = JSON.stringify({
      resource: connection === undefined ? this.publicUrl : this.endpoint(connection),
      authorization_servers: this.options.authorizationServers,
      bearer_methods_supported: ['header'],
      resource_name: connection === undefined ? 'Custodian MCP gateway' : `Custodian MCP gateway: ${connection}`,
    });
    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'max-age=300' });
    res.end(body);
  }

  private unauthorized(res: ServerResponse, connection: string, wwwAuthenticate: string, message: string): void {
    const body = jsonRpcError(null, JsonRpcErrorCode.InvalidRequest, message);
    res.writeHead(401, { 'www-authenticate': this.challenge(wwwAuthenticate, connection), 'content-type': 'application/json' });
    res.end(body);
  }

  private async readBody(req: IncomingMessage): Promise<string> {
    const declared = Number(req.headers['content-length'] ?? '0');
    if (declared > this.maxMessageBytes) throw new McpGatewayError('MESSAGE_TOO_LARGE', `the message exceeds ${this.maxMessageBytes} bytes`);
    const chunks: Buffer[] = [];
    let total = 0;
    for await (const chunk of req as AsyncIterable<Buffer>) {
      total += chunk.length;
      if (total > this.maxMessageBytes) throw new McpGatewayError('MESSAGE_TOO_LARGE', `the message exceeds ${this.maxMessageBytes} bytes`);
      chunks.push(chunk);
    }
    return Buffer.concat(chunks).toString('utf8');
  }

  /** The session a request names, checked against the presented token; answers the client itself when it cannot go on. */
  private async sessionFor(req: IncomingMessage, res: ServerResponse, connectionName: string): Promise<GatewaySession | undefined> {
    const header = req.headers.authorization;
    const token = header === undefined ? undefined : BEARER.exec(header)?.[1];
    if (token === undefined) {
      this.unauthorized(res, connectionName, this.authenticator.wwwAuthenticate, 'send Authorization: Bearer <access token>');
      return undefined;
    }
    const id = req.headers['mcp-session-id'];
    if (typeof id !== 'string' || id === '') {
      plainJson(res, 400, jsonRpcError(null, JsonRpcErrorCode.InvalidRequest, 'Bad Request: Mcp-Session-Id header is required'));
      return undefined;
    }
    const session = this.sessions.get(id);
    if (!session || session.connection.name !== connectionName) {
      plainJson(res, 404, jsonRpcError(null, JsonRpcErrorCode.InvalidRequest, 'Session not found: initialize a new session'));
      return undefined;
    }
    const digest = tokenDigestOf(token);
    if (!timingSafeEqual(digest, session.tokenDigest) || Date.now() >= session.tokenExpiresAt) {
      // Another (e.g. refreshed) token: verified again through the pipeline (a refusal is recorded as
      // authentication.failed; the connection is authorized again for the token's groups), and it
      // must be the same subject's.
      try {
        const { verified } = await this.options.pipeline.authenticate({
          protocol: 'mcp',
          presentedAs: 'bearer-header',
          connection: connectionName,
          connectionExists: true,
          token,
          clientAddress: `${req.socket.remoteAddress ?? 'unknown'}:${req.socket.remotePort ?? 0}`,
          signal: AbortSignal.timeout(30_000),
        });
        if (verified.identity.subject !== session.subject) {
          plainJson(res, 403, jsonRpcError(null, JsonRpcErrorCode.InvalidRequest, 'this session belongs to another identity'));
          return undefined;
        }
        session.tokenDigest = digest;
        session.tokenExpiresAt = verified.expiresAt.getTime();
      } catch (error) {
        if (error instanceof SessionRefusal) {
          if (error.code === 'AUTHENTICATION_FAILED') this.unauthorized(res, connectionName, `${this.authenticator.wwwAuthenticate}, error="invalid_token"`, error.message);
          else if (error.code === 'CONNECTION_NOT_PERMITTED') plainJson(res, 403, jsonRpcError(null, JsonRpcErrorCode.InvalidRequest, error.message));
          else plainJson(res, 503, jsonRpcError(null, JsonRpcErrorCode.InternalError, error.message));
          return undefined;
        }
        throw error;
      }
    }
    const version = req.headers['mcp-protocol-version'];
    const negotiated = session.bridge?.clientVersion ?? session.state.protocolVersion;
    if (typeof version === 'string' && negotiated !== undefined && version !== negotiated) {
      const body = jsonRpcError(null, JsonRpcErrorCode.InvalidRequest, `Bad Request: MCP-Protocol-Version ${version.slice(0, 40)} is not the version this session negotiated (${negotiated})`);
      session.pipeline.recordFrame('upstream-to-client', 'error:protocol-version', Buffer.from(body));
      plainJson(res, 400, body);
      return undefined;
    }
    this.touch(session);
    return session;
  }

  private touch(session: GatewaySession): void {
    if (session.idleTimer) clearTimeout(session.idleTimer);
    session.idleTimer = setTimeout(() => {
      // A session with a request or stream open (a held call, the GET stream) is not idle.
      if (session.inFlight.size > 0) this.touch(session);
      else void this.endSession(session, 'idle-timeout');
    }, this.idleTimeoutMs);
    session.idleTimer.unref();
  }

  private async post(req: IncomingMessage, res: ServerResponse, connectionName: string): Promise<void> {
    let body: string;
    try {
      body = await this.readBody(req);
    } catch (error) {
      if (error instanceof McpGatewayError) {
        plainJson(res, 413, jsonRpcError(null, JsonRpcErrorCode.InvalidRequest, error.message));
        req.resume();
        return;
      }
      throw error;
    }
    let message: JsonRpcMessage;
    try {
      message = parseJsonRpc(body);
    } catch (error) {
      if (!(error instanceof McpGatewayError)) throw error;
      // Authenticated or not, a message the gateway cannot classify goes nowhere.
      const code = error.message === 'the body is not JSON' ? JsonRpcErrorCode.ParseError : JsonRpcErrorCode.InvalidRequest;
      plainJson(res, 400, jsonRpcError(null, code, error.message));
      return;
    }
    if (message.kind === 'request' && message.method === 'initialize' && req.headers['mcp-session-id'] === undefined) {
      await this.initialize(req, res, connectionName, message, body);
      return;
    }
    const versionHeader = req.headers['mcp-protocol-version'];
    if (message.kind !== 'response' && req.headers['mcp-session-id'] === undefined && isStatelessMessage(message.params, typeof versionHeader === 'string' ? versionHeader : undefined)) {
      await this.stateless(req, res, connectionName, message, body);
      return;
    }
    const session = await this.sessionFor(req, res, connectionName);
    if (!session) return;
    session.pipeline.recordFrame('client-to-upstream', message.kind === 'response' ? 'response' : message.method.slice(0, 64), Buffer.from(body));
    if (session.bridge) {
      await this.bridged(session, req, res, message, body, session.bridge);
      return;
    }
    if (message.kind !== 'request') {
      await this.forwardOneWay(session, res, body);
      return;
    }
    await this.request(session, req, res, message, body);
  }

  private async initialize(req: IncomingMessage, res: ServerResponse, connectionName: string, message: Extract<JsonRpcMessage, { kind: 'request' }>, body: string): Promise<void> {
    const header = req.headers.authorization;
    let token = header === undefined ? undefined : BEARER.exec(header)?.[1];
    if (token === undefined) {
      this.unauthorized(res, connectionName, header === undefined ? this.authenticator.wwwAuthenticate : `${this.authenticator.wwwAuthenticate}, error="invalid_token"`, 'send Authorization: Bearer <access token>');
      return;
    }
    const connection = this.connections.get(connectionName);
    const clientAddress = `${req.socket.remoteAddress ?? 'unknown'}:${req.socket.remotePort ?? 0}`;
    let pipelineSession: PipelineSession;
    let expiresAt: number;
    const tokenDigest = tokenDigestOf(token);
    try {
      const authorized = await this.options.pipeline.authenticate({
        protocol: 'mcp',
        presentedAs: 'bearer-header',
        connection: connectionName,
        connectionExists: connection !== undefined,
        token,
        clientAddress,
        signal: AbortSignal.timeout(30_000),
      });
      token = undefined;
      expiresAt = authorized.verified.expiresAt.getTime();
      const clientInfo = isObject(message.params?.['clientInfo']) ? message.params['clientInfo'] : undefined;
      const application = typeof clientInfo?.['name'] === 'string' ? `${clientInfo['name']}${typeof clientInfo['version'] === 'string' ? `/${clientInfo['version']}` : ''}` : undefined;
      pipelineSession = await this.options.pipeline.openSession(authorized, { address: clientAddress, tls: this.options.tls !== undefined, ...(application ? { application } : {}) });
    } catch (error) {
      token = undefined;
      if (error instanceof SessionRefusal) {
        if (error.code === 'AUTHENTICATION_FAILED') this.unauthorized(res, connectionName, `${this.authenticator.wwwAuthenticate}, error="invalid_token"`, error.message);
        else if (error.code === 'CONNECTION_NOT_PERMITTED') plainJson(res, 403, jsonRpcError(message.id, JsonRpcErrorCode.InvalidRequest, error.message));
        else plainJson(res, 503, jsonRpcError(message.id, JsonRpcErrorCode.InternalError, error.message));
        return;
      }
      throw error;
    }
    if (!connection) {
      plainJson(res, 404, jsonRpcError(message.id, JsonRpcErrorCode.InvalidRequest, 'unknown connection'));
      await pipelineSession.close('error', 'CONNECTION_UNKNOWN');
      return;
    }
    const upstream = this.upstreams.get(connection.name)!;
    const session: GatewaySession = {
      id: randomBytes(24).toString('base64url'),
      statelessKey: undefined,
      connection,
      upstream,
      pipeline: pipelineSession,
      subject: pipelineSession.identity.subject,
      state: { sessionId: undefined, protocolVersion: undefined },
      tokenDigest,
      tokenExpiresAt: expiresAt,
      tools: new Map(),
      fingerprints: new Map(),
      toolsListed: false,
      bridge: undefined,
      inFlight: new Set(),
      idleTimer: undefined,
      closed: false,
    };
    pipelineSession.recordFrame('client-to-upstream', 'initialize', Buffer.from(body));
    const reply = new ClientReply(res, session, 'initialize');
    try {
      const secret = await upstream.readCredential();
      // The value goes to the custody scan only: every client-bound byte and event is checked for it.
      if (upstream.credentialRef !== undefined) pipelineSession.credentialInjected(upstream.credentialRef, 'command' in connection.upstream ? 'api-key' : 'bearer', secret);
      let answer = await upstream.post(session.state, body);
      // A stdio server answers a refused initialize with a JSON-RPC error on stdout, not an HTTP status.
      let refusedOverStdio = false;
      if ('command' in connection.upstream && answer.kind === 'messages') {
        const peeked = await peekFirst(answer.messages);
        refusedOverStdio = peeked.first !== undefined && isJsonRpcError(peeked.first);
        answer = { ...answer, messages: peeked.messages };
      }
      const refused = (answer.kind === 'error' && answer.status >= 400 && answer.status < 500) || refusedOverStdio;
      if (refused && (await upstream.era().catch(() => 'session' as const)) === 'stateless') {
        // The server speaks 2026-07-28 only: the gateway answers initialize from server/discover and
        // sends the session's requests to it statelessly.
        this.bridgeInitialize(session, reply, message);
        this.sessions.set(session.id, session);
        this.touch(session);
        this.logger.info({ sessionId: pipelineSession.id, connection: connection.name, subject: session.subject, version: session.bridge?.clientVersion, upstreamVersion: LATEST_MODERN_VERSION }, 'mcp session opened (bridged to a stateless upstream)');
        return;
      }
      if (answer.kind !== 'messages') throw new McpGatewayError('UPSTREAM_REFUSED', `the MCP server refused initialize (HTTP ${answer.status})`);
      session.state.sessionId = answer.sessionId;
      this.sessions.set(session.id, session);
      this.touch(session);
      await this.relay(session, reply, answer, undefined, (text) => {
        const parsed = safeParse(text);
        const version = isObject(parsed) && isObject(parsed['result']) ? parsed['result']['protocolVersion'] : undefined;
        if (typeof version === 'string') session.state.protocolVersion = version;
        return text;
      });
      if (session.state.protocolVersion !== undefined && !SUPPORTED_VERSIONS.has(session.state.protocolVersion)) this.logger.warn({ sessionId: pipelineSession.id, version: session.state.protocolVersion }, 'mcp upstream negotiated a protocol version this gateway does not know');
      this.logger.info({ sessionId: pipelineSession.id, connection: connection.name, subject: session.subject, version: session.state.protocolVersion }, 'mcp session opened');
    } catch (error) {
      const text = error instanceof Error ? error.message : String(error);
      this.logger.warn({ sessionId: pipelineSession.id, connection: connection.name, code: error instanceof McpGatewayError ? error.code : 'UPSTREAM_UNAVAILABLE' }, `mcp upstream initialize failed: ${text}`);
      if (!res.headersSent) {
        const bodyOut = jsonRpcError(message.id, JsonRpcErrorCode.InternalError, `Custodian could not open connection ${connection.name}: ${text}`);
        pipelineSession.recordFrame('upstream-to-client', 'error', Buffer.from(bodyOut));
        plainJson(res, 502, bodyOut);
      } else reply.end();
      this.sessions.delete(session.id);
      await pipelineSession.close('error', error instanceof McpGatewayError ? error.code : 'UPSTREAM_UNAVAILABLE');
    }
  }

  /** GET or DELETE of a stateless-era client (no session): the 2026-07-28 transport has neither. */
  private statelessWithoutSession(req: IncomingMessage, res: ServerResponse): boolean {
    const version = req.headers['mcp-protocol-version'];
    if (req.headers['mcp-session-id'] !== undefined || typeof version !== 'string' || !MODERN_PROTOCOL_VERSIONS.includes(version)) return false;
    res.writeHead(405, { allow: 'POST', 'content-type': 'application/json' });
    res.end(jsonRpcError(null, JsonRpcErrorCode.InvalidRequest, `MCP ${version} has no ${req.method} on the endpoint: POST each request`));
    return true;
  }

  /**
   * A stateless-era (2026-07-28) request or notification: authenticated on its own (the pipeline
   * session of the same access token is reused while the token is valid, so its evidence groups
   * together), checked against its routing headers, decided, forwarded to an upstream of the same
   * era. Toward an upstream of the session era it gets -32022 naming the versions that work, so a
   * dual-era client falls back to `initialize`.
   */
  private async stateless(req: IncomingMessage, res: ServerResponse, connectionName: string, message: Exclude<JsonRpcMessage, { kind: 'response' }>, body: string): Promise<void> {
    const header = req.headers.authorization;
    const token = header === undefined ? undefined : BEARER.exec(header)?.[1];
    if (token === undefined) {
      this.unauthorized(res, connectionName, this.authenticator.wwwAuthenticate, 'send Authorization: Bearer <access token>');
      return;
    }
    const session = await this.statelessSession(req, res, connectionName, token, message);
    if (!session) return;
    const id = message.kind === 'request' ? message.id : null;
    session.pipeline.recordFrame('client-to-upstream', message.method.slice(0, 64), Buffer.from(body));
    const envelope = checkStatelessMessage(message.method, message.params, req.rawHeaders, req.headers);
    if (isRejection(envelope)) {
      if (envelope.code === JsonRpcErrorCode.HeaderMismatch) {
        // Headers that disagree with the body are how a request slips past header-routing proxies: on record as a refusal.
        const decision = session.pipeline.gatewayBlock('mcp', HEADER_MISMATCH_RULE, envelope.message, `Custodian refused the request: ${envelope.message}.`);
        await session.pipeline
          .issue({ language: 'mcp', kind: 'mcp-tool', text: `${message.method} on ${session.connection.name}: ${envelope.message}`, summary: { server: session.connection.name, method: message.method }, decision })
          .catch(() => undefined);
      }
      this.refuseStateless(session, res, id, envelope);
      return;
    }
    let era: 'stateless' | 'session';
    try {
      era = await session.upstream.era();
    } catch (error) {
      await this.upstreamFailed(session, res, id ?? undefined, error);
      return;
    }
    if (era === 'session') {
      this.refuseStateless(session, res, id, {
        status: 400,
        code: JsonRpcErrorCode.UnsupportedProtocolVersion,
        message: `Unsupported protocol version: the MCP server behind ${session.connection.name} speaks the session era only (initialize, Mcp-Session-Id); use ${HANDSHAKE_PROTOCOL_VERSIONS[0]}`,
        data: { supported: [...HANDSHAKE_PROTOCOL_VERSIONS], requested: envelope.protocolVersion },
      });
      return;
    }
    // Mcp-Param-* headers mirror arguments; the upstream checks them against the body the gateway decided.
    const paramHeaders: Record<string, string> = {};
    for (const [name, value] of Object.entries(req.headers)) if (name.startsWith('mcp-param-') && typeof value === 'string') paramHeaders[name] = value;
    if (message.kind === 'notification') {
      await this.forwardOneWay(session, res, body, paramHeaders);
      return;
    }
    await this.request(session, req, res, message, body, paramHeaders);
  }

  private refuseStateless(session: GatewaySession, res: ServerResponse, id: JsonRpcId | null, rejection: StatelessRejection): void {
    const body = jsonRpcError(id, rejection.code, rejection.message, rejection.data);
    session.pipeline.recordFrame('upstream-to-client', 'error:stateless', Buffer.from(body));
    plainJson(res, rejection.status, body);
  }

  /** The pipeline session of a stateless-era client's access token on one connection (opened on first use). */
  private async statelessSession(req: IncomingMessage, res: ServerResponse, connectionName: string, token: string, message: Exclude<JsonRpcMessage, { kind: 'response' }>): Promise<GatewaySession | undefined> {
    const tokenDigest = tokenDigestOf(token);
    const key = `${connectionName}\n${tokenDigest.toString('hex')}`;
    const existing = this.statelessSessions.get(key);
    if (existing && !existing.closed && Date.now() < existing.tokenExpiresAt) {
      this.touch(existing);
      return existing;
    }
    if (existing) await this.endSession(existing, 'idle-timeout');
    const connection = this.connections.get(connectionName);
    const clientAddress = `${req.socket.remoteAddress ?? 'unknown'}:${req.socket.remotePort ?? 0}`;
    const id = message.kind === 'request' ? message.id : null;
    let pipelineSession: PipelineSession;
    let expiresAt: number;
    try {
      const authorized = await this.options.pipeline.authenticate({
        protocol: 'mcp',
        presentedAs: 'bearer-header',
        connection: connectionName,
        connectionExists: connection !== undefined,
        token,
        clientAddress,
        signal: AbortSignal.timeout(30_000),
      });
      expiresAt = authorized.verified.expiresAt.getTime();
      const meta = isObject(message.params?.['_meta']) ? message.params['_meta'] : undefined;
      const clientInfo = isObject(meta?.[CLIENT_INFO_META_KEY]) ? (meta[CLIENT_INFO_META_KEY] as Record<string, unknown>) : undefined;
      const application = typeof clientInfo?.['name'] === 'string' ? `${clientInfo['name']}${typeof clientInfo['version'] === 'string' ? `/${clientInfo['version']}` : ''}` : undefined;
      pipelineSession = await this.options.pipeline.openSession(authorized, { address: clientAddress, tls: this.options.tls !== undefined, ...(application ? { application } : {}) });
    } catch (error) {
      if (error instanceof SessionRefusal) {
        if (error.code === 'AUTHENTICATION_FAILED') this.unauthorized(res, connectionName, `${this.authenticator.wwwAuthenticate}, error="invalid_token"`, error.message);
        else if (error.code === 'CONNECTION_NOT_PERMITTED') plainJson(res, 403, jsonRpcError(id, JsonRpcErrorCode.InvalidRequest, error.message));
        else plainJson(res, 503, jsonRpcError(id, JsonRpcErrorCode.InternalError, error.message));
        return undefined;
      }
      throw error;
    }
    if (!connection) {
      plainJson(res, 404, jsonRpcError(id, JsonRpcErrorCode.InvalidRequest, 'unknown connection'));
      await pipelineSession.close('error', 'CONNECTION_UNKNOWN');
      return undefined;
    }
    const upstream = this.upstreams.get(connection.name)!;
    const session: GatewaySession = {
      id: randomBytes(24).toString('base64url'),
      statelessKey: key,
      connection,
      upstream,
      pipeline: pipelineSession,
      subject: pipelineSession.identity.subject,
      state: { sessionId: undefined, protocolVersion: LATEST_MODERN_VERSION },
      tokenDigest,
      tokenExpiresAt: expiresAt,
      tools: new Map(),
      fingerprints: new Map(),
      toolsListed: false,
      bridge: undefined,
      inFlight: new Set(),
      idleTimer: undefined,
      closed: false,
    };
    try {
      const secret = await upstream.readCredential();
      if (upstream.credentialRef !== undefined) pipelineSession.credentialInjected(upstream.credentialRef, 'command' in connection.upstream ? 'api-key' : 'bearer', secret);
    } catch (error) {
      plainJson(res, 502, jsonRpcError(id, JsonRpcErrorCode.InternalError, `Custodian could not read the credential of connection ${connection.name}`));
      await pipelineSession.close('error', error instanceof Error && 'code' in error && typeof error.code === 'string' ? error.code : 'CREDENTIAL_UNAVAILABLE');
      return undefined;
    }
    this.statelessSessions.set(key, session);
    this.touch(session);
    this.logger.info({ sessionId: pipelineSession.id, connection: connection.name, subject: session.subject, version: LATEST_MODERN_VERSION }, 'mcp stateless client seen');
    return session;
  }

  /** The InitializeResult of a bridged session, built from the upstream's `server/discover`. */
  private bridgeInitialize(session: GatewaySession, reply: ClientReply, message: Extract<JsonRpcMessage, { kind: 'request' }>): void {
    const discovered = session.upstream.discovery();
    if (!discovered) throw new McpGatewayError('UPSTREAM_REFUSED', 'the MCP server refused initialize and its server/discover result is unknown');
    const params = message.params ?? {};
    const requested = params['protocolVersion'];
    const clientVersion = typeof requested === 'string' && HANDSHAKE_PROTOCOL_VERSIONS.includes(requested) ? requested : HANDSHAKE_PROTOCOL_VERSIONS[0]!;
    session.bridge = { clientVersion, clientCapabilities: isObject(params['capabilities']) ? params['capabilities'] : {}, clientInfo: params['clientInfo'] };
    session.state.protocolVersion = LATEST_MODERN_VERSION;
    const meta = isObject(discovered['_meta']) ? discovered['_meta'] : {};
    const serverInfo = isObject(meta['io.modelcontextprotocol/serverInfo']) ? meta['io.modelcontextprotocol/serverInfo'] : { name: session.connection.name, version: '0' };
    const result = {
      protocolVersion: clientVersion,
      capabilities: isObject(discovered['capabilities']) ? discovered['capabilities'] : {},
      serverInfo,
      ...(typeof discovered['instructions'] === 'string' ? { instructions: discovered['instructions'] } : {}),
    };
    const masked = maskMessage(JSON.stringify({ jsonrpc: '2.0', id: message.id, result }), { policy: session.pipeline.masking, findings: new MaskingFindings(), conflict: this.conflict });
    reply.send(masked.ok ? masked.text : jsonRpcError(message.id, JsonRpcErrorCode.InternalError, `Custodian withheld the MCP server's description: ${masked.reason}`), 'initialize');
  }

  /**
   * A message of a session bridged to a stateless upstream: the handshake's leftovers are answered
   * here (`notifications/initialized`, `ping`, `logging/setLevel`), everything else goes upstream
   * with the session's `_meta` (protocol version 2026-07-28, the client's capabilities and info).
   */
  private async bridged(session: GatewaySession, req: IncomingMessage, res: ServerResponse, message: JsonRpcMessage, body: string, bridge: EraBridge): Promise<void> {
    if (message.kind === 'response' || (message.kind === 'notification' && message.method === 'notifications/initialized')) {
      res.writeHead(202, { 'mcp-session-id': session.id });
      res.end();
      return;
    }
    if (message.kind === 'request' && (message.method === 'ping' || message.method === 'logging/setLevel')) {
      new ClientReply(res, session, message.method).send(JSON.stringify({ jsonrpc: '2.0', id: message.id, result: {} }));
      return;
    }
    const parsed = JSON.parse(body) as Record<string, unknown>;
    const params = isObject(parsed['params']) ? parsed['params'] : {};
    const meta = isObject(params['_meta']) ? params['_meta'] : {};
    const forward = JSON.stringify({
      ...parsed,
      params: {
        ...params,
        _meta: { ...meta, [PROTOCOL_VERSION_META_KEY]: LATEST_MODERN_VERSION, [CLIENT_CAPABILITIES_META_KEY]: bridge.clientCapabilities, ...(bridge.clientInfo === undefined ? {} : { [CLIENT_INFO_META_KEY]: bridge.clientInfo }) },
      },
    });
    if (message.kind === 'notification') {
      await this.forwardOneWay(session, res, forward);
      return;
    }
    await this.request(session, req, res, message, forward);
  }

  /** A notification or a response to the upstream's request: forwarded, 202. */
  private async forwardOneWay(session: GatewaySession, res: ServerResponse, body: string, extraHeaders?: Readonly<Record<string, string>>): Promise<void> {
    try {
      const answer = await session.upstream.post(session.state, body, undefined, extraHeaders);
      if (answer.kind === 'messages') for await (const _ of answer.messages) void _;
      res.writeHead(202, session.statelessKey === undefined ? { 'mcp-session-id': session.id } : {});
      res.end();
    } catch (error) {
      await this.upstreamFailed(session, res, undefined, error);
    }
  }

  private async upstreamFailed(session: GatewaySession, res: ServerResponse, id: JsonRpcId | undefined, error: unknown): Promise<void> {
    if (error instanceof McpGatewayError && error.code === 'UPSTREAM_SESSION_EXPIRED' && session.statelessKey === undefined) {
      // The client must start over: the gateway's session ends with the upstream's.
      plainJson(res, 404, jsonRpcError(id ?? null, JsonRpcErrorCode.InvalidRequest, 'Session not found: the MCP server ended it; initialize a new session'));
      await this.endSession(session, 'upstream-closed');
      return;
    }
    const text = error instanceof Error ? error.message : String(error);
    const body = jsonRpcError(id ?? null, JsonRpcErrorCode.InternalError, `Custodian: ${text}`);
    if (!res.headersSent) {
      session.pipeline.recordFrame('upstream-to-client', 'error', Buffer.from(body));
      plainJson(res, 502, body);
    } else res.end();
  }

  private async request(session: GatewaySession, req: IncomingMessage, res: ServerResponse, message: Extract<JsonRpcMessage, { kind: 'request' }>, body: string, extraHeaders?: Readonly<Record<string, string>>): Promise<void> {
    const reply = new ClientReply(res, session, message.method.slice(0, 64));
    const controller = new AbortController();
    session.inFlight.add(controller);
    // The client going away (a reset, a closed stream) cancels a pending approval and the upstream call.
    const onGone = (): void => {
      if (!res.writableEnded) controller.abort();
    };
    res.once('close', onGone);
    try {
      if (PLUMBING.has(message.method)) {
        await this.forwardRequest(session, reply, body, message, undefined, controller.signal, extraHeaders);
        return;
      }
      const { outcome, continuation } = await this.decide(session, reply, message, controller.signal);
      if (!outcome.forward) {
        // Strict mode: the refusal is on record before the client hears of it.
        if (this.options.pipeline.strict && outcome.code !== 'EVIDENCE_UNAVAILABLE') await session.pipeline.whenRecorded(2_000);
        reply.send(jsonRpcError(message.id, JsonRpcErrorCode.PolicyRefused, outcome.message, { code: outcome.code, ...(outcome.ruleId ? { ruleId: outcome.ruleId } : {}) }), 'error:refused');
        return;
      }
      if (controller.signal.aborted) return;
      await this.forwardRequest(session, reply, body, message, outcome.commandId, controller.signal, extraHeaders, continuation);
    } catch (error) {
      if (controller.signal.aborted) return;
      if (res.headersSent) {
        reply.send(jsonRpcError(message.id, JsonRpcErrorCode.InternalError, `Custodian: ${error instanceof Error ? error.message : String(error)}`), 'error');
      } else await this.upstreamFailed(session, res, message.id, error);
    } finally {
      reply.end();
      res.off('close', onGone);
      session.inFlight.delete(controller);
    }
  }

  /** The tools the upstream offers (asked by the gateway itself the first time a call needs annotations). */
  private async ensureTools(session: GatewaySession, signal: AbortSignal): Promise<void> {
    if (session.toolsListed) return;
    const modern = session.state.protocolVersion !== undefined && MODERN_PROTOCOL_VERSIONS.includes(session.state.protocolVersion);
    const params = !modern ? {} : { _meta: { [PROTOCOL_VERSION_META_KEY]: session.state.protocolVersion, [CLIENT_CAPABILITIES_META_KEY]: {}, [CLIENT_INFO_META_KEY]: { name: 'custodian-mcp-gateway', version: '1' } } };
    const body = JSON.stringify({ jsonrpc: '2.0', id: `custodian-tools-${randomBytes(6).toString('hex')}`, method: 'tools/list', params });
    session.pipeline.recordFrame('client-to-upstream', 'gateway:tools/list', Buffer.from(body));
    const answer = await session.upstream.post(session.state, body, signal);
    if (answer.kind !== 'messages') return;
    // Not client-bound: observed for annotations and pins only (the client never receives it).
    // Masked like the lists clients get, so that a definition has one fingerprint whichever path saw it.
    for await (const text of answer.messages) {
      const masked = maskMessage(text, { policy: session.pipeline.masking, findings: new MaskingFindings(), conflict: this.conflict });
      if (!masked.ok) continue;
      const parsed = safeParse(masked.text);
      if (isObject(parsed) && isObject(parsed['result'])) await this.observeTools(session, parsed['result']);
    }
  }

  private async decide(session: GatewaySession, reply: ClientReply, message: Extract<JsonRpcMessage, { kind: 'request' }>, signal: AbortSignal) {
    const params = message.params ?? {};
    const pipeline = session.pipeline;
    let tool: string | undefined;
    let args: unknown;
    let annotations: McpToolAnnotations | undefined;
    if (message.method === 'tools/call') {
      tool = typeof params['name'] === 'string' ? params['name'] : undefined;
      args = params['arguments'];
      await this.ensureTools(session, signal).catch(() => undefined);
      const definition = tool === undefined ? undefined : session.tools.get(tool);
      if (isObject(definition?.['annotations'])) annotations = definition['annotations'] as McpToolAnnotations;
    } else if (message.method === 'prompts/get') {
      tool = undefined;
      args = { name: params['name'], arguments: params['arguments'] };
    } else args = params;
    const maskedArgs = this.argumentsText(session, args);
    const text = `${message.method}${tool === undefined ? '' : ` ${tool}`} on ${session.connection.name} ${maskedArgs}`;
    let decision: PolicyDecision = decideMcp(pipeline.policy, pipeline.policyContext, {
      server: session.connection.name,
      method: message.method,
      ...(tool === undefined ? {} : { tool }),
      ...(args === undefined ? {} : { arguments: args }),
      ...(annotations ? { annotations } : {}),
    });
    const pinned = tool === undefined ? undefined : await this.pinCheck(session, tool);
    if (pinned) {
      decision = pipeline.gatewayBlock(
        'mcp',
        TOOL_CHANGED_RULE,
        pinned.kind === 'changed'
          ? `the definition of tool ${tool} changed since it was pinned (now ${pinned.fingerprint.slice(0, 16)}); blocked until a human accepts it`
          : `the definition of tool ${tool} could not be pinned (the event store did not answer); blocked`,
        pinned.kind === 'changed'
          ? `Tool ${tool} is blocked: its definition changed since it was first seen, and a human must accept the new definition.`
          : `Tool ${tool} is blocked: Custodian could not record its definition; try again later.`,
      );
    }
    // A 2026-07-28 retry of an approved call that answered input_required: the same identity, tool,
    // arguments, rule and policy version, carrying the requestState the gateway relayed, continues
    // the approved call (once, on any replica: the offer is in the event store) instead of asking
    // the approvers again. A replayed or forged requestState is refused; anything else is decided afresh.
    const argsDigest = (): string => createHash('sha256').update(canonicalJson(args ?? {})).digest('hex');
    const requestState = params['requestState'];
    const caller = { identity: pipeline.identity, sessionId: pipeline.id, connection: session.connection.name };
    let continued: ApprovedCall | undefined;
    if (decision.decision === 'require-approval' && tool !== undefined && typeof requestState === 'string') {
      const claim = await this.continuations.claim(caller, requestState, { tool, argumentsDigest: argsDigest(), ruleId: decision.ruleId ?? APPROVAL_RULE_FALLBACK, policy: decision.policy });
      if (claim.kind === 'continued') {
        continued = claim.call;
        const { approval: _approval, ...rest } = decision;
        decision = { ...rest, decision: 'allow', reason: `continues the call approved as command ${continued.approvedCommandId} (rule ${decision.ruleId ?? 'default'}): an input_required retry with the requestState relayed to this identity for the same tool and arguments` };
      } else if (claim.kind === 'refused') {
        decision = pipeline.gatewayBlock('mcp', claim.ruleId, claim.reason, claim.message);
        this.logger.warn({ sessionId: pipeline.id, connection: session.connection.name, tool, ruleId: claim.ruleId }, `mcp continuation refused: ${claim.reason}`);
      }
    }
    if (decision.decision === 'require-approval') reply.startStream(this.keepAliveMs);
    const outcome = await pipeline.issue({
      language: 'mcp',
      kind: 'mcp-tool',
      text,
      summary: { server: session.connection.name, method: message.method, ...(tool === undefined ? {} : { tool }), ...(annotations ? { annotations } : {}), ...(continued ? { continues: continued.approvedCommandId } : {}) },
      decision,
      signal,
    });
    let continuation: ApprovedCall | undefined;
    if (outcome.forward && tool !== undefined) {
      if (continued) continuation = continued;
      else if (outcome.via === 'approval' && outcome.approvalId !== undefined)
        continuation = { tool, argumentsDigest: argsDigest(), ruleId: decision.ruleId ?? APPROVAL_RULE_FALLBACK, policy: decision.policy, approvalId: outcome.approvalId, approvedCommandId: outcome.commandId };
    }
    return { outcome, continuation };
  }

  /** The arguments as approvers see them and the approval digest binds them: canonical JSON, masked where detectors or path rules say. */
  private argumentsText(session: GatewaySession, args: unknown): string {
    const canonical = canonicalJson(args ?? {});
    const masked = session.pipeline.masking.maskJsonText(canonical, { location: 'arguments' });
    return masked.outcome === 'masked' ? masked.text : masked.outcome === 'refused' ? masked.text : canonical;
  }

  /**
   * Whether a call to `tool` must be refused for its definition: a changed definition waits for a
   * human (for every session of the connection, whatever definition it saw), the definition this
   * session saw is not the pinned one, or it could not be pinned. An acceptance recorded meanwhile
   * (by the API) is read from the log before refusing.
   */
  private async pinCheck(session: GatewaySession, tool: string): Promise<{ readonly kind: 'changed' | 'unrecorded'; readonly fingerprint: string } | undefined> {
    const ledger = this.pins.get(session.connection.name)!;
    const definition = session.tools.get(tool);
    const current = definition === undefined ? undefined : (session.fingerprints.get(tool) ?? toolFingerprint(definition));
    const blocking = (pin: ToolPin | undefined): string | undefined => {
      if (pin === undefined) return undefined;
      if (pin.changed) return pin.changed.fingerprint;
      return current !== undefined && pin.fingerprint !== current ? current : undefined;
    };
    if (blocking(ledger.get(tool)) === undefined && (current === undefined || ledger.get(tool) !== undefined)) return undefined;
    try {
      if (current !== undefined && ledger.get(tool) === undefined) await ledger.observe(tool, current, this.observation(session, definition!));
      else await ledger.refresh();
    } catch (error) {
      this.logger.error({ sessionId: session.pipeline.id, connection: session.connection.name, tool, err: error instanceof Error ? error.message : String(error) }, 'mcp tool pins could not be read or recorded: the call is refused');
      return { kind: 'unrecorded', fingerprint: current ?? '' };
    }
    const fingerprint = blocking(ledger.get(tool));
    if (fingerprint === undefined) return undefined;
    // This session's view may be the stale one (accepted meanwhile): its next call lists tools again.
    if (!ledger.get(tool)?.changed) session.toolsListed = false;
    return { kind: 'changed', fingerprint };
  }

  private observation(session: GatewaySession, tool: Record<string, unknown>): { identity: PipelineSession['identity']; sessionId: string; description?: string } {
    const description = typeof tool['description'] === 'string' ? session.pipeline.masking.maskText(tool['description'].slice(0, 4096), 'tool-description') : undefined;
    return { identity: session.pipeline.identity, sessionId: session.pipeline.id, ...(description === undefined ? {} : { description }) };
  }

  private async observeTools(session: GatewaySession, result: Record<string, unknown>): Promise<Record<string, unknown>> {
    const tools = Array.isArray(result['tools']) ? result['tools'] : [];
    const pins = this.pins.get(session.connection.name)!;
    const policy = session.pipeline.policy;
    const kept: unknown[] = [];
    for (const tool of tools) {
      if (!isObject(tool) || typeof tool['name'] !== 'string') continue;
      const name = tool['name'];
      session.tools.set(name, tool);
      const fingerprint = toolFingerprint(tool);
      session.fingerprints.set(name, fingerprint);
      let check;
      try {
        // The cached verdict needs no event, so the (masked) description is only made when one is written.
        const pin = pins.get(name);
        check = pin && (pin.fingerprint === fingerprint || pin.changed?.fingerprint === fingerprint) ? await pins.observe(name, fingerprint, { identity: session.pipeline.identity }) : await pins.observe(name, fingerprint, this.observation(session, tool));
      } catch (error) {
        // A definition the gateway cannot pin is not shown (fail closed); calls to it are refused.
        this.logger.error({ sessionId: session.pipeline.id, connection: session.connection.name, tool: name, err: error instanceof Error ? error.message : String(error) }, 'mcp tool definition could not be pinned: hidden');
        continue;
      }
      if (check.status === 'changed') {
        if (check.newlyDetected) {
          const decision = session.pipeline.gatewayBlock('mcp', TOOL_CHANGED_RULE, `tool ${name} changed definition: ${check.previous} -> ${check.fingerprint}`, `Tool ${name} changed its definition; it is blocked until a human accepts it.`);
          // Also a refused command in the session, next to the tool-definition.changed event of the pins stream.
          void session.pipeline
            .issue({ language: 'mcp', kind: 'mcp-tool', text: `tool-definition-changed ${name} on ${session.connection.name} ${check.previous} -> ${check.fingerprint}`, summary: { server: session.connection.name, method: 'tools/list', tool: name }, decision })
            .catch(() => undefined);
          this.logger.warn({ sessionId: session.pipeline.id, connection: session.connection.name, tool: name, previous: check.previous, current: check.fingerprint }, 'mcp tool definition changed: blocked until accepted');
        }
        continue;
      }
      // A change waiting for a human hides the tool from every session, whichever definition it got.
      if (pins.get(name)?.changed) continue;
      // A tool a rule blocks whatever its arguments is not shown to this identity.
      const annotations = isObject(tool['annotations']) ? (tool['annotations'] as McpToolAnnotations) : undefined;
      const decision = decideMcp(policy, session.pipeline.policyContext, { server: session.connection.name, method: 'tools/call', tool: name, ...(annotations ? { annotations } : {}) });
      if (decision.decision === 'block' && decision.ruleId !== null) continue;
      kept.push(tool);
    }
    session.toolsListed = true;
    return { ...result, tools: kept };
  }

  /** Forwards a request and relays its response message(s), masked and recorded, to the client. */
  private async forwardRequest(
    session: GatewaySession,
    reply: ClientReply,
    body: string,
    message: Extract<JsonRpcMessage, { kind: 'request' }>,
    commandId: string | undefined,
    signal: AbortSignal,
    extraHeaders?: Readonly<Record<string, string>>,
    continuation?: ApprovedCall,
  ): Promise<void> {
    const answer = await session.upstream.post(session.state, body, signal, extraHeaders);
    if (answer.kind === 'accepted') {
      reply.send(jsonRpcError(message.id, JsonRpcErrorCode.InternalError, 'Custodian: the MCP server accepted the request without answering it'), 'error');
      return;
    }
    if (answer.kind === 'error') {
      reply.send(jsonRpcError(message.id, JsonRpcErrorCode.InternalError, `Custodian: the MCP server answered HTTP ${answer.status}`), 'error');
      return;
    }
    const tool = message.method === 'tools/call' && typeof message.params?.['name'] === 'string' ? session.tools.get(message.params['name']) : undefined;
    const transform = message.method === 'tools/list' ? (text: string) => this.filterToolList(session, text) : undefined;
    await this.relay(session, reply, answer, commandId, transform, tool?.['outputSchema'], message.id, continuation);
  }

  private async filterToolList(session: GatewaySession, text: string): Promise<string> {
    const parsed = safeParse(text);
    if (!isObject(parsed) || !isObject(parsed['result'])) return text;
    return JSON.stringify({ ...parsed, result: await this.observeTools(session, parsed['result']) });
  }

  /** Relays the upstream's messages for one request: masked, recorded, as JSON or as a stream like the upstream's. */
  private async relay(
    session: GatewaySession,
    reply: ClientReply,
    answer: Extract<UpstreamReply, { kind: 'messages' }>,
    commandId: string | undefined,
    transform?: (text: string) => string | Promise<string>,
    outputSchema?: unknown,
    requestId?: JsonRpcId,
    continuation?: ApprovedCall,
  ): Promise<void> {
    if (answer.stream) reply.startStream();
    const findings = new MaskingFindings();
    try {
      for await (const text of answer.messages) {
        if (reply.gone) break;
        const masked = maskMessage(text, { policy: session.pipeline.masking, findings, conflict: this.conflict, ...(outputSchema === undefined ? {} : { outputSchema }) });
        if (!masked.ok) {
          reply.send(jsonRpcError(requestId ?? null, JsonRpcErrorCode.InternalError, `Custodian withheld the MCP server's message: ${masked.reason}`), 'error:withheld');
          continue;
        }
        if (session.bridge && isInputRequired(masked.text)) {
          reply.send(
            jsonRpcError(requestId ?? null, JsonRpcErrorCode.InternalError, `Custodian: the MCP server asks the client for input (2026-07-28 input_required), which a ${session.bridge.clientVersion} client cannot be asked through the gateway; use a 2026-07-28 client`),
            'error:input-required',
          );
          continue;
        }
        const out = transform ? await transform(masked.text) : masked.text;
        // An approved call that needs the client's input: its retry (with this requestState) continues the approval.
        if (continuation && commandId !== undefined) {
          const state = inputRequiredState(out);
          if (state !== undefined) await this.offerContinuation(session, state, commandId, continuation);
        }
        // The server says its tools changed: the next call lists them again (and meets the pins).
        if (out.includes('notifications/tools/list_changed') && labelOf(out) === 'notifications/tools/list_changed') session.toolsListed = false;
        // A JSON answer keeps the upstream's status (the stateless era's errors carry 400/404), except
        // toward a bridged session-era client, for which a JSON-RPC error is a 200 body.
        reply.send(out, labelOf(out), answer.stream || session.bridge ? 200 : answer.status);
      }
    } finally {
      session.pipeline.recordMasked(commandId, findings);
    }
  }

  /**
   * Records, before the client sees the requestState, that its retry continues the approved call
   * (on any replica). Not recorded: the retry is held again like a new call (fail closed).
   */
  private async offerContinuation(session: GatewaySession, requestState: string, commandId: string, call: ApprovedCall): Promise<void> {
    try {
      await this.continuations.offer({ identity: session.pipeline.identity, sessionId: session.pipeline.id, connection: session.connection.name }, requestState, commandId, call);
    } catch (error) {
      this.logger.error({ sessionId: session.pipeline.id, connection: session.connection.name, tool: call.tool, err: error instanceof Error ? error.message : String(error) }, 'mcp continuation could not be recorded: the retry will be held for approval again');
    }
  }

  /** The GET stream: server-initiated messages, masked and recorded like responses. */
  private async get(req: IncomingMessage, res: ServerResponse, connectionName: string): Promise<void> {
    if (this.statelessWithoutSession(req, res)) return;
    const accept = req.headers.accept ?? '';
    const session = await this.sessionFor(req, res, connectionName);
    if (!session) return;
    if (session.bridge) {
      // A 2026-07-28 server has no GET stream; the SDK clients take 405 as "no stream".
      res.writeHead(405, { allow: 'POST, DELETE' });
      res.end();
      return;
    }
    if (!accept.includes('text/event-stream')) {
      plainJson(res, 406, jsonRpcError(null, JsonRpcErrorCode.InvalidRequest, 'Not Acceptable: the GET stream needs Accept: text/event-stream'));
      return;
    }
    const controller = new AbortController();
    session.inFlight.add(controller);
    res.once('close', () => controller.abort());
    try {
      const answer = await session.upstream.openStream(session.state, controller.signal);
      if (answer.kind !== 'messages') {
        res.writeHead(answer.status === 202 ? 405 : answer.status, { allow: 'POST, DELETE' });
        res.end();
        return;
      }
      const reply = new ClientReply(res, session, 'stream');
      reply.startStream();
      await this.relay(session, reply, { ...answer, stream: true }, undefined).catch(() => undefined);
      reply.end();
    } catch (error) {
      if (!controller.signal.aborted) await this.upstreamFailed(session, res, undefined, error);
    } finally {
      session.inFlight.delete(controller);
    }
  }

  private async delete(req: IncomingMessage, res: ServerResponse, connectionName: string): Promise<void> {
    if (this.statelessWithoutSession(req, res)) return;
    const session = await this.sessionFor(req, res, connectionName);
    if (!session) return;
    await this.endSession(session, 'client-closed');
    res.writeHead(200);
    res.end();
  }

  private async endSession(session: GatewaySession, reason: 'client-closed' | 'idle-timeout' | 'gateway-shutdown' | 'upstream-closed'): Promise<void> {
    if (session.closed) return;
    session.closed = true;
    if (session.statelessKey === undefined) this.sessions.delete(session.id);
    else if (this.statelessSessions.get(session.statelessKey) === session) this.statelessSessions.delete(session.statelessKey);
    if (session.idleTimer) clearTimeout(session.idleTimer);
    for (const controller of session.inFlight) controller.abort();
    await session.upstream.terminate(session.state);
    await session.pipeline.close(reason === 'idle-timeout' ? 'timeout' : reason === 'gateway-shutdown' ? 'shutdown' : reason);
  }
}

function safeParse(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** The `requestState` of an input_required result (2026-07-28), if the message is one. */
function inputRequiredState(text: string): string | undefined {
  const parsed = safeParse(text);
  if (!isObject(parsed) || !isObject(parsed['result']) || parsed['result']['resultType'] !== 'input_required') return undefined;
  const state = parsed['result']['requestState'];
  return typeof state === 'string' ? state : undefined;
}

function isJsonRpcError(text: string): boolean {
  const parsed = safeParse(text);
  return isObject(parsed) && 'error' in parsed && !('result' in parsed);
}

/** The first message of a stream, and the stream again from its start. */
async function peekFirst(messages: AsyncIterable<string>): Promise<{ readonly first: string | undefined; readonly messages: AsyncIterable<string> }> {
  const iterator = messages[Symbol.asyncIterator]();
  const head = await iterator.next();
  const rest = (async function* () {
    if (head.done) return;
    yield head.value;
    for (let next = await iterator.next(); !next.done; next = await iterator.next()) yield next.value;
  })();
  return { first: head.done ? undefined : head.value, messages: rest };
}

function isInputRequired(text: string): boolean {
  const parsed = safeParse(text);
  return isObject(parsed) && isObject(parsed['result']) && parsed['result']['resultType'] === 'input_required';
}

function labelOf(text: string): string {
  const parsed = safeParse(text);
  if (!isObject(parsed)) return 'message';
  if (typeof parsed['method'] === 'string') return parsed['method'].slice(0, 64);
  return 'error' in parsed ? 'error' : 'result';
}

function plain(res: ServerResponse, status: number, message: string): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8' });
  res.end(message);
}

function plainJson(res: ServerResponse, status: number, body: string): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(body);
}
