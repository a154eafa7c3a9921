// Frames recorded by the Kubernetes exec gateway → the terminal frame convention the asciicast
// projection reads (the SSH gateway's: raw bytes labelled `stdout`/`stdin`/…, control frames
// `window-change` and `exit-status` as JSON). The Kubernetes gateway records each WebSocket
// message exactly as sent, channel byte first (channel.k8s.io: 0 stdin, 1 stdout, 2 stderr,
// 3 error Status, 4 resize, 255 close), because the custody digest covers those bytes; its own
// control frames (`exec`, `shell`: the exec's start) carry JSON and pass unchanged. An exec has
// one terminal: every frame is put on replay channel 0.
import type { FrameRecorded } from '@custodian/event-contracts';

const STDIN = 0;
const STDOUT = 1;
const STDERR = 2;
const ERROR = 3;
const RESIZE = 4;
const CONTROL_LABELS = new Set(['exec', 'shell']);

function json(bytes: Buffer): unknown {
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch {
    return undefined;
  }
}

/** The exit code a Kubernetes exec Status reports (Success → 0; Failure → its ExitCode cause, else 1). */
function exitCodeOfStatus(status: unknown): number | undefined {
  if (typeof status !== 'object' || status === null) return undefined;
  const s = status as { status?: unknown; details?: { causes?: { reason?: unknown; message?: unknown }[] } };
  if (s.status === 'Success') return 0;
  if (s.status !== 'Failure') return undefined;
  const cause = Array.isArray(s.details?.causes) ? s.details.causes.find((c) => c?.reason === 'ExitCode') : undefined;
  const code = Number(cause?.message);
  return Number.isInteger(code) ? code : 1;
}

function control(frame: FrameRecorded, label: string, value: unknown): FrameRecorded {
  const data = Buffer.from(JSON.stringify(value), 'utf8');
  return { ...frame, channel: 0, messageType: label, data: data.toString('base64'), byteLength: data.length, truncated: false };
}

/** One Kubernetes exec frame in the terminal convention, or undefined when a replay has nothing to show for it. */
export function terminalFrameFromKubernetes(frame: FrameRecorded): FrameRecorded | undefined {
  if (CONTROL_LABELS.has(frame.messageType ?? '')) return { ...frame, channel: 0 };
  const message = Buffer.from(frame.data, 'base64');
  if (message.length === 0) return undefined;
  const channel = message[0]!;
  const payload = message.subarray(1);
  const data = (label: string): FrameRecorded => ({ ...frame, channel: 0, messageType: label, data: payload.toString('base64') });
  if (frame.direction === 'upstream-to-client') {
    if (channel === STDOUT) return data('stdout');
    if (channel === STDERR) return data('stderr');
    if (channel === ERROR) {
      const code = exitCodeOfStatus(json(payload));
      return code === undefined ? undefined : control(frame, 'exit-status', { code });
    }
    return undefined;
  }
  if (channel === STDIN) return data(frame.messageType === 'stdin-unverified' ? 'stdin-unverified' : 'stdin');
  if (channel === RESIZE) {
    const size = json(payload) as { Width?: unknown; Height?: unknown } | undefined;
    return typeof size?.Width === 'number' && typeof size.Height === 'number' ? control(frame, 'window-change', { cols: size.Width, rows: size.Height }) : undefined;
  }
  return undefined;
}

/** How a session's frames become terminal frames, by the protocol its session.opened names. */
export function terminalFramesFor(protocol: string | undefined): (frame: FrameRecorded) => FrameRecorded | undefined {
  return protocol === 'kubernetes' ? terminalFrameFromKubernetes : (frame) => frame;
}
