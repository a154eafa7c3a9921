import { Module, type DynamicModule } from '@nestjs/common';
import type { EvidencePipeline } from '@custodian/evidence-pipeline';
import { HealthRegistry } from '@custodian/observability';
import type { LoadedConfig } from '@custodian/runtime-config';
import { serviceCore, serviceWorkProviders, type ServiceDependencies, type ServiceWork } from '@custodian/service-host';
import type { ApprovalGate } from '@custodian/session-pipeline';
import { gatewayListenerProviders } from './gateway-listeners.js';

/** Nest injection token of the gateway's evidence (`GatewayEvidence`): protocol adapters accept events through it. */
export const GATEWAY_EVIDENCE = Symbol.for('@custodian/gateway/evidence');

/** The evidence pipeline and whatever it runs on (the bus), closed together. */
export interface GatewayEvidence extends ServiceWork {
  readonly pipeline: EvidencePipeline;
  /** Strict mode (config `pipeline.strict`): forward a command only once its events are durable. */
  readonly strict: boolean;
}

export interface GatewayDependencies extends ServiceDependencies {
  /** Opens the evidence pipeline at start-up (the composition root decides which one). */
  readonly evidence?: () => Promise<GatewayEvidence>;
  /** The configuration, for the protocol listeners (`gateways.*`); without it none is started. */
  readonly loaded?: LoadedConfig;
  /** The approvals workflow held commands wait on; without it they are refused. */
  readonly approvals?: ApprovalGate;
}

/** Protocol gateway: agents connect here. One gateway core (gateway-core.ts) serves every enabled listener: PostgreSQL now; SSH, HTTP, Anthropic and MCP later. */
@Module({})
export class GatewayModule {
  static register(deps: GatewayDependencies): DynamicModule {
    const health = deps.health ?? new HealthRegistry();
    const core = serviceCore({ ...deps, health });
    const listeners = deps.loaded
      ? gatewayListenerProviders({
          loaded: deps.loaded,
          eventStore: deps.eventStore,
          logger: deps.logger,
          health,
          ...(deps.approvals ? { approvals: deps.approvals } : {}),
          ...(deps.evidence ? { evidenceToken: GATEWAY_EVIDENCE } : {}),
        })
      : [];
    if (!deps.evidence) return { module: GatewayModule, ...core, providers: [...core.providers, ...listeners] };
    let evidence: GatewayEvidence | undefined;
    const open = deps.evidence;
    // Not ready while commands would be refused (spool full or unwritable): fail closed, visibly.
    health.register({
      name: 'evidence-pipeline',
      kind: 'ready',
      check: async () => {
        const status = evidence?.pipeline.status();
        if (!status) throw new Error('the evidence pipeline is not open yet');
        if (!status.accepting) throw new Error(status.refusing?.message ?? 'the evidence pipeline refuses events');
      },
    });
    const providers = serviceWorkProviders(GATEWAY_EVIDENCE, async () => (evidence = await open()));
    return { module: GatewayModule, ...core, providers: [...core.providers, ...providers, ...listeners], exports: [...core.exports, GATEWAY_EVIDENCE] };
  }
}
