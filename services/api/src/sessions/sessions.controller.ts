import { Controller, Get, Inject, Injectable, Param, Query, Req, type BeforeApplicationShutdown, type OnApplicationBootstrap } from '@nestjs/common';
import type { IncomingMessage } from 'node:http';
import { ApprovalReadModel } from '@custodian/approvals';
import type { Identity } from '@custodian/event-contracts';
import { EventStoreError, type EventStore, type Subscription } from '@custodian/event-store';
import type { Logger } from '@custodian/observability';
import { EVENT_STORE } from '@custodian/service-host';
import { ApiError } from '../authentication/api-error.js';
import { principalOf } from '../authentication/principal.js';
import { EVIDENCE_ACCESS, asApiError as asEvidenceApiError, type EvidenceAccess } from '../evidence/evidence-access.js';
import { evidenceReport } from '../evidence/evidence.controller.js';
import { CHANGE_FEED, type ChangeFeed } from '../live/change-feed.js';
import { buildQueryTimeline, type TimelineCommand } from './query-timeline.js';
import type { SessionDecisionFilter, SessionReadModel, SessionState, SessionSummary } from './session-read-model.js';

export const SESSION_READ_MODEL = Symbol.for('@custodian/api-service/session-read-model');
export const SESSIONS_LOGGER = Symbol.for('@custodian/api-service/sessions-logger');

const DEFAULT_PAGE = 50;
const MAX_PAGE = 500;
/** Events of a session stream one timeline page reads at most (plus the rest of the command in hand, bounded likewise). */
export const TIMELINE_EVENTS_PER_PAGE = 2_000;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const DECISIONS: readonly SessionDecisionFilter[] = ['blocked', 'held', 'masked', 'allowed-only'];
const STATES: readonly SessionState[] = ['live', 'quiet', 'ended'];
/** `findings=true` without `from` looks this far back from `to`. */
export const FINDINGS_DEFAULT_PERIOD_MS = 30 * 24 * 3_600_000;
/** How long the sessions with findings of one period are reused (paging through them reads the log once). */
const FINDINGS_CACHE_MS = 10_000;

export interface SessionListResponse {
  readonly sessions: readonly SessionSummary[];
  /** Pass as `cursor` for the next (older) page; absent on the last page. */
  readonly nextCursor?: string;
}

export interface SessionResponse {
  readonly session: SessionSummary;
}

export interface SessionTimelineResponse {
  readonly sessionId: string;
  readonly commands: readonly TimelineCommand[];
  readonly nextRevision: number | null;
}

function invalid(message: string): ApiError {
  return new ApiError(400, 'SESSION_QUERY_INVALID', message);
}

function timeParam(name: string, raw: string | undefined): number | undefined {
  if (raw === undefined || raw === '') return undefined;
  const ms = Date.parse(raw);
  if (!Number.isFinite(ms) || !/^\d{4}-\d{2}-\d{2}/.test(raw)) throw invalid(`${name} must be an RFC 3339 date-time`);
  return ms;
}

function encodeCursor(session: SessionSummary): string {
  return Buffer.from(JSON.stringify({ t: Date.parse(session.openedAt), id: session.sessionId })).toString('base64url');
}

function decodeCursor(raw: string): { openedAtMs: number; sessionId: string } {
  try {
    const parsed = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8')) as { t?: unknown; id?: unknown };
    if (typeof parsed.t === 'number' && Number.isSafeInteger(parsed.t) && typeof parsed.id === 'string' && UUID.test(parsed.id)) return { openedAtMs: parsed.t, sessionId: parsed.id };
  } catch {
    // fall through
  }
  throw invalid('cursor is not one this API returned');
}

/** Keeps the sessions read model following the log (catch-up, then live); started with the app, stopped before the store closes. */
@Injectable()
export class SessionsProjection implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private subscription: Subscription | undefined;

  constructor(
    @Inject(EVENT_STORE) private readonly eventStore: EventStore,
    @Inject(SESSION_READ_MODEL) private readonly readModel: SessionReadModel,
    @Inject(SESSIONS_LOGGER) private readonly logger: Logger,
    @Inject(CHANGE_FEED) private readonly changes: ChangeFeed,
  ) {}

  onApplicationBootstrap(): void {
    // Not awaited: a long log catches up in the background; the list fills as it does.
    this.subscription = this.eventStore.subscribeToAll({
      subscriptionId: 'api-sessions-read-model',
      from: 'checkpoint',
      checkpoints: this.readModel,
      handler: (recorded) => {
        this.readModel.apply(recorded);
        // After the model changed, so a dashboard refetching on the notice reads the new state.
        if (recorded.stream.startsWith('session-')) this.changes.publish({ kind: 'session', sessionId: recorded.stream.slice('session-'.length) });
        else if (recorded.event.type === 'approval.requested') this.changes.publish({ kind: 'session', sessionId: recorded.event.payload.sessionId });
      },
    });
    this.subscription.done.catch((error: unknown) => this.logger.error({ err: error }, 'the sessions read model stopped following the event log'));
  }

  async beforeApplicationShutdown(): Promise<void> {
    await this.subscription?.stop();
    this.readModel.close();
  }
}

// Authenticated by the module's guard. Auditors (`evidence.auditorGroups`) see every session; anyone
// else sees their own sessions and the sessions of approvals their groups may decide (the same
// people GET /v1/approvals/{id} shows "the session so far" to). Others: 404, as for a missing one.
@Controller('v1/sessions')
export class SessionsController {
  constructor(
    @Inject(EVENT_STORE) private readonly eventStore: EventStore,
    @Inject(SESSION_READ_MODEL) private readonly readModel: SessionReadModel,
    @Inject(EVIDENCE_ACCESS) private readonly access: EvidenceAccess,
    @Inject(ApprovalReadModel) private readonly approvals: ApprovalReadModel,
  ) {}

  @Get()
  async list(
    @Req() req: IncomingMessage,
    @Query('identity') subject?: string,
    @Query('connection') connection?: string,
    @Query('protocol') protocol?: string,
    @Query('from') from?: string,
    @Query('to') to?: string,
    @Query('decision') decision?: string,
    @Query('live') live?: string,
    @Query('limit') limitRaw?: string,
    @Query('cursor') cursor?: string,
    @Query('state') state?: string,
    @Query('findings') findings?: string,
  ): Promise<SessionListResponse> {
    const caller = this.#caller(req);
    if (decision !== undefined && !DECISIONS.includes(decision as SessionDecisionFilter)) throw invalid(`decision must be one of ${DECISIONS.join(', ')}`);
    if (live !== undefined && live !== 'true' && live !== 'false') throw invalid('live must be true or false');
    if (state !== undefined && !STATES.includes(state as SessionState)) throw invalid(`state must be one of ${STATES.join(', ')}`);
    if (findings !== undefined && findings !== 'true') throw invalid('findings must be true');
    if (limitRaw !== undefined && !/^\d{1,4}$/.test(limitRaw)) throw invalid('limit must be an integer');
    const limit = Math.min(Math.max(limitRaw === undefined ? DEFAULT_PAGE : Number(limitRaw), 1), MAX_PAGE);
    const fromMs = timeParam('from', from);
    const toMs = timeParam('to', to);
    const nonEmpty = (value: string | undefined): string | undefined => (value === undefined || value === '' ? undefined : value);
    const withFindings = findings === 'true' ? await this.#sessionsWithFindings(fromMs, toMs) : undefined;
    const sessions = this.readModel.list({
      ...(nonEmpty(subject) !== undefined ? { subject: subject as string } : {}),
      ...(nonEmpty(connection) !== undefined ? { connection: connection as string } : {}),
      ...(nonEmpty(protocol) !== undefined ? { protocol: protocol as string } : {}),
      ...(fromMs !== undefined ? { fromMs } : {}),
      ...(toMs !== undefined ? { toMs } : {}),
      ...(decision !== undefined ? { decision: decision as SessionDecisionFilter } : {}),
      ...(live !== undefined ? { live: live === 'true' } : {}),
      ...(state !== undefined ? { state: state as SessionState } : {}),
      ...(withFindings !== undefined ? { sessionIds: withFindings } : {}),
      ...(cursor ? { after: decodeCursor(cursor) } : {}),
      limit: limit + 1,
      ...(this.#isAuditor(caller) ? {} : { visibleTo: caller }),
    });
    const page = sessions.slice(0, limit);
    const last = page[page.length - 1];
    return { sessions: page, ...(sessions.length > limit && last ? { nextCursor: encodeCursor(last) } : {}) };
  }

  @Get(':sessionId')
  one(@Req() req: IncomingMessage, @Param('sessionId') sessionId: string): SessionResponse {
    return { session: this.#visibleSession(this.#caller(req), sessionId) };
  }

  /** The query timeline (a replay projection of the session stream), one bounded page at a time. */
  @Get(':sessionId/timeline')
  async timeline(@Req() req: IncomingMessage, @Param('sessionId') sessionId: string, @Query('fromRevision') fromRaw?: string): Promise<SessionTimelineResponse> {
    this.#visibleSession(this.#caller(req), sessionId);
    if (fromRaw !== undefined && !/^\d{1,15}$/.test(fromRaw)) throw invalid('fromRevision must be a non-negative integer');
    try {
      const events = this.eventStore.readStream(`session-${sessionId}`, { fromRevision: fromRaw === undefined ? 0 : Number(fromRaw), maxCount: TIMELINE_EVENTS_PER_PAGE * 2, direction: 'forwards' });
      const page = await buildQueryTimeline(events, TIMELINE_EVENTS_PER_PAGE);
      // Held commands carry their approval's outcome (approvals live in their own streams).
      const byCommand = new Map<string, NonNullable<TimelineCommand['approval']>>();
      for (const approvalId of this.readModel.approvalIds(sessionId)) {
        const approval = this.approvals.get(approvalId);
        if (approval) byCommand.set(approval.commandId, { approvalId, status: approval.status, approvals: approval.approvals, required: approval.required, ...(approval.resolvedAt ? { resolvedAt: approval.resolvedAt } : {}) });
      }
      const commands = page.commands.map((c) => {
        const approval = byCommand.get(c.commandId);
        return approval ? { ...c, approval } : c;
      });
      return { sessionId, commands, nextRevision: page.nextRevision };
    } catch (error) {
      if (error instanceof EventStoreError && (error.code === 'EVENT_STORE_UNAVAILABLE' || error.code === 'EVENT_STORE_CLOSED')) {
        throw new ApiError(503, 'EVENT_STORE_UNAVAILABLE', 'the event store is unavailable; try again later');
      }
      throw error;
    }
  }

  #findingsCache: { key: string; at: number; sessionIds: string[] } | undefined;

  /**
   * Sessions named by a finding of the evidence views (the Controls page's findings) in
   * [from, to): the same definition, computed by the same pass over the checkpointed log.
   */
  async #sessionsWithFindings(fromMs: number | undefined, toMs: number | undefined): Promise<string[]> {
    const to = new Date(toMs ?? Date.now());
    const from = new Date(fromMs ?? to.getTime() - FINDINGS_DEFAULT_PERIOD_MS);
    // Cached by period rounded to the second: paging through the list reads the log once.
    const key = `${Math.floor(from.getTime() / 1000)}|${Math.floor(to.getTime() / 1000)}`;
    const cached = this.#findingsCache;
    if (cached && cached.key === key && Date.now() - cached.at < FINDINGS_CACHE_MS) return cached.sessionIds;
    if (from >= to) throw invalid('from must be before to');
    const report = await evidenceReport(this.access, this.eventStore, { from: from.toISOString(), to: to.toISOString() }).catch(asEvidenceApiError);
    const sessionIds = [...new Set(report.findings.flatMap((f) => (f.sessionId ? [f.sessionId] : [])))];
    this.#findingsCache = { key, at: Date.now(), sessionIds };
    return sessionIds;
  }

  #caller(req: IncomingMessage): Identity {
    const principal = principalOf(req);
    if (!principal) throw new ApiError(401, 'AUTHENTICATION_REQUIRED', 'not authenticated');
    return principal.identity;
  }

  #isAuditor(caller: Identity): boolean {
    const auditorGroups = this.access.evidence?.auditorGroups ?? [];
    return caller.groups.some((g) => auditorGroups.includes(g));
  }

  #visibleSession(caller: Identity, sessionId: string): SessionSummary {
    if (!UUID.test(sessionId)) throw new ApiError(400, 'SESSION_ID_INVALID', 'sessionId must be a UUID');
    const session = this.readModel.get(sessionId);
    if (!session || (!this.#isAuditor(caller) && !this.readModel.visibleTo(session, caller))) {
      throw new ApiError(404, 'SESSION_NOT_FOUND', `no session ${sessionId} that you may see`);
    }
    return session;
  }
}
