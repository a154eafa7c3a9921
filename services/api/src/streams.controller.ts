import { Controller, Get, Inject, Param, Query, Req } from '@nestjs/common';
import type { IncomingMessage } from 'node:http';
import type { CustodianEvent, Identity } from '@custodian/event-contracts';
import { EventStoreError, assertValidStreamName, formatPosition, type EventStore, type ReadDirection } from '@custodian/event-store';
import { EVENT_STORE } from '@custodian/service-host';
import { ApiError } from './authentication/api-error.js';
import { principalOf } from './authentication/principal.js';
import { mayViewApproval } from './approvals/approvals.controller.js';
import { EVIDENCE_ACCESS, type EvidenceAccess } from './evidence/evidence-access.js';
import { ConversationBuilder, type ConversationEntry } from './conversation-transcript.js';
import { transcriptEntry, type TranscriptEntry } from './session-transcript.js';

/** Largest page one request may ask for (bounded memory per request). */
export const MAX_EVENTS_PER_PAGE = 1000;
const DEFAULT_EVENTS_PER_PAGE = 100;

export interface StreamEventResponse {
  readonly revision: number;
  /** Global position, `C<commit>/P<prepare>`. */
  readonly position: string;
  readonly recordedAt: string;
  readonly event: CustodianEvent;
}

export interface StreamEventsResponse {
  readonly stream: string;
  readonly events: readonly StreamEventResponse[];
}

/** Most events one conversation view reads (the whole session, decoded in one pass; bounded memory per request). */
export const MAX_CONVERSATION_EVENTS = 50_000;

export interface SessionTranscriptResponse {
  readonly stream: string;
  /** The next page starts here (`fromRevision`); absent at the end of the stream (`view=frames`). */
  readonly nextRevision?: number;
  /** `view=frames` (default): the recorded frames of this page; empty with `view=conversation`. */
  readonly frames: readonly TranscriptEntry[];
  /** `view=conversation`: the session's protocol and its conversation, read from the whole stream. */
  readonly protocol?: string;
  readonly conversation?: readonly ConversationEntry[];
  /** The stream is longer than one conversation view reads: later entries are missing. */
  readonly conversationTruncated?: boolean;
}

function nonNegativeInteger(name: string, raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  if (!/^\d{1,15}$/.test(raw)) throw new ApiError(400, 'STREAM_QUERY_INVALID', `${name} must be a non-negative integer`);
  return Number(raw);
}

function sameIdentity(a: Identity, b: Identity): boolean {
  return a.subject === b.subject && a.issuer === b.issuer;
}

/**
 * Whether a caller outside the auditor groups may read a stream, decided on its first event (the
 * one the gateway or gate wrote when the stream began; never on anything the client sends):
 * a session stream belongs to the identity of its first event; an approval stream is seen by its
 * requester and its approver groups, exactly as `GET /v1/approvals/{id}` decides. Every other
 * stream (policy, grants, authentication, evidence, notifications) is for auditors only.
 */
export function mayReadStream(caller: Identity, stream: string, first: CustodianEvent | undefined): boolean {
  if (!first || first.identity === null) return false;
  if (stream.startsWith('session-')) return sameIdentity(caller, first.identity);
  if (stream.startsWith('approval-')) {
    return first.type === 'approval.requested' && mayViewApproval(caller, { requester: first.identity, approverGroups: first.payload.approverGroups });
  }
  return false;
}

export function asApiError(err: unknown): unknown {
  if (err instanceof EventStoreError && err.code === 'EVENT_STORE_INVALID_REQUEST') return new ApiError(400, 'STREAM_REQUEST_INVALID', err.message);
  if (err instanceof EventStoreError && (err.code === 'EVENT_STORE_UNAVAILABLE' || err.code === 'EVENT_STORE_CLOSED')) {
    return new ApiError(503, 'EVENT_STORE_UNAVAILABLE', 'the event store is unavailable; try again later');
  }
  return err;
}

// Authenticated by the module's AuthenticationGuard (bearer token or session cookie); what each
// identity may read is decided here (auditors: `evidence.auditorGroups`).
@Controller('v1/streams')
export class StreamsController {
  constructor(
    @Inject(EVENT_STORE) private readonly eventStore: EventStore,
    @Inject(EVIDENCE_ACCESS) private readonly access: EvidenceAccess,
  ) {}

  /**
   * A page of a stream's events, oldest first unless `direction=backwards`. Auditors read every
   * stream (an unknown one is empty); anyone else reads the streams of their own sessions and the
   * approvals they requested or may decide, and gets 404 for any other stream, existing or not.
   */
  @Get(':stream/events')
  async events(
    @Req() req: IncomingMessage,
    @Param('stream') stream: string,
    @Query('fromRevision') fromRevisionRaw?: string,
    @Query('maxCount') maxCountRaw?: string,
    @Query('direction') directionRaw?: string,
  ): Promise<StreamEventsResponse> {
    const principal = principalOf(req);
    if (!principal) throw new ApiError(401, 'AUTHENTICATION_REQUIRED', 'not authenticated');
    const caller = principal.identity;
    const fromRevision = nonNegativeInteger('fromRevision', fromRevisionRaw);
    const maxCount = Math.min(nonNegativeInteger('maxCount', maxCountRaw) ?? DEFAULT_EVENTS_PER_PAGE, MAX_EVENTS_PER_PAGE);
    if (directionRaw !== undefined && directionRaw !== 'forwards' && directionRaw !== 'backwards') {
      throw new ApiError(400, 'STREAM_QUERY_INVALID', 'direction must be forwards or backwards');
    }
    const direction: ReadDirection = directionRaw ?? 'forwards';
    try {
      assertValidStreamName(stream);
      const auditorGroups = this.access.evidence?.auditorGroups ?? [];
      if (!caller.groups.some((g) => auditorGroups.includes(g)) && !(await this.#mayRead(caller, stream))) {
        throw new ApiError(404, 'STREAM_NOT_FOUND', `no stream ${stream} that you may read`);
      }
      const events: StreamEventResponse[] = [];
      for await (const recorded of this.eventStore.readStream(stream, { ...(fromRevision !== undefined ? { fromRevision } : {}), maxCount, direction })) {
        events.push({ revision: recorded.revision, position: formatPosition(recorded.position), recordedAt: recorded.recordedAt, event: recorded.event });
      }
      return { stream, events };
    } catch (err) {
      throw asApiError(err);
    }
  }

  /**
   * The replay projection of a session stream: its recorded frames in order (after masking), with
   * JSON-RPC messages decoded for JSON-text protocols (MCP). Same access rule as `events`. A page
   * covers `maxCount` events of the stream (frames and the others around them).
   */
  @Get(':stream/transcript')
  async transcript(
    @Req() req: IncomingMessage,
    @Param('stream') stream: string,
    @Query('fromRevision') fromRevisionRaw?: string,
    @Query('maxCount') maxCountRaw?: string,
    @Query('view') viewRaw?: string,
  ): Promise<SessionTranscriptResponse> {
    const principal = principalOf(req);
    if (!principal) throw new ApiError(401, 'AUTHENTICATION_REQUIRED', 'not authenticated');
    const caller = principal.identity;
    const fromRevision = nonNegativeInteger('fromRevision', fromRevisionRaw) ?? 0;
    const maxCount = Math.min(nonNegativeInteger('maxCount', maxCountRaw) ?? DEFAULT_EVENTS_PER_PAGE, MAX_EVENTS_PER_PAGE);
    if (viewRaw !== undefined && viewRaw !== 'frames' && viewRaw !== 'conversation') throw new ApiError(400, 'STREAM_QUERY_INVALID', 'view must be frames or conversation');
    if (!stream.startsWith('session-')) throw new ApiError(400, 'STREAM_REQUEST_INVALID', 'a transcript is of a session stream (session-<id>)');
    try {
      assertValidStreamName(stream);
      const auditorGroups = this.access.evidence?.auditorGroups ?? [];
      if (!caller.groups.some((g) => auditorGroups.includes(g)) && !(await this.#mayRead(caller, stream))) {
        throw new ApiError(404, 'STREAM_NOT_FOUND', `no stream ${stream} that you may read`);
      }
      if (viewRaw === 'conversation') {
        // Decoded in one pass from the start: a response's bytes may span any number of frames.
        const builder = new ConversationBuilder();
        let read = 0;
        for await (const recorded of this.eventStore.readStream(stream, { fromRevision: 0, maxCount: MAX_CONVERSATION_EVENTS, direction: 'forwards' })) {
          read++;
          builder.push(recorded.revision, recorded.event);
        }
        builder.end();
        return { stream, ...(builder.protocol ? { protocol: builder.protocol } : {}), frames: [], conversation: builder.entries, ...(read === MAX_CONVERSATION_EVENTS ? { conversationTruncated: true } : {}) };
      }
      const frames: TranscriptEntry[] = [];
      let read = 0;
      let last = fromRevision - 1;
      for await (const recorded of this.eventStore.readStream(stream, { fromRevision, maxCount, direction: 'forwards' })) {
        read++;
        last = recorded.revision;
        const entry = transcriptEntry(recorded.revision, recorded.event);
        if (entry) frames.push(entry);
      }
      return { stream, ...(read === maxCount && maxCount > 0 ? { nextRevision: last + 1 } : {}), frames };
    } catch (err) {
      throw asApiError(err);
    }
  }

  /** One event read (revision 0), whatever the stream's length; other categories read nothing. */
  async #mayRead(caller: Identity, stream: string): Promise<boolean> {
    if (!stream.startsWith('session-') && !stream.startsWith('approval-')) return false;
    let first: CustodianEvent | undefined;
    for await (const recorded of this.eventStore.readStream(stream, { fromRevision: 0, maxCount: 1, direction: 'forwards' })) first = recorded.event;
    return mayReadStream(caller, stream, first);
  }
}
