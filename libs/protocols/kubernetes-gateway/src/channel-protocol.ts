// The channel.k8s.io WebSocket framing of the Kubernetes exec subresource, as a pure codec (no
// sockets): each binary message is one channel byte and that channel's bytes. Channels: 0 stdin,
// 1 stdout, 2 stderr, 3 error (a JSON metav1.Status; the exit code is in details.causes with
// reason ExitCode), 4 resize (a stream of {"Width","Height"} objects), and in v5 255 close
// ([255, n]: the sender will write no more on channel n, e.g. stdin half-close).

export const V5_PROTOCOL = 'v5.channel.k8s.io';
export const V4_PROTOCOL = 'v4.channel.k8s.io';
/** What the gateway speaks, best first. */
export const SUPPORTED_PROTOCOLS: readonly ChannelProtocol[] = [V5_PROTOCOL, V4_PROTOCOL];
export type ChannelProtocol = typeof V5_PROTOCOL | typeof V4_PROTOCOL;

export const Channel = {
  stdin: 0,
  stdout: 1,
  stderr: 2,
  error: 3,
  resize: 4,
  close: 255,
} as const;

export type ChannelNumber = (typeof Channel)[keyof typeof Channel];

export const CHANNEL_NAMES: Readonly<Record<number, string>> = { 0: 'stdin', 1: 'stdout', 2: 'stderr', 3: 'error', 4: 'resize', 255: 'close' };

export type ChannelErrorCode = 'CHANNEL_MESSAGE_EMPTY' | 'CHANNEL_UNKNOWN' | 'CHANNEL_CLOSE_MALFORMED' | 'CHANNEL_JSON_TOO_LARGE' | 'CHANNEL_JSON_MALFORMED' | 'CHANNEL_WRONG_DIRECTION';

export class ChannelProtocolError extends Error {
  constructor(
    readonly code: ChannelErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'ChannelProtocolError';
  }
}

/** The client's offered subprotocols (Sec-WebSocket-Protocol values) → the one spoken, or undefined. */
export function chooseProtocol(offered: Iterable<string>): ChannelProtocol | undefined {
  const set = new Set([...offered].map((p) => p.trim()));
  return SUPPORTED_PROTOCOLS.find((p) => set.has(p));
}

export interface ChannelMessage {
  readonly channel: number;
  readonly payload: Buffer;
}

export function encodeChannelMessage(channel: number, payload: Uint8Array | string = Buffer.alloc(0)): Buffer {
  const body = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload;
  const out = Buffer.allocUnsafe(body.length + 1);
  out[0] = channel;
  out.set(body, 1);
  return out;
}

/** v5's close message: the sender writes no more on `channel`. */
export function encodeCloseMessage(channel: number): Buffer {
  return Buffer.from([Channel.close, channel]);
}

/** Which side sent a message: a client may write stdin, resize and (v5) close; a server stdout, stderr, error and (v5) close. */
export type Sender = 'client' | 'server';

const FROM_CLIENT = new Set<number>([Channel.stdin, Channel.resize]);
const FROM_SERVER = new Set<number>([Channel.stdout, Channel.stderr, Channel.error]);

/**
 * Decodes one WebSocket message. Unknown channels, channels the sender may not write, an empty
 * message and a malformed v5 close are errors (the gateway refuses them rather than guess).
 */
export function decodeChannelMessage(message: Uint8Array, protocol: ChannelProtocol, sender: Sender): ChannelMessage {
  if (message.length === 0) throw new ChannelProtocolError('CHANNEL_MESSAGE_EMPTY', 'an empty message carries no channel byte');
  const bytes = Buffer.isBuffer(message) ? message : Buffer.from(message.buffer, message.byteOffset, message.length);
  const channel = bytes[0]!;
  const payload = bytes.subarray(1);
  if (channel === Channel.close) {
    if (protocol !== V5_PROTOCOL) throw new ChannelProtocolError('CHANNEL_UNKNOWN', `channel 255 (close) exists only in ${V5_PROTOCOL}`);
    if (payload.length !== 1) throw new ChannelProtocolError('CHANNEL_CLOSE_MALFORMED', `a close message names exactly one channel (got ${payload.length} bytes)`);
    const closed = payload[0]!;
    if (!(sender === 'client' ? FROM_CLIENT : FROM_SERVER).has(closed)) throw new ChannelProtocolError('CHANNEL_CLOSE_MALFORMED', `the ${sender} cannot close channel ${closed}`);
    return { channel, payload };
  }
  if (!(channel in CHANNEL_NAMES)) throw new ChannelProtocolError('CHANNEL_UNKNOWN', `unknown channel ${channel}`);
  if (!(sender === 'client' ? FROM_CLIENT : FROM_SERVER).has(channel)) throw new ChannelProtocolError('CHANNEL_WRONG_DIRECTION', `the ${sender} may not write on channel ${channel} (${CHANNEL_NAMES[channel]})`);
  return { channel, payload };
}

/**
 * A stream of concatenated JSON objects (the resize channel; the error channel's Status), fed in
 * any split. Bounded: an object longer than `maxObjectBytes` is an error, not a growing buffer.
 * Strings are tracked so braces inside them do not count.
 */
export class JsonObjectStream {
  private buffer: Buffer[] = [];
  private length = 0;
  private depth = 0;
  private inString = false;
  private escaped = false;
  private started = false;

  constructor(private readonly maxObjectBytes = 4096) {}

  /** Returns the objects completed by this chunk, parsed. */
  push(chunk: Uint8Array): unknown[] {
    const out: unknown[] = [];
    let start = 0;
    for (let i = 0; i < chunk.length; i++) {
      const byte = chunk[i]!;
      if (!this.started) {
        // Whitespace between objects is skipped; anything else must open an object.
        if (byte === 0x20 || byte === 0x0a || byte === 0x0d || byte === 0x09) {
          start = i + 1;
          continue;
        }
        if (byte !== 0x7b) throw new ChannelProtocolError('CHANNEL_JSON_MALFORMED', `expected a JSON object, found byte 0x${byte.toString(16)}`);
        this.started = true;
        start = i;
      }
      if (this.inString) {
        if (this.escaped) this.escaped = false;
        else if (byte === 0x5c) this.escaped = true;
        else if (byte === 0x22) this.inString = false;
      } else if (byte === 0x22) this.inString = true;
      else if (byte === 0x7b) this.depth++;
      else if (byte === 0x7d) {
        this.depth--;
        if (this.depth === 0) {
          this.append(chunk.subarray(start, i + 1));
          out.push(this.take());
          start = i + 1;
        }
      }
    }
    if (this.started && start < chunk.length) this.append(chunk.subarray(start));
    return out;
  }

  /** Bytes of an object not yet complete. */
  get pending(): number {
    return this.length;
  }

  private append(part: Uint8Array): void {
    this.length += part.length;
    if (this.length > this.maxObjectBytes) throw new ChannelProtocolError('CHANNEL_JSON_TOO_LARGE', `a JSON object on this channel exceeds ${this.maxObjectBytes} bytes`);
    this.buffer.push(Buffer.from(part));
  }

  private take(): unknown {
    const text = Buffer.concat(this.buffer, this.length).toString('utf8');
    this.buffer = [];
    this.length = 0;
    this.started = false;
    try {
      return JSON.parse(text) as unknown;
    } catch {
      throw new ChannelProtocolError('CHANNEL_JSON_MALFORMED', 'a JSON object on this channel does not parse');
    }
  }
}

export interface TerminalSize {
  readonly width: number;
  readonly height: number;
}

/** A resize object (`{"Width":80,"Height":24}`), validated: 16-bit unsigned sizes, as the kubelet reads them. */
export function terminalSizeOf(value: unknown): TerminalSize {
  const record = value as { Width?: unknown; Height?: unknown } | null;
  const width = record?.Width;
  const height = record?.Height;
  const valid = (n: unknown): n is number => typeof n === 'number' && Number.isInteger(n) && n >= 0 && n <= 0xffff;
  if (!valid(width) || !valid(height)) throw new ChannelProtocolError('CHANNEL_JSON_MALFORMED', 'a resize message is {"Width": n, "Height": n} with 0 ≤ n ≤ 65535');
  return { width, height };
}

/** metav1.Status as the exec error channel carries it. */
export interface ExecStatus {
  readonly metadata: Record<string, never>;
  readonly status: 'Success' | 'Failure';
  readonly message?: string;
  readonly reason?: string;
  readonly code?: number;
  readonly details?: { readonly causes?: readonly { readonly reason?: string; readonly message?: string }[] };
}

export const SUCCESS_STATUS: ExecStatus = { metadata: {}, status: 'Success' };

/** The Status a kubelet sends for a command that exited non-zero. */
export function exitStatus(exitCode: number, message: string): ExecStatus {
  if (exitCode === 0) return SUCCESS_STATUS;
  return { metadata: {}, status: 'Failure', message, reason: 'NonZeroExitCode', details: { causes: [{ reason: 'ExitCode', message: String(exitCode) }] } };
}

/** The exit code a Status reports: 0 for Success, the ExitCode cause, or undefined for other failures. */
export function exitCodeOf(status: unknown): number | undefined {
  const s = status as Partial<ExecStatus> | null;
  if (s?.status === 'Success') return 0;
  const cause = s?.details?.causes?.find((c) => c.reason === 'ExitCode');
  if (cause?.message === undefined) return undefined;
  const code = Number(cause.message);
  return Number.isInteger(code) ? code : undefined;
}

/** A Status for a refusal: `reason` is a metav1 StatusReason (Forbidden, BadRequest, …); the exit code cause makes clients report non-zero. */
export function refusalStatus(message: string, reason: string, code: number, exitCode = 1): ExecStatus {
  return { metadata: {}, status: 'Failure', message, reason, code, details: { causes: [{ reason: 'ExitCode', message: String(exitCode) }] } };
}

/** A Status as an HTTP body (refused requests before or instead of an upgrade). */
export function httpStatusBody(message: string, reason: string, code: number): string {
  return JSON.stringify({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code });
}
