// Opening a connection to an upstream, the one way every protocol gateway does it: TCP, then
// optionally TLS (directly, or after a protocol's own upgrade request such as PostgreSQL's
// SSLRequest), all under one deadline and an optional abort signal, with typed errors. The
// server side (a gateway upgrading a client's socket) is here too, for the same reasons.
import { isIP, connect as tcpConnect, type Socket } from 'node:net';
import { TLSSocket, connect as tlsConnect, type SecureContext } from 'node:tls';

export type ConnectErrorCode =
  /** The deadline passed before the connection (or its TLS handshake) was up. */
  | 'CONNECT_TIMEOUT'
  /** The caller's signal aborted the attempt. */
  | 'CONNECT_ABORTED'
  /** Nothing listens there (ECONNREFUSED). */
  | 'CONNECT_REFUSED'
  /** Any other socket failure: name resolution, unreachable network, reset. */
  | 'CONNECT_FAILED'
  /** The peer's certificate did not verify (unknown CA, self-signed, wrong name, expired). */
  | 'TLS_VERIFICATION_FAILED'
  /** The TLS handshake failed for another reason (protocol, cipher, the peer hung up). */
  | 'TLS_HANDSHAKE_FAILED';

/**
 * Why a connection could not be opened. The message names the phase and the system's reason
 * code, never the address: adapters may show it to their clients, which need not learn where the
 * upstream is. `detail` is the OS or TLS code (ECONNREFUSED, DEPTH_ZERO_SELF_SIGNED_CERT, …).
 */
export class ConnectError extends Error {
  override readonly name = 'ConnectError';
  constructor(
    readonly code: ConnectErrorCode,
    message: string,
    readonly detail?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export interface TlsClientOptions {
  /** Verify the peer's certificate chain and name (false: encrypt only, as libpq's `require`). */
  readonly verify: boolean;
  /** PEM CA bundle to verify against; the system CAs when absent. */
  readonly ca?: string | Buffer;
  /** The name the certificate must carry and, unless it is an IP address, the SNI name (default: the host). */
  readonly serverName?: string;
  /** ALPN protocols to offer (e.g. `['h2', 'http/1.1']`). */
  readonly alpnProtocols?: readonly string[];
}

export interface DeadlineOptions {
  /** Longest the whole attempt may take (TCP and TLS together). */
  readonly timeoutMs?: number;
  /** Aborts the attempt (e.g. the client went away). */
  readonly signal?: AbortSignal;
}

export interface ConnectOptions extends DeadlineOptions {
  readonly host: string;
  readonly port: number;
  /** TLS from the first byte (HTTPS, LDAPS …); leave out for plain TCP or a protocol-level upgrade (see startTls). */
  readonly tls?: TlsClientOptions;
  /** Disable Nagle (default true: gateways forward small protocol messages). */
  readonly noDelay?: boolean;
}

/** One signal for a timeout and the caller's signal; undefined when there is neither. */
export function deadlineSignal(options: DeadlineOptions): AbortSignal | undefined {
  const signals = [options.timeoutMs !== undefined ? AbortSignal.timeout(options.timeoutMs) : undefined, options.signal].filter((s): s is AbortSignal => s !== undefined);
  if (signals.length === 0) return undefined;
  return signals.length === 1 ? signals[0] : AbortSignal.any(signals);
}

function abortError(signal: AbortSignal, phase: string): ConnectError {
  const reason: unknown = signal.reason;
  const timedOut = reason instanceof DOMException && reason.name === 'TimeoutError';
  return timedOut ? new ConnectError('CONNECT_TIMEOUT', `${phase} timed out`, 'ETIMEDOUT') : new ConnectError('CONNECT_ABORTED', `${phase} was aborted`, 'ABORT_ERR', { cause: reason });
}

/**
 * Settles a pending socket operation: `ready` resolves, an error or the signal rejects (and
 * destroys the socket). Listeners are removed once settled, so a deadline that passes later never
 * touches the socket the caller now owns.
 */
function settle<S extends Socket>(socket: S, readyEvent: string, signal: AbortSignal | undefined, phase: string, toError: (error: Error) => ConnectError): Promise<S> {
  return new Promise((resolve, reject) => {
    const cleanup = (): void => {
      socket.off('error', onError);
      socket.off(readyEvent, onReady);
      signal?.removeEventListener('abort', onAbort);
    };
    const fail = (error: ConnectError): void => {
      cleanup();
      socket.destroy();
      reject(error);
    };
    const onError = (error: Error): void => fail(toError(error));
    const onAbort = (): void => fail(abortError(signal!, phase));
    const onReady = (): void => {
      cleanup();
      resolve(socket);
    };
    if (signal?.aborted) {
      fail(abortError(signal, phase));
      return;
    }
    socket.once('error', onError);
    socket.once(readyEvent, onReady);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

function systemCode(error: Error): string | undefined {
  return (error as NodeJS.ErrnoException).code;
}

/** Certificate problems (OpenSSL verify codes and Node's name check), as opposed to handshake failures. */
const VERIFICATION_CODES = new Set([
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_REVOKED',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'CERT_SIGNATURE_FAILURE',
  'INVALID_CA',
  'HOSTNAME_MISMATCH',
]);

function tlsError(error: Error): ConnectError {
  const code = systemCode(error);
  if (code !== undefined && VERIFICATION_CODES.has(code)) return new ConnectError('TLS_VERIFICATION_FAILED', `TLS certificate verification failed (${code}): ${error.message}`, code, { cause: error });
  return new ConnectError('TLS_HANDSHAKE_FAILED', `TLS handshake failed: ${error.message}`, code, { cause: error });
}

/** Opens a TCP connection (no TLS). */
export function connectTcp(options: Omit<ConnectOptions, 'tls'>): Promise<Socket> {
  const signal = deadlineSignal(options);
  if (signal?.aborted) return Promise.reject(abortError(signal, 'connect'));
  const socket = tcpConnect({ host: options.host, port: options.port });
  socket.setNoDelay(options.noDelay ?? true);
  return settle(socket, 'connect', signal, 'connect', (error) => {
    const code = systemCode(error);
    return new ConnectError(code === 'ECONNREFUSED' ? 'CONNECT_REFUSED' : 'CONNECT_FAILED', `connect failed (${code ?? error.message})`, code, { cause: error });
  });
}

/**
 * Starts TLS as the client on a connected socket (after a protocol's own upgrade request, or
 * right after connecting). `host` is what was connected to: the default name to verify.
 */
export function startTls(socket: Socket, host: string, tls: TlsClientOptions, deadline: DeadlineOptions = {}): Promise<TLSSocket> {
  const signal = deadlineSignal(deadline);
  const name = tls.serverName ?? host;
  const secure = tlsConnect({
    socket,
    // SNI carries DNS names only.
    ...(isIP(name) === 0 ? { servername: name } : {}),
    // The name checked against the certificate (DNS name or IP address SAN).
    host: name,
    ...(tls.ca ? { ca: tls.ca } : {}),
    ...(tls.alpnProtocols ? { ALPNProtocols: [...tls.alpnProtocols] } : {}),
    rejectUnauthorized: tls.verify,
    minVersion: 'TLSv1.2',
  });
  return settle(secure, 'secureConnect', signal, 'TLS handshake', tlsError).catch((error: unknown) => {
    // The TLS wrapper may not own the plain socket: make sure a failed handshake leaves nothing open.
    socket.destroy();
    throw error;
  });
}

/** TCP, then TLS when asked, under one deadline. */
export async function connect(options: ConnectOptions): Promise<Socket> {
  const signal = deadlineSignal(options);
  const socket = await connectTcp({ host: options.host, port: options.port, ...(options.noDelay !== undefined ? { noDelay: options.noDelay } : {}), ...(signal ? { signal } : {}) });
  if (!options.tls) return socket;
  return startTls(socket, options.host, options.tls, signal ? { signal } : {});
}

export interface AcceptTlsOptions extends DeadlineOptions {
  readonly secureContext: SecureContext;
  /** Ask for a client certificate (default false). */
  readonly requestCert?: boolean;
  readonly alpnProtocols?: readonly string[];
}

/**
 * Upgrades a client's socket to TLS as the server (after the protocol's own request). Resolves
 * once the handshake is done; the deadline no longer applies to the socket after that. The
 * caller owns the socket's errors from then on and must listen for them.
 */
export function acceptTls(socket: Socket, options: AcceptTlsOptions): Promise<TLSSocket> {
  const signal = deadlineSignal(options);
  const secure = new TLSSocket(socket, {
    isServer: true,
    secureContext: options.secureContext,
    requestCert: options.requestCert ?? false,
    ...(options.alpnProtocols ? { ALPNProtocols: [...options.alpnProtocols] } : {}),
  });
  return settle(secure, 'secure', signal, 'TLS handshake', tlsError).catch((error: unknown) => {
    socket.destroy();
    throw error;
  });
}
