// In-process notices that something a dashboard shows has changed: a session (its summary, timeline
// or replay) or an approval. Published by the projections right after their read model applied the
// event, so a client that refetches on a notice reads the new state. Notices carry ids only; what
// the caller may see is decided per connection (live-updates.controller.ts) and again by the
// endpoints the client refetches.
import type {
  ApprovalEventHandler,
  ApprovalEventRecorded,
} from "@custodian/approvals";

/** Nest token of the process's ChangeFeed. */
export const CHANGE_FEED = Symbol.for("@custodian/api-service/change-feed");

export type ChangeNotice =
  | { readonly kind: "session"; readonly sessionId: string }
  | { readonly kind: "approval"; readonly approvalId: string };

export type ChangeListener = (notice: ChangeNotice) => void;

export class ChangeFeed {
  private readonly listeners = new Set<ChangeListener>();

  /** Returns the unsubscribe function. */
  subscribe(listener: ChangeListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  get subscribers(): number {
    return this.listeners.size;
  }

  publish(notice: ChangeNotice): void {
    for (const listener of this.listeners) {
      try {
        listener(notice);
      } catch {
        // A listener's failure is that connection's problem; the projections keep going.
      }
    }
  }

  /** For ApprovalsModuleOptions.afterReadModel: a notice per approval event, after the approvals read model applied it. */
  approvalHandler(): ApprovalEventHandler {
    return {
      handle: ({ event }: ApprovalEventRecorded): void => {
        this.publish({
          kind: "approval",
          approvalId: event.payload.approvalId,
        });
      },
    };
  }
}
