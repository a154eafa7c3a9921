import { Body, Controller, Get, HttpCode, Inject, Param, Post, Query, Req } from '@nestjs/common';
import { CommandBus } from '@nestjs/cqrs';
import type { IncomingMessage } from 'node:http';
import type { Identity } from '@custodian/event-contracts';
import {
  APPROVAL_REPOSITORY,
  ApprovalError,
  ApprovalReadModel,
  ApproveApprovalCommand,
  DenyApprovalCommand,
  assertApprovalId,
  type Approval,
  type ApprovalErrorCode,
  type ApprovalRepository,
  type ApprovalStatus,
  type ExecutedDecision,
} from '@custodian/approvals';
import { EventStoreError, type EventStore } from '@custodian/event-store';
import { EVENT_STORE } from '@custodian/service-host';
import { ApiError } from '../authentication/api-error.js';
import { principalOf } from '../authentication/principal.js';
import { detailView, summaryView, type ApprovalListResponse, type ApprovalResponse, type SessionContextEvent } from './approval-views.js';

/** How much of the session an approver sees with a request (its most recent events). */
export const SESSION_CONTEXT_EVENTS = 200;
const STATUSES: readonly (ApprovalStatus | 'all')[] = ['pending', 'granted', 'denied', 'expired', 'cancelled', 'all'];

const HTTP_STATUS: Readonly<Record<ApprovalErrorCode, number>> = {
  APPROVAL_REQUEST_INVALID: 400,
  APPROVAL_ID_INVALID: 400,
  APPROVAL_JUSTIFICATION_REQUIRED: 400,
  APPROVAL_NOT_FOUND: 404,
  APPROVAL_SELF_DECISION_FORBIDDEN: 403,
  APPROVAL_NOT_AN_APPROVER: 403,
  APPROVAL_APPROVER_NOT_HUMAN: 403,
  APPROVAL_ALREADY_EXISTS: 409,
  APPROVAL_ALREADY_APPROVED: 409,
  APPROVAL_NOT_PENDING: 409,
  APPROVAL_EXPIRED: 409,
  APPROVAL_NOT_EXPIRED: 409,
  APPROVAL_CONFLICT: 409,
};

function toApiError(error: unknown): unknown {
  if (error instanceof ApprovalError) return new ApiError(HTTP_STATUS[error.code], error.code, error.message);
  if (error instanceof EventStoreError && (error.code === 'EVENT_STORE_UNAVAILABLE' || error.code === 'EVENT_STORE_CLOSED')) {
    return new ApiError(503, 'EVENT_STORE_UNAVAILABLE', 'the event store is unavailable; try again later');
  }
  return error;
}

function callerOf(req: IncomingMessage): Identity {
  const principal = principalOf(req);
  if (!principal) throw new ApiError(401, 'AUTHENTICATION_REQUIRED', 'not authenticated');
  return principal.identity;
}

/**
 * Approvers (any of the approver groups) and the requester see an approval; nobody else learns it
 * exists. The same rule decides who reads the approval's stream (GET /v1/streams/approval-<id>/events).
 */
export function mayViewApproval(caller: Identity, approval: { readonly approverGroups: readonly string[]; readonly requester: Identity }): boolean {
  return caller.subject === approval.requester.subject || caller.groups.some((g) => approval.approverGroups.includes(g));
}

function justificationOf(body: unknown): string {
  const value = typeof body === 'object' && body !== null ? (body as { justification?: unknown }).justification : undefined;
  if (typeof value !== 'string') throw new ApiError(400, 'APPROVAL_JUSTIFICATION_REQUIRED', 'send { "justification": "<why>" }');
  return value;
}

/**
 * The approver API. Reads come from the approvals read model (the queue) and the approval's own
 * stream (details); approve and deny go through the CommandBus to the aggregate, whose append to
 * the approval stream (optimistic concurrency) is the commit point. Groups are checked on the
 * identity authenticated for this request (the bearer token presented now, or the session).
 */
@Controller('v1/approvals')
export class ApprovalsController {
  constructor(
    @Inject(CommandBus) private readonly commands: CommandBus,
    @Inject(ApprovalReadModel) private readonly readModel: ApprovalReadModel,
    @Inject(APPROVAL_REPOSITORY) private readonly repository: ApprovalRepository,
    @Inject(EVENT_STORE) private readonly eventStore: EventStore,
  ) {}

  /** Approvals the caller may see, newest first: pending (default, not yet overdue) or by status. */
  @Get()
  list(@Req() req: IncomingMessage, @Query('status') statusRaw?: string, @Query('limit') limitRaw?: string): ApprovalListResponse {
    const caller = callerOf(req);
    const status = (statusRaw ?? 'pending') as ApprovalStatus | 'all';
    if (!STATUSES.includes(status)) throw new ApiError(400, 'APPROVAL_STATUS_INVALID', `status must be one of ${STATUSES.join(', ')}`);
    if (limitRaw !== undefined && !/^\d{1,4}$/.test(limitRaw)) throw new ApiError(400, 'APPROVAL_LIMIT_INVALID', 'limit must be an integer between 1 and 1000');
    const limit = limitRaw === undefined ? 100 : Math.min(Math.max(Number(limitRaw), 1), 1000);
    const now = Date.now();
    // Filtered after the query, so a page holds at most `limit`; approvers usually see all of them.
    const approvals = this.readModel
      .list({ status, limit: 1000, nowMs: now })
      .filter((summary) => mayViewApproval(caller, summary))
      .slice(0, limit)
      .map((summary) => {
        const canDecide =
          summary.status === 'pending' &&
          Date.parse(summary.expiresAt) > now &&
          caller.kind === 'human' &&
          caller.subject !== summary.requester.subject &&
          caller.groups.some((g) => summary.approverGroups.includes(g));
        return summaryView(summary, canDecide);
      });
    return { approvals };
  }

  /** One approval from its stream, with the session so far. */
  @Get(':approvalId')
  async show(@Req() req: IncomingMessage, @Param('approvalId') approvalId: string): Promise<ApprovalResponse> {
    const caller = callerOf(req);
    try {
      assertApprovalId(approvalId);
      const approval = await this.repository.load(approvalId);
      if (!approval || !mayViewApproval(caller, { approverGroups: approval.request.approverGroups, requester: approval.requester })) {
        throw new ApprovalError('APPROVAL_NOT_FOUND', `no approval ${approvalId} that you may see`);
      }
      const sessionId = approval.request.sessionId;
      const stream = `session-${sessionId}`;
      const events: SessionContextEvent[] = [];
      for await (const r of this.eventStore.readStream(stream, { direction: 'backwards', maxCount: SESSION_CONTEXT_EVENTS })) {
        events.push({ revision: r.revision, recordedAt: r.recordedAt, event: r.event });
      }
      events.reverse();
      return {
        approval: detailView(approval, this.canDecide(approval, caller)),
        session: { sessionId, stream, events, truncated: (events[0]?.revision ?? 0) > 0 },
      };
    } catch (error) {
      throw toApiError(error);
    }
  }

  /** Approves (one of N); 409 when it was decided, expired or cancelled meanwhile. */
  @Post(':approvalId/approve')
  @HttpCode(200)
  approve(@Req() req: IncomingMessage, @Param('approvalId') approvalId: string, @Body() body: unknown): Promise<ApprovalResponse> {
    const caller = callerOf(req);
    return this.decide(caller, approvalId, () => this.commands.execute(new ApproveApprovalCommand(approvalId, caller, justificationOf(body))));
  }

  /** Denies; one denial ends the approval. */
  @Post(':approvalId/deny')
  @HttpCode(200)
  deny(@Req() req: IncomingMessage, @Param('approvalId') approvalId: string, @Body() body: unknown): Promise<ApprovalResponse> {
    const caller = callerOf(req);
    return this.decide(caller, approvalId, () => this.commands.execute(new DenyApprovalCommand(approvalId, caller, justificationOf(body))));
  }

  private async decide(caller: Identity, approvalId: string, run: () => Promise<ExecutedDecision>): Promise<ApprovalResponse> {
    try {
      assertApprovalId(approvalId);
      const { approval } = await run();
      return { approval: detailView(approval, this.canDecide(approval, caller)) };
    } catch (error) {
      throw toApiError(error);
    }
  }

  private canDecide(approval: Approval, caller: Identity): boolean {
    return (
      approval.status === 'pending' &&
      !approval.isOverdue(this.repository.nowMicros()) &&
      approval.deciderRefusal(caller) === undefined &&
      !approval.approvals.some((a) => a.approver.subject === caller.subject)
    );
  }
}
