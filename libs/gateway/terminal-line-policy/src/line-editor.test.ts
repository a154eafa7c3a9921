import { describe, expect, it } from 'vitest';
import { AlternateScreenTracker, LineEditor, type EditorEvent } from './line-editor.js';

function enters(events: EditorEvent[]): { line: string; uncertain: boolean }[] {
  return events.flatMap((e) => (e.kind === 'enter' ? [{ line: e.line, uncertain: e.uncertain }] : []));
}

/** Feeds `input` split at every byte boundary (and whole) and checks each gives the same lines. */
function linesAtEveryBoundary(input: string): { line: string; uncertain: boolean }[] {
  const bytes = Buffer.from(input, 'utf8');
  const whole = enters(new LineEditor().push(bytes));
  for (let cut = 1; cut < bytes.length; cut++) {
    const editor = new LineEditor();
    const split = enters([...editor.push(bytes.subarray(0, cut)), ...editor.push(bytes.subarray(cut))]);
    expect(split, `split at ${cut}`).toEqual(whole);
  }
  return whole;
}

describe('LineEditor', () => {
  it('models printable input, backspace and erase', () => {
    expect(linesAtEveryBoundary('ls -lx\x7f\x7fa\r')).toEqual([{ line: 'ls -a', uncertain: false }]);
    expect(linesAtEveryBoundary('rmx\x08 -rf /\r')).toEqual([{ line: 'rm -rf /', uncertain: false }]);
  });

  it('^U kills to the start, ^W the word before the cursor, ^C discards the line', () => {
    expect(linesAtEveryBoundary('rm -rf /\x15echo ok\r')).toEqual([{ line: 'echo ok', uncertain: false }]);
    expect(linesAtEveryBoundary('echo safe\x17rm -rf /\r')).toEqual([{ line: 'echo rm -rf /', uncertain: false }]);
    expect(linesAtEveryBoundary('rm -rf /\x03echo hi\r')).toEqual([{ line: 'echo hi', uncertain: false }]);
  });

  it('follows cursor keys, Home/End and Delete', () => {
    // "m -rf /", Home, insert "r": the shell runs "rm -rf /".
    expect(linesAtEveryBoundary('m -rf /\x1b[Hr\r')).toEqual([{ line: 'rm -rf /', uncertain: false }]);
    expect(linesAtEveryBoundary('echo ab\x1b[D\x1b[Dx\x1b[F!\r')).toEqual([{ line: 'echo xab!', uncertain: false }]);
    expect(linesAtEveryBoundary('echo abc\x01\x1b[3~\r')).toEqual([{ line: 'cho abc', uncertain: false }]);
  });

  it('bracketed paste inserts newlines into the line instead of running it', () => {
    expect(linesAtEveryBoundary('\x1b[200~echo a\nrm -rf /\x1b[201~\r')).toEqual([{ line: 'echo a\nrm -rf /', uncertain: false }]);
  });

  it('keys it cannot follow make the line uncertain until the next line', () => {
    expect(linesAtEveryBoundary('rm\t /\rls\r')).toEqual([
      { line: 'rm /', uncertain: true },
      { line: 'ls', uncertain: false },
    ]);
    expect(linesAtEveryBoundary('\x1b[A\r')).toEqual([{ line: '', uncertain: true }]);
  });

  it('forwards everything except Enter, which comes as its own event', () => {
    const events = new LineEditor().push(Buffer.from('ls\rpwd'));
    expect(events.map((e) => [e.kind, e.bytes.toString('latin1')])).toEqual([
      ['forward', 'ls'],
      ['enter', '\r'],
      ['forward', 'pwd'],
    ]);
  });
});

describe('AlternateScreenTracker', () => {
  it('follows the alternate screen across chunk boundaries', () => {
    const tracker = new AlternateScreenTracker();
    tracker.observe(Buffer.from('vim\x1b[?10'));
    expect(tracker.alternateScreen).toBe(false);
    tracker.observe(Buffer.from('49h'));
    expect(tracker.alternateScreen).toBe(true);
    tracker.observe(Buffer.from('\x1b[?1049l$ '));
    expect(tracker.alternateScreen).toBe(false);
  });
});
