// The approval aggregate: state rebuilt from the events of one `approval-<id>` stream, and the
// decisions taken on it. Pure: no I/O, no clock of its own. The repository appends what a decision
// returns with the stream revision it was taken at, so a decision on stale state never lands.
import { randomUUID } from 'node:crypto';
import {
  formatRfc3339Micros,
  parseRfc3339Micros,
  type Actor,
  type ApprovalCancelled,
  type ApprovalRequested,
  type CustodianEvent,
  type EventPayloads,
  type EventSource,
  type GrantScope,
  type Identity,
} from '@custodian/event-contracts';
import { approvalBindingDigest, type ApprovalOutcome, type ApprovalRequest, type GrantCoverage } from '@custodian/session-pipeline';
import { ApprovalError } from './approval-error.js';

export const APPROVAL_EVENT_TYPES = ['approval.requested', 'approval.granted', 'approval.denied', 'approval.expired', 'approval.cancelled'] as const;
export type ApprovalEventType = (typeof APPROVAL_EVENT_TYPES)[number];
export type ApprovalEvent = Extract<CustodianEvent, { type: ApprovalEventType }>;

export function isApprovalEvent(event: CustodianEvent): event is ApprovalEvent {
  return (APPROVAL_EVENT_TYPES as readonly string[]).includes(event.type);
}

/** Stream of an approval: `approval-<approvalId>`. */
export function approvalStream(approvalId: string): string {
  return `approval-${approvalId}`;
}

/** An event a decision wants appended: its payload and the identity it is bound to. */
export type PendingApprovalEvent = {
  [T in ApprovalEventType]: { readonly type: T; readonly payload: EventPayloads[T]; readonly identity: Identity | null };
}[ApprovalEventType];

/** What a command decided: events to append (possibly none) and, optionally, a refusal to raise after appending them. */
export interface ApprovalDecision {
  readonly events: readonly PendingApprovalEvent[];
  readonly refusal?: ApprovalError;
}

export type ApprovalStatus = 'pending' | 'granted' | 'denied' | 'expired' | 'cancelled';

export interface RecordedDecision {
  readonly approver: Actor;
  readonly justification: string;
  /** RFC 3339 (event time). */
  readonly at: string;
}

export interface GrantRecord {
  readonly grantId: string;
  readonly scope: GrantScope;
  readonly expiresAt?: string;
  /** What a window grant covers (absent on once grants, and on grants recorded before coverage was named: those cover nothing). */
  readonly covers?: GrantCoverage;
}

export type ApprovalResolution =
  | { readonly status: 'granted'; readonly at: string; readonly grant?: GrantRecord }
  | { readonly status: 'denied'; readonly at: string; readonly approver: Actor; readonly justification: string }
  | { readonly status: 'expired'; readonly at: string; readonly expiredAt: string }
  | { readonly status: 'cancelled'; readonly at: string; readonly reason: ApprovalCancelled['reason'] };

export const MAX_JUSTIFICATION_LENGTH = 4096;
const MAX_COMMAND_LENGTH = 65536;
const MAX_PARAMETERS = 65535;
/** Command and parameters together, as JSON: approvers see all of it, so a larger request is refused rather than clipped. */
export const MAX_APPROVAL_COMMAND_BYTES = 1024 * 1024;
export const APPROVAL_LANGUAGES = ['sql', 'shell', 'http', 'mcp', 'llm'] as const;
export type ApprovalLanguage = (typeof APPROVAL_LANGUAGES)[number];
const BINDING_DIGEST = /^sha256:[0-9a-f]{64}$/;
const POLICY_DIGEST = /^[0-9a-f]{64}$/;
const MAX_WINDOW_SECONDS = 86400;

function toActor(identity: Identity): Actor {
  return { subject: identity.subject, issuer: identity.issuer, groups: [...identity.groups] };
}

/**
 * The subject alone decides "same person": subjects are compared across issuers too, so a
 * namesake at another trusted issuer cannot approve either (fail closed).
 */
function samePerson(a: { subject: string }, b: { subject: string }): boolean {
  return a.subject === b.subject;
}

function checkJustification(justification: string): string {
  const trimmed = typeof justification === 'string' ? justification.trim() : '';
  if (trimmed.length === 0) throw new ApprovalError('APPROVAL_JUSTIFICATION_REQUIRED', 'a justification is required to approve or deny');
  if (trimmed.length > MAX_JUSTIFICATION_LENGTH) {
    throw new ApprovalError('APPROVAL_JUSTIFICATION_REQUIRED', `the justification is longer than ${MAX_JUSTIFICATION_LENGTH} characters`);
  }
  return trimmed;
}

/** Checks a gateway's request; the payload of `approval.requested` it becomes. */
export function approvalRequestedPayload(request: ApprovalRequest, nowMicros: bigint): ApprovalRequested {
  const invalid = (why: string): ApprovalError => new ApprovalError('APPROVAL_REQUEST_INVALID', `approval request ${request.approvalId}: ${why}`);
  const groups = [...new Set(request.approverGroups)];
  if (groups.length === 0 || groups.some((g) => typeof g !== 'string' || g.length === 0)) throw invalid('approverGroups must name at least one group');
  if (!Number.isSafeInteger(request.required) || request.required < 1) throw invalid('required must be an integer ≥ 1');
  if (!Number.isSafeInteger(request.timeoutSeconds) || request.timeoutSeconds < 1) throw invalid('timeoutSeconds must be an integer ≥ 1');
  if (typeof request.command !== 'string') throw invalid('command must be text');
  if (request.command.length > MAX_COMMAND_LENGTH) throw invalid(`the command is longer than ${MAX_COMMAND_LENGTH} characters; approvers must see all of it`);
  if (!(APPROVAL_LANGUAGES as readonly string[]).includes(request.language)) throw invalid(`language must be one of ${APPROVAL_LANGUAGES.join(', ')}`);
  const parameters = request.parameters;
  if (parameters !== undefined) {
    if (!Array.isArray(parameters) || parameters.length > MAX_PARAMETERS) throw invalid(`parameters must be a list of at most ${MAX_PARAMETERS} values`);
    if (parameters.some((p) => p !== null && (typeof p !== 'string' || p.length > MAX_COMMAND_LENGTH))) throw invalid(`each parameter must be null or text of at most ${MAX_COMMAND_LENGTH} characters`);
  }
  if (Buffer.byteLength(JSON.stringify([request.command, parameters ?? []])) > MAX_APPROVAL_COMMAND_BYTES) {
    throw invalid(`the command and its parameters are larger than ${MAX_APPROVAL_COMMAND_BYTES} bytes; approvers must see all of it`);
  }
  const policy = request.policy;
  if (!policy || typeof policy.name !== 'string' || policy.name.length === 0 || policy.name.length > 200 || !Number.isSafeInteger(policy.version) || policy.version < 1 || !POLICY_DIGEST.test(policy.digest)) {
    throw invalid('policy must name the policy version (name, version ≥ 1, hex SHA-256 digest)');
  }
  if (typeof request.commandDigest !== 'string' || !BINDING_DIGEST.test(request.commandDigest)) throw invalid('commandDigest must be sha256:<hex>');
  // The digest recorded is the digest of what is recorded: approvers approve exactly what they see.
  const digest = approvalBindingDigest({ identity: request.requester, connection: request.connection, language: request.language, command: request.command, ...(parameters ? { parameters } : {}), policy });
  if (digest !== request.commandDigest) throw invalid('commandDigest is not the binding digest of this requester, connection, language, command, parameters and policy');
  const scope = request.grantScope;
  if (scope.kind === 'window') {
    if (!Number.isSafeInteger(scope.windowSeconds) || (scope.windowSeconds ?? 0) < 1 || (scope.windowSeconds ?? 0) > MAX_WINDOW_SECONDS) {
      throw invalid(`a window grant needs windowSeconds between 1 and ${MAX_WINDOW_SECONDS}`);
    }
  } else if (scope.kind !== 'once') {
    throw invalid('grantScope.kind must be once or window');
  }
  const grantScope: GrantScope = scope.kind === 'window' ? { kind: 'window', windowSeconds: scope.windowSeconds as number } : { kind: 'once' };
  return {
    approvalId: request.approvalId,
    sessionId: request.sessionId,
    commandId: request.commandId,
    command: request.command,
    language: request.language as ApprovalLanguage,
    ...(parameters ? { parameters: [...parameters] } : {}),
    connection: { name: request.connection.name, protocol: request.connection.protocol },
    ruleId: request.ruleId,
    approverGroups: groups as [string, ...string[]],
    required: request.required,
    expiresAt: formatRfc3339Micros(nowMicros + BigInt(request.timeoutSeconds) * 1_000_000n),
    grantScope,
    policy: { name: policy.name, version: policy.version, digest: policy.digest },
    commandDigest: request.commandDigest,
  };
}

export interface ApprovalDecisionOptions {
  /** Grant ids (default: random UUIDs). */
  readonly newId?: () => string;
}

/**
 * One approval, as its stream says it is. Invariants enforced here:
 * - the requester never decides their own request (same subject, any token, any issuer);
 * - only humans holding one of the rule's approver groups *in the identity they present now* decide;
 * - N distinct approvers grant; a single denial denies;
 * - after the deadline, nothing but `approval.expired` can happen; after an outcome, nothing at all.
 */
export class Approval {
  private constructor(
    readonly request: ApprovalRequested,
    readonly requester: Identity,
    readonly requestedAt: string,
    readonly requestedBy: EventSource,
    readonly correlationId: string,
    private revisionValue: number,
    private lastEventIdValue: string,
    private readonly approvalsValue: RecordedDecision[],
    private resolutionValue: ApprovalResolution | undefined,
  ) {}

  /** Rebuilds the aggregate from its stream (in revision order). */
  static replay(events: readonly CustodianEvent[]): Approval {
    const [first, ...rest] = events;
    if (first?.type !== 'approval.requested') throw new ApprovalError('APPROVAL_NOT_FOUND', 'the approval stream does not start with approval.requested');
    if (first.identity === null) throw new ApprovalError('APPROVAL_REQUEST_INVALID', `approval ${first.payload.approvalId} names no requester`);
    const approval = new Approval(first.payload, first.identity, first.occurredAt, first.source, first.correlationId, first.sequence, first.id, [], undefined);
    for (const event of rest) approval.apply(event);
    return approval;
  }

  /** Folds one more event of the stream into the state. Unknown event types are ignored (forward compatible). */
  apply(event: CustodianEvent): void {
    this.revisionValue = event.sequence;
    this.lastEventIdValue = event.id;
    switch (event.type) {
      case 'approval.granted':
        this.approvalsValue.push({ approver: event.payload.approver, justification: event.payload.justification, at: event.occurredAt });
        if (event.payload.final) this.resolutionValue = { status: 'granted', at: event.occurredAt, ...(event.payload.grant ? { grant: event.payload.grant } : {}) };
        break;
      case 'approval.denied':
        this.resolutionValue = { status: 'denied', at: event.occurredAt, approver: event.payload.approver, justification: event.payload.justification };
        break;
      case 'approval.expired':
        this.resolutionValue = { status: 'expired', at: event.occurredAt, expiredAt: event.payload.expiredAt };
        break;
      case 'approval.cancelled':
        this.resolutionValue = { status: 'cancelled', at: event.occurredAt, reason: event.payload.reason };
        break;
      default:
        break;
    }
  }

  get approvalId(): string {
    return this.request.approvalId;
  }

  /** Revision of the stream's last event: the expected revision of the next append. */
  get revision(): number {
    return this.revisionValue;
  }

  get lastEventId(): string {
    return this.lastEventIdValue;
  }

  get status(): ApprovalStatus {
    return this.resolutionValue?.status ?? 'pending';
  }

  get approvals(): readonly RecordedDecision[] {
    return this.approvalsValue;
  }

  get resolution(): ApprovalResolution | undefined {
    return this.resolutionValue;
  }

  get expiresAtMicros(): bigint {
    return parseRfc3339Micros(this.request.expiresAt);
  }

  isOverdue(nowMicros: bigint): boolean {
    return nowMicros >= this.expiresAtMicros;
  }

  /** Whether `identity` may decide this approval, ignoring its state: the reason it may not, or undefined. */
  deciderRefusal(identity: Identity): ApprovalError | undefined {
    if (samePerson(identity, this.requester)) {
      return new ApprovalError('APPROVAL_SELF_DECISION_FORBIDDEN', 'the requester cannot approve or deny their own request');
    }
    if (identity.kind !== 'human') return new ApprovalError('APPROVAL_APPROVER_NOT_HUMAN', `only humans decide approvals (this identity is a ${identity.kind})`);
    if (!identity.groups.some((group) => this.request.approverGroups.includes(group))) {
      return new ApprovalError('APPROVAL_NOT_AN_APPROVER', `approvers must hold one of the groups ${this.request.approverGroups.join(', ')} in the token they present`);
    }
    return undefined;
  }

  /** Refusal for a decision on a non-pending or overdue approval; overdue also records `approval.expired`. */
  private stateRefusal(nowMicros: bigint): ApprovalDecision | undefined {
    if (this.status !== 'pending') {
      return { events: [], refusal: new ApprovalError('APPROVAL_NOT_PENDING', `approval ${this.approvalId} is already ${this.status}`) };
    }
    if (this.isOverdue(nowMicros)) {
      return { events: [this.expiredEvent(null)], refusal: new ApprovalError('APPROVAL_EXPIRED', `approval ${this.approvalId} expired at ${this.request.expiresAt}`) };
    }
    return undefined;
  }

  approve(approver: Identity, justification: string, nowMicros: bigint, options: ApprovalDecisionOptions = {}): ApprovalDecision {
    const text = checkJustification(justification);
    const refused = this.stateRefusal(nowMicros);
    if (refused) return refused;
    const who = this.deciderRefusal(approver);
    if (who) return { events: [], refusal: who };
    if (this.approvalsValue.some((recorded) => samePerson(recorded.approver, approver))) {
      return { events: [], refusal: new ApprovalError('APPROVAL_ALREADY_APPROVED', 'you already approved this request; it needs another approver') };
    }
    const approvals = this.approvalsValue.length + 1;
    const final = approvals >= this.request.required;
    const scope = this.request.grantScope;
    const covers = this.windowCoverage();
    const grant = final
      ? {
          grantId: (options.newId ?? randomUUID)(),
          scope,
          ...(scope.kind === 'window' && scope.windowSeconds !== undefined ? { expiresAt: formatRfc3339Micros(nowMicros + BigInt(scope.windowSeconds) * 1_000_000n) } : {}),
          ...(covers ? { covers } : {}),
        }
      : undefined;
    const digest = this.request.commandDigest;
    return {
      events: [
        {
          type: 'approval.granted',
          identity: approver,
          payload: {
            approvalId: this.approvalId,
            approver: toActor(approver),
            justification: text,
            approvals,
            required: this.request.required,
            final,
            ...(grant ? { grant } : {}),
            ...(digest ? { commandDigest: digest } : {}),
          },
        },
      ],
    };
  }

  deny(approver: Identity, justification: string, nowMicros: bigint): ApprovalDecision {
    const text = checkJustification(justification);
    const refused = this.stateRefusal(nowMicros);
    if (refused) return refused;
    const who = this.deciderRefusal(approver);
    if (who) return { events: [], refusal: who };
    return { events: [{ type: 'approval.denied', identity: approver, payload: { approvalId: this.approvalId, approver: toActor(approver), justification: text } }] };
  }

  /** Records expiry once the deadline passed; a decided approval stays as it is (no event, no refusal). */
  expire(nowMicros: bigint, by: Identity | null): ApprovalDecision {
    if (this.status !== 'pending') return { events: [] };
    if (!this.isOverdue(nowMicros)) {
      return { events: [], refusal: new ApprovalError('APPROVAL_NOT_EXPIRED', `approval ${this.approvalId} expires at ${this.request.expiresAt}`) };
    }
    return { events: [this.expiredEvent(by)] };
  }

  /** Cancels a pending approval (its client is gone); a decided one stays as it is. */
  cancel(reason: ApprovalCancelled['reason'], by: Identity | null): ApprovalDecision {
    if (this.status !== 'pending') return { events: [] };
    return { events: [{ type: 'approval.cancelled', identity: by, payload: { approvalId: this.approvalId, reason } }] };
  }

  /**
   * What a window grant of this request covers: its requester, connection, rule and policy version.
   * A request recorded before it named its policy (v1) gets no coverage, so its grant covers nothing.
   */
  private windowCoverage(): GrantCoverage | undefined {
    const { grantScope, policy, connection, ruleId } = this.request;
    if (grantScope.kind !== 'window' || !policy) return undefined;
    return { identity: { issuer: this.requester.issuer, subject: this.requester.subject }, connection: { name: connection.name, protocol: connection.protocol }, ruleId, policy: { ...policy } };
  }

  private expiredEvent(by: Identity | null): PendingApprovalEvent {
    return { type: 'approval.expired', identity: by, payload: { approvalId: this.approvalId, expiredAt: this.request.expiresAt } };
  }

  /** The outcome a waiting gateway acts on; undefined while pending. */
  toOutcome(): ApprovalOutcome | undefined {
    const resolution = this.resolutionValue;
    if (!resolution) return undefined;
    switch (resolution.status) {
      case 'granted':
        // A request recorded before approvals were bound (v1) has no digest: '' never equals a
        // gateway's digest, so its grant is never acted on (fail closed).
        return { outcome: 'granted', approvers: this.approvalsValue.map((a) => a.approver), commandDigest: this.request.commandDigest ?? '', ...(resolution.grant ? { grantId: resolution.grant.grantId } : {}) };
      case 'denied':
        return { outcome: 'denied', approver: resolution.approver, justification: resolution.justification };
      case 'expired':
        return { outcome: 'expired' };
      case 'cancelled':
        return { outcome: 'cancelled', reason: resolution.reason };
    }
  }
}
