/**
 * Wakes an adapter's live subscriptions when something was committed: by this process (the
 * adapter calls `notify()` after a commit), or, where the adapter can tell, by another one
 * (PostgreSQL NOTIFY). A subscription reads its page, remembers `seen()`, and waits for the next
 * commit or the poll interval, whichever comes first (commits it cannot hear about).
 */
export class CommitSignal {
  private count = 0;
  private readonly waiters = new Set<() => void>();

  /** A token for "what was committed when I last read"; pass it to `wait`. */
  seen(): number {
    return this.count;
  }

  notify(): void {
    this.count += 1;
    for (const wake of [...this.waiters]) wake();
  }

  /** Resolves at the next commit after `seen`, after `pollMs`, or when `signal` aborts. */
  wait(seen: number, pollMs: number, signal: AbortSignal): Promise<void> {
    if (this.count !== seen || signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        this.waiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, pollMs);
      signal.addEventListener('abort', done, { once: true });
      this.waiters.add(done);
    });
  }
}
