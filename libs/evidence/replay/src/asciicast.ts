// A session's recorded terminal channel (its frame.recorded events) → an asciicast recording:
// v3 (header with the terminal size, interval-timed `o` output / `i` input / `r` resize events and
// an `x` exit status) or v2 for older players (absolute times, no `x`). A pure projection: frames
// in, text out. Frame labels it understands (written by the SSH gateway; Kubernetes exec frames are
// brought to the same convention by kubernetes-frames.ts): control frames `exec` /
// `shell` (channel start, with `term`, `cols`, `rows` when a pty was requested), `window-change`
// (`cols`, `rows`), `exit-status` (`code`); data frames `stdout`, `stderr`, `custodian-notice`
// (output) and `stdin`, `stdin-unverified` (input). Frames arrive in recording order.
import { StringDecoder } from 'node:string_decoder';
import type { FrameRecorded } from '@custodian/event-contracts';

export type AsciicastFormat = 'v3' | 'v2';

const OUTPUT_LABELS = new Set(['stdout', 'stderr', 'custodian-notice']);
const INPUT_LABELS = new Set(['stdin', 'stdin-unverified']);
const START_LABELS = new Set(['exec', 'shell']);
const DEFAULT_SIZE = { cols: 80, rows: 24 };

export interface ReplayChannel {
  readonly channel: number;
  /** `exec`, `shell`, or `unknown` (data without a start frame, e.g. recorded by an older gateway). */
  readonly kind: 'exec' | 'shell' | 'unknown';
}

export interface AsciicastOptions {
  /** Which channel (default: the first channel with terminal data). */
  readonly channel?: number;
  readonly format?: AsciicastFormat;
  /** When the session opened (RFC 3339): the header's `timestamp` is this plus the channel's start offset. */
  readonly sessionOpenedAt?: string;
  readonly title?: string;
}

export class ReplayError extends Error {
  override readonly name = 'ReplayError';
  constructor(
    readonly code: 'REPLAY_NO_CHANNEL' | 'REPLAY_CHANNEL_NOT_FOUND',
    message: string,
  ) {
    super(message);
  }
}

/** Whether a frame can appear in a replay (terminal data, channel start, resize, exit): others (SFTP data, SQL) can be skipped before projecting. */
export function isReplayFrame(frame: FrameRecorded): boolean {
  const label = frame.messageType ?? '';
  return START_LABELS.has(label) || OUTPUT_LABELS.has(label) || INPUT_LABELS.has(label) || label === 'window-change' || label === 'exit-status';
}

function channelOf(frame: FrameRecorded): number {
  return frame.channel ?? 0;
}

function isTerminalFrame(frame: FrameRecorded): boolean {
  const label = frame.messageType ?? '';
  return START_LABELS.has(label) || OUTPUT_LABELS.has(label) || INPUT_LABELS.has(label);
}

function controlValue(frame: FrameRecorded): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(Buffer.from(frame.data, 'base64').toString('utf8'));
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

function positiveInteger(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isInteger(value) && value > 0 && value <= 10_000 ? value : undefined;
}

/** The channels of a session that have terminal data, in order of first appearance. */
export function replayChannels(frames: Iterable<FrameRecorded>): ReplayChannel[] {
  const found = new Map<number, ReplayChannel['kind']>();
  for (const frame of frames) {
    if (!isTerminalFrame(frame)) continue;
    const channel = channelOf(frame);
    const label = frame.messageType ?? '';
    const known = found.get(channel);
    if (START_LABELS.has(label) && (known === undefined || known === 'unknown')) found.set(channel, label as 'exec' | 'shell');
    else if (known === undefined) found.set(channel, 'unknown');
  }
  return [...found].map(([channel, kind]) => ({ channel, kind }));
}

/** Seconds with microsecond precision, as asciinema writes them. */
function seconds(micros: number): number {
  return Math.round(micros) / 1_000_000;
}

/** The asciicast text (newline-delimited JSON) of one channel. Throws ReplayError when there is nothing to replay. */
export function toAsciicast(frames: readonly FrameRecorded[], options: AsciicastOptions = {}): string {
  const format = options.format ?? 'v3';
  const channels = replayChannels(frames);
  if (channels.length === 0) throw new ReplayError('REPLAY_NO_CHANNEL', 'the session has no terminal channel to replay');
  const chosen = options.channel === undefined ? channels[0]! : channels.find((c) => c.channel === options.channel);
  if (!chosen) throw new ReplayError('REPLAY_CHANNEL_NOT_FOUND', `the session has no terminal channel ${options.channel}; it has ${channels.map((c) => c.channel).join(', ')}`);
  const mine = frames.filter((f) => channelOf(f) === chosen.channel);
  const start = mine.find((f) => START_LABELS.has(f.messageType ?? ''));
  const startValue = start ? controlValue(start) : {};
  // Without a size at the start (a Kubernetes exec learns it from the client's first resize), a
  // resize before any output is the terminal's size: the header carries it instead of an `r` event.
  const firstOutput = mine.findIndex((f) => OUTPUT_LABELS.has(f.messageType ?? ''));
  const earlyResize = positiveInteger(startValue['cols']) ? undefined : mine.find((f, i) => f.messageType === 'window-change' && (firstOutput < 0 || i < firstOutput));
  const earlySize = earlyResize ? controlValue(earlyResize) : {};
  const size = { cols: positiveInteger(startValue['cols']) ?? positiveInteger(earlySize['cols']) ?? DEFAULT_SIZE.cols, rows: positiveInteger(startValue['rows']) ?? positiveInteger(earlySize['rows']) ?? DEFAULT_SIZE.rows };
  const termType = typeof startValue['term'] === 'string' ? startValue['term'].slice(0, 64) : undefined;
  const origin = (start ?? mine[0])?.offsetMicros ?? 0;
  const opened = options.sessionOpenedAt ? Date.parse(options.sessionOpenedAt) : Number.NaN;
  const timestamp = Number.isNaN(opened) ? undefined : Math.floor(opened / 1000 + origin / 1_000_000);

  const lines: string[] = [];
  if (format === 'v3') {
    lines.push(JSON.stringify({ version: 3, term: { cols: size.cols, rows: size.rows, ...(termType ? { type: termType } : {}) }, ...(timestamp !== undefined ? { timestamp } : {}), ...(options.title ? { title: options.title } : {}) }));
  } else {
    lines.push(JSON.stringify({ version: 2, width: size.cols, height: size.rows, ...(timestamp !== undefined ? { timestamp } : {}), ...(termType ? { env: { TERM: termType } } : {}), ...(options.title ? { title: options.title } : {}) }));
  }
  // One decoder per direction: a multi-byte character split across frames is joined, not replaced.
  const decoders = { o: new StringDecoder('utf8'), i: new StringDecoder('utf8') };
  let previous = origin;
  const emit = (at: number, code: 'o' | 'i' | 'r' | 'x' | 'm', data: string): void => {
    if (data === '' && (code === 'o' || code === 'i')) return;
    if (format === 'v2' && code === 'x') return; // v2 has no exit event
    const time = Math.max(at, previous);
    lines.push(JSON.stringify([seconds(format === 'v3' ? time - previous : time - origin), code, data]));
    previous = time;
  };
  for (const frame of mine) {
    if (frame === earlyResize) continue;
    const label = frame.messageType ?? '';
    const at = frame.offsetMicros;
    if (OUTPUT_LABELS.has(label)) emit(at, 'o', decoders.o.write(Buffer.from(frame.data, 'base64')));
    else if (INPUT_LABELS.has(label)) emit(at, 'i', decoders.i.write(Buffer.from(frame.data, 'base64')));
    else if (label === 'window-change') {
      const value = controlValue(frame);
      const cols = positiveInteger(value['cols']);
      const rows = positiveInteger(value['rows']);
      if (cols && rows) emit(at, 'r', `${cols}x${rows}`);
    } else if (label === 'exit-status') {
      const code = controlValue(frame)['code'];
      if (typeof code === 'number' && Number.isInteger(code)) emit(at, 'x', String(code));
    }
    if (frame.truncated && (OUTPUT_LABELS.has(label) || INPUT_LABELS.has(label))) emit(at, 'm', `custodian: frame truncated in the recording (${frame.byteLength} bytes, first ${Buffer.from(frame.data, 'base64').length} kept)`);
  }
  const restO = decoders.o.end();
  const restI = decoders.i.end();
  if (restO) emit(previous, 'o', restO);
  if (restI) emit(previous, 'i', restI);
  return `${lines.join('\n')}\n`;
}

/** One message of a live stream, as asciinema-player's EventSource driver reads it (`data:` JSON). */
export type LiveReplayMessage =
  | { readonly cols: number; readonly rows: number; readonly time: number }
  | readonly [time: number, code: 'o' | 'i' | 'r' | 'x' | 'm', data: string];

/**
 * The live form of the projection: frames in as they are recorded, messages out for a server-sent
 * event stream in the shape asciinema-player's `eventsource` driver reads: first a reset
 * `{cols, rows, time}` when the channel starts, then `[time, code, data]` with `time` in seconds
 * since the channel started (absolute, as in v2). The channel is the one asked for, or the first
 * with terminal data.
 */
export class LiveAsciicastProjector {
  private chosen: number | undefined;
  private origin: number | undefined;
  private previous = 0;
  private readonly decoders = { o: new StringDecoder('utf8'), i: new StringDecoder('utf8') };

  constructor(channel?: number) {
    this.chosen = channel;
  }

  /** The channel being projected, once known. */
  get channel(): number | undefined {
    return this.origin === undefined ? undefined : this.chosen;
  }

  push(frame: FrameRecorded): LiveReplayMessage[] {
    if (!isTerminalFrame(frame) && this.origin === undefined) return [];
    const channel = channelOf(frame);
    if (this.chosen === undefined) this.chosen = channel;
    if (channel !== this.chosen) return [];
    const label = frame.messageType ?? '';
    const out: LiveReplayMessage[] = [];
    if (this.origin === undefined) {
      if (!isTerminalFrame(frame)) return [];
      this.origin = frame.offsetMicros;
      const start = START_LABELS.has(label) ? controlValue(frame) : {};
      out.push({ cols: positiveInteger(start['cols']) ?? DEFAULT_SIZE.cols, rows: positiveInteger(start['rows']) ?? DEFAULT_SIZE.rows, time: 0 });
      if (START_LABELS.has(label)) return out;
    }
    const at = Math.max(frame.offsetMicros, this.previous);
    this.previous = at;
    const time = seconds(at - this.origin);
    const emit = (code: 'o' | 'i' | 'r' | 'x' | 'm', data: string): void => {
      if (data !== '' || (code !== 'o' && code !== 'i')) out.push([time, code, data]);
    };
    if (OUTPUT_LABELS.has(label)) emit('o', this.decoders.o.write(Buffer.from(frame.data, 'base64')));
    else if (INPUT_LABELS.has(label)) emit('i', this.decoders.i.write(Buffer.from(frame.data, 'base64')));
    else if (label === 'window-change') {
      const value = controlValue(frame);
      const cols = positiveInteger(value['cols']);
      const rows = positiveInteger(value['rows']);
      if (cols && rows) emit('r', `${cols}x${rows}`);
    } else if (label === 'exit-status') {
      const code = controlValue(frame)['code'];
      if (typeof code === 'number' && Number.isInteger(code)) emit('x', String(code));
    }
    return out;
  }
}
