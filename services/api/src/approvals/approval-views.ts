// What the approvals routes answer (services/api/openapi.yaml, components.schemas.Approval*). The
// command and parameters are shown as the gateway recorded them (already masked); never re-derived.
import type { Actor, CustodianEvent } from '@custodian/event-contracts';
import type { Approval, ApprovalResolution, ApprovalSummary } from '@custodian/approvals';

/** An approval in list responses: the read model's summary (without its bookkeeping) for this caller. */
export type ApprovalView = Omit<ApprovalSummary, 'revision' | 'resolvedAt'> & {
  /** Whether the caller may approve or deny it now (pending, not overdue, an approver, not the requester, not approved by them yet). */
  readonly canDecide: boolean;
};

export interface ApprovalDecisionView {
  readonly approver: Actor;
  readonly justification: string;
  readonly at: string;
}

export type ApprovalDetailView = ApprovalView & {
  readonly decisions: readonly ApprovalDecisionView[];
  readonly resolution?: ApprovalResolution;
  /** Revision of the approval stream's last event. */
  readonly revision: number;
};

export interface ApprovalListResponse {
  readonly approvals: readonly ApprovalView[];
}

export interface SessionContextEvent {
  readonly revision: number;
  readonly recordedAt: string;
  readonly event: CustodianEvent;
}

export interface ApprovalResponse {
  readonly approval: ApprovalDetailView;
  /** The session so far (its most recent events, oldest first); commands and data in it are masked. */
  readonly session?: {
    readonly sessionId: string;
    readonly stream: string;
    readonly events: readonly SessionContextEvent[];
    /** True when older events of the session were left out. */
    readonly truncated: boolean;
  };
}

export function summaryView(summary: ApprovalSummary, canDecide: boolean): ApprovalView {
  const { revision: _revision, resolvedAt: _resolvedAt, ...view } = summary;
  return { ...view, canDecide };
}

export function detailView(approval: Approval, canDecide: boolean): ApprovalDetailView {
  const r = approval.request;
  return {
    approvalId: r.approvalId,
    status: approval.status,
    sessionId: r.sessionId,
    commandId: r.commandId,
    command: r.command,
    language: r.language,
    ...(r.parameters ? { parameters: r.parameters } : {}),
    ...(r.policy ? { policy: r.policy } : {}),
    ...(r.commandDigest ? { commandDigest: r.commandDigest } : {}),
    connection: r.connection,
    ruleId: r.ruleId,
    requester: approval.requester,
    requestedAt: approval.requestedAt,
    requestedBy: approval.requestedBy,
    expiresAt: r.expiresAt,
    approverGroups: r.approverGroups,
    required: r.required,
    approvals: approval.approvals.length,
    grantScope: r.grantScope,
    canDecide,
    decisions: approval.approvals,
    ...(approval.resolution ? { resolution: approval.resolution } : {}),
    revision: approval.revision,
  };
}
