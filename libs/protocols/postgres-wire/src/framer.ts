import { WireProtocolError } from './errors.js';
import { MAX_STARTUP_PACKET_BYTES, backendMessageName, frontendMessageName, isBackendType, isFrontendType } from './protocol-codes.js';

/** One complete message cut from the byte stream. */
export interface Frame {
  /** Type byte; 0 for a startup-phase message (SSLRequest, GSSENCRequest, CancelRequest, StartupMessage), which has none. */
  readonly type: number;
  /** The body after the length word (a view, valid until the caller keeps it; never reused by the framer). */
  readonly body: Buffer;
  /** The whole message as received: type byte (if any), length word, body. */
  readonly raw: Buffer;
}

export interface FramerOptions {
  /** Largest message body accepted; a longer length word is an error before anything is buffered. */
  readonly maxMessageBytes: number;
  /** Which side's type bytes are valid (an unknown type is an error at its header). */
  readonly side: 'frontend' | 'backend';
  /** Frontend only: the stream starts in the startup phase (messages without a type byte). Default true for frontend. */
  readonly startup?: boolean;
}

/**
 * Cuts a byte stream into protocol messages. Memory is bounded: it holds at most one
 * incomplete message (rejected at its header when too large) plus the unread rest of the
 * chunks pushed so far; a message split into many chunks is joined once, when complete.
 */
export class MessageFramer {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private startupPhase: boolean;
  private readonly maxMessageBytes: number;
  private readonly side: 'frontend' | 'backend';

  constructor(options: FramerOptions) {
    this.maxMessageBytes = options.maxMessageBytes;
    this.side = options.side;
    this.startupPhase = options.side === 'frontend' ? (options.startup ?? true) : false;
  }

  /** Bytes received but not yet returned as frames. */
  get bufferedBytes(): number {
    return this.buffered;
  }

  /** Whether the next message is read as a startup-phase message (no type byte). */
  get inStartupPhase(): boolean {
    return this.startupPhase;
  }

  /** After a StartupMessage the stream carries typed messages; after SSLRequest/GSSENCRequest it is still in the startup phase. */
  set inStartupPhase(value: boolean) {
    this.startupPhase = value;
  }

  push(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    this.chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length));
    this.buffered += chunk.length;
  }

  /** The next complete message, or undefined until more bytes arrive. Throws WireProtocolError on a bad header. */
  next(): Frame | undefined {
    const headerBytes = this.startupPhase ? 4 : 5;
    if (this.buffered < headerBytes) return undefined;
    const header = this.peek(headerBytes);
    let type = 0;
    let length: number;
    if (this.startupPhase) {
      length = header.readInt32BE(0);
      if (length < 8) throw new WireProtocolError('WIRE_INVALID_LENGTH', `startup message length ${length} is below the minimum of 8`);
      if (length > MAX_STARTUP_PACKET_BYTES) {
        throw new WireProtocolError('WIRE_MESSAGE_TOO_LARGE', `startup message length ${length} exceeds ${MAX_STARTUP_PACKET_BYTES} bytes`);
      }
    } else {
      type = header[0]!;
      const known = this.side === 'frontend' ? isFrontendType(type) : isBackendType(type);
      if (!known) throw new WireProtocolError('WIRE_UNKNOWN_MESSAGE', `unknown ${this.side} message type ${this.name(type)}`);
      length = header.readInt32BE(1);
      if (length < 4) throw new WireProtocolError('WIRE_INVALID_LENGTH', `${this.name(type)} length ${length} is below the minimum of 4`);
      if (length - 4 > this.maxMessageBytes) {
        throw new WireProtocolError('WIRE_MESSAGE_TOO_LARGE', `${this.name(type)} of ${length - 4} bytes exceeds the limit of ${this.maxMessageBytes} bytes`);
      }
    }
    const total = length + (this.startupPhase ? 0 : 1);
    if (this.buffered < total) return undefined;
    const raw = this.take(total);
    const bodyStart = this.startupPhase ? 4 : 5;
    return { type, raw, body: raw.subarray(bodyStart) };
  }

  private name(type: number): string {
    return this.side === 'frontend' ? frontendMessageName(type) : backendMessageName(type);
  }

  /** The first `n` buffered bytes (n ≤ 5), joining the first chunks if they are shorter. */
  private peek(n: number): Buffer {
    const first = this.chunks[0]!;
    if (first.length >= n) return first;
    const joined = Buffer.concat(this.chunks, this.buffered);
    this.chunks = [joined];
    return joined;
  }

  private take(n: number): Buffer {
    const first = this.chunks[0]!;
    let out: Buffer;
    if (first.length >= n) {
      out = first.subarray(0, n);
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
    } else {
      out = Buffer.allocUnsafe(n);
      let filled = 0;
      while (filled < n) {
        const chunk = this.chunks[0]!;
        const want = n - filled;
        if (chunk.length <= want) {
          chunk.copy(out, filled);
          filled += chunk.length;
          this.chunks.shift();
        } else {
          chunk.copy(out, filled, 0, want);
          filled += want;
          this.chunks[0] = chunk.subarray(want);
        }
      }
    }
    this.buffered -= n;
    return out;
  }

  /** Hands back the unread bytes (e.g. those that followed an SSLRequest) and empties the framer. */
  drain(): Buffer {
    const rest = Buffer.concat(this.chunks, this.buffered);
    this.chunks = [];
    this.buffered = 0;
    return rest;
  }
}
