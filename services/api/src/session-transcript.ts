// The replay projection of a session stream: its frame.recorded events in order, as the bytes went
// (after masking), with the protocol's messages decoded where the frames are JSON text: an MCP
// session's JSON-RPC messages (a JSON body, or the `data:` of SSE events; keep-alive comments decode
// to no message). Binary protocols keep their bytes (base64). Built from the stored events only.
import type { CustodianEvent } from '@custodian/event-contracts';

export interface TranscriptEntry {
  readonly revision: number;
  readonly offsetMicros: number;
  readonly direction: 'client-to-upstream' | 'upstream-to-client';
  readonly messageType?: string;
  readonly channel?: number;
  readonly byteLength: number;
  /** The frame's bytes were cut at the recording limit: its JSON may not decode. */
  readonly truncated: boolean;
  /** Decoded JSON messages (JSON-text protocols such as MCP); absent for binary frames. */
  readonly messages?: readonly unknown[];
  /** The recorded bytes (base64) when they are not JSON text. */
  readonly data?: string;
}

/** JSON text of one frame → its messages: a JSON body, or the JSON `data` of each SSE event. Undefined when it is neither. */
export function decodeJsonFrame(bytes: Buffer): unknown[] | undefined {
  const text = bytes.toString('utf8');
  if (!Buffer.from(text, 'utf8').equals(bytes)) return undefined;
  const trimmed = text.trimStart();
  if (trimmed.startsWith('{') || trimmed.startsWith('[')) {
    try {
      return [JSON.parse(text) as unknown];
    } catch {
      return undefined;
    }
  }
  // SSE: events separated by a blank line; `data:` lines joined by newlines; `:` lines are comments.
  const messages: unknown[] = [];
  let sawField = false;
  for (const block of text.split(/\r\n\r\n|\n\n|\r\r/)) {
    const data: string[] = [];
    for (const line of block.split(/\r\n|\n|\r/)) {
      if (line === '') continue;
      if (line.startsWith(':')) {
        sawField = true;
        continue;
      }
      const colon = line.indexOf(':');
      const field = colon === -1 ? line : line.slice(0, colon);
      if (!['data', 'event', 'id', 'retry'].includes(field)) return undefined;
      sawField = true;
      if (field === 'data') data.push(colon === -1 ? '' : line.slice(colon + 1).replace(/^ /, ''));
    }
    if (data.length === 0) continue;
    try {
      messages.push(JSON.parse(data.join('\n')) as unknown);
    } catch {
      return undefined;
    }
  }
  return sawField ? messages : undefined;
}

/** One recorded event → a transcript entry, or undefined for events that are not frames. */
export function transcriptEntry(revision: number, event: CustodianEvent): TranscriptEntry | undefined {
  if (event.type !== 'frame.recorded') return undefined;
  const frame = event.payload;
  const bytes = Buffer.from(frame.data, 'base64');
  const messages = decodeJsonFrame(bytes);
  return {
    revision,
    offsetMicros: frame.offsetMicros,
    direction: frame.direction,
    ...(frame.messageType !== undefined ? { messageType: frame.messageType } : {}),
    ...(frame.channel !== undefined ? { channel: frame.channel } : {}),
    byteLength: frame.byteLength,
    truncated: frame.truncated === true,
    ...(messages ? { messages } : { data: frame.data }),
  };
}
