// A session's terminal channel as an asciicast recording (asciinema): v3 by default, `?format=v2`
// for older players. Projected from the session stream's frame.recorded events (recorded after
// masking, so the replay shows what the client saw). Who may read it: exactly who may read the
// session stream through `GET /v1/streams/{stream}/events` (auditors; the session's own identity).
import { Controller, Get, Header, Inject, Param, Query, Req, Res } from '@nestjs/common';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import type { CustodianEvent, FrameRecorded } from '@custodian/event-contracts';
import type { EventStore } from '@custodian/event-store';
import { isReplayFrame, LiveAsciicastProjector, ReplayError, terminalFramesFor, toAsciicast } from '@custodian/replay';
import { EVENT_STORE } from '@custodian/service-host';
import { ApiError } from './authentication/api-error.js';
import { principalOf } from './authentication/principal.js';
import { EVIDENCE_ACCESS, type EvidenceAccess } from './evidence/evidence-access.js';
import { asApiError, mayReadStream } from './streams.controller.js';

/** Most recorded terminal frame bytes (base64) one replay holds: bounded memory per request. */
export const MAX_REPLAY_FRAME_BYTES = 256 * 1024 * 1024;
/** How often a live replay looks for new events, and how long it stays quiet before a keep-alive comment. */
export const LIVE_POLL_MS = 200;
const LIVE_KEEPALIVE_MS = 15_000;
const SESSION_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

@Controller('v1/sessions')
export class ReplayController {
  constructor(
    @Inject(EVENT_STORE) private readonly eventStore: EventStore,
    @Inject(EVIDENCE_ACCESS) private readonly access: EvidenceAccess,
  ) {}

  /**
   * A live session's terminal channel as server-sent events, in the shape asciinema-player's
   * `eventsource` driver reads (`data: {cols, rows, time}` then `data: [time, code, data]`), from
   * the session's start; `event: done` once the session has closed. Same visibility as the replay.
   */
  @Get(':sessionId/replay/live')
  async live(@Req() req: IncomingMessage, @Res() res: ServerResponse, @Param('sessionId') sessionId: string, @Query('channel') channelRaw?: string): Promise<void> {
    const principal = principalOf(req);
    if (!principal) throw new ApiError(401, 'AUTHENTICATION_REQUIRED', 'not authenticated');
    if (!SESSION_ID.test(sessionId)) throw new ApiError(400, 'REPLAY_QUERY_INVALID', 'the session id must be a UUID');
    if (channelRaw !== undefined && !/^\d{1,9}$/.test(channelRaw)) throw new ApiError(400, 'REPLAY_QUERY_INVALID', 'channel must be a non-negative integer');
    const stream = `session-${sessionId.toLowerCase()}`;
    const caller = principal.identity;
    const auditor = caller.groups.some((g) => (this.access.evidence?.auditorGroups ?? []).includes(g));
    try {
      let first: CustodianEvent | undefined;
      for await (const recorded of this.eventStore.readStream(stream, { fromRevision: 0, maxCount: 1, direction: 'forwards' })) first = recorded.event;
      if (!first || (!auditor && !mayReadStream(caller, stream, first))) throw new ApiError(404, 'SESSION_NOT_FOUND', `no session ${sessionId} that you may read`);
    } catch (err) {
      throw asApiError(err);
    }
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache, no-transform', 'x-accel-buffering': 'no' });
    let gone = false;
    res.on('close', () => (gone = true));
    const write = async (text: string): Promise<void> => {
      if (!res.write(text) && !gone) await new Promise<void>((resolve) => { res.once('drain', resolve); res.once('close', resolve); });
    };
    const projector = new LiveAsciicastProjector(channelRaw === undefined ? undefined : Number(channelRaw));
    let next = 0;
    // Kubernetes exec frames carry their channel byte: brought to the terminal convention first.
    let toTerminal = terminalFramesFor(undefined);
    let quietSince = Date.now();
    try {
      while (!gone) {
        let progressed = false;
        for await (const recorded of this.eventStore.readStream(stream, { fromRevision: next, maxCount: 500, direction: 'forwards' })) {
          next = recorded.revision + 1;
          progressed = true;
          const event = recorded.event;
          if (event.type === 'session.opened') toTerminal = terminalFramesFor(event.payload.connection.protocol);
          const frame = event.type === 'frame.recorded' ? toTerminal(event.payload) : undefined;
          if (frame) for (const message of projector.push(frame)) await write(`data: ${JSON.stringify(message)}\n\n`);
          if (event.type === 'session.closed') {
            await write('event: done\ndata: {}\n\n');
            res.end();
            return;
          }
          if (gone) return;
        }
        if (progressed) quietSince = Date.now();
        else {
          if (Date.now() - quietSince >= LIVE_KEEPALIVE_MS) {
            await write(': keep-alive\n\n');
            quietSince = Date.now();
          }
          await sleep(LIVE_POLL_MS);
        }
      }
    } catch {
      // Headers are sent: the stream just ends; the player's EventSource reconnects from the start.
      res.end();
    }
  }

  @Get(':sessionId/replay')
  @Header('content-type', 'application/x-asciicast; charset=utf-8')
  async replay(@Req() req: IncomingMessage, @Param('sessionId') sessionId: string, @Query('channel') channelRaw?: string, @Query('format') formatRaw?: string): Promise<string> {
    const principal = principalOf(req);
    if (!principal) throw new ApiError(401, 'AUTHENTICATION_REQUIRED', 'not authenticated');
    if (!SESSION_ID.test(sessionId)) throw new ApiError(400, 'REPLAY_QUERY_INVALID', 'the session id must be a UUID');
    if (channelRaw !== undefined && !/^\d{1,9}$/.test(channelRaw)) throw new ApiError(400, 'REPLAY_QUERY_INVALID', 'channel must be a non-negative integer');
    if (formatRaw !== undefined && formatRaw !== 'v3' && formatRaw !== 'v2') throw new ApiError(400, 'REPLAY_QUERY_INVALID', 'format must be v3 or v2');
    const stream = `session-${sessionId.toLowerCase()}`;
    const caller = principal.identity;
    const auditor = caller.groups.some((g) => (this.access.evidence?.auditorGroups ?? []).includes(g));
    const notFound = new ApiError(404, 'SESSION_NOT_FOUND', `no session ${sessionId} that you may read`);
    try {
      let first: CustodianEvent | undefined;
      let openedAt: string | undefined;
      let toTerminal = terminalFramesFor(undefined);
      const frames: FrameRecorded[] = [];
      let bytes = 0;
      for await (const recorded of this.eventStore.readStream(stream, { fromRevision: 0, direction: 'forwards' })) {
        const event = recorded.event;
        if (!first) {
          first = event;
          // The same rule as the stream endpoint, decided on the first event before anything else is read.
          if (!auditor && !mayReadStream(caller, stream, first)) throw notFound;
        }
        if (event.type === 'session.opened') {
          openedAt = event.occurredAt;
          toTerminal = terminalFramesFor(event.payload.connection.protocol);
        }
        // Only frames a replay can show are kept (an SFTP transfer's data is not held in memory).
        const frame = event.type === 'frame.recorded' ? toTerminal(event.payload) : undefined;
        if (!frame || !isReplayFrame(frame)) continue;
        bytes += frame.data.length;
        if (bytes > MAX_REPLAY_FRAME_BYTES) throw new ApiError(413, 'REPLAY_TOO_LARGE', `the session's recording is larger than ${MAX_REPLAY_FRAME_BYTES} bytes; read its frames through /v1/streams/${stream}/events`);
        frames.push(frame);
      }
      if (!first) throw notFound;
      return toAsciicast(frames, { ...(channelRaw !== undefined ? { channel: Number(channelRaw) } : {}), format: formatRaw ?? 'v3', ...(openedAt ? { sessionOpenedAt: openedAt } : {}), title: `Custodian session ${sessionId}` });
    } catch (err) {
      if (err instanceof ReplayError) throw new ApiError(404, err.code, err.message);
      throw asApiError(err);
    }
  }
}
