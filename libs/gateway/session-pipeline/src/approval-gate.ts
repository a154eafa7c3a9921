import type { Actor, ConnectionRef, GrantScope, Identity } from '@custodian/event-contracts';

/** A command held for human approval, as the session pipeline hands it to the approval workflow. */
export interface ApprovalRequest {
  /** UUID; the approval's stream is `approval-<approvalId>`. */
  readonly approvalId: string;
  readonly sessionId: string;
  readonly commandId: string;
  /** Who issued the command; never allowed to approve it (whatever token they present). */
  readonly requester: Identity;
  readonly connection: ConnectionRef;
  /** The command as approvers see it: normalized and masked, never raw literals or secrets. */
  readonly command: string;
  /** The policy rule that required approval. */
  readonly ruleId: string;
  /** Approvers must hold one of these groups at decision time. */
  readonly approverGroups: readonly string[];
  /** N of N-of-M. */
  readonly required: number;
  /** How long the client waits before the request expires. */
  readonly timeoutSeconds: number;
  readonly grantScope: GrantScope;
}

export type ApprovalOutcome =
  | { readonly outcome: 'granted'; readonly approvers: readonly Actor[]; readonly grantId?: string }
  | { readonly outcome: 'denied'; readonly approver: Actor; readonly justification: string }
  | { readonly outcome: 'expired' }
  | { readonly outcome: 'cancelled'; readonly reason: 'client-disconnected' | 'gateway-restarted' | 'requester-cancelled' };

/** A time-window grant that already covers a command: require-approval does not apply while it lasts. */
export interface ActiveGrant {
  readonly grantId: string;
  readonly approvalId: string;
  /** RFC 3339 UTC. */
  readonly expiresAt: string;
}

/**
 * The port through which a gateway holds a command for approval. The approvals workflow
 * (event-sourced, over the event store) implements it; the session pipeline only waits on it.
 */
export interface ApprovalGate {
  /** A window grant for this identity on this connection under this rule, if one is active now. */
  activeGrant(identity: Identity, connection: string, ruleId: string): Promise<ActiveGrant | null>;
  /**
   * Records the request (approval.requested), notifies approvers and resolves with the outcome.
   * Aborting `signal` (the client went away) cancels the request (approval.cancelled) and resolves
   * with `cancelled`. Rejects only when the request could not be recorded: the caller fails closed.
   */
  request(request: ApprovalRequest, signal: AbortSignal): Promise<ApprovalOutcome>;
}
