import type { EventSource } from '@custodian/event-contracts';
import type { EventStore } from '@custodian/event-store';
import type { BearerAuthenticator } from '@custodian/identity';
import type { SessionPipeline } from '@custodian/session-pipeline';
import type { McpStdioTarget } from './stdio-upstream.js';
import type { McpUpstreamTarget } from './upstream-client.js';

export interface McpConnection {
  /** What clients put in the path: `/mcp/<name>`; the `server` of `mcp` policy rules. */
  readonly name: string;
  /** An MCP server over streamable HTTP (`url`), or a command the gateway runs, one process per session (stdio). */
  readonly upstream: McpUpstreamTarget | McpStdioTarget;
}

export interface GatewayLogger {
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
}

export interface McpGatewayOptions {
  readonly host: string;
  readonly port: number;
  /** The gateway's certificate and key (PEM): HTTPS when given. */
  readonly tls?: { readonly cert: string | Buffer; readonly key: string | Buffer };
  /** Base URL clients reach the gateway at (the `resource` of the protected-resource metadata); default `http(s)://host:port`. */
  readonly publicUrl?: string;
  /** Issuers whose tokens the gateway accepts (`authorization_servers` of RFC 9728 metadata). */
  readonly authorizationServers: readonly string[];
  /** Verifies bearer tokens narrowed to this listener's audiences. */
  readonly authenticator: BearerAuthenticator;
  readonly pipeline: SessionPipeline;
  readonly connections: readonly McpConnection[];
  /**
   * The event store the gateway shares with its replicas and the API, and the `source` of the events it writes there:
   * tool-definition pins (stream `mcp-tools-<connection>`) and continuations of approved calls (`mcp-continuation-<digest>`).
   */
  readonly toolPins: { readonly eventStore: EventStore; readonly source: EventSource };
  /** Largest JSON-RPC message accepted from a client or an upstream (default 4 MiB). */
  readonly maxMessageBytes?: number;
  /** SSE comment interval while a call waits for approval (default 15 s). */
  readonly keepAliveMs?: number;
  /** A session unused this long is closed (default 30 min). */
  readonly idleTimeoutMs?: number;
  readonly logger?: GatewayLogger;
}

export const NO_LOGGER: GatewayLogger = { info: () => undefined, warn: () => undefined, error: () => undefined };
