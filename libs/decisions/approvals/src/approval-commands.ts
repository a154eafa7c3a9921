// The write side as NestJS CQRS commands and command handlers. Each handler loads the aggregate
// from its stream, decides, and appends with optimistic concurrency (ApprovalRepository): the
// store append is the commit point. Handlers are plain classes too, so a gateway that is not a
// Nest app (or a test) runs the very same code without a CommandBus.
import { Inject, Optional } from '@nestjs/common';
import { CommandHandler, type ICommandHandler } from '@nestjs/cqrs';
import type { ApprovalCancelled, CustodianEvent, Identity } from '@custodian/event-contracts';
import type { ApprovalRequest } from '@custodian/session-pipeline';
import { approvalRequestedPayload, type Approval, type ApprovalDecisionOptions } from './approval.js';
import type { ApprovalRepository, ExecutedDecision } from './approval-repository.js';

/** Nest injection token of the ApprovalRepository. */
export const APPROVAL_REPOSITORY = Symbol.for('@custodian/approvals/repository');
/** Optional Nest injection token of ApprovalDecisionOptions (e.g. deterministic grant ids in tests). */
export const APPROVAL_DECISION_OPTIONS = Symbol.for('@custodian/approvals/decision-options');

export class RequestApprovalCommand {
  constructor(readonly request: ApprovalRequest) {}
}

export class ApproveApprovalCommand {
  constructor(
    readonly approvalId: string,
    /** The approver as verified on this request (current token): groups are checked now. */
    readonly approver: Identity,
    readonly justification: string,
  ) {}
}

export class DenyApprovalCommand {
  constructor(
    readonly approvalId: string,
    readonly approver: Identity,
    readonly justification: string,
  ) {}
}

export class ExpireApprovalCommand {
  constructor(readonly approvalId: string) {}
}

export class CancelApprovalCommand {
  constructor(
    readonly approvalId: string,
    readonly reason: ApprovalCancelled['reason'],
    /** Who went away (the requester for client-disconnected); the service itself when undefined. */
    readonly by?: Identity,
  ) {}
}

@CommandHandler(RequestApprovalCommand)
export class RequestApprovalHandler implements ICommandHandler<RequestApprovalCommand, CustodianEvent> {
  constructor(@Inject(APPROVAL_REPOSITORY) private readonly repository: ApprovalRepository) {}

  execute({ request }: RequestApprovalCommand): Promise<CustodianEvent> {
    const payload = approvalRequestedPayload(request, this.repository.nowMicros());
    return this.repository.create({ type: 'approval.requested', identity: request.requester, payload });
  }
}

@CommandHandler(ApproveApprovalCommand)
export class ApproveApprovalHandler implements ICommandHandler<ApproveApprovalCommand, ExecutedDecision> {
  constructor(
    @Inject(APPROVAL_REPOSITORY) private readonly repository: ApprovalRepository,
    @Optional() @Inject(APPROVAL_DECISION_OPTIONS) private readonly options: ApprovalDecisionOptions = {},
  ) {}

  execute({ approvalId, approver, justification }: ApproveApprovalCommand): Promise<ExecutedDecision> {
    return this.repository.execute(approvalId, (approval: Approval, now) => approval.approve(approver, justification, now, this.options));
  }
}

@CommandHandler(DenyApprovalCommand)
export class DenyApprovalHandler implements ICommandHandler<DenyApprovalCommand, ExecutedDecision> {
  constructor(@Inject(APPROVAL_REPOSITORY) private readonly repository: ApprovalRepository) {}

  execute({ approvalId, approver, justification }: DenyApprovalCommand): Promise<ExecutedDecision> {
    return this.repository.execute(approvalId, (approval, now) => approval.deny(approver, justification, now));
  }
}

@CommandHandler(ExpireApprovalCommand)
export class ExpireApprovalHandler implements ICommandHandler<ExpireApprovalCommand, ExecutedDecision> {
  constructor(@Inject(APPROVAL_REPOSITORY) private readonly repository: ApprovalRepository) {}

  execute({ approvalId }: ExpireApprovalCommand): Promise<ExecutedDecision> {
    return this.repository.execute(approvalId, (approval, now) => approval.expire(now, null));
  }
}

@CommandHandler(CancelApprovalCommand)
export class CancelApprovalHandler implements ICommandHandler<CancelApprovalCommand, ExecutedDecision> {
  constructor(@Inject(APPROVAL_REPOSITORY) private readonly repository: ApprovalRepository) {}

  execute({ approvalId, reason, by }: CancelApprovalCommand): Promise<ExecutedDecision> {
    return this.repository.execute(approvalId, (approval) => approval.cancel(reason, by ?? null));
  }
}

export const APPROVAL_COMMAND_HANDLERS = [RequestApprovalHandler, ApproveApprovalHandler, DenyApprovalHandler, ExpireApprovalHandler, CancelApprovalHandler] as const;

/** The command handlers bound to one repository, for callers outside a Nest container. */
export class ApprovalCommandHandlers {
  readonly request: RequestApprovalHandler;
  readonly approve: ApproveApprovalHandler;
  readonly deny: DenyApprovalHandler;
  readonly expire: ExpireApprovalHandler;
  readonly cancel: CancelApprovalHandler;

  constructor(readonly repository: ApprovalRepository, options: ApprovalDecisionOptions = {}) {
    this.request = new RequestApprovalHandler(repository);
    this.approve = new ApproveApprovalHandler(repository, options);
    this.deny = new DenyApprovalHandler(repository);
    this.expire = new ExpireApprovalHandler(repository);
    this.cancel = new CancelApprovalHandler(repository);
  }
}
