// Runs the evidence Merkle log projection inside the projector: opens the log state, resumes the
// signer and subscribes to the event store; restarts it after a failure; stops (flushing leaves)
// before the store closes.
import { hostname } from 'node:os';
import { Inject, Injectable, type BeforeApplicationShutdown, type OnApplicationBootstrap } from '@nestjs/common';
import type { BusPublisher } from '@custodian/event-bus';
import type { EventStore } from '@custodian/event-store';
import { MerkleLogProjection } from '@custodian/evidence';
import type { ConfiguredEvidence, LoadedSigner } from '@custodian/evidence-host';
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

const describeError = (e: unknown) => (e instanceof Error ? { name: e.name, message: e.message } : String(e));

/** The log's database or the event store could not be reached (as opposed to a log or key that is wrong). */
const isUnavailable = (e: unknown): boolean => {
  const code = (e as { code?: unknown } | undefined)?.code;
  return code === 'EVIDENCE_LOG_UNAVAILABLE' || code === 'EVENT_STORE_UNAVAILABLE';
};

/** Delay before the n-th attempt to restart a failed projection (1 s, doubling, at most 30 s). */
export const restartDelayMs = (attempt: number): number => Math.min(1_000 * 2 ** Math.max(0, attempt - 1), 30_000);

@Injectable()
export class EvidenceLogService implements OnApplicationBootstrap, BeforeApplicationShutdown {
  #projection: MerkleLogProjection | undefined;
  #stopping = false;
  #restartTimer: NodeJS.Timeout | undefined;
  #wakeRestart: (() => void) | undefined;
  #restarting: Promise<void> | undefined;
  #signer: LoadedSigner | undefined;

  constructor(@Inject(EVIDENCE_LOG_OPTIONS) private readonly options: EvidenceLogOptions) {}

  get projection(): MerkleLogProjection | undefined {
    return this.#projection;
  }

  async onApplicationBootstrap(): Promise<void> {
    const { evidence, logger } = this.options;
    const loaded = evidence.loadSigner({ create: true });
    const { signer, created, source } = loaded;
    this.#signer = loaded;
    // Only public facts: the key's name, ID and vkey, and where it was read from.
    if (created) logger.warn({ keyId: formatKeyId(signer.keyId), vkey: signer.vkey }, `created a new evidence log signing key in ${source}: keep it safe and publish the vkey to auditors`);
    try {
      await this.#open();
    } catch (error) {
      // A database that cannot be reached yet is waited for (not ready meanwhile); anything else
      // (a bad key, a log of another origin, a corrupt log) fails the process at start.
      if (!isUnavailable(error)) throw error;
      this.options.status.failure = error;
      logger.warn({ err: describeError(error), store: evidence.store }, 'evidence log database unavailable at start; trying again');
      this.#restarting = this.#reopen();
      return;
    }
    logger.info({ origin: this.#projection!.origin, keyId: formatKeyId(signer.keyId), treeSize: this.#projection!.size, keySource: source, store: evidence.store }, 'evidence log projection started');
  }

  async beforeApplicationShutdown(): Promise<void> {
    this.#stopping = true;
    clearTimeout(this.#restartTimer);
    this.#wakeRestart?.();
    await this.#restarting;
    await this.#projection?.close();
  }

  async #open(): Promise<void> {
    const { evidence, eventStore, logger } = this.options;
    const { signer } = this.#signer!;
    const state = await evidence.openState();
    let projection: MerkleLogProjection;
    try {
      projection = await MerkleLogProjection.open({
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
    this.#projection = projection;
    const subscription = projection.start();
    this.options.status.projection = projection;
    this.options.status.failure = undefined;
    subscription.done.catch((error: unknown) => this.#failed(projection, error));
  }

  /**
   * A running projection stopped (the event store or the log's database was unreachable, say): the
   * projector reports not ready and opens the log again after a delay, resuming from what the log
   * recorded, until it runs again or the process stops. Without this, a distributed projector
   * would stop logging at the first database hiccup and stay up doing nothing.
   */
  #failed(projection: MerkleLogProjection, error: unknown): void {
    if (this.#stopping || this.#projection !== projection) return;
    const { logger, status } = this.options;
    status.failure = error;
    this.#projection = undefined;
    logger.error({ err: describeError(error) }, 'evidence log projection stopped; restarting it');
    this.#restarting = (async () => {
      await projection.close().catch(() => undefined);
      await this.#reopen();
    })();
  }

  /** Opens the log after a delay, again and again (1 s, doubling to 30 s), until it runs or the process stops. */
  async #reopen(): Promise<void> {
    const { logger, status } = this.options;
    for (let attempt = 1; !this.#stopping; attempt += 1) {
      await new Promise<void>((resolve) => {
        this.#wakeRestart = resolve;
        this.#restartTimer = setTimeout(resolve, restartDelayMs(attempt));
      });
      if (this.#stopping) return;
      try {
        await this.#open();
        logger.info({ attempt, treeSize: this.#projection?.size }, 'evidence log projection restarted');
        return;
      } catch (retryError) {
        status.failure = retryError;
        logger.warn({ err: describeError(retryError), attempt }, 'evidence log projection could not restart yet');
      }
    }
  }
}
