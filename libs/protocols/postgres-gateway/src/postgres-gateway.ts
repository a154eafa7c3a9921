// The PostgreSQL gateway: a TCP listener speaking the server side of the wire protocol. Per
// client: TLS on SSLRequest (required except on loopback unless configured), GSSENCRequest
// answered `N`, CancelRequest mapped to the upstream backend's key, then the password exchange
// where the password is an OIDC access token (cleartext inside TLS, as cloud IAM database
// authentication does). The session pipeline verifies it and checks the connection; the gateway
// then logs in upstream with the credential it holds and hands the two sockets to ProxySession.
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { isIP, createServer, type Server, type Socket } from 'node:net';
import { createSecureContext, type SecureContext, type TLSSocket } from 'node:tls';
import {
  FrontendType,
  PROTOCOL_VERSION_3_0,
  SSL_ACCEPTED,
  SSL_REFUSED,
  SqlState,
  WireProtocolError,
  decodePasswordMessage,
  decodeStartupPhaseMessage,
  encodeAuthenticationCleartextPassword,
  encodeAuthenticationOk,
  encodeBackendKeyData,
  encodeErrorResponse,
  encodeNegotiateProtocolVersion,
  encodeParameterStatus,
  encodeReadyForQuery,
  type StartupPhaseMessage,
} from '@custodian/postgres-wire';
import { acceptTls } from '@custodian/gateway-kit';
import { sqlLanguage } from '@custodian/policy-languages';
import { SessionRefusal, type PipelineSession } from '@custodian/session-pipeline';
import { CatalogResolver } from './catalog.js';
import { PostgresGatewayError } from './gateway-errors.js';
import { NO_LOGGER, type GatewayLogger, type PostgresConnection, type PostgresGatewayOptions } from './gateway-options.js';
import { ProxySession } from './proxy-session.js';
import { SocketClosedError, SocketFrameReader } from './socket-frame-reader.js';
import { cancelUpstream, connectUpstream } from './upstream-connection.js';

const DEFAULT_MAX_MESSAGE_BYTES = 16 * 1024 * 1024;

/** Startup parameters a client may pass through to the upstream session; everything else (options, replication, search_path tricks) stays out. */
const PASSTHROUGH_PARAMETERS = new Set(['application_name', 'datestyle', 'intervalstyle', 'timezone', 'extra_float_digits', 'lc_monetary', 'lc_numeric', 'lc_time', 'bytea_output']);

interface LiveSession {
  readonly secretKey: Buffer;
  readonly connection: PostgresConnection;
  readonly upstreamProcessId: number;
  readonly upstreamSecretKey: Buffer;
  readonly proxy: ProxySession;
  readonly session: PipelineSession;
}

function isLoopback(address: string | undefined): boolean {
  if (!address) return false;
  const plain = address.startsWith('::ffff:') ? address.slice(7) : address;
  return plain === '::1' || (isIP(plain) === 4 && plain.startsWith('127.'));
}

function clientAddressOf(socket: Socket): string {
  const address = socket.remoteAddress ?? 'unknown';
  return `${address}:${socket.remotePort ?? 0}`;
}

/** Ends a connection with a FATAL error the client can read. */
function refuseConnection(socket: Socket, code: string, message: string): void {
  if (socket.destroyed) return;
  socket.end(encodeErrorResponse({ severity: 'FATAL', code, message }));
  socket.destroySoon();
}

export class PostgresGateway {
  private server: Server | undefined;
  private readonly connections: ReadonlyMap<string, PostgresConnection>;
  private readonly catalogs = new Map<string, CatalogResolver>();
  private readonly live = new Map<number, LiveSession>();
  private readonly sockets = new Set<Socket>();
  private readonly secureContext: SecureContext | undefined;
  private readonly logger: GatewayLogger;
  private readonly maxMessageBytes: number;
  private nextProcessId = 1 + Math.floor(Math.random() * 1_000_000);
  private closing = false;
  private boundPort: number | undefined;

  constructor(private readonly options: PostgresGatewayOptions) {
    this.logger = options.logger ?? NO_LOGGER;
    this.maxMessageBytes = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
    const byName = new Map<string, PostgresConnection>();
    for (const connection of options.connections) {
      if (byName.has(connection.name)) throw new PostgresGatewayError('GATEWAY_CONFIG_INVALID', `connection ${connection.name} is configured twice`);
      byName.set(connection.name, connection);
      this.catalogs.set(connection.name, new CatalogResolver(connection.upstream, options.catalogTtlMs ?? 60_000, this.maxMessageBytes));
    }
    this.connections = byName;
    this.secureContext = options.tls ? createSecureContext({ cert: options.tls.cert, key: options.tls.key, minVersion: 'TLSv1.2' }) : undefined;
  }

  /** Loads the SQL parser (decisions are synchronous afterwards), then listens; resolves with the bound port. */
  async listen(): Promise<number> {
    await sqlLanguage.ready();
    const server = createServer({ noDelay: true }, (socket) => this.accept(socket));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.options.port, this.options.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    const address = server.address();
    this.boundPort = typeof address === 'object' && address ? address.port : this.options.port;
    return this.boundPort;
  }

  get port(): number {
    if (this.boundPort === undefined) throw new PostgresGatewayError('GATEWAY_CONFIG_INVALID', 'the gateway is not listening');
    return this.boundPort;
  }

  get host(): string {
    return this.options.host;
  }

  /** Bytes held by live sessions (socket queues, partial messages, unflushed output), summed. */
  get bufferedBytes(): number {
    let total = 0;
    for (const live of this.live.values()) for (const value of Object.values(live.proxy.bufferedBytes)) total += value;
    return total;
  }

  /** Sessions currently proxied. */
  get sessionCount(): number {
    return this.live.size;
  }

  /** Stops accepting, ends every session (clients get 57P01), closes catalog connections. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    const server = this.server;
    const closed = server ? new Promise<void>((resolve) => server.close(() => resolve())) : Promise.resolve();
    await Promise.all([...this.live.values()].map((live) => live.proxy.shutdown()));
    for (const socket of this.sockets) socket.destroy();
    for (const catalog of this.catalogs.values()) catalog.close();
    await closed;
  }

  private accept(socket: Socket): void {
    if (this.closing) {
      socket.destroy();
      return;
    }
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
    socket.on('error', () => undefined);
    void this.login(socket).catch((error: unknown) => {
      this.logger.error({ err: error instanceof Error ? error.message : String(error) }, 'postgres gateway: unexpected login failure');
      socket.destroy();
    });
  }

  private async login(raw: Socket): Promise<void> {
    const clientAddress = clientAddressOf(raw);
    const deadline = AbortSignal.timeout(this.options.startupTimeoutMs ?? 30_000);
    const pipeline = this.options.pipeline;
    let socket: Socket = raw;
    let tls = false;
    const reader = new SocketFrameReader(raw, { side: 'frontend', maxMessageBytes: this.maxMessageBytes, startup: true });
    let startup: Extract<StartupPhaseMessage, { kind: 'StartupMessage' }> | undefined;
    let claimedSubject: string | undefined = undefined;
    // What the client was sent before its session existed (SSL answer, password request): recorded
    // as the session's first frame, so the session's record and custody scan cover every byte.
    const beforeSession: Buffer[] = [];
    const sendBeforeSession = (bytes: Buffer): void => {
      beforeSession.push(bytes);
      socket.write(bytes);
    };
    const violation = async (code: string, message: string): Promise<void> => {
      await pipeline.recordProtocolViolation('postgres', clientAddress, code, message, claimedSubject);
      refuseConnection(socket, SqlState.ProtocolViolation, message);
    };
    try {
      while (!startup) {
        const message = decodeStartupPhaseMessage(await reader.next(deadline));
        switch (message.kind) {
          case 'SSLRequest': {
            if (tls || !this.secureContext) {
              sendBeforeSession(SSL_REFUSED);
              break;
            }
            const early = reader.detach();
            // Bytes sent after SSLRequest but before the handshake would bypass TLS (CVE-2021-23214 class).
            if (early.length > 0) {
              await violation('PROTOCOL_VIOLATION', 'data received after SSLRequest before the TLS handshake');
              return;
            }
            sendBeforeSession(SSL_ACCEPTED);
            socket = await this.upgrade(raw, deadline);
            tls = true;
            reader.reattach(socket);
            break;
          }
          case 'GSSENCRequest':
            sendBeforeSession(SSL_REFUSED);
            break;
          case 'CancelRequest':
            await this.cancel(message.processId, message.secretKey);
            socket.destroy();
            return;
          case 'StartupMessage':
            startup = message;
            break;
        }
      }
    } catch (error) {
      if (error instanceof WireProtocolError) await violation(error.code, error.message);
      else if (!(error instanceof SocketClosedError)) socket.destroy();
      return;
    }
    reader.framer.inStartupPhase = false;
    const parameters = startup.parameters;
    claimedSubject = parameters.get('user');
    const connectionName = parameters.get('database') ?? claimedSubject ?? '';
    const remote = raw.remoteAddress;
    const tlsRequired = this.options.requireTls === 'always' || (this.options.requireTls === 'non-loopback' && !isLoopback(remote));
    if (!tls && tlsRequired) {
      await pipeline.recordProtocolViolation('postgres', clientAddress, 'TLS_REQUIRED', 'client did not use TLS, which this gateway requires', claimedSubject);
      refuseConnection(socket, SqlState.InvalidAuthorizationSpecification, 'this Custodian gateway requires TLS: connect with sslmode=require (or verify-full)');
      return;
    }
    if (parameters.has('replication')) {
      refuseConnection(socket, SqlState.FeatureNotSupported, 'replication connections are not supported through the Custodian gateway');
      return;
    }
    // Newer minor versions and protocol extensions (_pq_.*) are declined: the gateway speaks 3.0.
    const extensions = [...parameters.keys()].filter((name) => name.startsWith('_pq_.'));
    if (startup.protocolVersion !== PROTOCOL_VERSION_3_0 || extensions.length > 0) sendBeforeSession(encodeNegotiateProtocolVersion(0, extensions));

    sendBeforeSession(encodeAuthenticationCleartextPassword());
    let token: string;
    try {
      const frame = await reader.next(deadline);
      if (frame.type !== FrontendType.Password) throw new WireProtocolError('WIRE_MALFORMED', 'expected a password message (the OIDC access token)');
      token = decodePasswordMessage(frame);
    } catch (error) {
      if (error instanceof WireProtocolError) await violation(error.code, error.message);
      else socket.destroy();
      return;
    }
    const connection = this.connections.get(connectionName);
    let session: PipelineSession;
    try {
      const authorized = await pipeline.authenticate({
        protocol: 'postgres',
        presentedAs: 'password',
        connection: connectionName,
        connectionExists: connection !== undefined,
        token,
        clientAddress,
        ...(claimedSubject === undefined ? {} : { claimedSubject }),
        signal: deadline,
      });
      token = '';
      session = await pipeline.openSession(authorized, { address: clientAddress, tls, ...(parameters.has('application_name') ? { application: parameters.get('application_name')! } : {}) });
    } catch (error) {
      token = '';
      if (error instanceof SessionRefusal) {
        const code = error.code === 'AUTHENTICATION_FAILED' ? SqlState.InvalidPassword : error.code === 'CONNECTION_NOT_PERMITTED' ? SqlState.InvalidAuthorizationSpecification : SqlState.ConnectionFailure;
        refuseConnection(socket, code, error.message);
        return;
      }
      throw error;
    }
    session.recordFrame('upstream-to-client', 'startup', Buffer.concat(beforeSession));
    beforeSession.length = 0;
    /** Ends the session with a FATAL the client reads, recorded like every client-bound byte. */
    const refuseSession = (code: string, message: string): void => {
      const fatal = encodeErrorResponse({ severity: 'FATAL', code, message });
      session.recordFrame('upstream-to-client', 'ErrorResponse', fatal);
      if (socket.destroyed) return;
      socket.end(fatal);
      socket.destroySoon();
    };
    if (!connection) {
      // authenticate() refuses unknown connections; this keeps the type checker and a future edit honest.
      refuseSession(SqlState.InvalidAuthorizationSpecification, 'unknown connection');
      await session.close('error', 'CONNECTION_UNKNOWN');
      return;
    }
    const upstreamParameters = new Map<string, string>();
    for (const [name, value] of parameters) if (PASSTHROUGH_PARAMETERS.has(name.toLowerCase())) upstreamParameters.set(name, value);
    let upstream;
    try {
      upstream = await connectUpstream(connection.upstream, upstreamParameters, this.maxMessageBytes);
    } catch (error) {
      const code = error instanceof PostgresGatewayError ? error.code : 'UPSTREAM_UNAVAILABLE';
      const message = error instanceof Error ? error.message : String(error);
      this.logger.warn({ sessionId: session.id, connection: connection.name, code }, `upstream login failed: ${message}`);
      refuseSession(SqlState.SqlclientUnableToEstablishSqlconnection, `Custodian could not open connection ${connection.name}: ${message}`);
      await session.close('error', code);
      return;
    }
    // The value goes to the custody scan only (every client-bound byte and event is checked for it).
    if (upstream.method) session.credentialInjected(connection.upstream.credentialRef, upstream.method, upstream.credential);
    if (socket.destroyed) {
      upstream.socket.destroy();
      await session.close('client-closed');
      return;
    }
    const processId = this.allocateProcessId();
    const secretKey = randomBytes(4);
    const greeting = [encodeAuthenticationOk()];
    for (const [name, value] of upstream.parameters) greeting.push(encodeParameterStatus(name, value));
    greeting.push(encodeBackendKeyData(processId, secretKey), encodeReadyForQuery(upstream.status));
    const greetingBytes = Buffer.concat(greeting);
    // Every client-bound byte is recorded (and scanned for the held credential), the greeting too.
    session.recordFrame('upstream-to-client', `AuthenticationOk,ParameterStatus*${upstream.parameters.size},BackendKeyData,ReadyForQuery`, greetingBytes);
    socket.write(greetingBytes);
    const leftover = reader.detach();
    const proxy = new ProxySession(socket, upstream, leftover, {
      session,
      connection,
      catalog: this.catalogs.get(connection.name)!,
      logger: this.logger,
      maxMessageBytes: this.maxMessageBytes,
      onEnded: () => this.live.delete(processId),
      cancelUpstream: () => cancelUpstream(connection.upstream, upstream.processId, upstream.secretKey),
    });
    this.live.set(processId, { secretKey, connection, upstreamProcessId: upstream.processId, upstreamSecretKey: upstream.secretKey, proxy, session });
    this.logger.info({ sessionId: session.id, connection: connection.name, subject: session.identity.subject, tls }, 'postgres session opened');
  }

  private allocateProcessId(): number {
    for (;;) {
      this.nextProcessId = this.nextProcessId >= 0x7fffffff ? 1 : this.nextProcessId + 1;
      if (!this.live.has(this.nextProcessId)) return this.nextProcessId;
    }
  }

  /** The TLS handshake after SSLRequest, within the startup deadline (which no longer applies once it is done). */
  private async upgrade(raw: Socket, deadline: AbortSignal): Promise<TLSSocket> {
    const secure = await acceptTls(raw, { secureContext: this.secureContext!, signal: deadline });
    secure.on('error', () => undefined);
    return secure;
  }

  /** A CancelRequest carries the key the gateway gave the client; the upstream gets its own key. */
  private async cancel(processId: number, secretKey: Buffer): Promise<void> {
    const live = this.live.get(processId);
    if (!live || live.secretKey.length !== secretKey.length || !timingSafeEqual(live.secretKey, secretKey)) return;
    live.session.recordFrame('client-to-upstream', 'CancelRequest', Buffer.alloc(0));
    live.proxy.cancelPendingCommand();
    await cancelUpstream(live.connection.upstream, live.upstreamProcessId, live.upstreamSecretKey).catch((error: unknown) => {
      this.logger.warn({ sessionId: live.session.id, err: error instanceof Error ? error.message : String(error) }, 'cancel could not be forwarded upstream');
    });
  }
}
