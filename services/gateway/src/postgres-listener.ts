// The PostgreSQL gateway inside the gateway service, built from the `gateways.postgres` section:
// identity from `identity`, the policy file (hot-reloaded), the gateway's evidence pipeline
// (strict mode from `pipeline.strict`), an approval gate when the host provides one.
import { randomBytes } from 'node:crypto';
import { isAbsolute, resolve } from 'node:path';
import { Injectable, type BeforeApplicationShutdown, type Provider } from '@nestjs/common';
import { EventSourcedApprovalGate } from '@custodian/approvals';
import type { EventStore } from '@custodian/event-store';
import { StoreEvidencePipeline, type EvidencePipeline } from '@custodian/evidence-pipeline';
import type { HealthRegistry, Logger } from '@custodian/observability';
import { PolicyWatcher, parsePolicy, type CompiledPolicy } from '@custodian/policy';
import { PostgresGateway, type PostgresConnection } from '@custodian/postgres-gateway';
import { ConfigError, resolveSecret, type LoadedConfig, type PostgresConnectionConfig } from '@custodian/runtime-config';
import { AuthenticationEventRecorder, configuredIdentity } from '@custodian/service-host';
import { SessionPipeline, type ApprovalGate } from '@custodian/session-pipeline';

export const POSTGRES_GATEWAY = Symbol.for('@custodian/gateway/postgres');

export interface PostgresListenerDependencies {
  readonly loaded: LoadedConfig;
  readonly eventStore: EventStore;
  readonly logger: Logger;
  readonly health: HealthRegistry;
  /** The approvals workflow; by default the event-sourced gate of libs/decisions/approvals over the service's event store. */
  readonly approvals?: ApprovalGate;
  /** Token of the gateway's evidence provider (GATEWAY_EVIDENCE), when the module has one. */
  readonly evidenceToken?: symbol;
}

/** A policy that lets nobody in: what runs when no policy file is configured (default deny). */
const DENY_ALL_POLICY = 'name: deny-all\ndefaults:\n  decision: block\n  message: No policy is configured on this gateway.\nrules: []\n';

export interface RunningPostgresGateway {
  readonly gateway: PostgresGateway;
  readonly port: number;
  close(): Promise<void>;
}

function upstreamOf(connection: PostgresConnectionConfig, loaded: LoadedConfig): PostgresConnection {
  const { upstream } = connection;
  const context = { baseDir: loaded.baseDir };
  const credential = upstream.credential;
  const credentialRef = credential === undefined ? 'none' : 'fromEnv' in credential ? `env:${credential.fromEnv}` : `file:${credential.fromFile}`;
  return {
    name: connection.name,
    upstream: {
      host: upstream.host,
      port: upstream.port,
      database: upstream.database,
      user: upstream.user,
      // Read at each login: a rotated secret applies to the next session; never kept in config objects.
      password: () => (credential === undefined ? undefined : resolveSecret(credential, context)),
      credentialRef,
      tls: {
        mode: upstream.tls.mode,
        ...(upstream.tls.ca ? { ca: resolveSecret(upstream.tls.ca, context) } : {}),
        ...(upstream.tls.serverName ? { serverName: upstream.tls.serverName } : {}),
      },
      connectTimeoutMs: upstream.connectTimeoutMs,
    },
  };
}

/** Starts the PostgreSQL gateway as configured (throws ConfigError on an unusable section). */
export async function startPostgresGateway(deps: PostgresListenerDependencies, evidence: { pipeline: EvidencePipeline; strict: boolean }): Promise<RunningPostgresGateway> {
  const { loaded, logger } = deps;
  const settings = loaded.config.gateways.postgres;
  const instance = `gateway-${process.pid}`;
  const identity = configuredIdentity(loaded, { logger });
  for (const notice of identity.notices) logger.warn({}, `postgres gateway: ${notice}`);
  let watcher: PolicyWatcher | undefined;
  let policySource: { readonly policy: CompiledPolicy };
  if (settings.policyFile) {
    const file = isAbsolute(settings.policyFile) ? settings.policyFile : resolve(loaded.baseDir, settings.policyFile);
    try {
      watcher = PolicyWatcher.start(file, {
        onActivated: (activation) => logger.info({ policy: activation.name, version: activation.version, digest: activation.digest }, 'postgres gateway: policy activated'),
        onRejected: (error) => logger.warn({ code: error.code, issues: error.issues }, 'postgres gateway: policy change not activated'),
      });
    } catch (error) {
      throw new ConfigError('CONFIG_INVALID', `gateways.postgres.policyFile: ${error instanceof Error ? error.message : String(error)}`);
    }
    policySource = watcher;
  } else {
    logger.warn({}, 'postgres gateway: no policyFile configured: every session is refused (default deny)');
    policySource = { policy: parsePolicy(DENY_ALL_POLICY, 'built-in deny-all') };
  }
  const maskingKey = settings.maskingKey ? Buffer.from(resolveSecret(settings.maskingKey, { baseDir: loaded.baseDir }), 'utf8') : randomBytes(32);
  if (maskingKey.length < 16) throw new ConfigError('CONFIG_INVALID', 'gateways.postgres.maskingKey must be at least 16 bytes');
  const failures = new AuthenticationEventRecorder({ eventStore: deps.eventStore, source: { service: 'gateway', instance }, logger });
  let ownGate: EventSourcedApprovalGate | undefined;
  if (!deps.approvals) {
    // The instance name must stay the same across restarts: approvals left pending by it are cancelled at start.
    ownGate = new EventSourcedApprovalGate({ eventStore: deps.eventStore, instance: `postgres-gateway@${settings.listen.host}:${settings.listen.port}` });
    await ownGate.start();
  }
  const approvals = deps.approvals ?? ownGate;
  const pipeline = new SessionPipeline({
    verifier: identity.verifier,
    policy: policySource,
    evidence: evidence.pipeline,
    strict: evidence.strict,
    ...(approvals ? { approvals } : {}),
    approvalWaitSeconds: settings.approvalWaitSeconds,
    authenticationFailures: failures,
    source: { service: 'gateway', instance },
    maskingKey,
    maxFrameBytes: settings.maxFrameBytes,
    ...(settings.audiences ? { audiences: settings.audiences } : {}),
  });
  const tls = settings.tls
    ? { cert: resolveSecret(settings.tls.certificate, { baseDir: loaded.baseDir }), key: resolveSecret(settings.tls.key, { baseDir: loaded.baseDir }) }
    : undefined;
  const gateway = new PostgresGateway({
    host: settings.listen.host,
    port: settings.listen.port,
    ...(tls ? { tls } : {}),
    requireTls: settings.requireTls,
    connections: settings.connections.map((connection) => upstreamOf(connection, loaded)),
    pipeline,
    maxMessageBytes: settings.maxMessageBytes,
    logger: {
      info: (fields, message) => logger.info(fields, message),
      warn: (fields, message) => logger.warn(fields, message),
      error: (fields, message) => logger.error(fields, message),
    },
  });
  const port = await gateway.listen();
  logger.info({ host: settings.listen.host, port, connections: settings.connections.map((c) => c.name), tls: tls !== undefined }, `postgres gateway listening on ${settings.listen.host}:${port}`);
  return {
    gateway,
    port,
    close: async () => {
      await gateway.close();
      await ownGate?.close();
      watcher?.close();
      await failures.close();
    },
  };
}

/**
 * Nest providers that start the PostgreSQL gateway with the service (after the evidence pipeline,
 * which they inject) and stop it first on shutdown. Empty when `gateways.postgres` is disabled.
 */
export function postgresGatewayProviders(deps: PostgresListenerDependencies): Provider[] {
  if (!deps.loaded.config.gateways.postgres.enabled) return [];
  let running: RunningPostgresGateway | undefined;
  let ownPipeline: EvidencePipeline | undefined;
  deps.health.register({
    name: 'postgres-gateway',
    kind: 'ready',
    check: async () => {
      if (!running) throw new Error('the PostgreSQL gateway is not listening yet');
    },
  });

  @Injectable()
  class PostgresGatewayShutdown implements BeforeApplicationShutdown {
    async beforeApplicationShutdown(): Promise<void> {
      const current = running;
      running = undefined;
      await current?.close();
      await ownPipeline?.close();
    }
  }

  return [
    {
      provide: POSTGRES_GATEWAY,
      inject: deps.evidenceToken ? [{ token: deps.evidenceToken, optional: true }] : [],
      useFactory: async (evidence?: { pipeline: EvidencePipeline; strict: boolean }) => {
        let chosen = evidence;
        if (!chosen) {
          // No evidence pipeline from the host: record straight into the service's event store.
          ownPipeline = new StoreEvidencePipeline({ store: deps.eventStore, instance: `gateway-${process.pid}` });
          chosen = { pipeline: ownPipeline, strict: deps.loaded.config.pipeline.strict };
        }
        running = await startPostgresGateway(deps, chosen);
        return running;
      },
    },
    PostgresGatewayShutdown,
  ];
}
