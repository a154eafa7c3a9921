import { describe, expect, it } from 'vitest';
import { isReplayFrame, LiveAsciicastProjector, ReplayError, replayChannels, toAsciicast } from './asciicast.js';
import { parseAsciicast } from './testing/asciicast-parser.js';
import { frame, SAMPLE_FRAMES } from './testing/sample-frames.js';

const FRAMES = SAMPLE_FRAMES;

describe('asciicast projection', () => {
  it('lists the terminal channels with their kind', () => {
    expect(replayChannels(FRAMES)).toEqual([
      { channel: 1, kind: 'shell' },
      { channel: 2, kind: 'exec' },
    ]);
  });

  it('writes v3: the pty size in the header, interval-timed o/i/r events, the exit status; gateway-only bytes left out', () => {
    const text = toAsciicast(FRAMES, { channel: 1, sessionOpenedAt: '2026-12-07T07:00:00Z' });
    const cast = parseAsciicast(text);
    expect(cast.version).toBe(3);
    expect(cast.header).toEqual({ version: 3, term: { cols: 120, rows: 40, type: 'xterm-256color' }, timestamp: Date.parse('2026-12-07T07:00:01Z') / 1000 });
    expect(cast.events.map(([, code, data]) => [code, data])).toEqual([
      ['o', '$ '],
      ['i', 'e'],
      ['o', 'e'],
      ['r', '100x30'],
      ['o', 'cost '],
      ['o', '€5\r\n'],
      ['o', '\r\ncustodian: blocked (rule no-rm)\r\n'],
      ['x', '130'],
    ]);
    // Intervals: 0.1 s after the channel start, then 0.4 s, 0.1 s, …; they add up to the channel's 2 s.
    expect(cast.events.slice(0, 3).map(([interval]) => interval)).toEqual([0.1, 0.4, 0.1]);
    expect(cast.times.at(-1)).toBeCloseTo(2, 6);
  });

  it('exports v2 for older players: absolute times, size as width/height, no exit event; the exec channel on request', () => {
    const cast = parseAsciicast(toAsciicast(FRAMES, { channel: 1, format: 'v2' }));
    expect(cast.header).toMatchObject({ version: 2, width: 120, height: 40, env: { TERM: 'xterm-256color' } });
    expect(cast.events.map(([time]) => time)).toEqual([0.1, 0.5, 0.6, 1, 1.25, 1.2505, 1.3]);
    expect(cast.events.some(([, code]) => code === 'x')).toBe(false);
    const exec = parseAsciicast(toAsciicast(FRAMES, { channel: 2 }));
    expect(exec.header).toMatchObject({ term: { cols: 80, rows: 24 } });
    expect(exec.events.map(([, code, data]) => [code, data])).toEqual([
      ['o', 'hello\n'],
      ['x', '0'],
    ]);
  });

  it('refuses clearly when there is nothing to replay', () => {
    expect(() => toAsciicast([frame(0, 'client-to-upstream', 'Query', 'SELECT 1')])).toThrow(ReplayError);
    expect(() => toAsciicast(FRAMES, { channel: 9 })).toThrow(/no terminal channel 9; it has 1, 2/);
  });
});

describe('live projection (server-sent events for asciinema-player)', () => {
  it('gives a reset with the pty size, then absolute-time events of the chosen channel only', () => {
    const live = new LiveAsciicastProjector(1);
    const messages = FRAMES.flatMap((f) => live.push(f));
    expect(messages[0]).toEqual({ cols: 120, rows: 40, time: 0 });
    expect(messages.slice(1)).toEqual([
      [0.1, 'o', '$ '],
      [0.5, 'i', 'e'],
      [0.6, 'o', 'e'],
      [1, 'r', '100x30'],
      [1.25, 'o', 'cost '],
      [1.2505, 'o', '€5\r\n'],
      [1.3, 'o', '\r\ncustodian: blocked (rule no-rm)\r\n'],
      [2, 'x', '130'],
    ]);
    expect(live.channel).toBe(1);
  });

  it('without a channel: the first with terminal data; frames fed one by one give the same as the file projection', () => {
    const live = new LiveAsciicastProjector();
    const messages = [frame(0, 'client-to-upstream', 'Query', 'SELECT 1', 0), ...FRAMES].flatMap((f) => live.push(f));
    const cast = parseAsciicast(toAsciicast(FRAMES, { channel: 1, format: 'v2' }));
    expect(messages.slice(1).filter((m) => Array.isArray(m) && m[1] !== 'x')).toEqual(cast.events);
  });
});

describe('isReplayFrame', () => {
  it('keeps terminal data, starts, resizes and exits; skips SFTP data and SQL frames', () => {
    expect(FRAMES.filter(isReplayFrame).map((f) => f.messageType)).toEqual(['shell', 'stdout', 'stdin', 'stdout', 'window-change', 'stdout', 'stdout', 'custodian-notice', 'exec', 'stdout', 'exit-status', 'exit-status']);
    expect(isReplayFrame(frame(0, 'upstream-to-client', 'sftp-data', 'x'))).toBe(false);
    expect(isReplayFrame(frame(0, 'client-to-upstream', 'Query', 'SELECT 1'))).toBe(false);
    // Projecting only the kept frames gives the same recording.
    expect(toAsciicast(FRAMES.filter(isReplayFrame), { channel: 1 })).toBe(toAsciicast(FRAMES, { channel: 1 }));
  });
});
