// The Kubernetes exec listener, built from the `gateways.kubernetes` section over the gateway core
// (policy, approvals, evidence, masking key and identity are the core's, shared with every
// listener). The cluster credential (token, or client certificate and key) is read by reference
// at each exec; CA bundles and the listener's own certificate once at start-up.
import { CredentialError, CredentialReference, gatewayLogger } from '@custodian/gateway-kit';
import { KubernetesGateway, KubernetesGatewayError, type KubernetesCluster, type UpstreamCredential } from '@custodian/kubernetes-gateway';
import { ConfigError, type KubernetesClusterConfig, type LoadedConfig, type SecretRef } from '@custodian/runtime-config';
import type { GatewayCore } from './gateway-core.js';
import { createSessionPipeline } from './session-pipelines.js';

export interface RunningKubernetesListener {
  readonly gateway: KubernetesGateway;
  readonly port: number;
  close(): Promise<void>;
}

/** Reads PEM material once at start-up, without blocking the event loop. */
async function readPem(reference: SecretRef, loaded: LoadedConfig, key: string): Promise<Buffer> {
  const credential = CredentialReference.from(reference, { baseDir: loaded.baseDir });
  try {
    return Buffer.from(await credential.readBytes());
  } catch (error) {
    if (error instanceof CredentialError) throw new ConfigError('CONFIG_SECRET_UNRESOLVED', `${key}: ${error.message}`);
    throw error;
  }
}

/** The held credential, read at each exec (a rotated secret applies to the next one); never kept in config objects. */
function credentialOf(cluster: KubernetesClusterConfig, loaded: LoadedConfig): { credential: UpstreamCredential; credentialRef: string } {
  const reference = (source: SecretRef): CredentialReference => CredentialReference.from(source, { baseDir: loaded.baseDir });
  if ('token' in cluster.credential) {
    const token = reference(cluster.credential.token);
    return { credential: { kind: 'bearer', token: () => token.read() }, credentialRef: token.ref };
  }
  const certificate = reference(cluster.credential.clientCertificate);
  const key = reference(cluster.credential.clientKey);
  // The key is the secret: events name its reference.
  return { credential: { kind: 'client-certificate', certificate: async () => Buffer.from(await certificate.readBytes()), key: async () => Buffer.from(await key.readBytes()) }, credentialRef: key.ref };
}

async function clusterOf(cluster: KubernetesClusterConfig, index: number, loaded: LoadedConfig): Promise<KubernetesCluster> {
  const ca = cluster.ca ? await readPem(cluster.ca, loaded, `gateways.kubernetes.clusters.${index}.ca`) : undefined;
  return {
    name: cluster.name,
    server: cluster.server,
    namespaces: cluster.namespaces,
    ...credentialOf(cluster, loaded),
    ...(ca ? { ca } : {}),
    ...(cluster.serverName ? { serverName: cluster.serverName } : {}),
    connectTimeoutMs: cluster.connectTimeoutMs,
  };
}

/** Starts the Kubernetes exec listener as configured (throws ConfigError on an unusable section). */
export async function startKubernetesListener(core: GatewayCore): Promise<RunningKubernetesListener> {
  const { loaded, logger } = core;
  const settings = loaded.config.gateways.kubernetes;
  const tls = settings.tls
    ? { cert: await readPem(settings.tls.certificate, loaded, 'gateways.kubernetes.tls.certificate'), key: await readPem(settings.tls.key, loaded, 'gateways.kubernetes.tls.key') }
    : undefined;
  const clusters = await Promise.all(settings.clusters.map((cluster, index) => clusterOf(cluster, index, loaded)));
  let gateway: KubernetesGateway;
  try {
    gateway = new KubernetesGateway({
      host: settings.listen.host,
      port: settings.listen.port,
      ...(tls ? { tls } : {}),
      clusters,
      pipeline: createSessionPipeline(core, settings),
      maxMessageBytes: settings.maxMessageBytes,
      maskingIdleFlushMs: settings.maskingIdleFlushMs,
      unverifiableLines: settings.unverifiableLines,
      logger: gatewayLogger(logger, { listener: 'kubernetes' }),
    });
  } catch (error) {
    // The gateway's own checks (no TLS off loopback, a cluster twice): a config error naming the section.
    if (error instanceof KubernetesGatewayError) throw new ConfigError('CONFIG_INVALID', `gateways.kubernetes: ${error.message}`);
    throw error;
  }
  const port = await gateway.listen();
  logger.info({ host: settings.listen.host, port, clusters: settings.clusters.map((c) => c.name), tls: tls !== undefined }, `kubernetes gateway listening on ${settings.listen.host}:${port}`);
  return { gateway, port, close: () => gateway.close() };
}
