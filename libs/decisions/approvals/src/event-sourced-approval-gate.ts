// The ApprovalGate the protocol gateways hold commands on, over the event store. It records
// `approval.requested` (expectedRevision 'no-stream'), then follows the approval's stream until an
// outcome is there; at the deadline it records `approval.expired`, when the client goes away
// `approval.cancelled`. Those appends go through the same optimistic concurrency as the
// approvers' decisions, so whatever the race, the gate resolves with the one outcome the stream holds.
import type { Clock, Identity } from '@custodian/event-contracts';
import type { EventStore } from '@custodian/event-store';
import { runProjection, type RunningProjection } from '@custodian/evidence-pipeline';
import type { ActiveGrant, ApprovalGate, ApprovalOutcome, ApprovalPolicyRef, ApprovalRequest } from '@custodian/session-pipeline';
import { Alarm } from './alarm.js';
import { Approval, approvalStream } from './approval.js';
import { ApprovalCommandHandlers, CancelApprovalCommand, ExpireApprovalCommand, RequestApprovalCommand } from './approval-commands.js';
import { ApprovalError } from './approval-error.js';
import { ApprovalEventDispatcher, ApprovalReadModelProjector } from './approval-events.js';
import { ApprovalReadModel } from './approval-read-model.js';
import { ApprovalRepository } from './approval-repository.js';
import { SILENT_LOGGER, type ApprovalsLogger } from './approvals-logger.js';

export interface EventSourcedApprovalGateOptions {
  readonly eventStore: EventStore;
  /**
   * This gateway instance's name, the same after a restart (e.g. `gw-1`, or `<host>:<port>`): the
   * `source.instance` of its events. Approvals it requested and left pending are cancelled
   * (`gateway-restarted`) when a gate with the same instance starts.
   */
  readonly instance: string;
  /** The read model (window grants, own pending approvals): a SQLite file, or `:memory:` (rebuilt from the log at every start). Default `:memory:`. */
  readonly readModelPath?: string;
  /** How often a waiting request reads its approval stream for decisions (default 250 ms); an event of it read by the live projection wakes it sooner. */
  readonly pollIntervalMs?: number;
  readonly clock?: Clock;
  readonly logger?: ApprovalsLogger;
}

export type ApprovalGateErrorCode = 'APPROVAL_GATE_CLOSED' | 'APPROVAL_GATE_NOT_STARTED';

export class ApprovalGateError extends Error {
  override readonly name = 'ApprovalGateError';
  constructor(
    readonly code: ApprovalGateErrorCode,
    message: string,
  ) {
    super(message);
  }
}

type Interruption = 'client-disconnected' | 'gateway-restarted';

interface Waiting {
  readonly approvalId: string;
  interrupt(reason: Interruption): void;
  /** Reads the approval stream again now: the projection saw an event of it. */
  wake(): void;
  readonly done: Promise<ApprovalOutcome>;
}

export class EventSourcedApprovalGate implements ApprovalGate {
  readonly readModel: ApprovalReadModel;
  readonly repository: ApprovalRepository;
  readonly handlers: ApprovalCommandHandlers;
  private readonly pollIntervalMs: number;
  private readonly logger: ApprovalsLogger;
  private readonly waiting = new Set<Waiting>();
  private projection: RunningProjection | undefined;
  private closing: Promise<void> | undefined;

  constructor(private readonly options: EventSourcedApprovalGateOptions) {
    this.repository = new ApprovalRepository({ eventStore: options.eventStore, source: { service: 'gateway', instance: options.instance }, ...(options.clock ? { clock: options.clock } : {}) });
    this.handlers = new ApprovalCommandHandlers(this.repository);
    this.readModel = new ApprovalReadModel(options.readModelPath ?? ':memory:');
    this.pollIntervalMs = options.pollIntervalMs ?? 250;
    this.logger = options.logger ?? SILENT_LOGGER;
  }

  /**
   * Starts the grants projection, waits until it caught up with the log, then cancels the
   * approvals this instance requested before a restart and that are still pending (their clients
   * were disconnected when it stopped; nothing will ever execute them). Resolves with their ids.
   */
  async start(): Promise<string[]> {
    if (this.closing) throw new ApprovalGateError('APPROVAL_GATE_CLOSED', 'the approval gate is closed');
    this.projection ??= runProjection(
      this.options.eventStore,
      new ApprovalEventDispatcher(`approvals-gateway-${this.options.instance}`, [new ApprovalReadModelProjector(this.readModel), { handle: (recorded) => this.wakeWaiting(recorded.recorded.stream) }]),
      { checkpoints: this.readModel, onError: (error) => this.logger.error({ err: error }, 'approvals read model projection failed; restarting it') },
    );
    await this.projection.caughtUp;
    this.readModel.pruneGrants();
    const leftovers = this.readModel.pendingRequestedBy(this.repository.source).filter((id) => ![...this.waiting].some((w) => w.approvalId === id));
    const cancelled: string[] = [];
    for (const approvalId of leftovers) {
      try {
        const { approval } = await this.handlers.cancel.execute(new CancelApprovalCommand(approvalId, 'gateway-restarted'));
        if (approval.status === 'cancelled') cancelled.push(approvalId);
      } catch (error) {
        this.logger.error({ err: error, approvalId }, 'could not cancel an approval left pending by a restart');
      }
    }
    if (cancelled.length > 0) this.logger.warn({ approvals: cancelled }, `cancelled ${cancelled.length} approval(s) whose clients were disconnected by a gateway restart`);
    return cancelled;
  }

  async activeGrant(identity: Identity, connection: string, ruleId: string, policy: ApprovalPolicyRef): Promise<ActiveGrant | null> {
    return this.readModel.activeGrant(identity, connection, ruleId, policy, Number(this.repository.nowMicros() / 1000n));
  }

  async request(request: ApprovalRequest, signal: AbortSignal): Promise<ApprovalOutcome> {
    if (this.closing) throw new ApprovalGateError('APPROVAL_GATE_CLOSED', 'the gateway is shutting down; the command was not executed');
    // Rejects when the request cannot be recorded: the caller fails closed.
    const requested = await this.handlers.request.execute(new RequestApprovalCommand(request));
    const approval = Approval.replay([requested]);
    const alarm = new Alarm();
    let interruption: Interruption | undefined;
    const interrupt = (reason: Interruption): void => {
      interruption ??= reason;
      alarm.wake();
    };
    const onAbort = (): void => interrupt('client-disconnected');
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
    if (this.closing) interrupt('gateway-restarted');
    const done = this.follow(approval, request.requester, alarm, () => interruption).finally(() => {
      signal.removeEventListener('abort', onAbort);
      this.waiting.delete(waiting);
    });
    const waiting: Waiting = { approvalId: request.approvalId, interrupt, wake: () => alarm.wake(), done };
    this.waiting.add(waiting);
    return done;
  }

  /** Follows the approval's stream until it holds an outcome, recording expiry or cancellation when due. */
  private async follow(start: Approval, requester: Identity, alarm: Alarm, interruption: () => Interruption | undefined): Promise<ApprovalOutcome> {
    let approval = start;
    const approvalId = approval.approvalId;
    const stream = approvalStream(approvalId);
    for (;;) {
      try {
        for await (const recorded of this.options.eventStore.readStream(stream, { fromRevision: approval.revision + 1 })) approval.apply(recorded.event);
      } catch (error) {
        // A store hiccup: keep waiting; the deadline still ends the wait.
        this.logger.warn({ err: error, approvalId }, 'could not read the approval stream; retrying');
      }
      const decided = approval.toOutcome();
      if (decided) return this.resolved(approvalId, decided);

      const now = this.repository.nowMicros();
      const reason = interruption();
      if (reason !== undefined || approval.isOverdue(now)) {
        try {
          const result =
            reason !== undefined
              ? await this.handlers.cancel.execute(new CancelApprovalCommand(approvalId, reason, reason === 'client-disconnected' ? requester : undefined))
              : await this.handlers.expire.execute(new ExpireApprovalCommand(approvalId));
          approval = result.approval;
          const outcome = approval.toOutcome();
          if (outcome) return this.resolved(approvalId, outcome);
        } catch (error) {
          if (!(error instanceof ApprovalError && error.code === 'APPROVAL_NOT_EXPIRED')) {
            // Could not record it: still never execute the command (fail closed).
            this.logger.error({ err: error, approvalId }, 'could not record the end of a held command; it is not executed');
            return reason !== undefined ? { outcome: 'cancelled', reason } : { outcome: 'expired' };
          }
        }
        continue;
      }
      const untilDeadline = Number((approval.expiresAtMicros - now) / 1000n) + 1;
      await alarm.sleep(Math.min(this.pollIntervalMs, Math.max(untilDeadline, 0)));
    }
  }

  /**
   * A decision reaches a waiting request as soon as the live projection reads it (the store wakes
   * its subscriptions at a commit, also one made by another thread's store on the same database),
   * not only at the request's next poll.
   */
  private wakeWaiting(stream: string): void {
    for (const w of this.waiting) if (approvalStream(w.approvalId) === stream) w.wake();
  }

  private async resolved(approvalId: string, outcome: ApprovalOutcome): Promise<ApprovalOutcome> {
    if (outcome.outcome === 'granted') {
      // Window grants count from the next command on: do not wait for the projection to see them.
      try {
        for (const recorded of await this.repository.readRecorded(approvalId)) this.readModel.apply(recorded);
      } catch (error) {
        this.logger.warn({ err: error, approvalId }, 'could not read the grant back; the projection will pick it up');
      }
    }
    return outcome;
  }

  /**
   * Shutdown: every client still waiting gets `cancelled` (`gateway-restarted`, recorded), so the
   * gateway can tell it why before closing; then the projection stops. Idempotent.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      const waits = [...this.waiting];
      for (const w of waits) w.interrupt('gateway-restarted');
      await Promise.allSettled(waits.map((w) => w.done));
      await this.projection?.stop();
      this.readModel.close();
    })();
    return this.closing;
  }
}
