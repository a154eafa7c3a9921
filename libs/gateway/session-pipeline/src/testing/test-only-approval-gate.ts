// Test-only stand-in for the approvals workflow behind the ApprovalGate port (the real one lives
// in libs/decisions/approvals). Tests decide each request by hand: grant, deny, or let it expire.
import type { Actor } from '@custodian/event-contracts';
import type { ActiveGrant, ApprovalGate, ApprovalOutcome, ApprovalRequest } from '../index.js';

export class TestOnlyApprovalGate implements ApprovalGate {
  readonly requests: ApprovalRequest[] = [];
  private readonly pending = new Map<string, (outcome: ApprovalOutcome) => void>();
  private readonly waiters: ((request: ApprovalRequest) => void)[] = [];

  async activeGrant(): Promise<ActiveGrant | null> {
    return null;
  }

  request(request: ApprovalRequest, signal: AbortSignal): Promise<ApprovalOutcome> {
    this.requests.push(request);
    return new Promise((resolve) => {
      const timer = setTimeout(() => settle({ outcome: 'expired' }), request.timeoutSeconds * 1000);
      const settle = (outcome: ApprovalOutcome): void => {
        clearTimeout(timer);
        this.pending.delete(request.approvalId);
        resolve(outcome);
      };
      this.pending.set(request.approvalId, settle);
      signal.addEventListener('abort', () => settle({ outcome: 'cancelled', reason: 'client-disconnected' }), { once: true });
      for (const waiter of this.waiters.splice(0)) waiter(request);
    });
  }

  /** The next request (or the latest one already waiting). */
  nextRequest(): Promise<ApprovalRequest> {
    const waiting = [...this.pending.keys()];
    const last = this.requests.findLast((r) => waiting.includes(r.approvalId));
    if (last) return Promise.resolve(last);
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Grants the request as asked; `commandDigest` overrides the digest approved (a grant for another command). */
  grant(approvalId: string, approver: Actor, commandDigest?: string): void {
    const request = this.requests.find((r) => r.approvalId === approvalId);
    if (!request) return;
    this.pending.get(approvalId)?.({ outcome: 'granted', approvers: [approver], commandDigest: commandDigest ?? request.commandDigest });
  }

  deny(approvalId: string, approver: Actor, justification: string): void {
    this.pending.get(approvalId)?.({ outcome: 'denied', approver, justification });
  }
}
