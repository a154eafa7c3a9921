// `kubectl logs` through the gateway: GET /api/v1/namespaces/{ns}/pods/{pod}/log. Refused unless
// the policy allows it: the request is decided by the http language (method GET, the log path,
// the query) with where it runs (namespace, pod, container), so a rule such as
//   match: { protocols: [kubernetes], http: { methods: [GET], paths: ["/api/v1/namespaces/*/pods/*/log"] } }
// opens it. Allowed → read upstream with the held credential (TLS verified with the cluster CA)
// and streamed to the client through the masking detectors (bounded hold-back), every byte
// recorded after masking. Only the query parameters the API server defines for logs are passed.
import { request as httpsRequest } from 'node:https';
import type { ServerResponse } from 'node:http';
import { MaskingFindings } from '@custodian/masking';
import { decideHttp, httpLanguage } from '@custodian/policy-languages';
import type { PipelineSession } from '@custodian/session-pipeline';
import { httpStatusBody } from './channel-protocol.js';
import { KubernetesGatewayError } from './gateway-errors.js';
import type { KubernetesCluster } from './gateway-options.js';
import { upstreamAuthentication } from './upstream-cluster.js';

/** The log query parameters of the Kubernetes API (PodLogOptions); anything else the client sends is dropped. */
const LOG_PARAMETERS = ['container', 'follow', 'previous', 'sinceSeconds', 'sinceTime', 'timestamps', 'tailLines', 'limitBytes', 'insecureSkipTLSVerifyBackend', 'stream'] as const;
/** Client-bound bytes queued before the gateway stops reading the API server. */
const MAX_QUEUED = 1024 * 1024;

export interface PodLogRequest {
  readonly namespace: string;
  readonly pod: string;
  readonly query: URLSearchParams;
}

/** The query the API server gets: known log parameters only; the backend's TLS check is never skipped. */
export function podLogQuery(query: URLSearchParams): URLSearchParams {
  const out = new URLSearchParams();
  for (const name of LOG_PARAMETERS) {
    if (name === 'insecureSkipTLSVerifyBackend') continue;
    const value = query.get(name);
    if (value !== null) out.set(name, value.slice(0, 256));
  }
  return out;
}

/** Serves one log read as a session of its own; the session is closed when this settles. */
export async function servePodLog(session: PipelineSession, cluster: KubernetesCluster, log: PodLogRequest, response: ServerResponse, abort: AbortSignal): Promise<void> {
  const query = podLogQuery(log.query);
  const path = `/api/v1/namespaces/${encodeURIComponent(log.namespace)}/pods/${encodeURIComponent(log.pod)}/log`;
  const requestLine = `GET ${path}${query.size > 0 ? `?${query.toString()}` : ''}`;
  session.recordFrame('client-to-upstream', 'pod-log-get', Buffer.from(requestLine));
  const answer = (status: number, reason: string, message: string): void => {
    const bytes = Buffer.from(httpStatusBody(message, reason, status));
    session.recordFrame('upstream-to-client', 'status', bytes);
    if (!response.headersSent) response.writeHead(status, { 'content-type': 'application/json' });
    response.end(bytes);
  };
  const container = query.get('container') ?? undefined;
  const context = { ...session.policyContext, kubernetes: { namespace: log.namespace, pod: log.pod, ...(container ? { container } : {}) } };
  const decision = decideHttp(session.policy, context, { host: cluster.name, method: 'GET', path, query: query.toString() });
  const outcome = await session.issue({ language: 'http', kind: 'http', text: requestLine, summary: { ...httpLanguage.summary(decision.classification), kubernetes: { namespace: log.namespace, pod: log.pod, ...(container ? { container } : {}), subresource: 'log' } }, decision, signal: abort });
  if (!outcome.forward) {
    answer(403, 'Forbidden', outcome.message);
    await session.close('policy');
    return;
  }
  let upstream: { readonly status: number; readonly body: NodeJS.ReadableStream & { pause(): unknown; resume(): unknown; destroy(): unknown } };
  try {
    const { auth, tls, secret } = await upstreamAuthentication(cluster);
    session.credentialInjected(cluster.credentialRef, cluster.credential.kind, secret);
    const base = new URL(cluster.server);
    const url = new URL(`${base.pathname.replace(/\/$/, '')}${path}${query.size > 0 ? `?${query.toString()}` : ''}`, base);
    upstream = await new Promise((resolve, reject) => {
      const request = httpsRequest(url, { method: 'GET', headers: { ...auth.headers, accept: 'text/plain, */*' }, ...(auth.cert ? { cert: auth.cert, key: auth.key } : {}), ...tls, timeout: cluster.connectTimeoutMs ?? 10_000, signal: abort }, (res) => resolve({ status: res.statusCode ?? 0, body: res }));
      request.on('timeout', () => request.destroy(new Error('timeout')));
      request.on('error', (error: Error & { code?: string }) =>
        reject(
          error.code && /CERT|SELF_SIGNED|ALTNAME|UNABLE_TO/.test(error.code)
            ? new KubernetesGatewayError('UPSTREAM_TLS_VERIFICATION_FAILED', `the API server of cluster ${cluster.name} failed TLS verification (${error.code})`)
            : new KubernetesGatewayError('UPSTREAM_UNAVAILABLE', `the API server of cluster ${cluster.name} is unreachable (${error.code ?? 'connection failed'})`),
        ),
      );
      request.end();
    });
  } catch (error) {
    const failure = error instanceof KubernetesGatewayError ? error : new KubernetesGatewayError('UPSTREAM_UNAVAILABLE', `the API server of cluster ${cluster.name} could not be reached`);
    answer(502, 'InternalError', `Custodian could not read the log: ${failure.message}`);
    await session.close(abort.aborted ? 'client-closed' : 'error', failure.code);
    return;
  }
  if (upstream.status !== 200) {
    // The API server's refusal: its status only (its body could echo anything).
    upstream.body.resume();
    if (upstream.status === 404) answer(404, 'NotFound', `pods "${log.pod}" not found`);
    else answer(upstream.status >= 400 && upstream.status < 500 ? upstream.status : 502, upstream.status === 400 ? 'BadRequest' : 'InternalError', `the API server of cluster ${cluster.name} refused the log read (HTTP ${upstream.status})`);
    await session.close('upstream-closed');
    return;
  }
  response.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' });
  const findings = new MaskingFindings();
  const masker = session.masking.detection.compiled.length === 0 ? undefined : session.masking.createStreamMasker('log', findings);
  const decoder = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });
  let queued = 0;
  const send = (text: string | Uint8Array): void => {
    const bytes = typeof text === 'string' ? Buffer.from(text, 'utf8') : Buffer.from(text);
    if (bytes.length === 0) return;
    session.recordFrame('upstream-to-client', 'log', bytes);
    queued += bytes.length;
    if (queued > MAX_QUEUED) upstream.body.pause();
    response.write(bytes, () => {
      queued -= bytes.length;
      if (queued <= MAX_QUEUED / 2) upstream.body.resume();
    });
    if (session.recorderSaturated) {
      upstream.body.pause();
      void session.whenRecorderReady().then(() => upstream.body.resume());
    }
  };
  const ended = await new Promise<boolean>((resolve) => {
    upstream.body.on('data', (chunk: Buffer) => send(masker ? masker.push(decoder.decode(chunk, { stream: true })) : chunk));
    upstream.body.on('end', () => resolve(true));
    upstream.body.on('error', () => resolve(false));
    response.on('close', () => {
      upstream.body.destroy();
      resolve(false);
    });
  });
  if (masker) send(masker.push(decoder.decode()) + masker.end());
  if (!findings.isEmpty) session.recordMasked(outcome.commandId, findings);
  response.end();
  await session.close(ended ? 'upstream-closed' : 'client-closed');
}
