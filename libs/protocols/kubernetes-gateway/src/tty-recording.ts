// An exec session's recorded frames as an asciicast (https://docs.asciinema.org/manual/asciicast/v3/):
// the terminal replay of a tty exec, built from what the evidence holds (frame.recorded events,
// after masking) so that it can be served next to SSH replays once a replay service exists.
// v3 (default): event times are intervals since the previous event; v2: times since the start
// (what asciinema 2.x plays).
import type { FrameRecorded } from '@custodian/event-contracts';
import { Channel, exitCodeOf } from './channel-protocol.js';

export interface AsciicastOptions {
  readonly version?: 2 | 3;
  /** Terminal size before the first resize message (kubectl sends one at once). */
  readonly cols?: number;
  readonly rows?: number;
  /** Session start, Unix seconds. */
  readonly timestamp?: number;
  readonly title?: string;
}

type AsciicastEvent = [number, 'o' | 'i' | 'r' | 'x', string];

function round(seconds: number): number {
  return Math.round(seconds * 1e6) / 1e6;
}

/**
 * Frames of one exec session (in stream order) → asciicast text: stdout and stderr as output
 * (`o`), stdin as input (`i`), resize messages as `r` (`COLSxROWS`), the exit Status as `x`.
 * Truncated frames contribute what was kept.
 */
export function asciicastFromFrames(frames: readonly FrameRecorded[], options: AsciicastOptions = {}): string {
  const version = options.version ?? 3;
  const decoders = new Map<string, InstanceType<typeof TextDecoder>>();
  const text = (key: string, bytes: Uint8Array): string => {
    let decoder = decoders.get(key);
    if (!decoder) decoders.set(key, (decoder = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true })));
    return decoder.decode(bytes, { stream: true });
  };
  let cols = options.cols ?? 80;
  let rows = options.rows ?? 24;
  let sizeFromFrames = false;
  const events: { at: number; event: AsciicastEvent }[] = [];
  for (const frame of frames) {
    const message = Buffer.from(frame.data, 'base64');
    const channel = frame.channel ?? message[0];
    const payload = message.subarray(1);
    const at = frame.offsetMicros / 1e6;
    if (frame.direction === 'upstream-to-client' && (channel === Channel.stdout || channel === Channel.stderr)) {
      const data = text(`o${channel}`, payload);
      if (data) events.push({ at, event: [at, 'o', data] });
    } else if (frame.direction === 'upstream-to-client' && channel === Channel.error) {
      try {
        events.push({ at, event: [at, 'x', String(exitCodeOf(JSON.parse(payload.toString('utf8'))) ?? 1)] });
      } catch {
        // A Status that does not parse (truncated frame): no exit event.
      }
    } else if (frame.direction === 'client-to-upstream' && channel === Channel.stdin) {
      const data = text('i', payload);
      if (data) events.push({ at, event: [at, 'i', data] });
    } else if (frame.direction === 'client-to-upstream' && channel === Channel.resize) {
      try {
        const size = JSON.parse(payload.toString('utf8')) as { Width?: unknown; Height?: unknown };
        if (typeof size.Width === 'number' && typeof size.Height === 'number') {
          // The first resize before any output is the terminal's size: the header carries it.
          if (!sizeFromFrames && events.every((e) => e.event[1] !== 'o')) {
            cols = size.Width;
            rows = size.Height;
            sizeFromFrames = true;
          } else events.push({ at, event: [at, 'r', `${size.Width}x${size.Height}`] });
        }
      } catch {
        // A malformed resize was refused by the gateway: nothing to replay.
      }
    }
  }
  const header =
    version === 3
      ? { version: 3, term: { cols, rows }, ...(options.timestamp !== undefined ? { timestamp: options.timestamp } : {}), ...(options.title ? { title: options.title } : {}) }
      : { version: 2, width: cols, height: rows, ...(options.timestamp !== undefined ? { timestamp: options.timestamp } : {}), ...(options.title ? { title: options.title } : {}) };
  const lines = [JSON.stringify(header)];
  let previous = 0;
  for (const { at, event } of events) {
    // v2 has no exit event.
    if (version === 2 && event[1] === 'x') continue;
    lines.push(JSON.stringify([round(version === 3 ? Math.max(0, at - previous) : at), event[1], event[2]]));
    previous = at;
  }
  return `${lines.join('\n')}\n`;
}
