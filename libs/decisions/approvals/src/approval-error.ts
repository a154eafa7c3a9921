export type ApprovalErrorCode =
  /** The request itself is malformed (no approver group, required < 1, bad window, …): the gateway fails closed. */
  | 'APPROVAL_REQUEST_INVALID'
  /** An approval with this id already exists (with other content). */
  | 'APPROVAL_ALREADY_EXISTS'
  | 'APPROVAL_NOT_FOUND'
  | 'APPROVAL_ID_INVALID'
  /** Approve/deny without a justification (blank or longer than 4096 characters). */
  | 'APPROVAL_JUSTIFICATION_REQUIRED'
  /** The requester tried to decide their own request (same subject, whatever token). */
  | 'APPROVAL_SELF_DECISION_FORBIDDEN'
  /** The approver's current token holds none of the rule's approver groups. */
  | 'APPROVAL_NOT_AN_APPROVER'
  /** Only humans decide: agents and services cannot approve or deny. */
  | 'APPROVAL_APPROVER_NOT_HUMAN'
  /** This approver already approved (N-of-M counts distinct approvers). */
  | 'APPROVAL_ALREADY_APPROVED'
  /** The approval was already decided (granted, denied, expired or cancelled). */
  | 'APPROVAL_NOT_PENDING'
  /** The deadline passed; the approval is now recorded as expired. */
  | 'APPROVAL_EXPIRED'
  /** Expire was asked before the deadline. */
  | 'APPROVAL_NOT_EXPIRED'
  /** Optimistic concurrency kept failing (the stream changed on every retry). */
  | 'APPROVAL_CONFLICT';

/** A refused approval command. Messages never contain the command text or tokens. */
export class ApprovalError extends Error {
  override readonly name = 'ApprovalError';
  constructor(
    readonly code: ApprovalErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
