// Logging in to the target database with the credential the gateway holds: TCP, optional TLS
// (SSLRequest, then verify the certificate against the configured CA and name), StartupMessage
// with the gateway's user and database, then SCRAM-SHA-256, md5 or (over TLS only) cleartext.
// The client never sees any of it: it only gets the server's parameters afterwards.
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { ConnectError, connectTcp, startTls } from '@custodian/gateway-kit';
import {
  BackendType,
  decodeAuthentication,
  decodeBackendKeyData,
  decodeNoticeFields,
  decodeParameterStatus,
  decodeReadyForQuery,
  encodeCancelRequest,
  encodePasswordMessage,
  encodeSaslInitialResponse,
  encodeSaslResponse,
  encodeSslRequest,
  encodeStartupMessage,
  type TransactionStatus,
} from '@custodian/postgres-wire';
import type { CredentialInjected } from '@custodian/event-contracts';
import { PostgresGatewayError } from './gateway-errors.js';
import type { UpstreamTarget } from './gateway-options.js';
import { ScramSha256Client, md5PasswordResponse } from './scram-client.js';
import { SocketFrameReader } from './socket-frame-reader.js';

export interface UpstreamConnection {
  readonly socket: Socket;
  readonly tls: boolean;
  /** ParameterStatus values, in the order received (server_version, client_encoding, …). */
  readonly parameters: ReadonlyMap<string, string>;
  readonly processId: number;
  readonly secretKey: Buffer;
  readonly status: TransactionStatus;
  /** How the held credential was presented; undefined when the server asked for none. */
  readonly method: CredentialInjected['method'] | undefined;
  /** The credential value used, for the session's custody scan only (never logged or recorded); undefined when none was sent. */
  readonly credential: string | undefined;
  /** Bytes that arrived after ReadyForQuery (the proxy reads them first). */
  readonly leftover: Buffer;
}

const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;

async function openSocket(target: UpstreamTarget, signal: AbortSignal): Promise<Socket> {
  try {
    return await connectTcp({ host: target.host, port: target.port, signal });
  } catch (error) {
    // The client sees this message: the reason code, never the upstream's address.
    const reason = error instanceof ConnectError ? (error.code === 'CONNECT_TIMEOUT' ? 'connect timeout' : (error.detail ?? error.message)) : String(error);
    throw new PostgresGatewayError('UPSTREAM_UNAVAILABLE', `cannot connect to the upstream database (${reason})`, { cause: error });
  }
}

async function negotiateTls(socket: Socket, target: UpstreamTarget, signal: AbortSignal): Promise<TLSSocket | undefined> {
  if (target.tls.mode === 'disable') return undefined;
  socket.write(encodeSslRequest());
  const reader = new SocketFrameReader(socket, { side: 'backend', maxMessageBytes: 1024 });
  const answer = await reader.byte(signal);
  const rest = reader.detach();
  if (answer !== 0x53) {
    socket.destroy();
    throw new PostgresGatewayError('UPSTREAM_TLS_REQUIRED', 'the upstream database does not accept TLS, which this connection requires');
  }
  if (rest.length > 0) {
    socket.destroy();
    throw new PostgresGatewayError('UPSTREAM_PROTOCOL_ERROR', 'the upstream sent data before the TLS handshake');
  }
  try {
    return await startTls(
      socket,
      target.host,
      { verify: target.tls.mode === 'verify-full', ...(target.tls.ca ? { ca: target.tls.ca } : {}), ...(target.tls.serverName ? { serverName: target.tls.serverName } : {}) },
      { signal },
    );
  } catch (error) {
    const message = error instanceof ConnectError ? error.message : String(error);
    throw new PostgresGatewayError('UPSTREAM_TLS_REQUIRED', `TLS to the upstream database failed: ${message}`, { cause: error });
  }
}

function upstreamError(frame: { body: Buffer; raw: Buffer; type: number }): PostgresGatewayError {
  const fields = decodeNoticeFields(frame);
  const code = fields.get('C') ?? 'XX000';
  // The server's message names the upstream user; the client only learns the SQLSTATE.
  return new PostgresGatewayError('UPSTREAM_LOGIN_FAILED', `the upstream database refused the gateway's login (SQLSTATE ${code})`);
}

/** Connects and logs in; `parameters` are the client's allowed startup parameters (application_name, …). */
export async function connectUpstream(target: UpstreamTarget, parameters: ReadonlyMap<string, string>, maxMessageBytes: number): Promise<UpstreamConnection> {
  const timeout = AbortSignal.timeout(target.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS);
  const plain = await openSocket(target, timeout);
  let socket: Socket = plain;
  try {
    const secure = await negotiateTls(plain, target, timeout);
    if (secure) socket = secure;
    const startup = new Map<string, string>([['user', target.user], ['database', target.database], ...parameters]);
    startup.set('client_encoding', 'UTF8');
    socket.write(encodeStartupMessage(startup));
    const reader = new SocketFrameReader(socket, { side: 'backend', maxMessageBytes });
    let method: CredentialInjected['method'] | undefined;
    let scram: ScramSha256Client | undefined;
    // Read at each login (a rotated credential applies to the next session); the reference may read a file asynchronously.
    let credential: string | undefined;
    const secret = async (): Promise<string> => {
      const password = await target.password();
      if (password === undefined || password === '') throw new PostgresGatewayError('UPSTREAM_LOGIN_FAILED', `the upstream database asks for a password but connection credential ${target.credentialRef} is not set`);
      credential = password;
      return password;
    };
    const serverParameters = new Map<string, string>();
    let processId = 0;
    let secretKey: Buffer = Buffer.alloc(4);
    for (;;) {
      const frame = await reader.next(timeout);
      switch (frame.type) {
        case BackendType.Authentication: {
          const request = decodeAuthentication(frame);
          switch (request.kind) {
            case 'ok':
              break;
            case 'cleartext-password':
              // Never send the held password in the clear over an unencrypted connection.
              if (!secure) throw new PostgresGatewayError('UPSTREAM_AUTH_UNSUPPORTED', 'the upstream database asks for a cleartext password over a connection without TLS; refused');
              method = 'password';
              socket.write(encodePasswordMessage(await secret()));
              break;
            case 'md5-password':
              method = 'md5';
              socket.write(encodePasswordMessage(md5PasswordResponse(target.user, await secret(), request.salt)));
              break;
            case 'sasl':
              if (!request.mechanisms.includes('SCRAM-SHA-256')) throw new PostgresGatewayError('UPSTREAM_AUTH_UNSUPPORTED', `the upstream database offers no supported SASL mechanism (${request.mechanisms.join(', ')})`);
              method = 'scram-sha-256';
              scram = new ScramSha256Client(await secret());
              socket.write(encodeSaslInitialResponse('SCRAM-SHA-256', scram.first()));
              break;
            case 'sasl-continue':
              if (!scram) throw new PostgresGatewayError('UPSTREAM_PROTOCOL_ERROR', 'unexpected SASLContinue');
              socket.write(encodeSaslResponse(await scram.final(request.data)));
              break;
            case 'sasl-final':
              if (!scram) throw new PostgresGatewayError('UPSTREAM_PROTOCOL_ERROR', 'unexpected SASLFinal');
              scram.verify(request.data);
              break;
            case 'unsupported':
              throw new PostgresGatewayError('UPSTREAM_AUTH_UNSUPPORTED', `the upstream database asks for authentication method ${request.code}, which the gateway does not support`);
          }
          break;
        }
        case BackendType.ParameterStatus: {
          const { name, value } = decodeParameterStatus(frame);
          serverParameters.set(name, value);
          break;
        }
        case BackendType.BackendKeyData: {
          const key = decodeBackendKeyData(frame);
          processId = key.processId;
          secretKey = key.secretKey;
          break;
        }
        case BackendType.NoticeResponse:
        case BackendType.NegotiateProtocolVersion:
          break;
        case BackendType.ErrorResponse:
          throw upstreamError(frame);
        case BackendType.ReadyForQuery: {
          const status = decodeReadyForQuery(frame);
          const leftover = reader.detach();
          return { socket, tls: secure !== undefined, parameters: serverParameters, processId, secretKey, status, method, credential, leftover };
        }
        default:
          throw new PostgresGatewayError('UPSTREAM_PROTOCOL_ERROR', `unexpected message during the upstream login (type ${String.fromCharCode(frame.type)})`);
      }
    }
  } catch (error) {
    socket.destroy();
    if (error instanceof PostgresGatewayError) throw error;
    const message = error instanceof Error ? error.message : String(error);
    throw new PostgresGatewayError('UPSTREAM_LOGIN_FAILED', `the upstream login failed: ${message}`, { cause: error });
  }
}

/** Forwards a cancel to the upstream backend (its own key, never the client's). */
export async function cancelUpstream(target: UpstreamTarget, processId: number, secretKey: Buffer): Promise<void> {
  const timeout = AbortSignal.timeout(target.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS);
  const plain = await openSocket(target, timeout);
  let socket: Socket = plain;
  try {
    const secure = await negotiateTls(plain, target, timeout);
    if (secure) socket = secure;
    await new Promise<void>((resolve) => {
      socket.end(encodeCancelRequest(processId, secretKey));
      socket.once('close', () => resolve());
      socket.once('error', () => resolve());
      timeout.addEventListener('abort', () => resolve(), { once: true });
    });
  } finally {
    socket.destroy();
  }
}
