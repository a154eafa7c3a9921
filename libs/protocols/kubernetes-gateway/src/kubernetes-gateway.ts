// The Kubernetes gateway: an HTTPS server that looks like a Kubernetes API server to exec clients
// (`/clusters/<connection>/api/v1/namespaces/{ns}/pods/{pod}/exec` over WebSocket with
// v5/v4.channel.k8s.io). The agent's OIDC access token comes as `Authorization: Bearer` (the
// kubeconfig `token:`); the session pipeline verifies it and checks the connection. Every other
// API call is refused with a Status naming what is served; SPDY is refused naming the protocols.
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { isIP, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { NamePatternList } from '@custodian/policy';
import { shellLanguage } from '@custodian/policy-languages';
import { listenOn, SILENT_GATEWAY_LOGGER, type GatewayLogger } from '@custodian/gateway-kit';
import { SessionRefusal, type PipelineSession } from '@custodian/session-pipeline';
import { WebSocketServer, type WebSocket } from 'ws';
import { SUPPORTED_PROTOCOLS, chooseProtocol, httpStatusBody, type ChannelProtocol } from './channel-protocol.js';
import { ApiRequestError, parseExecRequest, routeOf, type ExecRequest } from './exec-request.js';
import { ExecSession } from './exec-session.js';
import { podForExecClients, readUpstreamPod } from './pod-read.js';
import { servePodLog } from './pod-log.js';
import { KubernetesGatewayError } from './gateway-errors.js';
import type { KubernetesCluster, KubernetesGatewayOptions } from './gateway-options.js';

const DEFAULT_MAX_MESSAGE_BYTES = 1024 * 1024;
const CLUSTER_PREFIX = /^\/clusters\/([^/]+)(\/.*)?$/;
const BEARER = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i;

/** The static discovery documents clients read first (kubectl); exec needs only the core v1 group. */
const DISCOVERY: Readonly<Record<string, unknown>> = {
  '/version': { major: '1', minor: '33', gitVersion: 'v1.33.0-custodian', platform: 'custodian/gateway' },
  '/api': { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [] },
  '/apis': { kind: 'APIGroupList', apiVersion: 'v1', groups: [] },
  '/api/v1': {
    kind: 'APIResourceList',
    groupVersion: 'v1',
    resources: [
      // kubectl exec reads the pod first (phase, containers): served as a projection (pod-read.ts).
      { name: 'pods', singularName: 'pod', namespaced: true, kind: 'Pod', verbs: ['get'], shortNames: ['po'] },
      { name: 'pods/exec', singularName: '', namespaced: true, kind: 'PodExecOptions', verbs: ['create', 'get'] },
    ],
  },
};

function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '::1' || (isIP(host) === 4 && host.startsWith('127.'));
}

function clientAddressOf(socket: Socket): string {
  return `${socket.remoteAddress ?? 'unknown'}:${socket.remotePort ?? 0}`;
}

interface Refusal {
  readonly status: number;
  readonly reason: string;
  readonly message: string;
  readonly headers?: Readonly<Record<string, string>>;
}

export class KubernetesGateway {
  private server: Server | undefined;
  private readonly clusters: ReadonlyMap<string, { readonly cluster: KubernetesCluster; readonly namespaces: NamePatternList }>;
  private readonly wss: WebSocketServer;
  private readonly logger: GatewayLogger;
  private readonly maxMessageBytes: number;
  private readonly live = new Set<ExecSession>();
  private readonly sockets = new Set<Duplex>();
  private closing = false;
  private boundPort: number | undefined;

  constructor(private readonly options: KubernetesGatewayOptions) {
    this.logger = options.logger ?? SILENT_GATEWAY_LOGGER;
    this.maxMessageBytes = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
    if (!options.tls && !isLoopbackHost(options.host)) throw new KubernetesGatewayError('GATEWAY_CONFIG_INVALID', `the Kubernetes gateway listens on ${options.host} without TLS: configure tls, or listen on a loopback address`);
    const byName = new Map<string, { cluster: KubernetesCluster; namespaces: NamePatternList }>();
    for (const cluster of options.clusters) {
      if (byName.has(cluster.name)) throw new KubernetesGatewayError('GATEWAY_CONFIG_INVALID', `cluster ${cluster.name} is configured twice`);
      if (!cluster.server.startsWith('https://')) throw new KubernetesGatewayError('GATEWAY_CONFIG_INVALID', `cluster ${cluster.name}: the API server must be an https:// URL`);
      byName.set(cluster.name, { cluster, namespaces: new NamePatternList(cluster.namespaces) });
    }
    this.clusters = byName;
    this.wss = new WebSocketServer({ noServer: true, maxPayload: this.maxMessageBytes, perMessageDeflate: false, handleProtocols: (offered) => chooseProtocol(offered) ?? false });
  }

  /** Loads the shell parser (decisions are synchronous afterwards), then listens; resolves with the bound port. */
  async listen(): Promise<number> {
    await shellLanguage.ready();
    const handler = (request: IncomingMessage, response: ServerResponse): void => void this.onRequest(request, response);
    const server = this.options.tls ? createHttpsServer({ cert: this.options.tls.cert, key: this.options.tls.key, minVersion: 'TLSv1.2' }, handler) : createHttpServer(handler);
    server.on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) => void this.onUpgrade(request, socket, head));
    server.on('connection', (socket: Socket) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
    });
    // A client whose TLS fails is dropped (the error is its, not ours).
    server.on('tlsClientError', (_error: Error, socket: Duplex) => socket.destroy());
    this.server = server;
    this.boundPort = await listenOn(server, this.options.port, this.options.host);
    return this.boundPort;
  }

  get port(): number {
    if (this.boundPort === undefined) throw new KubernetesGatewayError('GATEWAY_CONFIG_INVALID', 'the gateway is not listening');
    return this.boundPort;
  }

  get host(): string {
    return this.options.host;
  }

  /** Execs currently relayed. */
  get sessionCount(): number {
    return this.live.size;
  }

  /** Stops accepting, ends every exec (clients get a Status), closes connections. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    const server = this.server;
    const closed = server ? new Promise<void>((resolve) => server.close(() => resolve())) : Promise.resolve();
    await Promise.all([...this.live].map((exec) => exec.shutdown()));
    for (const socket of this.sockets) socket.destroy();
    this.wss.close();
    await closed;
  }

  /** Plain HTTP requests: discovery documents (after authentication); everything else refused by name. */
  private async onRequest(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const refuse = (refusal: Refusal): void => {
      response.writeHead(refusal.status, { 'content-type': 'application/json', ...refusal.headers });
      response.end(httpStatusBody(refusal.message, refusal.reason, refusal.status));
    };
    try {
      const target = this.target(request);
      if ('status' in target) return refuse(target);
      const { route } = target;
      if (route.kind === 'exec') {
        // Not a WebSocket upgrade: SPDY (`Upgrade: SPDY/3.1`) or a plain POST.
        return refuse(this.spdyRefusal(request));
      }
      const auth = await this.authenticate(request, target.cluster, undefined);
      if ('status' in auth) return refuse(auth);
      if (route.kind === 'discovery' && request.method === 'GET') {
        response.writeHead(200, { 'content-type': 'application/json' });
        response.end(JSON.stringify(DISCOVERY[route.path]));
        return;
      }
      if (route.kind === 'pod' && request.method === 'GET' && target.cluster && target.namespaces) {
        if (!target.namespaces.matches(route.namespace)) {
          return refuse({ status: 403, reason: 'Forbidden', message: `namespace ${route.namespace} is not allowed on cluster ${target.cluster.name} (allowed: ${target.cluster.namespaces.join(', ')})` });
        }
        const session = await auth.session({ address: clientAddressOf(request.socket), tls: this.options.tls !== undefined });
        return await this.servePod(session, target.cluster, route.namespace, route.pod, response);
      }
      if (route.kind === 'pod-subresource' && route.subresource === 'log' && request.method === 'GET' && target.cluster && target.namespaces) {
        if (!target.namespaces.matches(route.namespace)) {
          return refuse({ status: 403, reason: 'Forbidden', message: `namespace ${route.namespace} is not allowed on cluster ${target.cluster.name} (allowed: ${target.cluster.namespaces.join(', ')})` });
        }
        // Logs are decided by policy (refused unless a rule allows them), read with the held credential, masked and recorded.
        const session = await auth.session({ address: clientAddressOf(request.socket), tls: this.options.tls !== undefined });
        const abort = new AbortController();
        response.on('close', () => abort.abort());
        return await servePodLog(session, target.cluster, { namespace: route.namespace, pod: route.pod, query: target.query }, response, abort.signal);
      }
      return refuse(this.notServed(route.kind === 'pod-subresource' ? `pods/${route.subresource}` : route.kind === 'pod' ? `pods (${request.method ?? ''})` : route.kind === 'discovery' ? `${request.method ?? ''} ${route.path}` : 'this API path'));
    } catch (error) {
      this.logger.error({ err: error instanceof Error ? error.message : String(error) }, 'kubernetes gateway: request failed');
      if (!response.headersSent) refuse({ status: 500, reason: 'InternalError', message: 'the Custodian gateway failed to handle this request' });
      else response.destroy();
    }
  }

  private notServed(what: string): Refusal {
    return { status: 403, reason: 'Forbidden', message: `${what} is not served by the Custodian gateway: only pods/exec (WebSocket, ${SUPPORTED_PROTOCOLS.join(' or ')}), pod reads for it and pod logs (when policy allows them) are` };
  }

  /**
   * A pod GET, as a session of its own (opened, credential injected, both directions recorded,
   * closed with its custody statement): read upstream with the held credential, answered with the
   * projection exec clients need.
   */
  private async servePod(session: PipelineSession, cluster: KubernetesCluster, namespace: string, pod: string, response: ServerResponse): Promise<void> {
    const requestLine = `GET /api/v1/namespaces/${namespace}/pods/${pod}`;
    session.recordFrame('client-to-upstream', 'pod-get', Buffer.from(requestLine));
    const answer = (status: number, body: string): void => {
      const bytes = Buffer.from(body);
      session.recordFrame('upstream-to-client', status === 200 ? 'pod' : 'status', bytes);
      response.writeHead(status, { 'content-type': 'application/json' });
      response.end(bytes);
    };
    let upstream;
    try {
      upstream = await readUpstreamPod(cluster, namespace, pod, AbortSignal.timeout(30_000));
    } catch (error) {
      if (!(error instanceof KubernetesGatewayError)) {
        await session.close('error', 'POD_READ_FAILED');
        throw error;
      }
      this.logger.warn({ sessionId: session.id, cluster: cluster.name, namespace, pod, code: error.code }, `kubernetes pod read failed: ${error.message}`);
      answer(502, httpStatusBody(`Custodian could not read the pod: ${error.message}`, 'InternalError', 502));
      await session.close('error', error.code);
      return;
    }
    session.credentialInjected(cluster.credentialRef, upstream.method, upstream.secret);
    this.logger.info({ sessionId: session.id, cluster: cluster.name, namespace, pod, status: upstream.found ? 200 : upstream.status }, 'kubernetes pod read');
    if (upstream.found) answer(200, JSON.stringify(podForExecClients(upstream.pod)));
    else if (upstream.status === 404) answer(404, httpStatusBody(`pods "${pod}" not found`, 'NotFound', 404));
    else answer(502, httpStatusBody(`the API server of cluster ${cluster.name} refused the pod read (HTTP ${upstream.status})`, 'InternalError', 502));
    await session.close('upstream-closed');
  }

  private spdyRefusal(request: IncomingMessage): Refusal {
    const upgrade = request.headers.upgrade ?? 'none';
    return {
      status: 400,
      reason: 'BadRequest',
      message: `the Custodian gateway serves exec over WebSocket only, with subprotocol ${SUPPORTED_PROTOCOLS.join(' or ')} (this request asked for ${JSON.stringify(upgrade.slice(0, 40))}${request.headers['x-stream-protocol-version'] ? ', SPDY' : ''}); use a client that speaks WebSocket exec (kubectl ≥ 1.30, @kubernetes/client-node)`,
    };
  }

  /** The cluster (from `/clusters/<name>/…`) and the API route inside it. */
  private target(request: IncomingMessage): Refusal | { readonly name: string; readonly cluster: KubernetesCluster | undefined; readonly namespaces: NamePatternList | undefined; readonly route: ReturnType<typeof routeOf>; readonly query: URLSearchParams } {
    let url: URL;
    try {
      url = new URL(request.url ?? '/', 'http://gateway');
    } catch {
      return { status: 400, reason: 'BadRequest', message: 'the request URL does not parse' };
    }
    const match = CLUSTER_PREFIX.exec(url.pathname);
    if (!match) return { status: 404, reason: 'NotFound', message: 'use the cluster path as the server: https://<gateway>/clusters/<connection>' };
    let name: string;
    try {
      name = decodeURIComponent(match[1]!);
    } catch {
      return { status: 400, reason: 'BadRequest', message: 'the cluster name does not decode' };
    }
    const entry = this.clusters.get(name);
    return { name, cluster: entry?.cluster, namespaces: entry?.namespaces, route: routeOf(match[2] ?? '/'), query: url.searchParams };
  }

  /** The bearer token through the session pipeline (authentication.failed on refusal; the token is never kept). */
  private async authenticate(request: IncomingMessage, cluster: KubernetesCluster | undefined, name: string | undefined): Promise<Refusal | { readonly subject: string; readonly session: (client: { address: string; tls: boolean }) => Promise<PipelineSession> }> {
    const header = request.headers.authorization;
    const token = header === undefined ? undefined : BEARER.exec(header)?.[1];
    const clientAddress = clientAddressOf(request.socket);
    if (token === undefined) {
      await this.options.pipeline.recordProtocolViolation('kubernetes', clientAddress, header === undefined ? 'AUTHENTICATION_REQUIRED' : 'TOKEN_MALFORMED', header === undefined ? 'no Authorization header' : 'the Authorization header is not a bearer token');
      return { status: 401, reason: 'Unauthorized', message: 'send Authorization: Bearer <OIDC access token> (kubeconfig user token)', headers: { 'www-authenticate': 'Bearer realm="custodian"' } };
    }
    const connection = name ?? cluster?.name ?? '';
    try {
      const authorized = await this.options.pipeline.authenticate({
        protocol: 'kubernetes',
        presentedAs: 'bearer-header',
        connection,
        connectionExists: cluster !== undefined,
        token,
        clientAddress,
        signal: AbortSignal.timeout(30_000),
      });
      return { subject: authorized.identity.subject, session: (client) => this.options.pipeline.openSession(authorized, client) };
    } catch (error) {
      if (error instanceof SessionRefusal) {
        return error.code === 'AUTHENTICATION_FAILED'
          ? { status: 401, reason: 'Unauthorized', message: error.message, headers: { 'www-authenticate': 'Bearer realm="custodian", error="invalid_token"' } }
          : error.code === 'CONNECTION_NOT_PERMITTED'
            ? { status: 403, reason: 'Forbidden', message: error.message }
            : { status: 503, reason: 'ServiceUnavailable', message: error.message };
      }
      throw error;
    }
  }

  private async onUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    socket.on('error', () => undefined);
    const refuse = (refusal: Refusal): void => {
      if (socket.destroyed) return;
      const body = httpStatusBody(refusal.message, refusal.reason, refusal.status);
      const headers = Object.entries({ 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)), connection: 'close', ...refusal.headers })
        .map(([name, value]) => `${name}: ${value}\r\n`)
        .join('');
      socket.end(`HTTP/1.1 ${refusal.status} ${refusal.reason}\r\n${headers}\r\n${body}`);
    };
    try {
      if (this.closing) return refuse({ status: 503, reason: 'ServiceUnavailable', message: 'the Custodian gateway is shutting down' });
      const target = this.target(request);
      if ('status' in target) return refuse(target);
      const { route } = target;
      if (route.kind !== 'exec') {
        return refuse(this.notServed(route.kind === 'pod-subresource' ? `pods/${route.subresource}` : 'this API path'));
      }
      if ((request.headers.upgrade ?? '').toLowerCase() !== 'websocket') return refuse(this.spdyRefusal(request));
      const offered = (request.headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim()).filter((p) => p !== '');
      const protocol = chooseProtocol(offered);
      if (!protocol) {
        return refuse({
          status: 400,
          reason: 'BadRequest',
          message: `the Custodian gateway speaks ${SUPPORTED_PROTOCOLS.join(' and ')}; the client offered ${offered.length === 0 ? 'none' : offered.slice(0, 8).join(', ')}`,
        });
      }
      let exec: ExecRequest;
      try {
        exec = parseExecRequest(route.namespace, route.pod, target.query);
      } catch (error) {
        if (error instanceof ApiRequestError) return refuse({ status: 400, reason: 'BadRequest', message: error.message });
        throw error;
      }
      const auth = await this.authenticate(request, target.cluster, target.name);
      if ('status' in auth) return refuse(auth);
      const cluster = target.cluster!;
      const session = await auth.session({ address: clientAddressOf(request.socket), tls: this.options.tls !== undefined });
      if (socket.destroyed) {
        await session.close('client-closed');
        return;
      }
      this.wss.handleUpgrade(request, socket, head, (client) => void this.serve(client, session, cluster, exec, protocol, target.namespaces!.matches(exec.namespace)));
    } catch (error) {
      this.logger.error({ err: error instanceof Error ? error.message : String(error) }, 'kubernetes gateway: upgrade failed');
      refuse({ status: 500, reason: 'InternalError', message: 'the Custodian gateway failed to handle this request' });
    }
  }

  private async serve(client: WebSocket, session: PipelineSession, cluster: KubernetesCluster, request: ExecRequest, protocol: ChannelProtocol, namespaceAllowed: boolean): Promise<void> {
    const exec = new ExecSession(client, {
      session,
      cluster,
      request,
      protocol,
      namespaceAllowed,
      logger: this.logger,
      maxMessageBytes: this.maxMessageBytes,
      maxBufferedBytes: this.options.maxBufferedBytes ?? 1024 * 1024,
      maxHeldInputBytes: this.options.maxHeldInputBytes ?? 1024 * 1024,
      maskingIdleFlushMs: this.options.maskingIdleFlushMs ?? 100,
      unverifiableLines: this.options.unverifiableLines ?? 'agent-refuses',
    });
    this.live.add(exec);
    this.logger.info({ sessionId: session.id, cluster: cluster.name, namespace: request.namespace, pod: request.pod, container: request.container, protocol, subject: session.identity.subject }, 'kubernetes exec opened');
    try {
      await exec.run();
    } catch (error) {
      this.logger.error({ sessionId: session.id, err: error instanceof Error ? error.message : String(error) }, 'kubernetes exec failed');
      await exec.shutdown().catch(() => undefined);
    } finally {
      this.live.delete(exec);
      this.logger.info({ sessionId: session.id, exitCode: exec.reportedExitCode }, 'kubernetes exec ended');
    }
  }
}
