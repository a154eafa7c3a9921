import type { SessionPipeline } from '@custodian/session-pipeline';
import type { OffloadPoolOptions } from './offload/offload-pool.js';

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

/**
 * An upstream role for some identities: the gateway logs in as `user` with this role's credential
 * when the session's identity has one of `subjects` or is in one of `groups` (first match wins).
 */
export interface UpstreamRoleMapping {
  readonly subjects?: readonly string[];
  readonly groups?: readonly string[];
  readonly user: string;
  /** Reads the role's held secret at each login (undefined: the upstream asks for none). */
  readonly password: () => Promise<string | undefined> | string | undefined;
  /** Where the secret comes from (`env:NAME`, `file:/path`), the only thing events say about it. */
  readonly credentialRef: string;
}

export interface PostgresConnection {
  /** What clients put in `database`, e.g. `orders-prod`. */
  readonly name: string;
  readonly upstream: UpstreamTarget;
  /**
   * Per-identity upstream roles: the first mapping matching the session's identity replaces
   * `upstream.user` and its credential for that session (sessions of different agents then cannot
   * see each other's statements in pg_stat_activity). Catalog lookups keep `upstream.user`.
   */
  readonly roles?: readonly UpstreamRoleMapping[];
}

/** `always`: every client must use TLS; `non-loopback`: clients on 127.0.0.0/8 and ::1 may skip it; `never`: TLS is optional. */
export type ClientTlsRequirement = 'always' | 'non-loopback' | 'never';

export interface GatewayLogger {
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
}

/**
 * What one agent may hold or cost, so it cannot stop everyone else (issue 19 §3). Every field has a
 * default (DEFAULT_SESSION_LIMITS); `0` for a count or a timeout means no limit.
 */
export interface PostgresSessionLimits {
  /** Longest statement text classified; a longer one is refused unread. Default 256 KiB. */
  readonly maxStatementBytes: number;
  /**
   * Statements and values up to this many bytes are classified and scanned on the event loop (they
   * are fast); longer ones in worker threads (`offload`), so that one session's large statement or
   * value never stalls the others. Default 4 KiB.
   */
  readonly inlineWorkBytes: number;
  /** Longest result value the detectors and JSON paths scan; a longer one is replaced (fail closed). Default 256 KiB. */
  readonly maxScannedValueBytes: number;
  /** Named prepared statements (protocol Parse) a session may hold. Default 10,000. */
  readonly maxPreparedStatements: number;
  /** Named portals (protocol Bind) a session may hold. Default 10,000. */
  readonly maxPortals: number;
  /** Messages sent upstream whose responses have not arrived yet (a pipeline without Sync); beyond it the session ends with 54000. Default 100,000. */
  readonly maxPendingResponses: number;
  /** Open sessions per identity (token subject), all connections together. Default 10. */
  readonly maxSessionsPerIdentity: number;
  /** Open sessions per configured connection, all identities together. Default 50. */
  readonly maxSessionsPerConnection: number;
  /** A session with no traffic either way for this long is ended (57P05). Default 30 min. */
  readonly idleSessionTimeoutMs: number;
  /**
   * A `COPY … FROM STDIN` held for approval: the gateway buffers the rows up to this many bytes, and
   * the approver decides after they have arrived (row count and a masked sample) and before they
   * are sent; a larger payload is refused. 0: held COPY FROM is refused outright. Default 1 MiB.
   */
  readonly maxCopyInApprovalBytes: number;
  /** Connections not yet authenticated, in total. Default 256. */
  readonly maxUnauthenticated: number;
  /** Connections not yet authenticated, per client address. Default 16. */
  readonly maxUnauthenticatedPerAddress: number;
}

export const DEFAULT_SESSION_LIMITS: PostgresSessionLimits = {
  maxStatementBytes: 256 * 1024,
  inlineWorkBytes: 4 * 1024,
  maxScannedValueBytes: 256 * 1024,
  maxPreparedStatements: 10_000,
  maxPortals: 10_000,
  maxPendingResponses: 100_000,
  maxSessionsPerIdentity: 10,
  maxSessionsPerConnection: 50,
  idleSessionTimeoutMs: 30 * 60_000,
  maxCopyInApprovalBytes: 1024 * 1024,
  maxUnauthenticated: 256,
  maxUnauthenticatedPerAddress: 16,
};

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
  /** Time a client has to finish TLS, startup and the password exchange (default 10 s). */
  readonly startupTimeoutMs?: number;
  /** A session ends this long after its access token's `exp` (the clock skew the issuers allow; default 30 s). */
  readonly tokenExpirySkewMs?: number;
  /** Per-session and per-identity limits (defaults: DEFAULT_SESSION_LIMITS). */
  readonly limits?: Partial<PostgresSessionLimits>;
  /** The worker threads for large statements and values (threads, queue, share per session, time budget). */
  readonly offload?: OffloadPoolOptions;
  /** How long catalog lookups (table OIDs → names, for column masking) stay cached (default 60 s). */
  readonly catalogTtlMs?: number;
  /** The catalog connection is closed after this long unused (default 5 s), so it does not block `DROP DATABASE`. */
  readonly catalogIdleMs?: number;
  /**
   * How long the catalog's verdict on a function, operator or view (VOLATILE or not) stays cached
   * for read-only sessions (default 10 s). A DDL statement through the gateway drops every verdict
   * of its connection at once; this bounds how long a change made around the gateway goes unseen.
   */
  readonly routineTtlMs?: number;
  readonly logger?: GatewayLogger;
}

export const NO_LOGGER: GatewayLogger = { info: () => undefined, warn: () => undefined, error: () => undefined };
