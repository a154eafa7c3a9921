// The query timeline of a session: a replay projection of its stream, one entry per command with
// its decision, what came back (rows, command tag, error), what was masked and how long it took.
// Built on request from a bounded page of the stream (never the whole log). Result frames are
// attributed to the latest command issued before them; for PostgreSQL their bytes are read with the
// wire codec (tag and error message) and row counts come from the recorded message labels, which
// stay exact when a frame's bytes were truncated.
import type { CustodianEvent } from '@custodian/event-contracts';
import type { RecordedEvent } from '@custodian/event-store';
import { BackendType, MessageFramer, decodeCommandComplete, decodeNoticeFields } from '@custodian/postgres-wire';

export interface TimelineMasking {
  readonly field: string;
  readonly rule: string;
  readonly detector?: string;
  readonly count: number;
}

export interface TimelineCommand {
  readonly commandId: string;
  /** Revision of its command.issued in the session stream. */
  readonly revision: number;
  readonly issuedAt: string;
  readonly kind: string;
  /** As recorded: masked where a detector or column rule said so. */
  readonly text: string;
  readonly parameters?: readonly (string | null)[];
  readonly decision: {
    readonly decision: 'allow' | 'block' | 'require-approval' | 'mask';
    readonly ruleId: string | null;
    readonly reason: string;
    readonly clientMessage?: string;
    readonly policy: { readonly name: string; readonly version: number };
  } | null;
  /** For a held command: its approval as it stands (from the approvals read model). */
  readonly approval?: { readonly approvalId: string; readonly status: string; readonly approvals: number; readonly required: number; readonly resolvedAt?: string };
  /** Rows sent back (DataRow messages); null when nothing came back for it in this page. */
  readonly rows: number | null;
  /** The command tag (e.g. `UPDATE 1`, `SELECT 3`), when the server completed it. */
  readonly tag: string | null;
  readonly error: { readonly code: string | null; readonly message: string } | null;
  readonly maskings: readonly TimelineMasking[];
  /** From the statement leaving for the server to its last result frame (µs); null when it never reached the server. */
  readonly durationMicros: number | null;
}

export interface QueryTimelinePage {
  readonly commands: readonly TimelineCommand[];
  /** Revision to pass as `fromRevision` for the next page; null at the end of the stream as it is now. */
  readonly nextRevision: number | null;
}

interface Building {
  commandId: string;
  revision: number;
  issuedAt: string;
  kind: string;
  text: string;
  parameters?: readonly (string | null)[];
  decision: TimelineCommand['decision'];
  rows: number | null;
  tag: string | null;
  error: TimelineCommand['error'];
  maskings: TimelineMasking[];
  sentAtMicros: number | null;
  lastResultAtMicros: number | null;
}

const MAX_WIRE_BYTES = 16 * 1024 * 1024;

/** DataRow count from a frame label such as `RowDescription,DataRow*3,CommandComplete,ReadyForQuery`. */
export function dataRowsInLabel(label: string | undefined): number {
  let rows = 0;
  for (const part of (label ?? '').split(',')) {
    const [name, times] = part.split('*');
    if (name === 'DataRow') rows += times === undefined ? 1 : Number(times) || 0;
  }
  return rows;
}

/** Command tags and errors in a backend byte run (the recorded, masked bytes); tolerant of truncation. */
function readBackend(data: string): { tags: string[]; errors: { code: string | null; message: string }[] } {
  const tags: string[] = [];
  const errors: { code: string | null; message: string }[] = [];
  if (data === '') return { tags, errors };
  const framer = new MessageFramer({ side: 'backend', maxMessageBytes: MAX_WIRE_BYTES });
  try {
    framer.push(Buffer.from(data, 'base64'));
    for (let frame = framer.next(); frame; frame = framer.next()) {
      if (frame.type === BackendType.CommandComplete) tags.push(decodeCommandComplete(frame));
      else if (frame.type === BackendType.ErrorResponse) {
        const fields = decodeNoticeFields(frame);
        errors.push({ code: fields.get('C') ?? null, message: fields.get('M') ?? 'error' });
      }
    }
  } catch {
    // A truncated or foreign byte run: what was read so far stands.
  }
  return { tags, errors };
}

function finish(command: Building): TimelineCommand {
  const { sentAtMicros, lastResultAtMicros, ...rest } = command;
  const durationMicros = sentAtMicros !== null && lastResultAtMicros !== null && lastResultAtMicros >= sentAtMicros ? lastResultAtMicros - sentAtMicros : null;
  return { ...rest, durationMicros };
}

/**
 * One page of the timeline from events of one session stream read forwards. `maxEvents` bounds the
 * work; the page ends before the first command.issued past it, so a page holds whole commands
 * (a single command with more events than that is cut, and its counts are for this page).
 */
export async function buildQueryTimeline(events: AsyncIterable<RecordedEvent>, maxEvents: number): Promise<QueryTimelinePage> {
  const commands: TimelineCommand[] = [];
  const byId = new Map<string, Building>();
  let current: Building | undefined;
  let seen = 0;
  let lastRevision = -1;
  let protocol = 'postgres';
  for await (const recorded of events) {
    const event: CustodianEvent = recorded.event;
    if (seen >= maxEvents && event.type === 'command.issued') {
      if (current) commands.push(finish(current));
      return { commands, nextRevision: recorded.revision };
    }
    seen += 1;
    lastRevision = recorded.revision;
    switch (event.type) {
      case 'session.opened':
        protocol = event.payload.connection.protocol;
        break;
      case 'command.issued': {
        if (current) commands.push(finish(current));
        const p = event.payload;
        current = {
          commandId: p.commandId,
          revision: recorded.revision,
          issuedAt: event.occurredAt,
          kind: p.kind,
          text: p.text,
          ...(p.parameters ? { parameters: p.parameters } : {}),
          decision: null,
          rows: null,
          tag: null,
          error: null,
          maskings: [],
          sentAtMicros: null,
          lastResultAtMicros: null,
        };
        byId.set(p.commandId, current);
        break;
      }
      case 'policy.decided': {
        const target = byId.get(event.payload.commandId);
        if (target) {
          const p = event.payload;
          target.decision = { decision: p.decision, ruleId: p.ruleId, reason: p.reason, ...(p.clientMessage !== undefined ? { clientMessage: p.clientMessage } : {}), policy: { name: p.policy.name, version: p.policy.version } };
        }
        break;
      }
      case 'data.masked': {
        const target = event.payload.commandId ? byId.get(event.payload.commandId) : current;
        if (target) for (const m of event.payload.maskings) target.maskings.push({ field: m.field, rule: m.rule, ...(m.detector ? { detector: m.detector } : {}), count: m.count });
        break;
      }
      case 'frame.recorded': {
        if (!current) break;
        const p = event.payload;
        if (p.direction === 'client-to-upstream') {
          current.sentAtMicros ??= p.offsetMicros;
          break;
        }
        current.lastResultAtMicros = p.offsetMicros;
        const rows = dataRowsInLabel(p.messageType);
        if (rows > 0 || current.rows !== null || /CommandComplete/.test(p.messageType ?? '')) current.rows = (current.rows ?? 0) + rows;
        if (protocol === 'postgres') {
          const { tags, errors } = readBackend(p.data);
          if (tags.length > 0) current.tag = tags[tags.length - 1] ?? null;
          if (errors.length > 0) current.error = errors[0] ?? null;
        }
        break;
      }
      default:
        break;
    }
  }
  if (current) commands.push(finish(current));
  return { commands, nextRevision: seen >= maxEvents ? lastRevision + 1 : null };
}
