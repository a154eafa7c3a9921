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
import { acceptTls, listenOn } from '@custodian/gateway-kit';
import { sqlLanguage, sqlWritesPermitted } from '@custodian/policy-languages';
import { SessionRefusal, watchTokenActivity, type AuthorizedClient, type PipelineSession } from '@custodian/session-pipeline';
import { CatalogResolver } from './catalog.js';
import { PostgresGatewayError } from './gateway-errors.js';
import {
  DEFAULT_SESSION_LIMITS,
  NO_LOGGER,
  type GatewayLogger,
  type PostgresConnection,
  type PostgresGatewayOptions,
  type PostgresSessionLimits,
  type UpstreamTarget,
} from './gateway-options.js';
import { OffloadPool, type OffloadPoolStats } from './offload/offload-pool.js';
import { ProxySession } from './proxy-session.js';
import { SocketClosedError, SocketFrameReader } from './socket-frame-reader.js';
import { cancelUpstream, connectUpstream } from './upstream-connection.js';

const DEFAULT_MAX_MESSAGE_BYTES = 16 * 1024 * 1024;

/**
 * Startup parameters a client may set on its upstream session (lower-case names). Everything else
 * is refused with a FATAL naming it, never silently dropped: `options` (it could carry `-c` of any
 * setting), `search_path` (pinned by the gateway) and custom settings would change what the policy
 * decided about. `client_encoding` is pinned to UTF8 and accepted only as UTF8.
 */
export const ALLOWED_STARTUP_PARAMETERS: ReadonlySet<string> = new Set([
  'application_name',
  'datestyle',
  'intervalstyle',
  'timezone',
  'extra_float_digits',
  'lc_monetary',
  'lc_numeric',
  'lc_time',
  'bytea_output',
  'statement_timeout',
  'lock_timeout',
  'idle_in_transaction_session_timeout',
  'idle_session_timeout',
  // Which notices the client is sent (pgx and others set it at startup); it changes no result.
  'client_min_messages',
]);
/** Consumed by the gateway itself (or checked separately), never passed on. */
const GATEWAY_STARTUP_PARAMETERS = new Set(['user', 'database', 'client_encoding', 'fallback_application_name', 'replication']);
const UTF8_NAMES = new Set(['utf8', 'utf-8', 'unicode']);

/** The first startup parameter the gateway refuses, with why; undefined when all are acceptable. */
function refusedStartupParameter(parameters: ReadonlyMap<string, string>): { name: string; message: string } | undefined {
  for (const [name, value] of parameters) {
    const lower = name.toLowerCase();
    if (lower.startsWith('_pq_.')) continue;
    if (lower === 'client_encoding') {
      if (UTF8_NAMES.has(value.trim().toLowerCase())) continue;
      return { name, message: `startup parameter "client_encoding" = "${value.slice(0, 40)}" is not supported: the Custodian gateway speaks UTF8 only` };
    }
    if (GATEWAY_STARTUP_PARAMETERS.has(lower) || ALLOWED_STARTUP_PARAMETERS.has(lower)) continue;
    return {
      name,
      message: `startup parameter "${name.slice(0, 64)}" is not permitted through the Custodian gateway (allowed: ${[...ALLOWED_STARTUP_PARAMETERS].join(', ')}); set it with SET after connecting if the policy allows it`,
    };
  }
  return undefined;
}

/**
 * The search_path every session gets: the policy's schema for unqualified names, the temporary
 * schema last. pg_catalog is not named: PostgreSQL then searches it implicitly *before* the path
 * (so a function in the schema cannot shadow a built-in of the same signature), while unqualified
 * `CREATE` still targets the policy's schema (naming pg_catalog first would make it the creation
 * schema, and DDL would fail).
 */
export function pinnedSearchPath(schema: string): string {
  const quoted = /^[a-z_][a-z0-9_]*$/.test(schema) ? schema : `"${schema.replaceAll('"', '""')}"`;
  return `${quoted}, pg_temp`;
}

/**
 * The application_name of a session's upstream connection: `custodian/<session id>`, then `/` and the
 * client's own application_name cut to PostgreSQL's 63 bytes (whole characters; the prefix is never cut).
 */
export function sessionApplicationName(sessionId: string, clientApplication?: string): string {
  const prefix = `custodian/${sessionId}`;
  if (!clientApplication) return prefix;
  let name = `${prefix}/`;
  for (const character of clientApplication) {
    if (Buffer.byteLength(name + character) > 63) break;
    name += character;
  }
  return name;
}

/** The upstream login for an identity: the first role mapping that names its subject or one of its groups, else the connection's own. */
export function upstreamTargetFor(connection: PostgresConnection, subject: string, groups: readonly string[]): UpstreamTarget {
  const role = connection.roles?.find((mapping) => (mapping.subjects?.includes(subject) ?? false) || (mapping.groups?.some((group) => groups.includes(group)) ?? false));
  return role ? { ...connection.upstream, user: role.user, password: role.password, credentialRef: role.credentialRef } : connection.upstream;
}

/** Startup-phase errors PostgreSQL answers by closing without a word (bad length, truncated or malformed packet). */
const SILENT_STARTUP_ERRORS = new Set(['WIRE_INVALID_LENGTH', 'WIRE_MESSAGE_TOO_LARGE', 'WIRE_MALFORMED']);

interface LiveSession {
  readonly secretKey: Buffer;
  /** The upstream this session logged in to (its role's user, for a CancelRequest). */
  readonly target: UpstreamTarget;
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
  /** Live sessions by the process id the client was given: the upstream backend's own (two upstreams can share one). */
  private readonly live = new Map<number, LiveSession[]>();
  private readonly sockets = new Set<Socket>();
  private readonly secureContext: SecureContext | undefined;
  private readonly logger: GatewayLogger;
  private readonly maxMessageBytes: number;
  private readonly limits: PostgresSessionLimits;
  private readonly tokenExpirySkewMs: number;
  /** Worker threads for large statements and values, shared by every session (started on first use). */
  private readonly offload: OffloadPool;
  /** Connections not yet authenticated: in total and per client address (without port). */
  private unauthenticated = 0;
  private readonly unauthenticatedByAddress = new Map<string, number>();
  /** Sessions open (or logging in upstream) per identity subject and per connection name. */
  private readonly sessionsByIdentity = new Map<string, number>();
  private readonly sessionsByConnection = new Map<string, number>();
  private closing = false;
  private boundPort: number | undefined;

  constructor(private readonly options: PostgresGatewayOptions) {
    this.logger = options.logger ?? NO_LOGGER;
    this.maxMessageBytes = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
    this.limits = { ...DEFAULT_SESSION_LIMITS, ...options.limits };
    this.tokenExpirySkewMs = options.tokenExpirySkewMs ?? 30_000;
    this.offload = new OffloadPool(options.offload);
    const byName = new Map<string, PostgresConnection>();
    for (const connection of options.connections) {
      if (byName.has(connection.name)) throw new PostgresGatewayError('GATEWAY_CONFIG_INVALID', `connection ${connection.name} is configured twice`);
      byName.set(connection.name, connection);
      this.catalogs.set(connection.name, new CatalogResolver(connection.upstream, options.catalogTtlMs ?? 60_000, this.maxMessageBytes, options.catalogIdleMs, options.routineTtlMs));
    }
    this.connections = byName;
    this.secureContext = options.tls ? createSecureContext({ cert: options.tls.cert, key: options.tls.key, minVersion: 'TLSv1.2' }) : undefined;
  }

  /** Loads the SQL parser (decisions are synchronous afterwards), then listens; resolves with the bound port. */
  async listen(): Promise<number> {
    await sqlLanguage.ready();
    const server = createServer({ noDelay: true }, (socket) => this.accept(socket));
    this.server = server;
    this.boundPort = await listenOn(server, this.options.port, this.options.host);
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
    for (const live of this.liveSessions()) for (const value of Object.values(live.proxy.bufferedBytes)) total += value;
    return total;
  }

  /** Sessions currently proxied. */
  get sessionCount(): number {
    let count = 0;
    for (const list of this.live.values()) count += list.length;
    return count;
  }

  private *liveSessions(): Iterable<LiveSession> {
    for (const list of this.live.values()) yield* list;
  }

  /** Stops accepting, ends every session (clients get 57P01), closes catalog connections. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    const server = this.server;
    const closed = server ? new Promise<void>((resolve) => server.close(() => resolve())) : Promise.resolve();
    await Promise.all([...this.liveSessions()].map((live) => live.proxy.shutdown()));
    for (const socket of this.sockets) socket.destroy();
    for (const catalog of this.catalogs.values()) catalog.close();
    await this.offload.close();
    await closed;
  }

  /** What the worker threads for large statements and values did (completed, refused by reason). */
  get offloadStats(): OffloadPoolStats {
    return this.offload.stats;
  }

  private accept(socket: Socket): void {
    if (this.closing) {
      socket.destroy();
      return;
    }
    // Before authentication a connection costs a descriptor and a timer: bounded in total and per address.
    const address = socket.remoteAddress ?? 'unknown';
    const fromAddress = this.unauthenticatedByAddress.get(address) ?? 0;
    const { maxUnauthenticated, maxUnauthenticatedPerAddress } = this.limits;
    if ((maxUnauthenticated > 0 && this.unauthenticated >= maxUnauthenticated) || (maxUnauthenticatedPerAddress > 0 && fromAddress >= maxUnauthenticatedPerAddress)) {
      this.logger.warn({ address, unauthenticated: this.unauthenticated }, 'postgres gateway: too many connections not yet authenticated; refused');
      refuseConnection(socket, SqlState.TooManyConnections, 'too many connections are logging in to the Custodian gateway; try again');
      return;
    }
    this.unauthenticated += 1;
    this.unauthenticatedByAddress.set(address, fromAddress + 1);
    let counted = true;
    const authenticated = (): void => {
      if (!counted) return;
      counted = false;
      this.unauthenticated -= 1;
      const left = (this.unauthenticatedByAddress.get(address) ?? 1) - 1;
      if (left <= 0) this.unauthenticatedByAddress.delete(address);
      else this.unauthenticatedByAddress.set(address, left);
    };
    this.sockets.add(socket);
    socket.once('close', () => {
      this.sockets.delete(socket);
      authenticated();
    });
    socket.on('error', () => undefined);
    void this.login(socket, authenticated).catch((error: unknown) => {
      this.logger.error({ err: error instanceof Error ? error.message : String(error) }, 'postgres gateway: unexpected login failure');
      socket.destroy();
    });
  }

  /** Takes a session slot for the identity and the connection; false (nothing taken) when either is full. */
  private reserveSession(subject: string, connection: string): string | undefined {
    const byIdentity = this.sessionsByIdentity.get(subject) ?? 0;
    const byConnection = this.sessionsByConnection.get(connection) ?? 0;
    if (this.limits.maxSessionsPerIdentity > 0 && byIdentity >= this.limits.maxSessionsPerIdentity) {
      return `too many sessions for identity ${subject}: ${byIdentity} open, the limit is ${this.limits.maxSessionsPerIdentity}`;
    }
    if (this.limits.maxSessionsPerConnection > 0 && byConnection >= this.limits.maxSessionsPerConnection) {
      return `too many sessions on connection ${connection}: ${byConnection} open, the limit is ${this.limits.maxSessionsPerConnection}`;
    }
    this.sessionsByIdentity.set(subject, byIdentity + 1);
    this.sessionsByConnection.set(connection, byConnection + 1);
    return undefined;
  }

  private releaseSession(subject: string, connection: string): void {
    for (const [map, key] of [
      [this.sessionsByIdentity, subject],
      [this.sessionsByConnection, connection],
    ] as const) {
      const left = (map.get(key) ?? 1) - 1;
      if (left <= 0) map.delete(key);
      else map.set(key, left);
    }
  }

  private async login(raw: Socket, authenticated: () => void): Promise<void> {
    const clientAddress = clientAddressOf(raw);
    const deadline = AbortSignal.timeout(this.options.startupTimeoutMs ?? 10_000);
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
      if (error instanceof WireProtocolError && SILENT_STARTUP_ERRORS.has(error.code)) {
        // As PostgreSQL does for an invalid startup packet: recorded, then closed without a reply.
        await pipeline.recordProtocolViolation('postgres', clientAddress, error.code, error.message, claimedSubject);
        socket.destroy();
      } else if (error instanceof WireProtocolError) await violation(error.code, error.message);
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
    const refusedParameter = refusedStartupParameter(parameters);
    if (refusedParameter) {
      await pipeline.recordProtocolViolation('postgres', clientAddress, 'STARTUP_PARAMETER_REFUSED', refusedParameter.message, claimedSubject);
      refuseConnection(socket, SqlState.InsufficientPrivilege, refusedParameter.message);
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
    let tokenExpiresAt: Date;
    let authorizedClient: AuthorizedClient;
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
      authorizedClient = authorized;
      tokenExpiresAt = authorized.verified.expiresAt;
      authenticated();
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
    const subject = session.identity.subject;
    const overLimit = this.reserveSession(subject, connection.name);
    if (overLimit) {
      this.logger.warn({ sessionId: session.id, connection: connection.name, subject }, `postgres session refused: ${overLimit}`);
      refuseSession(SqlState.TooManyConnections, `${overLimit} (a Custodian gateway limit); close other sessions first`);
      await session.close('error', 'SESSION_LIMIT_EXCEEDED');
      return;
    }
    const release = (): void => this.releaseSession(subject, connection.name);
    const upstreamParameters = new Map<string, string>();
    for (const [name, value] of parameters) if (ALLOWED_STARTUP_PARAMETERS.has(name.toLowerCase()) && name.toLowerCase() !== 'application_name') upstreamParameters.set(name, value);
    // The upstream session is named by the gateway, so pg_stat_activity and the server's logs tie it
    // to the recorded session: custodian/<session id>, then the client's own name as far as it fits
    // (it is recorded whole with the session, in session.opened). SET/RESET of it are refused
    // (guarded flag set-application-name), so the name cannot be changed or taken later.
    const clientApplication = parameters.get('application_name') ?? parameters.get('fallback_application_name');
    upstreamParameters.set('application_name', sessionApplicationName(session.id, clientApplication));
    // Defence in depth (issue 19 §2), set at login where the client cannot change it (SET, RESET and
    // set_config of these are refused by the classifier): unqualified names resolve where the policy
    // matched them (pg_catalog first, so a public function cannot shadow a built-in of the same
    // signature), and an identity no rule lets write gets a read-only session, so a write hidden
    // behind a read (a writing function in a view, an operator, an overload) fails in PostgreSQL.
    const policy = session.policy;
    const readOnly = !sqlWritesPermitted(policy, session.policyContext);
    const sqlSchema = policy.document.defaults?.sqlSchema ?? 'public';
    upstreamParameters.set('search_path', pinnedSearchPath(sqlSchema));
    if (readOnly) upstreamParameters.set('default_transaction_read_only', 'on');
    const target = upstreamTargetFor(connection, session.identity.subject, session.identity.groups);
    let upstream;
    try {
      upstream = await connectUpstream(target, upstreamParameters, this.maxMessageBytes);
    } catch (error) {
      const code = error instanceof PostgresGatewayError ? error.code : 'UPSTREAM_UNAVAILABLE';
      const message = error instanceof Error ? error.message : String(error);
      this.logger.warn({ sessionId: session.id, connection: connection.name, code }, `upstream login failed: ${message}`);
      refuseSession(SqlState.SqlclientUnableToEstablishSqlconnection, `Custodian could not open connection ${connection.name}: ${message}`);
      release();
      await session.close('error', code);
      return;
    }
    // The value goes to the custody scan only (every client-bound byte and event is checked for it).
    if (upstream.method) session.credentialInjected(target.credentialRef, upstream.method, upstream.credential);
    if (socket.destroyed) {
      upstream.socket.destroy();
      release();
      await session.close('client-closed');
      return;
    }
    // The client is told the upstream backend's real process id (so pg_backend_pid() and
    // pg_terminate_backend agree with it) and a secret key of the gateway's own: a CancelRequest
    // must come through the gateway, which holds the upstream's key.
    const processId = upstream.processId;
    const secretKey = randomBytes(4);
    const greeting = [encodeAuthenticationOk()];
    for (const [name, value] of upstream.parameters) greeting.push(encodeParameterStatus(name, value));
    greeting.push(encodeBackendKeyData(processId, secretKey), encodeReadyForQuery(upstream.status));
    const greetingBytes = Buffer.concat(greeting);
    // Every client-bound byte is recorded (and scanned for the held credential), the greeting too.
    session.recordFrame('upstream-to-client', `AuthenticationOk,ParameterStatus*${upstream.parameters.size},BackendKeyData,ReadyForQuery`, greetingBytes);
    socket.write(greetingBytes);
    const leftover = reader.detach();
    // An opaque token is asked about again periodically: revoked at the issuer (or the issuer
    // unreachable), the session ends. Started before the proxy so that its end always stops it;
    // the first check is an interval away, when `proxy` exists.
    const activity = watchTokenActivity(authorizedClient, (error) => void proxy.tokenInactive(error));
    const proxy = new ProxySession(socket, upstream, leftover, {
      session,
      connection,
      catalog: this.catalogs.get(connection.name)!,
      logger: this.logger,
      maxMessageBytes: this.maxMessageBytes,
      limits: this.limits,
      offload: this.offload,
      readOnly,
      searchSchemas: ['pg_catalog', sqlSchema],
      onEnded: () => {
        clearTimeout(expiry);
        activity.stop();
        this.forget(processId, secretKey);
        release();
      },
      cancelUpstream: () => cancelUpstream(target, upstream.processId, upstream.secretKey),
    });
    // The session lasts as long as its token (plus the allowed clock skew), not longer.
    const expiry = setTimeout(() => void proxy.tokenExpired(tokenExpiresAt), Math.min(Math.max(0, tokenExpiresAt.getTime() + this.tokenExpirySkewMs - Date.now()), 0x7fffffff));
    expiry.unref();
    const entry: LiveSession = { secretKey, target, upstreamProcessId: upstream.processId, upstreamSecretKey: upstream.secretKey, proxy, session };
    this.live.set(processId, [...(this.live.get(processId) ?? []), entry]);
    this.logger.info({ sessionId: session.id, connection: connection.name, subject: session.identity.subject, tls, readOnly }, 'postgres session opened');
  }

  private forget(processId: number, secretKey: Buffer): void {
    const rest = (this.live.get(processId) ?? []).filter((entry) => entry.secretKey !== secretKey);
    if (rest.length === 0) this.live.delete(processId);
    else this.live.set(processId, rest);
  }

  /** The TLS handshake after SSLRequest, within the startup deadline (which no longer applies once it is done). */
  private async upgrade(raw: Socket, deadline: AbortSignal): Promise<TLSSocket> {
    const secure = await acceptTls(raw, { secureContext: this.secureContext!, signal: deadline });
    secure.on('error', () => undefined);
    return secure;
  }

  /** A CancelRequest carries the key the gateway gave the client; the upstream gets its own key. */
  private async cancel(processId: number, secretKey: Buffer): Promise<void> {
    const live = (this.live.get(processId) ?? []).find((entry) => entry.secretKey.length === secretKey.length && timingSafeEqual(entry.secretKey, secretKey));
    if (!live) return;
    live.session.recordFrame('client-to-upstream', 'CancelRequest', Buffer.alloc(0));
    live.proxy.cancelPendingCommand();
    await cancelUpstream(live.target, live.upstreamProcessId, live.upstreamSecretKey).catch((error: unknown) => {
      this.logger.warn({ sessionId: live.session.id, err: error instanceof Error ? error.message : String(error) }, 'cancel could not be forwarded upstream');
    });
  }
}
