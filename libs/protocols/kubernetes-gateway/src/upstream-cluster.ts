// The gateway's own WebSocket to the cluster's API server for one exec: TLS verified against the
// cluster CA, the held credential (bearer token or client certificate) read by reference now,
// the client's negotiated channel protocol offered (so both legs speak the same framing).
import type { IncomingMessage } from 'node:http';
import { isIP } from 'node:net';
import WebSocket from 'ws';
import { execQuery, type ExecRequest } from './exec-request.js';
import { KubernetesGatewayError } from './gateway-errors.js';
import type { KubernetesCluster } from './gateway-options.js';
import type { ChannelProtocol } from './channel-protocol.js';

export interface UpstreamExec {
  readonly socket: WebSocket;
  readonly protocol: ChannelProtocol;
  /** The secret presented (token or private key), for the custody scan only. */
  readonly secret: string;
  readonly method: 'bearer' | 'client-certificate';
}

function text(value: string | Buffer): string {
  return typeof value === 'string' ? value : value.toString('utf8');
}

/** How the gateway authenticates to the cluster's API server: the held credential read now, TLS verified against the cluster CA. */
export interface UpstreamAuthentication {
  /** The secret presented (token or private key), for the custody scan only. */
  readonly secret: string;
  readonly auth: { headers?: Record<string, string>; cert?: string; key?: string };
  readonly tls: { ca?: string | Buffer; servername?: string; rejectUnauthorized: true; minVersion: 'TLSv1.2' };
}

export async function upstreamAuthentication(cluster: KubernetesCluster): Promise<UpstreamAuthentication> {
  let secret: string;
  const auth: { headers?: Record<string, string>; cert?: string; key?: string } = {};
  try {
    if (cluster.credential.kind === 'bearer') {
      secret = await cluster.credential.token();
      auth.headers = { Authorization: `Bearer ${secret}` };
    } else {
      auth.cert = text(await cluster.credential.certificate());
      secret = text(await cluster.credential.key());
      auth.key = secret;
    }
  } catch (error) {
    // CredentialError messages name the reference only.
    throw new KubernetesGatewayError('UPSTREAM_CREDENTIAL_UNAVAILABLE', `the credential for cluster ${cluster.name} could not be read (${error instanceof Error ? error.message : 'unknown error'})`);
  }
  const host = new URL(cluster.server).hostname.replace(/^\[|\]$/g, '');
  const serverName = cluster.serverName ?? (isIP(host) ? undefined : host);
  return { secret, auth, tls: { ...(cluster.ca ? { ca: cluster.ca } : {}), ...(serverName ? { servername: serverName } : {}), rejectUnauthorized: true, minVersion: 'TLSv1.2' } };
}

/** Opens the exec WebSocket on the API server; rejects with KubernetesGatewayError (messages never carry the credential). */
export async function openUpstreamExec(cluster: KubernetesCluster, request: ExecRequest, protocol: ChannelProtocol, maxPayload: number, signal: AbortSignal): Promise<UpstreamExec> {
  const base = new URL(cluster.server);
  if (base.protocol !== 'https:') throw new KubernetesGatewayError('GATEWAY_CONFIG_INVALID', `cluster ${cluster.name}: the API server must be an https:// URL`);
  const url = new URL(`${base.pathname.replace(/\/$/, '')}/api/v1/namespaces/${encodeURIComponent(request.namespace)}/pods/${encodeURIComponent(request.pod)}/exec?${execQuery(request)}`, base);
  url.protocol = 'wss:';
  const { secret, auth, tls } = await upstreamAuthentication(cluster);
  const socket = new WebSocket(url, [protocol], {
    ...auth,
    ...tls,
    maxPayload,
    perMessageDeflate: false,
    handshakeTimeout: cluster.connectTimeoutMs ?? 10_000,
    followRedirects: false,
  });
  socket.binaryType = 'nodebuffer';
  return await new Promise<UpstreamExec>((resolve, reject) => {
    const fail = (error: KubernetesGatewayError): void => {
      cleanup();
      // terminate() before the handshake completes reports an error of its own: nobody needs it.
      socket.on('error', () => undefined);
      socket.terminate();
      reject(error);
    };
    const onAbort = (): void => fail(new KubernetesGatewayError('UPSTREAM_ABORTED', 'the client went away'));
    const onOpen = (): void => {
      cleanup();
      if (socket.protocol !== protocol) {
        socket.on('error', () => undefined);
        socket.terminate();
        reject(new KubernetesGatewayError('UPSTREAM_PROTOCOL', `the API server of cluster ${cluster.name} did not accept ${protocol}`));
        return;
      }
      resolve({ socket, protocol, secret, method: cluster.credential.kind });
    };
    const onError = (error: Error & { code?: string }): void => {
      const tlsCode = error.code && /CERT|SELF_SIGNED|ALTNAME|UNABLE_TO/.test(error.code) ? error.code : undefined;
      fail(
        tlsCode
          ? new KubernetesGatewayError('UPSTREAM_TLS_VERIFICATION_FAILED', `the API server of cluster ${cluster.name} failed TLS verification (${tlsCode})`)
          : new KubernetesGatewayError('UPSTREAM_UNAVAILABLE', `the API server of cluster ${cluster.name} is unreachable (${error.code ?? 'connection failed'})`),
      );
    };
    const onUnexpected = (_request: unknown, response: IncomingMessage): void => {
      // The API server's refusal (401, 403, 404 …): its status code only; the body could echo anything.
      response.resume();
      fail(new KubernetesGatewayError('UPSTREAM_REFUSED', `the API server of cluster ${cluster.name} refused the exec (HTTP ${response.statusCode ?? 0})`));
    };
    const cleanup = (): void => {
      signal.removeEventListener('abort', onAbort);
      socket.off('open', onOpen);
      socket.off('error', onError);
      socket.off('unexpected-response', onUnexpected);
    };
    if (signal.aborted) {
      onAbort();
      return;
    }
    signal.addEventListener('abort', onAbort, { once: true });
    socket.on('open', onOpen);
    socket.on('error', onError);
    socket.on('unexpected-response', onUnexpected);
  });
}
