// Recorded frames of a session with a shell channel (1) and an exec channel (2), for tests.
import type { FrameRecorded } from '@custodian/event-contracts';

const SESSION = '0190f3a0-0000-7000-8000-000000000001';

export function frame(offsetMicros: number, direction: FrameRecorded['direction'], messageType: string, data: string | Buffer, channel = 1): FrameRecorded {
  const bytes = Buffer.isBuffer(data) ? data : Buffer.from(data, 'utf8');
  return { sessionId: SESSION, direction, offsetMicros, messageType, channel, data: bytes.toString('base64'), byteLength: bytes.length };
}

// A resize and a euro sign split across two frames on the shell channel.
const euro = Buffer.from('€', 'utf8');
export const SAMPLE_FRAMES: FrameRecorded[] = [
  frame(1_000_000, 'client-to-upstream', 'shell', JSON.stringify({ term: 'xterm-256color', cols: 120, rows: 40 })),
  frame(1_100_000, 'upstream-to-client', 'stdout', '$ '),
  frame(1_500_000, 'client-to-upstream', 'stdin', 'e'),
  frame(1_600_000, 'upstream-to-client', 'stdout', 'e'),
  frame(2_000_000, 'client-to-upstream', 'window-change', JSON.stringify({ cols: 100, rows: 30 })),
  frame(2_250_000, 'upstream-to-client', 'stdout', Buffer.concat([Buffer.from('cost '), euro.subarray(0, 1)])),
  frame(2_250_500, 'upstream-to-client', 'stdout', Buffer.concat([euro.subarray(1), Buffer.from('5\r\n')])),
  frame(2_300_000, 'upstream-to-client', 'custodian-notice', '\r\ncustodian: blocked (rule no-rm)\r\n'),
  frame(2_400_000, 'client-to-upstream', 'custodian-erase-line', Buffer.from([0x05, 0x15])),
  frame(2_500_000, 'client-to-upstream', 'exec', '{}', 2),
  frame(2_600_000, 'upstream-to-client', 'stdout', 'hello\n', 2),
  frame(2_700_000, 'upstream-to-client', 'exit-status', JSON.stringify({ code: 0 }), 2),
  frame(3_000_000, 'upstream-to-client', 'exit-status', JSON.stringify({ code: 130 })),
];
