// The read side as NestJS CQRS event handlers, fed by the event store, never by the in-process bus:
// a checkpointed subscription (runProjection) hands each stored approval event to the handlers
// and awaits them, so a checkpoint never covers an event whose handling did not finish. Delivery
// is at-least-once; every handler is idempotent.
import { EventsHandler, type IEventHandler } from '@nestjs/cqrs';
import type { RecordedEvent } from '@custodian/event-store';
import type { Projection } from '@custodian/evidence-pipeline';
import { isApprovalEvent, type ApprovalEvent } from './approval.js';
import type { ApprovalReadModel } from './approval-read-model.js';

/** A committed approval event, as read from the store. */
export class ApprovalEventRecorded {
  constructor(readonly recorded: RecordedEvent & { readonly event: ApprovalEvent }) {}

  get event(): ApprovalEvent {
    return this.recorded.event;
  }
}

export type ApprovalEventHandler = IEventHandler<ApprovalEventRecorded>;

/** Keeps the approvals read model (approver queue, outcomes, window grants) up to date. */
@EventsHandler(ApprovalEventRecorded)
export class ApprovalReadModelProjector implements ApprovalEventHandler {
  constructor(private readonly readModel: ApprovalReadModel) {}

  handle({ recorded }: ApprovalEventRecorded): void {
    this.readModel.apply(recorded);
  }
}

/** A projection (for runProjection) that hands each stored approval event to event handlers, one after the other, awaited. */
export class ApprovalEventDispatcher implements Projection {
  constructor(
    readonly name: string,
    private readonly handlers: readonly ApprovalEventHandler[],
  ) {}

  async handle(recorded: RecordedEvent): Promise<void> {
    const event = recorded.event;
    if (!isApprovalEvent(event)) return;
    const message = new ApprovalEventRecorded({ ...recorded, event });
    for (const handler of this.handlers) await handler.handle(message);
  }
}
