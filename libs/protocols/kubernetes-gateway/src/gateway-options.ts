import type { UnverifiableLinePolicy } from '@custodian/terminal-line-policy';
import type { GatewayLogger } from '@custodian/gateway-kit';
import type { SessionPipeline } from '@custodian/session-pipeline';

/** The credential the gateway presents to the cluster's API server; read at each exec (rotation applies to the next session). */
export type UpstreamCredential =
  | { readonly kind: 'bearer'; readonly token: () => Promise<string> | string }
  | { readonly kind: 'client-certificate'; readonly certificate: () => Promise<string | Buffer> | string | Buffer; readonly key: () => Promise<string | Buffer> | string | Buffer };

/** One cluster a client can reach through the gateway: a connection of the policy. */
export interface KubernetesCluster {
  /** The connection name (policy `connections`, events' `connection.name`); clients use `/clusters/<name>` as their server path. */
  readonly name: string;
  /** The API server, e.g. `https://10.0.0.1:6443` (https only: the credential is never sent in clear). */
  readonly server: string;
  /** Namespaces exec may target (globs, e.g. `team-*`); anything else is refused before policy. */
  readonly namespaces: readonly string[];
  readonly credential: UpstreamCredential;
  /** Where the credential comes from (`env:NAME`, `file:/path`): the only thing events say about it. */
  readonly credentialRef: string;
  /** PEM CA bundle the API server's certificate must chain to (the cluster CA); the system CAs when absent. */
  readonly ca?: string | Buffer;
  /** Name the API server's certificate must carry (default: the server URL's host). */
  readonly serverName?: string;
  readonly connectTimeoutMs?: number;
}

export interface KubernetesGatewayOptions {
  readonly host: string;
  readonly port: number;
  /** The gateway's certificate and key (PEM). Without them the gateway speaks plain HTTP, which it allows only on a loopback address. */
  readonly tls?: { readonly cert: string | Buffer; readonly key: string | Buffer };
  readonly clusters: readonly KubernetesCluster[];
  readonly pipeline: SessionPipeline;
  /** Largest WebSocket message accepted from a client or the API server (default 1 MiB); larger ones end the session. */
  readonly maxMessageBytes?: number;
  /** Client-bound bytes a session may have queued before it stops reading the API server (default 1 MiB). */
  readonly maxBufferedBytes?: number;
  /** stdin bytes kept while a command waits for its decision or approval (default 1 MiB); more ends the session. */
  readonly maxHeldInputBytes?: number;
  /**
   * Output masking holds back text that could still be (part of) a match; when the API server
   * sends nothing more on a channel for this long (ms, default 100), the held tail is masked and
   * sent. A value split across such a pause is masked only if each part matches on its own.
   */
  readonly maskingIdleFlushMs?: number;
  /** A tty shell's line the gateway cannot follow (full-screen program, keys it does not model): default `agent-refuses`. */
  readonly unverifiableLines?: UnverifiableLinePolicy;
  readonly logger?: GatewayLogger;
}
