// The MCP listener, built from the `gateways.mcp` section over the gateway core (policy, approvals,
// evidence, masking key and identity are the core's, shared with every listener). Upstream
// credentials are read by reference at each request; the client's token never goes upstream.
import { CredentialError, CredentialReference, gatewayLogger } from '@custodian/gateway-kit';
import { BearerAuthenticator } from '@custodian/identity';
import { ClientCredentialsToken, McpGateway, type McpConnection, type McpUpstreamCredential } from '@custodian/mcp-gateway';
import { ConfigError, type LoadedConfig, type McpConnectionConfig, type SecretRef } from '@custodian/runtime-config';
import type { GatewayCore } from './gateway-core.js';
import { createSessionPipeline } from './session-pipelines.js';

export interface RunningMcpListener {
  readonly gateway: McpGateway;
  readonly port: number;
  close(): Promise<void>;
}

async function readPem(reference: SecretRef, loaded: LoadedConfig, key: string): Promise<Buffer> {
  const credential = CredentialReference.from(reference, { baseDir: loaded.baseDir });
  try {
    return Buffer.from(await credential.readBytes());
  } catch (error) {
    if (error instanceof CredentialError) throw new ConfigError('CONFIG_SECRET_UNRESOLVED', `${key}: ${error.message}`);
    throw error;
  }
}

/** One `gateways.mcp.connections[index]` entry as the gateway's connection (ConfigError naming the key when unusable). */
export function mcpConnectionOf(connection: McpConnectionConfig, index: number, loaded: LoadedConfig): McpConnection {
  const { upstream } = connection;
  const key = `gateways.mcp.connections[${index}].upstream`;
  const credential = upstream.credential ? CredentialReference.from(upstream.credential, { baseDir: loaded.baseDir }) : undefined;
  if ((upstream.url === undefined) === (upstream.command === undefined)) {
    throw new ConfigError('CONFIG_INVALID', `${key}: give exactly one of url (an HTTP MCP server) and command (a stdio MCP server) for connection ${connection.name}`);
  }
  if (upstream.command !== undefined && upstream.clientCredentials) throw new ConfigError('CONFIG_INVALID', `${key}.clientCredentials: only for HTTP servers (url); a stdio server gets its credential in credentialEnv`);
  if (upstream.credential && upstream.clientCredentials) throw new ConfigError('CONFIG_INVALID', `${key}: give credential or clientCredentials, not both`);
  if (upstream.command !== undefined) {
    if (credential && upstream.credentialEnv === undefined) throw new ConfigError('CONFIG_INVALID', `${key}.credentialEnv: a stdio server's credential needs the environment variable that carries it`);
    if (upstream.credentialEnv !== undefined && upstream.env && upstream.credentialEnv in upstream.env) throw new ConfigError('CONFIG_INVALID', `${key}.env.${upstream.credentialEnv}: also named by credentialEnv; secrets go in credential only`);
    const env: Record<string, string> = {};
    for (const [name, value] of Object.entries(upstream.env ?? {})) if (value !== undefined) env[name] = value;
    return {
      name: connection.name,
      upstream: {
        command: upstream.command,
        args: upstream.args ?? [],
        env,
        ...(upstream.cwd ? { cwd: upstream.cwd } : {}),
        timeoutMs: upstream.timeoutMs,
        // Read at each spawn: a rotated secret applies to the next session.
        ...(credential && upstream.credentialEnv ? { credential: { env: upstream.credentialEnv, ref: credential.ref, read: () => credential.read() } } : {}),
      },
    };
  }
  let held: McpUpstreamCredential | undefined;
  if (upstream.clientCredentials) {
    const { issuer, clientId, resource, scope, authMethod } = upstream.clientCredentials;
    const secret = CredentialReference.from(upstream.clientCredentials.clientSecret, { baseDir: loaded.baseDir });
    let token: ClientCredentialsToken;
    try {
      token = new ClientCredentialsToken({ issuer, clientId, authMethod, clientSecret: () => secret.read(), clientSecretRef: secret.ref, ...(resource ? { resource } : {}), ...(scope ? { scope } : {}) });
    } catch (error) {
      throw new ConfigError('CONFIG_INVALID', `${key}.clientCredentials.issuer: ${error instanceof Error ? error.message : String(error)}`);
    }
    held = token.asCredential();
  } else if (credential) {
    // Read at each request: a rotated secret applies at once; never kept in config objects.
    held = { ref: credential.ref, header: upstream.credentialHeader, read: () => credential.read() };
  }
  return {
    name: connection.name,
    upstream: { url: upstream.url!, timeoutMs: upstream.timeoutMs, ...(held ? { credential: held } : {}) },
  };
}

/** Starts the MCP listener as configured (throws ConfigError on an unusable section). */
export async function startMcpListener(core: GatewayCore): Promise<RunningMcpListener> {
  const { loaded, logger } = core;
  const settings = loaded.config.gateways.mcp;
  const tls = settings.tls
    ? { cert: await readPem(settings.tls.certificate, loaded, 'gateways.mcp.tls.certificate'), key: await readPem(settings.tls.key, loaded, 'gateways.mcp.tls.key') }
    : undefined;
  const audiences = core.audiencesFor(settings);
  const gateway = new McpGateway({
    host: settings.listen.host,
    port: settings.listen.port,
    ...(tls ? { tls } : {}),
    ...(settings.publicUrl ? { publicUrl: settings.publicUrl } : {}),
    authorizationServers: loaded.config.identity.issuers.map((issuer) => issuer.issuer),
    authenticator: new BearerAuthenticator({ verifier: core.verifier, ...(audiences ? { audiences } : {}), realm: 'custodian-mcp' }),
    pipeline: createSessionPipeline(core, settings),
    connections: settings.connections.map((connection, index) => mcpConnectionOf(connection, index, loaded)),
    // Tool-definition pins are events (stream mcp-tools-<connection>): they survive restarts and are shared by replicas.
    toolPins: { eventStore: core.eventStore, source: core.source },
    maxMessageBytes: settings.maxMessageBytes,
    keepAliveMs: settings.keepAliveSeconds * 1000,
    idleTimeoutMs: settings.idleTimeoutSeconds * 1000,
    structuredMaskingConflict: settings.structuredMaskingConflict,
    logger: gatewayLogger(logger, { listener: 'mcp' }),
  });
  const port = await gateway.listen();
  logger.info({ host: settings.listen.host, port, connections: settings.connections.map((c) => c.name), tls: tls !== undefined }, `mcp gateway listening on ${settings.listen.host}:${port}`);
  return { gateway, port, close: () => gateway.close() };
}
