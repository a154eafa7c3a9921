import { describe, expect, it } from 'vitest';
import type { FrameRecorded } from '@custodian/event-contracts';
import { LiveAsciicastProjector, toAsciicast } from './asciicast.js';
import { terminalFrameFromKubernetes, terminalFramesFor } from './kubernetes-frames.js';
import { frame } from './testing/sample-frames.js';

/** A Kubernetes exec frame as the gateway records it: the WebSocket message, channel byte first. */
function k8s(offsetMicros: number, direction: FrameRecorded['direction'], label: string, channel: number, payload: string): FrameRecorded {
  return frame(offsetMicros, direction, label, Buffer.concat([Buffer.from([channel]), Buffer.from(payload, 'utf8')]), channel);
}

const success = JSON.stringify({ metadata: {}, status: 'Success' });
const exit3 = JSON.stringify({ metadata: {}, status: 'Failure', reason: 'NonZeroExitCode', details: { causes: [{ reason: 'ExitCode', message: '3' }] } });

const TTY_EXEC: FrameRecorded[] = [
  frame(1_000, 'client-to-upstream', 'shell', '{}', 0),
  k8s(2_000, 'client-to-upstream', 'resize', 4, JSON.stringify({ Width: 132, Height: 43 })),
  k8s(300_000, 'upstream-to-client', 'stdout', 1, '$ '),
  k8s(400_000, 'client-to-upstream', 'stdin', 0, 'ls'),
  k8s(500_000, 'upstream-to-client', 'stdout', 1, 'ls\r\nfile\r\n'),
  k8s(600_000, 'upstream-to-client', 'stderr', 2, 'warn\r\n'),
  k8s(700_000, 'client-to-upstream', 'resize', 4, JSON.stringify({ Width: 100, Height: 30 })),
  k8s(800_000, 'client-to-upstream', 'close:stdin', 255, '\u0000'),
  k8s(900_000, 'upstream-to-client', 'error', 3, exit3),
];

describe('Kubernetes exec frames in a replay', () => {
  it('strips the channel byte and maps channels: stdout/stderr → o, stdin → i, resize → r, the Status → x; the first resize sizes the header', () => {
    const cast = toAsciicast(TTY_EXEC.map(terminalFrameFromKubernetes).filter((f) => f !== undefined))
      .trimEnd()
      .split('\n')
      .map((line) => JSON.parse(line) as unknown);
    expect(cast[0]).toEqual({ version: 3, term: { cols: 132, rows: 43 } });
    expect(cast.slice(1).map((e) => (e as unknown[]).slice(1))).toEqual([
      ['o', '$ '],
      ['i', 'ls'],
      ['o', 'ls\r\nfile\r\n'],
      ['o', 'warn\r\n'],
      ['r', '100x30'],
      ['x', '3'],
    ]);
  });

  it('a Success Status is exit 0; a Status that does not parse and unknown channels give nothing', () => {
    expect(JSON.parse(Buffer.from(terminalFrameFromKubernetes(k8s(1, 'upstream-to-client', 'error', 3, success))!.data, 'base64').toString())).toEqual({ code: 0 });
    expect(terminalFrameFromKubernetes(k8s(1, 'upstream-to-client', 'error', 3, '{"status":'))).toBeUndefined();
    expect(terminalFrameFromKubernetes(k8s(1, 'client-to-upstream', 'close', 255, '\u0000'))).toBeUndefined();
    expect(terminalFrameFromKubernetes(frame(1, 'client-to-upstream', 'stdin', Buffer.alloc(0), 0))).toBeUndefined();
  });

  it('other protocols pass unchanged; the live projector reads normalized frames the same way', () => {
    const same = frame(1, 'upstream-to-client', 'stdout', 'x\x01');
    expect(terminalFramesFor('ssh')(same)).toBe(same);
    const live = new LiveAsciicastProjector();
    const messages = TTY_EXEC.map(terminalFramesFor('kubernetes')).filter((f) => f !== undefined).flatMap((f) => live.push(f));
    expect(messages[0]).toEqual({ cols: 80, rows: 24, time: 0 });
    expect(messages.filter((m) => Array.isArray(m)).map((m) => (m as unknown[])[1])).toEqual(['r', 'o', 'i', 'o', 'o', 'r', 'x']);
  });
});
