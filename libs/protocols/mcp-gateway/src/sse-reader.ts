// A bounded reader of `text/event-stream` (WHATWG HTML §9.2): `data:` lines joined by `\n`,
// `event:`, `id:`, comments ignored, an event dispatched at the blank line. The gateway needs each
// event whole (one JSON-RPC message) to decide and mask it, so one event may not exceed the limit.
import { McpGatewayError } from './gateway-errors.js';

export interface SseEvent {
  readonly event: string;
  readonly data: string;
  readonly id?: string;
}

export class SseReader {
  private buffer = '';
  private data: string[] = [];
  private dataLength = 0;
  private event = '';
  private id: string | undefined;
  private readonly decoder = new TextDecoder('utf-8');

  constructor(private readonly maxEventBytes: number) {}

  /** Feeds bytes split anywhere; returns the events they complete. */
  push(chunk: Uint8Array): SseEvent[] {
    this.buffer += this.decoder.decode(chunk, { stream: true });
    const events: SseEvent[] = [];
    for (;;) {
      const match = /\r\n|\r|\n/.exec(this.buffer);
      if (!match) break;
      // A lone `\r` at the end may be the first half of `\r\n`: wait for the next byte.
      if (match[0] === '\r' && match.index === this.buffer.length - 1) break;
      const line = this.buffer.slice(0, match.index);
      this.buffer = this.buffer.slice(match.index + match[0].length);
      const event = this.line(line);
      if (event) events.push(event);
    }
    if (this.buffer.length + this.dataLength > this.maxEventBytes) throw new McpGatewayError('MESSAGE_TOO_LARGE', `an event of the upstream's stream exceeds ${this.maxEventBytes} bytes`);
    return events;
  }

  /** The stream ended: a last line ended by a lone `\r` still counts; an unfinished event is dropped (as browsers do). */
  finish(): SseEvent[] {
    this.buffer += this.decoder.decode();
    if (!this.buffer.endsWith('\r')) return [];
    const event = this.line(this.buffer.slice(0, -1));
    this.buffer = '';
    return event ? [event] : [];
  }

  private line(line: string): SseEvent | undefined {
    if (line === '') {
      if (this.data.length === 0) {
        this.event = '';
        return undefined;
      }
      const event: SseEvent = { event: this.event || 'message', data: this.data.join('\n'), ...(this.id === undefined ? {} : { id: this.id }) };
      this.data = [];
      this.dataLength = 0;
      this.event = '';
      return event;
    }
    if (line.startsWith(':')) return undefined;
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') {
      this.data.push(value);
      this.dataLength += value.length + 1;
      if (this.dataLength > this.maxEventBytes) throw new McpGatewayError('MESSAGE_TOO_LARGE', `an event of the upstream's stream exceeds ${this.maxEventBytes} bytes`);
    } else if (field === 'event') this.event = value;
    else if (field === 'id' && !value.includes('\0')) this.id = value;
    return undefined;
  }
}

/** One SSE event as bytes: `data:` per line of the message. */
export function encodeSseEvent(data: string, id?: string): Buffer {
  const lines = data.split(/\r\n|\r|\n/).map((line) => `data: ${line}\n`).join('');
  return Buffer.from(`event: message\n${id === undefined ? '' : `id: ${id}\n`}${lines}\n`, 'utf8');
}

export const SSE_KEEP_ALIVE = Buffer.from(': keep-alive\n\n', 'utf8');
