// The pod GET exec clients make first (kubectl reads the pod to check its phase and pick the
// container). The gateway reads the pod from the API server with the credential it holds and
// answers with a projection: names, images, phase and container states. Env values, volumes,
// annotations (other than kubectl's default-container) and the rest of the spec never reach the
// client: a pod spec routinely carries secrets.
import { request as httpsRequest } from 'node:https';
import { KubernetesGatewayError } from './gateway-errors.js';
import type { KubernetesCluster } from './gateway-options.js';
import { upstreamAuthentication } from './upstream-cluster.js';

/** The largest pod document read from the API server; a larger one is refused. */
const MAX_POD_BYTES = 4 * 1024 * 1024;
const DEFAULT_CONTAINER_ANNOTATION = 'kubectl.kubernetes.io/default-container';

export type UpstreamPod = ({ readonly found: true; readonly pod: Record<string, unknown> } | { readonly found: false; readonly status: number }) & {
  /** The secret presented (token or private key), for the custody scan only. */
  readonly secret: string;
  readonly method: 'bearer' | 'client-certificate';
};

function record(value: unknown): Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
}

function list(value: unknown): Record<string, unknown>[] {
  return Array.isArray(value) ? value.map(record) : [];
}

function pick(from: Record<string, unknown>, keys: readonly string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of keys) {
    const value = from[key];
    if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') out[key] = value;
  }
  return out;
}

/** What exec clients need of a pod, and nothing else. */
export function podForExecClients(pod: Record<string, unknown>): Record<string, unknown> {
  const metadata = record(pod['metadata']);
  const spec = record(pod['spec']);
  const status = record(pod['status']);
  const annotations = record(metadata['annotations']);
  const defaultContainer = annotations[DEFAULT_CONTAINER_ANNOTATION];
  const containers = (key: string): Record<string, unknown>[] => list(spec[key]).map((c) => pick(c, ['name', 'image', 'stdin', 'tty']));
  const states = (key: string): Record<string, unknown>[] => list(status[key]).map((c) => pick(c, ['name', 'ready', 'started', 'restartCount', 'image']));
  return {
    kind: 'Pod',
    apiVersion: 'v1',
    metadata: {
      ...pick(metadata, ['name', 'namespace', 'uid', 'resourceVersion', 'creationTimestamp']),
      ...(typeof defaultContainer === 'string' ? { annotations: { [DEFAULT_CONTAINER_ANNOTATION]: defaultContainer } } : {}),
    },
    spec: { containers: containers('containers'), initContainers: containers('initContainers'), ephemeralContainers: containers('ephemeralContainers') },
    status: { ...pick(status, ['phase']), containerStatuses: states('containerStatuses'), initContainerStatuses: states('initContainerStatuses'), ephemeralContainerStatuses: states('ephemeralContainerStatuses') },
  };
}

/** GET the pod from the cluster's API server (TLS verified against the cluster CA, the held credential); errors never carry the credential. */
export async function readUpstreamPod(cluster: KubernetesCluster, namespace: string, pod: string, signal: AbortSignal): Promise<UpstreamPod> {
  const base = new URL(cluster.server);
  const url = new URL(`${base.pathname.replace(/\/$/, '')}/api/v1/namespaces/${encodeURIComponent(namespace)}/pods/${encodeURIComponent(pod)}`, base);
  const { auth, tls, secret } = await upstreamAuthentication(cluster);
  const method = cluster.credential.kind;
  return await new Promise<UpstreamPod>((resolve, reject) => {
    const request = httpsRequest(url, { method: 'GET', headers: { ...auth.headers, accept: 'application/json' }, ...(auth.cert ? { cert: auth.cert, key: auth.key } : {}), ...tls, timeout: cluster.connectTimeoutMs ?? 10_000, signal }, (response) => {
      const status = response.statusCode ?? 0;
      if (status !== 200) {
        // The API server's refusal: its status code only (the body could echo anything).
        response.resume();
        resolve({ found: false, status, secret, method });
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      response.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > MAX_POD_BYTES) {
          request.destroy();
          reject(new KubernetesGatewayError('UPSTREAM_PROTOCOL', `the pod document from cluster ${cluster.name} is larger than ${MAX_POD_BYTES} bytes`));
          return;
        }
        chunks.push(chunk);
      });
      response.on('end', () => {
        try {
          resolve({ found: true, pod: record(JSON.parse(Buffer.concat(chunks).toString('utf8'))), secret, method });
        } catch {
          reject(new KubernetesGatewayError('UPSTREAM_PROTOCOL', `the API server of cluster ${cluster.name} sent a pod that is not JSON`));
        }
      });
      response.on('error', () => reject(new KubernetesGatewayError('UPSTREAM_UNAVAILABLE', `the API server of cluster ${cluster.name} broke off the pod read`)));
    });
    request.on('timeout', () => request.destroy(new Error('timeout')));
    request.on('error', (error: Error & { code?: string }) => {
      const tlsCode = error.code && /CERT|SELF_SIGNED|ALTNAME|UNABLE_TO/.test(error.code) ? error.code : undefined;
      reject(
        tlsCode
          ? new KubernetesGatewayError('UPSTREAM_TLS_VERIFICATION_FAILED', `the API server of cluster ${cluster.name} failed TLS verification (${tlsCode})`)
          : new KubernetesGatewayError('UPSTREAM_UNAVAILABLE', `the API server of cluster ${cluster.name} is unreachable (${error.code ?? 'connection failed'})`),
      );
    });
    request.end();
  });
}
