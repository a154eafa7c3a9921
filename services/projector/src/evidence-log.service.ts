// Runs the evidence Merkle log projection inside the projector: opens the log state, resumes the
// signer and subscribes to the event store; stops (flushing leaves) before the store closes.
import { hostname } from 'node:os';
import { Inject, Injectable, type BeforeApplicationShutdown, type OnApplicationBootstrap } from '@nestjs/common';
import type { BusPublisher } from '@custodian/event-bus';
import type { EventStore } from '@custodian/event-store';
import { MerkleLogProjection } from '@custodian/evidence';
import type { ConfiguredEvidence } from '@custodian/evidence-host';
import { formatKeyId } from '@custodian/transparency-log';
import type { Logger } from '@custodian/observability';

export const EVIDENCE_LOG_OPTIONS = Symbol.for('@custodian/projector-service/evidence-log-options');

export interface EvidenceLogOptions {
  readonly evidence: ConfiguredEvidence;
  readonly eventStore: EventStore;
  readonly logger: Logger;
  /** Publishes each signed checkpoint on custodian.checkpoints.v1 (the composition root's bus). */
  readonly checkpointPublisher?: BusPublisher;
  readonly instance?: string;
  /** Shared with the readiness check. */
  readonly status: EvidenceLogStatus;
}

export interface EvidenceLogStatus {
  projection?: MerkleLogProjection;
  failure?: unknown;
}

/** Throws while the projection is not running (readiness). */
export function checkEvidenceLog(status: EvidenceLogStatus): void {
  if (status.failure) throw new Error(`evidence log projection failed: ${status.failure instanceof Error ? status.failure.message : String(status.failure)}`);
  if (!status.projection) throw new Error('evidence log projection not started');
}

@Injectable()
export class EvidenceLogService implements OnApplicationBootstrap, BeforeApplicationShutdown {
  #projection: MerkleLogProjection | undefined;

  constructor(@Inject(EVIDENCE_LOG_OPTIONS) private readonly options: EvidenceLogOptions) {}

  get projection(): MerkleLogProjection | undefined {
    return this.#projection;
  }

  async onApplicationBootstrap(): Promise<void> {
    const { evidence, eventStore, logger } = this.options;
    const { signer, created, source } = evidence.loadSigner({ create: true });
    // Only public facts: the key's name, ID and vkey, and where it was read from.
    if (created) logger.warn({ keyId: formatKeyId(signer.keyId), vkey: signer.vkey }, `created a new evidence log signing key in ${source}: keep it safe and publish the vkey to auditors`);
    const state = await evidence.openState();
    try {
      this.#projection = await MerkleLogProjection.open({
        eventStore,
        state,
        signer,
        previousKeys: evidence.previousKeys,
        policy: evidence.policy,
        ...(this.options.checkpointPublisher ? { publisher: this.options.checkpointPublisher } : {}),
        instance: this.options.instance ?? `${hostname()}:${process.pid}`,
        logger,
      });
    } catch (error) {
      await state.close();
      throw error;
    }
    const subscription = this.#projection.start();
    this.options.status.projection = this.#projection;
    subscription.done.catch((error: unknown) => {
      this.options.status.failure = error;
      logger.error({ err: error instanceof Error ? { name: error.name, message: error.message } : String(error) }, 'evidence log projection stopped');
    });
    logger.info({ origin: this.#projection.origin, keyId: formatKeyId(signer.keyId), treeSize: this.#projection.size, keySource: source }, 'evidence log projection started');
  }

  async beforeApplicationShutdown(): Promise<void> {
    await this.#projection?.close();
  }
}
