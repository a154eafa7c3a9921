// A demo stand-in for a password-protected PostgreSQL server. PGlite's socket server asks for no
// password, so a gateway in front of it never injects a credential and never signs a custody
// statement. This front listens on loopback, speaks the server side of the PostgreSQL login with
// SCRAM-SHA-256 (RFC 5802 / RFC 7677, as PostgreSQL does it: no channel binding without TLS, the
// user name inside the exchange ignored), and only after a verified proof replays the client's
// StartupMessage to PGlite and relays bytes both ways. PGlite answers that StartupMessage with
// AuthenticationOk, ParameterStatus…, BackendKeyData and ReadyForQuery: right after this front's
// SASLFinal, that is exactly the sequence a real server sends, so nothing has to be dropped.
// Like a real server it keeps only the SCRAM verifier (StoredKey, ServerKey), not the password.
// Not a general PostgreSQL server: one user, one password, no TLS, no cancel (PGlite has none).
import { createHash, createHmac, pbkdf2, randomBytes, timingSafeEqual } from 'node:crypto';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { promisify } from 'node:util';
import {
  FrontendType,
  MessageFramer,
  SSL_REFUSED,
  SqlState,
  WireProtocolError,
  decodeSaslInitialResponse,
  decodeStartupPhaseMessage,
  encodeAuthenticationSasl,
  encodeAuthenticationSaslContinue,
  encodeAuthenticationSaslFinal,
  encodeErrorResponse,
  type Frame,
} from '@custodian/postgres-wire';

const MECHANISM = 'SCRAM-SHA-256';
/** PostgreSQL's default `scram_iterations`. */
export const SCRAM_ITERATIONS = 4096;
/** PostgreSQL's `authentication_timeout` default: a client that stalls mid-login is dropped. */
const LOGIN_TIMEOUT_MS = 60_000;
/** Login messages are small; anything larger is refused at its header. */
const MAX_LOGIN_MESSAGE_BYTES = 4096;

const pbkdf2Async = promisify(pbkdf2);

export interface PasswordFrontOptions {
  /** Loopback address to listen on (default 127.0.0.1). */
  readonly host?: string;
  /** Port to listen on (default: any free port). */
  readonly port?: number;
  /** The one user that may log in. */
  readonly user: string;
  /** Its password (ASCII, so SASLprep leaves it as it is). */
  readonly password: string;
  /** Where PGlite's socket server listens (a Unix socket path), reached only after a login. */
  readonly upstreamPath: string;
}

export interface PasswordFront {
  readonly host: string;
  readonly port: number;
  stop(): Promise<void>;
}

interface ScramVerifier {
  readonly salt: Buffer;
  readonly storedKey: Buffer;
  readonly serverKey: Buffer;
}

function hmac(key: Buffer, text: string): Buffer {
  return createHmac('sha256', key).update(text, 'utf8').digest();
}

async function scramVerifier(password: string): Promise<ScramVerifier> {
  // A per-start random salt, as a server generates when the password is set.
  const salt = randomBytes(16);
  const salted = await pbkdf2Async(password, salt, SCRAM_ITERATIONS, 32, 'sha256');
  return { salt, storedKey: createHash('sha256').update(hmac(salted, 'Client Key')).digest(), serverKey: hmac(salted, 'Server Key') };
}

/** A malformed or unsupported SCRAM message: the login ends with 08P01, like PostgreSQL's. */
class ScramProtocolError extends Error {
  override readonly name = 'ScramProtocolError';
  readonly code = 'DEMO_SCRAM_PROTOCOL';
}

/** SCRAM attributes `k=value` in order; a value may contain '=' (base64) but not ','. */
function scramAttributes(text: string): [string, string][] {
  return text.split(',').map((part) => {
    if (part.length < 2 || part[1] !== '=') throw new ScramProtocolError(`malformed SCRAM attribute ${JSON.stringify(part.slice(0, 20))}`);
    return [part[0]!, part.slice(2)];
  });
}

/** One connection's login: the exchange's state between the client's messages. */
class ScramExchange {
  private gs2Header = '';
  private clientFirstBare = '';
  private serverFirst = '';
  private nonce = '';

  constructor(private readonly verifier: ScramVerifier) {}

  /** client-first-message → server-first-message. */
  first(data: Buffer): Buffer {
    const text = data.toString('utf8');
    // gs2-header: cbind-flag "," [authzid] ","; then client-first-message-bare.
    const first = text.indexOf(',');
    const second = first < 0 ? -1 : text.indexOf(',', first + 1);
    if (second < 0) throw new ScramProtocolError('malformed SCRAM client-first-message');
    const flag = text.slice(0, first);
    // "p=…" asks for channel binding, which needs TLS; this front has none and offers no -PLUS mechanism.
    if (flag !== 'n' && flag !== 'y') throw new ScramProtocolError('SCRAM channel binding is not supported without TLS');
    if (text.slice(first + 1, second) !== '') throw new ScramProtocolError('SCRAM authorization identities are not supported');
    this.gs2Header = text.slice(0, second + 1);
    this.clientFirstBare = text.slice(second + 1);
    const attributes = scramAttributes(this.clientFirstBare);
    // The user name inside SCRAM is ignored (PostgreSQL uses the StartupMessage's); the nonce follows it.
    if (attributes[0]?.[0] !== 'n' || attributes[1]?.[0] !== 'r') throw new ScramProtocolError('malformed SCRAM client-first-message');
    const clientNonce = attributes[1][1];
    if (clientNonce === '' || !/^[\x21-\x2b\x2d-\x7e]+$/.test(clientNonce)) throw new ScramProtocolError('invalid SCRAM client nonce');
    this.nonce = clientNonce + randomBytes(18).toString('base64');
    this.serverFirst = `r=${this.nonce},s=${this.verifier.salt.toString('base64')},i=${SCRAM_ITERATIONS}`;
    return Buffer.from(this.serverFirst, 'utf8');
  }

  /** client-final-message → the server-final-message, or undefined when the proof is wrong. */
  final(data: Buffer): Buffer | undefined {
    const text = data.toString('utf8');
    const proofAt = text.lastIndexOf(',p=');
    if (proofAt < 0) throw new ScramProtocolError('SCRAM client-final-message without a proof');
    const withoutProof = text.slice(0, proofAt);
    const attributes = scramAttributes(withoutProof);
    if (attributes[0]?.[0] !== 'c' || Buffer.from(attributes[0][1], 'base64').toString('utf8') !== this.gs2Header) throw new ScramProtocolError('SCRAM channel binding data does not match');
    if (attributes[1]?.[0] !== 'r' || attributes[1][1] !== this.nonce) throw new ScramProtocolError('SCRAM nonce does not match');
    const proof = Buffer.from(text.slice(proofAt + 3), 'base64');
    if (proof.length !== 32) throw new ScramProtocolError('malformed SCRAM client proof');
    const authMessage = `${this.clientFirstBare},${this.serverFirst},${withoutProof}`;
    const clientSignature = hmac(this.verifier.storedKey, authMessage);
    const clientKey = Buffer.alloc(32);
    for (let i = 0; i < 32; i++) clientKey[i] = proof[i]! ^ clientSignature[i]!;
    if (!timingSafeEqual(createHash('sha256').update(clientKey).digest(), this.verifier.storedKey)) return undefined;
    return Buffer.from(`v=${hmac(this.verifier.serverKey, authMessage).toString('base64')}`, 'utf8');
  }
}

function refuse(socket: Socket, code: string, message: string): void {
  socket.end(encodeErrorResponse({ severity: 'FATAL', code, message }));
}

/** Serves one client: the login, then (after a verified proof) a byte relay to PGlite. */
function serve(socket: Socket, options: PasswordFrontOptions, verifier: ScramVerifier, live: Set<Socket>): void {
  const framer = new MessageFramer({ side: 'frontend', maxMessageBytes: MAX_LOGIN_MESSAGE_BYTES });
  const scram = new ScramExchange(verifier);
  let startup: Frame | undefined;
  let user = '';
  let state: 'startup' | 'sasl-initial' | 'sasl-response' | 'done' = 'startup';
  socket.setTimeout(LOGIN_TIMEOUT_MS, () => socket.destroy());
  socket.on('error', () => socket.destroy());

  const finish = (): void => {
    state = 'done';
    socket.removeListener('data', onData);
  };

  const relay = (): void => {
    finish();
    // Held until PGlite's socket accepts: the client's next bytes follow its replayed StartupMessage.
    socket.pause();
    socket.setTimeout(0);
    const pending = framer.drain();
    const upstream = createConnection(options.upstreamPath);
    live.add(upstream);
    let connected = false;
    upstream.once('connect', () => {
      connected = true;
      upstream.write(startup!.raw);
      if (pending.length > 0) upstream.write(pending);
      socket.pipe(upstream);
      upstream.pipe(socket);
    });
    upstream.on('error', () => {
      if (connected) socket.destroy();
      else refuse(socket, SqlState.ConnectionFailure, 'the demo database (PGlite) is not reachable');
    });
    upstream.once('close', () => {
      live.delete(upstream);
      socket.end();
    });
    socket.once('close', () => upstream.destroy());
  };

  const onFrame = (frame: Frame): void => {
    if (state === 'startup') {
      const message = decodeStartupPhaseMessage(frame);
      switch (message.kind) {
        case 'SSLRequest':
        case 'GSSENCRequest':
          socket.write(SSL_REFUSED);
          return;
        case 'CancelRequest':
          // PGlite cannot cancel a statement; a server closes a cancel connection without an answer.
          finish();
          socket.end();
          return;
        case 'StartupMessage':
          startup = frame;
          user = message.parameters.get('user') ?? '';
          framer.inStartupPhase = false;
          state = 'sasl-initial';
          socket.write(encodeAuthenticationSasl([MECHANISM]));
          return;
      }
    }
    if (frame.type === FrontendType.Terminate) {
      finish();
      socket.end();
      return;
    }
    if (frame.type !== FrontendType.Password) throw new ScramProtocolError('expected a SASL response');
    if (state === 'sasl-initial') {
      const initial = decodeSaslInitialResponse(frame);
      if (initial.mechanism !== MECHANISM || initial.data === null) throw new ScramProtocolError(`SASL mechanism ${JSON.stringify(initial.mechanism.slice(0, 40))} is not offered`);
      socket.write(encodeAuthenticationSaslContinue(scram.first(initial.data)));
      state = 'sasl-response';
      return;
    }
    const serverFinal = scram.final(frame.body);
    // A real server refuses an unknown user the same way, after the exchange, naming the user.
    if (serverFinal === undefined || user !== options.user) {
      finish();
      refuse(socket, SqlState.InvalidPassword, `password authentication failed for user "${user}"`);
      return;
    }
    socket.write(encodeAuthenticationSaslFinal(serverFinal));
    relay();
  };

  function onData(chunk: Buffer): void {
    framer.push(chunk);
    try {
      while (state !== 'done') {
        const frame = framer.next();
        if (!frame) break;
        onFrame(frame);
      }
    } catch (error) {
      if (!(error instanceof ScramProtocolError || error instanceof WireProtocolError)) throw error;
      finish();
      refuse(socket, SqlState.ProtocolViolation, error.message);
    }
  }
  socket.on('data', onData);
}

/** Starts the front; PGlite's socket server must already listen on `upstreamPath`. */
export async function startPasswordFront(options: PasswordFrontOptions): Promise<PasswordFront> {
  const host = options.host ?? '127.0.0.1';
  const verifier = await scramVerifier(options.password);
  const live = new Set<Socket>();
  const server: Server = createServer((socket) => {
    live.add(socket);
    socket.once('close', () => live.delete(socket));
    serve(socket, options, verifier, live);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => {
      server.removeListener('error', reject);
      resolve();
    });
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    host,
    port,
    stop: async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const socket of live) socket.destroy();
      await closed;
    },
  };
}
