import { describe, expect, it } from 'vitest';
import { CommitSignal } from './commit-signal.js';

describe('CommitSignal', () => {
  it('wakes a waiter at the next commit, and not for a commit it has already seen', async () => {
    const signal = new CommitSignal();
    const abort = new AbortController();
    const seen = signal.seen();
    let woken = false;
    const waiting = signal.wait(seen, 60_000, abort.signal).then(() => (woken = true));
    await Promise.resolve();
    expect(woken).toBe(false);
    signal.notify();
    await waiting;
    expect(woken).toBe(true);
    // A commit between reading and waiting: resolves at once.
    const stale = signal.seen();
    signal.notify();
    await expect(signal.wait(stale, 60_000, abort.signal)).resolves.toBeUndefined();
  });

  it('resolves after the poll interval or when aborted', async () => {
    const signal = new CommitSignal();
    await expect(signal.wait(signal.seen(), 20, new AbortController().signal)).resolves.toBeUndefined();
    const abort = new AbortController();
    const waiting = signal.wait(signal.seen(), 60_000, abort.signal);
    abort.abort();
    await expect(waiting).resolves.toBeUndefined();
  });
});
