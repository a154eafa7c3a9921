import { Module, type DynamicModule, type Provider } from '@nestjs/common';
import type { BusPublisher } from '@custodian/event-bus';
import type { ConfiguredEvidence } from '@custodian/evidence-host';
import { HealthRegistry } from '@custodian/observability';
import { serviceCore, serviceWorkProviders, type ServiceDependencies, type ServiceWork } from '@custodian/service-host';
import { EVIDENCE_LOG_OPTIONS, EvidenceLogService, checkEvidenceLog, type EvidenceLogStatus } from './evidence-log.service.js';

export const SIEM_WORK = Symbol.for('@custodian/projector/siem');
export const CHECKPOINT_PUBLISHING = Symbol.for('@custodian/projector/checkpoint-publishing');

/** A publisher for custodian.checkpoints.v1 and what it holds open (the standalone projector's own bus). */
export interface CheckpointPublishing extends ServiceWork {
  readonly publisher: BusPublisher;
}

export interface ProjectorDependencies extends ServiceDependencies {
  /** The evidence Merkle log (config `evidence`); absent: no log projection. */
  readonly evidence?: ConfiguredEvidence;
  /** Publishes each signed checkpoint on custodian.checkpoints.v1 (a publisher of the host's bus). */
  readonly checkpointPublisher?: BusPublisher;
  /** Or: opens its own publisher at start and closes it at shutdown (standalone projector). */
  readonly checkpoints?: () => Promise<CheckpointPublishing>;
  readonly instance?: string;
  /** Starts the SIEM projection (OCSF to custodian.siem.ocsf.v1). */
  readonly siem?: () => Promise<ServiceWork>;
}

/** Projector: builds evidence views, Merkle checkpoints, replay streams and the SIEM feed from the event store. */
@Module({})
export class ProjectorModule {
  static register(deps: ProjectorDependencies): DynamicModule {
    const health = deps.health ?? new HealthRegistry();
    const core = serviceCore({ ...deps, health });
    const providers: Provider[] = [...core.providers];
    if (deps.evidence) {
      const status: EvidenceLogStatus = {};
      health.register({ name: 'evidence-log', kind: 'ready', check: () => checkEvidenceLog(status) });
      const checkpoints = deps.checkpoints;
      if (checkpoints) providers.push(...serviceWorkProviders(CHECKPOINT_PUBLISHING, checkpoints));
      providers.push(
        {
          provide: EVIDENCE_LOG_OPTIONS,
          // The publishing work is started (its bus open) before the log service bootstraps.
          useFactory: (publishing?: CheckpointPublishing) => {
            const publisher = deps.checkpointPublisher ?? publishing?.publisher;
            return {
              evidence: deps.evidence,
              eventStore: deps.eventStore,
              logger: deps.logger,
              status,
              ...(publisher ? { checkpointPublisher: publisher } : {}),
              ...(deps.instance ? { instance: deps.instance } : {}),
            };
          },
          inject: checkpoints ? [CHECKPOINT_PUBLISHING] : [],
        },
        EvidenceLogService,
      );
    }
    if (deps.siem) providers.push(...serviceWorkProviders(SIEM_WORK, deps.siem));
    return { module: ProjectorModule, ...core, providers };
  }
}
