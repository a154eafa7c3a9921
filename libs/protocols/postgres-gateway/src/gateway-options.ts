import type { SessionPipeline } from '@custodian/session-pipeline';

export type UpstreamTlsMode = 'disable' | 'require' | 'verify-full';

/** How the gateway reaches and logs in to one target database with the credential it holds. */
export interface UpstreamTarget {
  readonly host: string;
  readonly port: number;
  readonly database: string;
  readonly user: string;
  /** Reads the held secret at each login, so a rotated secret applies to the next session (a file is read asynchronously). Undefined: the upstream asks for none. */
  readonly password: () => Promise<string | undefined> | string | undefined;
  /** Where the secret comes from (`env:NAME`, `file:/path`), the only thing events say about it. */
  readonly credentialRef: string;
  readonly tls: {
    readonly mode: UpstreamTlsMode;
    /** PEM CA bundle to verify the upstream's certificate (verify-full); the system CAs when absent. */
    readonly ca?: string | Buffer;
    /** Name the certificate must carry (default: host). */
    readonly serverName?: string;
  };
  readonly connectTimeoutMs?: number;
}

export interface PostgresConnection {
  /** What clients put in `database`, e.g. `orders-prod`. */
  readonly name: string;
  readonly upstream: UpstreamTarget;
}

/** `always`: every client must use TLS; `non-loopback`: clients on 127.0.0.0/8 and ::1 may skip it; `never`: TLS is optional. */
export type ClientTlsRequirement = 'always' | 'non-loopback' | 'never';

export interface GatewayLogger {
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
}

export interface PostgresGatewayOptions {
  readonly host: string;
  readonly port: number;
  /** The gateway's certificate and key (PEM); without them SSLRequest is answered `N`. */
  readonly tls?: { readonly cert: string | Buffer; readonly key: string | Buffer };
  readonly requireTls: ClientTlsRequirement;
  readonly connections: readonly PostgresConnection[];
  readonly pipeline: SessionPipeline;
  /** Largest message accepted from a client or an upstream (default 16 MiB). */
  readonly maxMessageBytes?: number;
  /** Time a client has to finish TLS, startup and the password exchange (default 30 s). */
  readonly startupTimeoutMs?: number;
  /** How long catalog lookups (table OIDs → names, for column masking) stay cached (default 60 s). */
  readonly catalogTtlMs?: number;
  /** The catalog connection is closed after this long unused (default 5 s), so it does not block `DROP DATABASE`. */
  readonly catalogIdleMs?: number;
  readonly logger?: GatewayLogger;
}

export const NO_LOGGER: GatewayLogger = { info: () => undefined, warn: () => undefined, error: () => undefined };
