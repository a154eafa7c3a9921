// A pure codec for Server-Sent Events (WHATWG HTML §9.2 event stream format) as the Anthropic
// Messages API streams them: bytes in, events out, each carrying its exact raw bytes so an event
// the gateway does not change is re-emitted byte for byte (framing kept); and an encoder for the
// events it does change. No I/O; bounded: an event larger than `maxEventBytes` is an error.

export interface SseEvent {
  /** The `event:` field (undefined: the default `message`). */
  readonly event: string | undefined;
  /** The `data:` lines joined with `\n`. */
  readonly data: string;
  readonly id: string | undefined;
  /** The event's bytes as received, up to and including the blank line that ended it. */
  readonly raw: Buffer;
}

export class SseError extends Error {
  override readonly name = 'SseError';
  constructor(
    readonly code: 'SSE_EVENT_TOO_LARGE' | 'SSE_TRUNCATED',
    message: string,
  ) {
    super(message);
  }
}

const LF = 0x0a;
const CR = 0x0d;

/** Splits a byte stream into events. Push chunks split anywhere; `end()` reports a truncated last event. */
export class SseDecoder {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** Where the scan for the end of the current event resumes in the joined pending bytes. */
  private scanFrom = 0;

  constructor(private readonly maxEventBytes = 16 * 1024 * 1024) {}

  /** Bytes received and not yet part of a complete event. */
  get buffered(): number {
    return this.pendingBytes;
  }

  push(chunk: Uint8Array): SseEvent[] {
    if (chunk.length === 0) return [];
    this.pending.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    this.pendingBytes += chunk.length;
    return this.scan(false);
  }

  private scan(final: boolean): SseEvent[] {
    if (this.pendingBytes === 0) return [];
    const buffer = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending, this.pendingBytes);
    const events: SseEvent[] = [];
    let start = 0;
    let i = Math.max(this.scanFrom, 0);
    // An event ends at an empty line: a line terminator (CRLF, LF or CR) right after another, or at the stream start.
    while (i < buffer.length) {
      const byte = buffer[i]!;
      if (byte !== LF && byte !== CR) {
        i++;
        continue;
      }
      // A CR at the end of the buffer may be the first half of CRLF: wait for the next byte.
      if (byte === CR && i + 1 >= buffer.length && !final) break;
      const lineEnd = byte === CR && buffer[i + 1] === LF ? i + 2 : i + 1;
      const lineStart = lineStartBefore(buffer, i, start);
      if (lineStart === i) {
        // An empty line: dispatch the event made of buffer[start, lineEnd).
        const raw = Buffer.from(buffer.subarray(start, lineEnd));
        const parsed = parseEvent(raw);
        if (parsed) events.push(parsed);
        start = lineEnd;
      }
      i = lineEnd;
    }
    const rest = buffer.subarray(start);
    if (rest.length > this.maxEventBytes) throw new SseError('SSE_EVENT_TOO_LARGE', `an event stream event exceeds ${this.maxEventBytes} bytes`);
    this.pending = rest.length === 0 ? [] : [Buffer.from(rest)];
    this.pendingBytes = rest.length;
    this.scanFrom = i - start;
    return events;
  }

  /**
   * The stream ended: the events a final CR completes, or SSE_TRUNCATED when an event was cut
   * off (the bytes after the last complete event are dropped, as the spec says).
   */
  end(): SseEvent[] {
    const events = this.scan(true);
    const pending = this.pendingBytes;
    this.pending = [];
    this.pendingBytes = 0;
    this.scanFrom = 0;
    if (pending > 0) throw new SseError('SSE_TRUNCATED', `the event stream ended inside an event (${pending} bytes)`);
    return events;
  }
}

/** Start of the line whose terminator is at `terminator` (searching back no further than `floor`). */
function lineStartBefore(buffer: Buffer, terminator: number, floor: number): number {
  let j = terminator;
  while (j > floor) {
    const previous = buffer[j - 1]!;
    if (previous === LF || previous === CR) return j;
    j--;
  }
  return floor;
}

function parseEvent(raw: Buffer): SseEvent | undefined {
  const text = raw.toString('utf8');
  let event: string | undefined;
  let id: string | undefined;
  const data: string[] = [];
  let hasField = false;
  for (const line of text.split(/\r\n|\r|\n/)) {
    if (line === '' || line.startsWith(':')) continue;
    const colon = line.indexOf(':');
    const name = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    hasField = true;
    if (name === 'event') event = value;
    else if (name === 'data') data.push(value);
    else if (name === 'id') id = value;
  }
  // A block of comments only (keep-alives) is still passed on as raw bytes: callers see it with no fields.
  if (!hasField) return { event: undefined, data: '', id: undefined, raw };
  return { event, data: data.join('\n'), id, raw };
}

/** Encodes an event the way the Anthropic API frames them: `event: <type>\ndata: <data>\n\n`. */
export function encodeSseEvent(event: string | undefined, data: string): Buffer {
  const lines = data.split(/\r\n|\r|\n/).map((line) => `data: ${line}\n`).join('');
  return Buffer.from(`${event === undefined ? '' : `event: ${event}\n`}${lines}\n`, 'utf8');
}
