// The PostgreSQL listener, built from the `gateways.postgres` section over the gateway core
// (policy, approvals, evidence, masking key and identity are the core's, shared with every
// listener). Upstream credentials are read by reference at each login.
import { CredentialError, CredentialReference, gatewayLogger } from '@custodian/gateway-kit';
import { PostgresGateway, type PostgresConnection, type PostgresSessionLimits } from '@custodian/postgres-gateway';
import { ConfigError, type CustodianConfig, type LoadedConfig, type PostgresConnectionConfig, type SecretRef } from '@custodian/runtime-config';
import type { GatewayCore } from './gateway-core.js';
import { createSessionPipeline } from './session-pipelines.js';

export interface RunningPostgresListener {
  readonly gateway: PostgresGateway;
  readonly port: number;
  close(): Promise<void>;
}

/** Reads PEM material (certificates, keys, CA bundles) once at start-up, without blocking the event loop. */
async function readPem(reference: SecretRef, loaded: LoadedConfig, key: string): Promise<Buffer> {
  const credential = CredentialReference.from(reference, { baseDir: loaded.baseDir });
  try {
    return Buffer.from(await credential.readBytes());
  } catch (error) {
    if (error instanceof CredentialError) throw new ConfigError('CONFIG_SECRET_UNRESOLVED', `${key}: ${error.message}`);
    throw error;
  }
}

async function connectionOf(connection: PostgresConnectionConfig, index: number, loaded: LoadedConfig): Promise<PostgresConnection> {
  const { upstream } = connection;
  const credential = upstream.credential ? CredentialReference.from(upstream.credential, { baseDir: loaded.baseDir }) : undefined;
  const ca = upstream.tls.ca ? await readPem(upstream.tls.ca, loaded, `gateways.postgres.connections.${index}.upstream.tls.ca`) : undefined;
  return {
    name: connection.name,
    upstream: {
      host: upstream.host,
      port: upstream.port,
      database: upstream.database,
      user: upstream.user,
      // Read at each login: a rotated secret applies to the next session; never kept in config objects.
      password: () => (credential ? credential.read() : undefined),
      credentialRef: credential?.ref ?? 'none',
      tls: { mode: upstream.tls.mode, ...(ca ? { ca } : {}), ...(upstream.tls.serverName ? { serverName: upstream.tls.serverName } : {}) },
      connectTimeoutMs: upstream.connectTimeoutMs,
    },
    roles: (connection.roles ?? []).map((role) => {
      const roleCredential = role.credential ? CredentialReference.from(role.credential, { baseDir: loaded.baseDir }) : undefined;
      return {
        ...(role.subjects ? { subjects: role.subjects } : {}),
        ...(role.groups ? { groups: role.groups } : {}),
        user: role.user,
        password: () => (roleCredential ? roleCredential.read() : undefined),
        credentialRef: roleCredential?.ref ?? 'none',
      };
    }),
  };
}

/** The configured limits without the startup timeout (a gateway option of its own); unset ones keep the gateway's defaults. */
function limitsOf(limits: NonNullable<CustodianConfig['gateways']['postgres']['limits']>): Partial<PostgresSessionLimits> {
  const { startupTimeoutMs: _startup, ...rest } = limits;
  return Object.fromEntries(Object.entries(rest).filter(([, value]) => value !== undefined)) as Partial<PostgresSessionLimits>;
}

/** Starts the PostgreSQL listener as configured (throws ConfigError on an unusable section). */
export async function startPostgresListener(core: GatewayCore): Promise<RunningPostgresListener> {
  const { loaded, logger } = core;
  const settings = loaded.config.gateways.postgres;
  const tls = settings.tls
    ? { cert: await readPem(settings.tls.certificate, loaded, 'gateways.postgres.tls.certificate'), key: await readPem(settings.tls.key, loaded, 'gateways.postgres.tls.key') }
    : undefined;
  const connections = await Promise.all(settings.connections.map((connection, index) => connectionOf(connection, index, loaded)));
  const gateway = new PostgresGateway({
    host: settings.listen.host,
    port: settings.listen.port,
    ...(tls ? { tls } : {}),
    requireTls: settings.requireTls,
    connections,
    pipeline: await createSessionPipeline(core, settings),
    maxMessageBytes: settings.maxMessageBytes,
    ...(settings.limits ? { limits: limitsOf(settings.limits) } : {}),
    ...(settings.limits?.startupTimeoutMs ? { startupTimeoutMs: settings.limits.startupTimeoutMs } : {}),
    ...(settings.offload
      ? {
          offload: {
            ...(settings.offload.threads === undefined ? {} : { threads: settings.offload.threads }),
            maxQueued: settings.offload.maxQueued,
            maxPerOwner: settings.offload.maxPerSession,
            taskTimeoutMs: settings.offload.taskTimeoutMs,
          },
        }
      : {}),
    logger: gatewayLogger(logger, { listener: 'postgres' }),
  });
  const port = await gateway.listen();
  logger.info({ host: settings.listen.host, port, connections: settings.connections.map((c) => c.name), tls: tls !== undefined }, `postgres gateway listening on ${settings.listen.host}:${port}`);
  return { gateway, port, close: () => gateway.close() };
}
