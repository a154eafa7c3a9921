import { createHash } from 'node:crypto';
import { jcsCanonicalJson, type Actor, type ConnectionRef, type GrantScope, type Identity } from '@custodian/event-contracts';

/** The policy version a decision was taken under (`PolicyDecision.policy`). */
export interface ApprovalPolicyRef {
  readonly name: string;
  readonly version: number;
  /** Hex SHA-256 of the policy document. */
  readonly digest: string;
}

/** A command held for human approval, as the session pipeline hands it to the approval workflow. */
export interface ApprovalRequest {
  /** UUID; the approval's stream is `approval-<approvalId>`. */
  readonly approvalId: string;
  readonly sessionId: string;
  readonly commandId: string;
  /** Who issued the command; never allowed to approve it (whatever token they present). */
  readonly requester: Identity;
  readonly connection: ConnectionRef;
  /**
   * The full command with its literal values (`UPDATE orders SET status = 'shipped' WHERE id = 102`),
   * masked only where a detector or a column rule says so. The gateway masks it before the request:
   * approvers, the API, the CLI and webhooks show exactly this text, never anything else.
   */
  readonly command: string;
  /** Policy language of the command: 'sql' | 'shell' | 'http' | 'mcp' | 'llm'. */
  readonly language: string;
  /** Bound values (e.g. PostgreSQL Bind, `$1` first), masked like `command`; null is SQL NULL. */
  readonly parameters?: readonly (string | null)[];
  /** The policy version whose rule required approval. */
  readonly policy: ApprovalPolicyRef;
  /** `approvalBindingDigest(...)` of what approvers see: a grant answers this digest only. */
  readonly commandDigest: string;
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
  | {
      readonly outcome: 'granted';
      readonly approvers: readonly Actor[];
      /** The digest the approvers approved; the pipeline forwards only when it is the one it asked about. */
      readonly commandDigest: string;
      readonly grantId?: string;
    }
  | { readonly outcome: 'denied'; readonly approver: Actor; readonly justification: string }
  | { readonly outcome: 'expired' }
  | { readonly outcome: 'cancelled'; readonly reason: 'client-disconnected' | 'gateway-restarted' | 'requester-cancelled' };

/** What a window grant covers: commands of this identity on this connection under this rule and this policy version. */
export interface GrantCoverage {
  readonly identity: { readonly issuer: string; readonly subject: string };
  readonly connection: ConnectionRef;
  readonly ruleId: string;
  readonly policy: ApprovalPolicyRef;
}

/** A time-window grant that already covers a command: require-approval does not apply while it lasts. */
export interface ActiveGrant {
  readonly grantId: string;
  readonly approvalId: string;
  /** RFC 3339 UTC. */
  readonly expiresAt: string;
  readonly covers: GrantCoverage;
}

/**
 * The port through which a gateway holds a command for approval. The approvals workflow
 * (event-sourced, over the event store) implements it; the session pipeline only waits on it.
 */
export interface ApprovalGate {
  /**
   * A window grant for this identity on this connection under this rule and this policy version
   * (name, version and digest), if one is active now. A new policy version ends every grant
   * given under an older one.
   */
  activeGrant(identity: Identity, connection: string, ruleId: string, policy: ApprovalPolicyRef): Promise<ActiveGrant | null>;
  /**
   * Records the request (approval.requested), notifies approvers and resolves with the outcome.
   * Aborting `signal` (the client went away) cancels the request (approval.cancelled) and resolves
   * with `cancelled`. Rejects only when the request could not be recorded: the caller fails closed.
   */
  request(request: ApprovalRequest, signal: AbortSignal): Promise<ApprovalOutcome>;
}

/** What an approval is bound to. Extra fields of `identity` / `connection` (groups, kind) are not part of it. */
export interface ApprovalBindingInput {
  readonly identity: { readonly issuer: string; readonly subject: string };
  readonly connection: { readonly name: string; readonly protocol: string };
  readonly language: string;
  readonly command: string;
  readonly parameters?: readonly (string | null)[];
  readonly policy: ApprovalPolicyRef;
}

/**
 * `sha256:<hex>` of the RFC 8785 (JCS) canonical JSON of
 * `{ identity: {issuer, subject}, connection: {name, protocol}, language, command, parameters?, policy: {name, version, digest} }`.
 * A different requester, connection, language, command text, parameter (value, order or count:
 * absent and `[]` differ) or policy version gives a different digest, so a grant never covers
 * a command its approvers did not see. Anyone can recompute it from `approval.requested`.
 */
export function approvalBindingDigest(input: ApprovalBindingInput): string {
  const bound = {
    identity: { issuer: input.identity.issuer, subject: input.identity.subject },
    connection: { name: input.connection.name, protocol: input.connection.protocol },
    language: input.language,
    command: input.command,
    ...(input.parameters === undefined ? {} : { parameters: [...input.parameters] }),
    policy: { name: input.policy.name, version: input.policy.version, digest: input.policy.digest },
  };
  return `sha256:${createHash('sha256').update(jcsCanonicalJson(bound), 'utf8').digest('hex')}`;
}
