// Socket backpressure with reasons. A gateway pauses a readable for several independent reasons
// at once (the other side's write buffer is full, the evidence recorder is saturated, a command is
// waiting on a decision, too much was read ahead); it may read again only when none is left.
// Counting pauses and resumes by hand is how a socket ends up resumed while the recorder is still
// full, so the reasons are named and kept in a set.

/** What FlowControl drives: a Node readable (net.Socket, a stream.Readable). */
export interface PausableReadable {
  pause(): unknown;
  resume(): unknown;
}

/** A writable whose `write` reports a full buffer and that emits `drain` when it empties (net.Socket). */
export interface DrainingWritable {
  write(chunk: Uint8Array): boolean;
  once(event: 'drain', listener: () => void): unknown;
}

export class FlowControl {
  private readonly reasons = new Set<string>();
  /** Reasons waiting for a `drain`: one listener each, however many writes report a full buffer. */
  private readonly drains = new Set<string>();
  private stopped = false;

  constructor(private readonly readable: PausableReadable) {}

  /** Stops reading for `reason` (idempotent per reason). */
  pause(reason: string): void {
    this.reasons.add(reason);
    this.readable.pause();
  }

  /** Drops `reason`; reading resumes when no reason is left (and never after stop()). */
  resume(reason: string): void {
    this.reasons.delete(reason);
    if (this.reasons.size === 0 && !this.stopped) this.readable.resume();
  }

  /** True while at least one reason holds the readable. */
  get paused(): boolean {
    return this.reasons.size > 0;
  }

  /** The reasons holding the readable now, for diagnostics. */
  get pausedFor(): readonly string[] {
    return [...this.reasons];
  }

  /** Paused for `reason` until `work` settles (resolved or rejected); returns its result. */
  async during<T>(reason: string, work: Promise<T>): Promise<T> {
    this.pause(reason);
    try {
      return await work;
    } finally {
      this.resume(reason);
    }
  }

  /**
   * Writes `chunk` to `writable`; when its buffer is full, pauses this readable for `reason` until
   * it drains (the usual "the other side cannot keep up" case). Returns what `write` returned.
   */
  forward(writable: DrainingWritable, chunk: Uint8Array, reason: string): boolean {
    const accepted = writable.write(chunk);
    if (!accepted) this.pauseUntilDrained(writable, reason);
    return accepted;
  }

  /** Paused for `reason` until `writable` emits `drain`. */
  pauseUntilDrained(writable: Pick<DrainingWritable, 'once'>, reason: string): void {
    this.pause(reason);
    if (this.drains.has(reason)) return;
    this.drains.add(reason);
    writable.once('drain', () => {
      this.drains.delete(reason);
      this.resume(reason);
    });
  }

  /** The session is over: never resume again, whatever reasons are dropped later. */
  stop(): void {
    this.stopped = true;
  }
}
