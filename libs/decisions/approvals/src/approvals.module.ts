// The approvals workflow as a Nest module for the API: CQRS command handlers on the CommandBus
// (approve, deny, expire, cancel), the read model kept by a checkpointed store subscription, the
// webhook notifier (its own subscription), and a sweeper that records the expiry of approvals
// whose gateway is gone (nobody else would).
import { Inject, Injectable, Module, type BeforeApplicationShutdown, type DynamicModule, type OnApplicationBootstrap } from '@nestjs/common';
import { CqrsModule } from '@nestjs/cqrs';
import type { Clock, EventSource } from '@custodian/event-contracts';
import type { EventStore } from '@custodian/event-store';
import { runProjection, type RunningProjection } from '@custodian/evidence-pipeline';
import { APPROVAL_COMMAND_HANDLERS, APPROVAL_REPOSITORY, ApprovalCommandHandlers, ExpireApprovalCommand } from './approval-commands.js';
import { ApprovalEventDispatcher, ApprovalReadModelProjector, type ApprovalEventHandler } from './approval-events.js';
import { ApprovalReadModel } from './approval-read-model.js';
import { ApprovalRepository } from './approval-repository.js';
import { SILENT_LOGGER, type ApprovalsLogger } from './approvals-logger.js';
import { WebhookNotifier, type WebhookNotifierOptions } from './notifications/webhook-notifier.js';

export interface ApprovalsModuleOptions {
  readonly eventStore: EventStore;
  /** `source` of the events this service writes, e.g. `{ service: 'api', instance }`. */
  readonly source: EventSource;
  /** Read model database: a file, or `:memory:` (rebuilt from the log at every start). Default `:memory:`. */
  readonly readModelPath?: string;
  /** Webhooks; none when omitted or empty. */
  readonly notifications?: Omit<WebhookNotifierOptions, 'eventStore' | 'source' | 'clock' | 'logger'>;
  /**
   * Records `approval.expired` for pending approvals whose deadline passed more than `graceMs` ago
   * (their gateway would have, had it been running). Default every 30 s with 5 s of grace; `false` turns it off.
   */
  readonly sweep?: { readonly intervalMs?: number; readonly graceMs?: number } | false;
  readonly clock?: Clock;
  readonly logger?: ApprovalsLogger;
  /** Handlers called for each approval event after the read model applied it (e.g. live updates to dashboards); awaited, in order. */
  readonly afterReadModel?: readonly ApprovalEventHandler[];
}

const APPROVALS_RUNTIME = Symbol.for('@custodian/approvals/runtime');

/** What the module runs besides its handlers (started on bootstrap, stopped before shutdown). */
export class ApprovalsRuntime {
  readonly readModel: ApprovalReadModel;
  readonly repository: ApprovalRepository;
  readonly notifier: WebhookNotifier | undefined;
  private readonly logger: ApprovalsLogger;
  private projections: RunningProjection[] = [];
  private sweeper: NodeJS.Timeout | undefined;
  private sweeping: Promise<void> | undefined;
  /** Resolves once the read model caught up with the log (after start()). */
  caughtUp: Promise<void> = Promise.resolve();

  constructor(private readonly options: ApprovalsModuleOptions) {
    this.logger = options.logger ?? SILENT_LOGGER;
    this.repository = new ApprovalRepository({ eventStore: options.eventStore, source: options.source, ...(options.clock ? { clock: options.clock } : {}) });
    this.readModel = new ApprovalReadModel(options.readModelPath ?? ':memory:');
    const channels = options.notifications?.channels ?? [];
    this.notifier =
      channels.length > 0
        ? new WebhookNotifier({ ...options.notifications, channels, eventStore: options.eventStore, source: options.source, logger: this.logger, ...(options.clock ? { clock: options.clock } : {}) })
        : undefined;
  }

  start(): void {
    const onError = (what: string) => (error: unknown) => this.logger.error({ err: error }, `${what} failed; restarting it from its checkpoint`);
    const readModel = runProjection(
      this.options.eventStore,
      new ApprovalEventDispatcher(`approvals-read-model-${this.options.source.service}`, [new ApprovalReadModelProjector(this.readModel), ...(this.options.afterReadModel ?? [])]),
      { checkpoints: this.readModel, onError: onError('the approvals read model') },
    );
    this.projections.push(readModel);
    this.caughtUp = readModel.caughtUp;
    if (this.notifier) {
      this.projections.push(runProjection(this.options.eventStore, this.notifier.projection(), { checkpoints: this.notifier.checkpoints, checkpointEvery: 20, onError: onError('the webhook notifier') }));
    }
    const sweep = this.options.sweep;
    if (sweep !== false) {
      const handlers = new ApprovalCommandHandlers(this.repository);
      const graceMs = sweep?.graceMs ?? 5_000;
      this.sweeper = setInterval(() => {
        this.sweeping ??= this.sweepOnce(handlers, graceMs).finally(() => (this.sweeping = undefined));
      }, sweep?.intervalMs ?? 30_000);
      this.sweeper.unref();
    }
  }

  private async sweepOnce(handlers: ApprovalCommandHandlers, graceMs: number): Promise<void> {
    for (const approvalId of this.readModel.overduePending(Number(this.repository.nowMicros() / 1000n), graceMs)) {
      try {
        await handlers.expire.execute(new ExpireApprovalCommand(approvalId));
      } catch (error) {
        this.logger.warn({ err: error, approvalId }, 'could not record the expiry of an overdue approval');
      }
    }
  }

  async stop(): Promise<void> {
    if (this.sweeper) clearInterval(this.sweeper);
    await this.sweeping;
    await this.notifier?.close();
    for (const projection of this.projections) await projection.stop();
    this.projections = [];
    this.readModel.close();
  }
}

@Injectable()
class ApprovalsLifecycle implements OnApplicationBootstrap, BeforeApplicationShutdown {
  constructor(@Inject(APPROVALS_RUNTIME) private readonly runtime: ApprovalsRuntime) {}

  onApplicationBootstrap(): void {
    this.runtime.start();
  }

  async beforeApplicationShutdown(): Promise<void> {
    // Before the event store closes.
    await this.runtime.stop();
  }
}

/**
 * `ApprovalsModule.register(options)`: the CommandBus (global CqrsModule) executes
 * ApproveApprovalCommand, DenyApprovalCommand, ExpireApprovalCommand, CancelApprovalCommand and
 * RequestApprovalCommand; `ApprovalReadModel` and `ApprovalsRuntime` are injectable by class.
 */
@Module({})
export class ApprovalsModule {
  static register(options: ApprovalsModuleOptions): DynamicModule {
    const runtime = new ApprovalsRuntime(options);
    return {
      module: ApprovalsModule,
      imports: [CqrsModule.forRoot()],
      providers: [
        { provide: APPROVALS_RUNTIME, useValue: runtime },
        { provide: ApprovalsRuntime, useValue: runtime },
        { provide: ApprovalReadModel, useValue: runtime.readModel },
        { provide: APPROVAL_REPOSITORY, useValue: runtime.repository },
        ...APPROVAL_COMMAND_HANDLERS,
        ApprovalsLifecycle,
      ],
      exports: [ApprovalsRuntime, ApprovalReadModel, APPROVAL_REPOSITORY],
    };
  }
}
