// GET /v1/live: server-sent events telling a dashboard what to refetch, instead of polling:
// `event: approval` (`{"approvalId","sessionId"}`) when an approval the caller may see was requested
// or changed, `event: session` (`{"sessionId"}`) when a session the caller may see changed. The
// same visibility as GET /v1/approvals/{id} and GET /v1/sessions/{id}; ids only, never content. A
// connection ends after MAX_CONNECTION_MS so EventSource reconnects and the caller's session cookie
// or token is checked again; `retry:` tells it how soon.
import { Controller, Get, Inject, Req, Res } from "@nestjs/common";
import type { IncomingMessage, ServerResponse } from "node:http";
import { ApprovalReadModel } from "@custodian/approvals";
import type { Identity } from "@custodian/event-contracts";
import { ApiError } from "../authentication/api-error.js";
import { principalOf } from "../authentication/principal.js";
import { mayViewApproval } from "../approvals/approvals.controller.js";
import {
  EVIDENCE_ACCESS,
  type EvidenceAccess,
} from "../evidence/evidence-access.js";
import { SESSION_READ_MODEL } from "../sessions/sessions.controller.js";
import type { SessionReadModel } from "../sessions/session-read-model.js";
import {
  CHANGE_FEED,
  type ChangeFeed,
  type ChangeNotice,
} from "./change-feed.js";

/** Notices for one id within this window are sent once (a busy session records many events a second). */
export const COALESCE_MS = 250;
const KEEPALIVE_MS = 15_000;
/** Longest one connection lasts before the client reconnects (and is authenticated again). */
export const MAX_CONNECTION_MS = 5 * 60_000;
const RECONNECT_MS = 1_000;

@Controller("v1/live")
export class LiveUpdatesController {
  constructor(
    @Inject(CHANGE_FEED) private readonly feed: ChangeFeed,
    @Inject(SESSION_READ_MODEL) private readonly sessions: SessionReadModel,
    @Inject(ApprovalReadModel) private readonly approvals: ApprovalReadModel,
    @Inject(EVIDENCE_ACCESS) private readonly access: EvidenceAccess,
  ) {}

  @Get()
  stream(@Req() req: IncomingMessage, @Res() res: ServerResponse): void {
    const principal = principalOf(req);
    if (!principal)
      throw new ApiError(401, "AUTHENTICATION_REQUIRED", "not authenticated");
    const caller = principal.identity;
    const auditor = caller.groups.some((g) =>
      (this.access.evidence?.auditorGroups ?? []).includes(g),
    );
    res.writeHead(200, {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-cache, no-transform",
      "x-accel-buffering": "no",
    });
    res.write(`retry: ${RECONNECT_MS}\nevent: ready\ndata: {}\n\n`);
    // Pending notices by key; flushed together, each checked against the caller's visibility then.
    const pending = new Map<string, ChangeNotice>();
    let flushTimer: NodeJS.Timeout | undefined;
    const flush = (): void => {
      flushTimer = undefined;
      let text = "";
      for (const notice of pending.values())
        text += this.#message(caller, auditor, notice);
      pending.clear();
      if (text !== "") res.write(text);
    };
    const unsubscribe = this.feed.subscribe((notice) => {
      pending.set(
        notice.kind === "session"
          ? `s:${notice.sessionId}`
          : `a:${notice.approvalId}`,
        notice,
      );
      flushTimer ??= setTimeout(flush, COALESCE_MS);
    });
    const keepAlive = setInterval(
      () => res.write(": keep-alive\n\n"),
      KEEPALIVE_MS,
    );
    const lifetime = setTimeout(() => res.end(), MAX_CONNECTION_MS);
    res.on("close", () => {
      unsubscribe();
      clearInterval(keepAlive);
      clearTimeout(lifetime);
      if (flushTimer) clearTimeout(flushTimer);
    });
  }

  /** The SSE message for one notice, or '' when the caller may not see its subject. */
  #message(caller: Identity, auditor: boolean, notice: ChangeNotice): string {
    if (notice.kind === "approval") {
      const approval = this.approvals.get(notice.approvalId);
      if (!approval || !mayViewApproval(caller, approval)) return "";
      return `event: approval\ndata: ${JSON.stringify({ approvalId: approval.approvalId, sessionId: approval.sessionId })}\n\n`;
    }
    const session = this.sessions.get(notice.sessionId);
    if (!session || (!auditor && !this.sessions.visibleTo(session, caller)))
      return "";
    return `event: session\ndata: ${JSON.stringify({ sessionId: session.sessionId })}\n\n`;
  }
}
