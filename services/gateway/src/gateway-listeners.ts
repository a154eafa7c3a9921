// Starting the protocol listeners with the service: the gateway core once, then each enabled
// listener over it; on shutdown the listeners first (their sessions end), then the core.
import { Injectable, type BeforeApplicationShutdown, type Provider } from '@nestjs/common';
import type { EventStore } from '@custodian/event-store';
import { StoreEvidencePipeline, type EvidencePipeline } from '@custodian/evidence-pipeline';
import type { HealthRegistry, Logger } from '@custodian/observability';
import type { LoadedConfig } from '@custodian/runtime-config';
import type { ApprovalGate } from '@custodian/session-pipeline';
import { openGatewayCore, type GatewayCore, type GatewayEvidenceChannel } from './gateway-core.js';
import { startMcpListener, type RunningMcpListener } from './mcp-listener.js';
import { startKubernetesListener, type RunningKubernetesListener } from './kubernetes-listener.js';
import { startHttpListener, type RunningHttpListener } from './http-listener.js';
import { startPostgresListener, type RunningPostgresListener } from './postgres-listener.js';
import { startSshListener, type RunningSshListener } from './ssh-listener.js';

/** Nest injection token of the running gateway (`RunningGateway`), when a listener is enabled. */
export const GATEWAY_LISTENERS = Symbol.for('@custodian/gateway/listeners');

export interface RunningGateway {
  readonly core: GatewayCore;
  /** The PostgreSQL listener, when `gateways.postgres.enabled`. */
  readonly postgres: RunningPostgresListener | undefined;
  /** The SSH listener, when `gateways.ssh.enabled`. */
  readonly ssh: RunningSshListener | undefined;
  /** The MCP listener, when `gateways.mcp.enabled`. */
  readonly mcp: RunningMcpListener | undefined;
  /** The Kubernetes exec listener, when `gateways.kubernetes.enabled`. */
  readonly kubernetes: RunningKubernetesListener | undefined;
  /** The HTTP / Anthropic listener, when `gateways.http.enabled`. */
  readonly http: RunningHttpListener | undefined;
  /** Closes the listeners, then the core. */
  close(): Promise<void>;
}

export interface GatewayListenerDependencies {
  readonly loaded: LoadedConfig;
  readonly eventStore: EventStore;
  readonly logger: Logger;
  /** The approvals workflow; by default the core runs the event-sourced gate over the event store. */
  readonly approvals?: ApprovalGate;
}

/** True when at least one protocol listener is enabled (otherwise no core is built). */
export function anyListenerEnabled(loaded: LoadedConfig): boolean {
  return loaded.config.gateways.postgres.enabled || loaded.config.gateways.mcp.enabled || loaded.config.gateways.kubernetes.enabled || loaded.config.gateways.ssh.enabled || loaded.config.gateways.http.enabled;
}

/** Builds the core and starts every enabled listener over it. */
export async function startGateway(deps: GatewayListenerDependencies, evidence: GatewayEvidenceChannel): Promise<RunningGateway> {
  const core = await openGatewayCore({ ...deps, evidence });
  let postgres: RunningPostgresListener | undefined;
  let mcp: RunningMcpListener | undefined;
  let kubernetes: RunningKubernetesListener | undefined;
  let ssh: RunningSshListener | undefined;
  let http: RunningHttpListener | undefined;
  try {
    if (deps.loaded.config.gateways.postgres.enabled) postgres = await startPostgresListener(core);
    if (deps.loaded.config.gateways.mcp.enabled) mcp = await startMcpListener(core);
    if (deps.loaded.config.gateways.kubernetes.enabled) kubernetes = await startKubernetesListener(core);
    if (deps.loaded.config.gateways.ssh.enabled) ssh = await startSshListener(core);
    if (deps.loaded.config.gateways.http.enabled) http = await startHttpListener(core);
  } catch (error) {
    await Promise.all([mcp?.close(), kubernetes?.close(), ssh?.close(), http?.close()]);
    await postgres?.close();
    await core.close();
    throw error;
  }
  return {
    core,
    postgres,
    mcp,
    kubernetes,
    ssh,
    http,
    close: async () => {
      await Promise.all([mcp?.close(), kubernetes?.close(), ssh?.close(), http?.close()]);
      await postgres?.close();
      await core.close();
    },
  };
}

/**
 * Nest providers that start the gateway with the service (after the evidence pipeline, which they
 * inject) and stop it first on shutdown. Empty when no listener is enabled.
 */
export function gatewayListenerProviders(deps: GatewayListenerDependencies & { readonly health: HealthRegistry; readonly evidenceToken?: symbol }): Provider[] {
  if (!anyListenerEnabled(deps.loaded)) return [];
  let running: RunningGateway | undefined;
  let ownPipeline: EvidencePipeline | undefined;
  if (deps.loaded.config.gateways.postgres.enabled) {
    deps.health.register({
      name: 'postgres-gateway',
      kind: 'ready',
      check: async () => {
        if (!running?.postgres) throw new Error('the PostgreSQL gateway is not listening yet');
      },
    });
  }
  if (deps.loaded.config.gateways.mcp.enabled) {
    deps.health.register({
      name: 'mcp-gateway',
      kind: 'ready',
      check: async () => {
        if (!running?.mcp) throw new Error('the MCP gateway is not listening yet');
      },
    });
  }
  if (deps.loaded.config.gateways.kubernetes.enabled) {
    deps.health.register({
      name: 'kubernetes-gateway',
      kind: 'ready',
      check: async () => {
        if (!running?.kubernetes) throw new Error('the Kubernetes gateway is not listening yet');
      },
    });
  }
  if (deps.loaded.config.gateways.ssh.enabled) {
    deps.health.register({
      name: 'ssh-gateway',
      kind: 'ready',
      check: async () => {
        if (!running?.ssh) throw new Error('the SSH gateway is not listening yet');
      },
    });
  }

  if (deps.loaded.config.gateways.http.enabled) {
    deps.health.register({
      name: 'http-gateway',
      kind: 'ready',
      check: async () => {
        if (!running?.http) throw new Error('the HTTP gateway is not listening yet');
      },
    });
  }

  @Injectable()
  class GatewayListenersShutdown implements BeforeApplicationShutdown {
    async beforeApplicationShutdown(): Promise<void> {
      const current = running;
      running = undefined;
      await current?.close();
      await ownPipeline?.close();
    }
  }

  return [
    {
      provide: GATEWAY_LISTENERS,
      inject: deps.evidenceToken ? [{ token: deps.evidenceToken, optional: true }] : [],
      useFactory: async (evidence?: GatewayEvidenceChannel) => {
        let chosen = evidence;
        if (!chosen) {
          // No evidence pipeline from the host: record straight into the service's event store.
          ownPipeline = new StoreEvidencePipeline({ store: deps.eventStore, instance: `gateway-${process.pid}` });
          chosen = { pipeline: ownPipeline, strict: deps.loaded.config.pipeline.strict };
        }
        running = await startGateway(deps, chosen);
        return running;
      },
    },
    GatewayListenersShutdown,
  ];
}
