// One session's events, in order, into the evidence pipeline. Every event of a session stream
// goes through here: the pipeline requires a stream's events in sequence order, one accept()
// after another, so this is the only writer of the stream. Events are batched while an accept()
// is in flight (group commit), a refused batch is kept and retried first (sequence numbers stay
// contiguous), and the bytes waiting are counted so that the protocol adapter can stop reading
// its sockets when the pipeline falls behind (bounded memory).
import type { CustodianEvent } from '@custodian/event-contracts';
import type { Accepted, EvidencePipeline, PipelineStatus } from '@custodian/evidence-pipeline';

interface Pending {
  readonly event: CustodianEvent;
  readonly bytes: number;
  /** Someone waits for it (a strict-mode command): it is sent without lingering. */
  readonly urgent: boolean;
  settled: boolean;
  resolve(): void;
  reject(error: unknown): void;
}

export interface SessionRecorderOptions {
  readonly evidence: EvidencePipeline;
  /** Most events per accept() (default 500). */
  readonly maxBatchEvents?: number;
  /** Retry interval after a refused accept() (default 500 ms). */
  readonly retryMs?: number;
  /** Backlog above which `saturated` is true and adapters pause their sockets (default 8 MiB). */
  readonly maxBacklogBytes?: number;
  /**
   * How long events nobody waits for (frames, maskings) may wait to share an append with later
   * ones (default 10 ms). Events a command waits for are sent at once, with whatever is queued.
   */
  readonly lingerMs?: number;
}

/** Rough size of an event in memory/JSON: frames dominate, the rest is small. */
function eventBytes(event: CustodianEvent): number {
  return event.type === 'frame.recorded' ? event.payload.data.length + 300 : 600;
}

export class SessionRecorder {
  /** Ordered by sequence; the head is the next to send. */
  private readonly queue: Pending[] = [];
  private nextToSend: number | undefined;
  private inFlight = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private lingerTimer: NodeJS.Timeout | undefined;
  private readonly lingerMs: number;
  private backlog = 0;
  private failing: unknown;
  /** Bumped by abandon(): an append in flight then belongs to a queue that no longer exists. */
  private epoch = 0;
  private readonly drainWaiters: (() => void)[] = [];
  private readonly idleWaiters: (() => void)[] = [];
  private readonly maxBatchEvents: number;
  private readonly retryMs: number;
  readonly maxBacklogBytes: number;

  constructor(private readonly options: SessionRecorderOptions) {
    this.maxBatchEvents = options.maxBatchEvents ?? 500;
    this.retryMs = options.retryMs ?? 500;
    this.maxBacklogBytes = options.maxBacklogBytes ?? 8 * 1024 * 1024;
    this.lingerMs = options.lingerMs ?? 10;
  }

  /** Bytes of events accepted by this recorder but not yet durable. */
  get backlogBytes(): number {
    return this.backlog;
  }

  get saturated(): boolean {
    return this.backlog >= this.maxBacklogBytes;
  }

  /** Resolves once the backlog is below the limit (at once if it is). */
  whenBelowLimit(): Promise<void> {
    if (!this.saturated) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  /**
   * Queues events (each stream's sequence numbers must continue where the previous call left off,
   * though calls may arrive out of order: the queue is kept sorted and only a gap-free run is
   * sent). Resolves when they are durable; rejects with the pipeline's error when refused.
   */
  enqueue(events: readonly CustodianEvent[], options: { readonly urgent?: boolean } = {}): Promise<void> {
    const promises: Promise<void>[] = [];
    const urgent = options.urgent !== false;
    for (const event of events) {
      let resolve!: () => void;
      let reject!: (error: unknown) => void;
      const promise = new Promise<void>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      // Callers that do not await (frames) must not produce unhandled rejections.
      promise.catch(() => undefined);
      const pending: Pending = { event, bytes: eventBytes(event), urgent, settled: false, resolve, reject };
      this.insert(pending);
      this.backlog += pending.bytes;
      promises.push(promise);
    }
    // Group commit: what nobody waits for lingers briefly so that one append carries many events.
    if (urgent || this.saturated) this.pump();
    else this.linger();
    return promises.length === 1 ? promises[0]! : Promise.all(promises).then(() => undefined);
  }

  /** As an EvidencePipeline, so that CommandEvidenceGate (strict mode) waits on this session's ordered writer. */
  asPipeline(options: { readonly urgent?: boolean } = {}): EvidencePipeline {
    return {
      accept: async (events): Promise<Accepted> => {
        await this.enqueue(events, { urgent: options.urgent ?? true });
        return { events: events.length, durableIn: 'store' };
      },
      status: (): PipelineStatus => {
        const status = this.options.evidence.status();
        if (this.failing !== undefined && status.accepting) {
          const error = this.failing as { code?: string; message?: string };
          return { accepting: false, refusing: { code: error.code ?? 'PIPELINE_STORE_UNWRITABLE', message: error.message ?? 'events cannot be recorded' }, undelivered: status.undelivered };
        }
        return status;
      },
      close: async () => undefined,
    };
  }

  /** Resolves when everything queued is durable, or after `timeoutMs` (then false). */
  async idle(timeoutMs: number): Promise<boolean> {
    if (this.queue.length === 0 && !this.inFlight) return true;
    this.pump();
    let timer: NodeJS.Timeout | undefined;
    const done = await Promise.race([
      new Promise<true>((resolve) => this.idleWaiters.push(() => resolve(true))),
      new Promise<false>((resolve) => {
        timer = setTimeout(() => resolve(false), timeoutMs);
      }),
    ]);
    clearTimeout(timer);
    return done;
  }

  /** Stops retrying (the session is gone and the pipeline still refuses). */
  abandon(): void {
    clearTimeout(this.lingerTimer);
    this.lingerTimer = undefined;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.epoch++;
    for (const pending of this.queue.splice(0)) {
      if (!pending.settled) pending.reject(new Error('session recorder abandoned'));
    }
    this.backlog = 0;
    this.notify();
  }

  private insert(pending: Pending): void {
    const sequence = pending.event.sequence;
    this.nextToSend ??= sequence;
    let index = this.queue.length;
    while (index > 0 && this.queue[index - 1]!.event.sequence > sequence) index--;
    this.queue.splice(index, 0, pending);
    if (sequence < this.nextToSend) this.nextToSend = sequence;
  }

  private pump(): void {
    clearTimeout(this.lingerTimer);
    this.lingerTimer = undefined;
    if (this.inFlight || this.retryTimer !== undefined) return;
    const batch: Pending[] = [];
    let expected = this.nextToSend;
    for (const pending of this.queue) {
      if (batch.length >= this.maxBatchEvents || pending.event.sequence !== expected) break;
      batch.push(pending);
      expected = (expected ?? 0) + 1;
    }
    if (batch.length === 0) {
      if (this.queue.length === 0) this.notify();
      return;
    }
    this.inFlight = true;
    const epoch = this.epoch;
    const abandoned = (): boolean => {
      if (epoch === this.epoch) return false;
      // abandon() already removed this batch and its bytes: nothing to take off or retry.
      this.inFlight = false;
      this.notify();
      return true;
    };
    this.options.evidence.accept(batch.map((p) => p.event)).then(
      () => {
        if (abandoned()) return;
        this.inFlight = false;
        this.failing = undefined;
        this.queue.splice(0, batch.length);
        this.nextToSend = (batch.at(-1)!.event.sequence ?? 0) + 1;
        for (const pending of batch) {
          this.backlog -= pending.bytes;
          if (!pending.settled) {
            pending.settled = true;
            pending.resolve();
          }
        }
        this.notify();
        // What queued meanwhile goes at once only if someone waits for it; else it lingers too, so
        // that a session nobody waits on commits every lingerMs, not at the writer's commit rate.
        if (this.saturated || this.idleWaiters.length > 0 || this.queue.some((p) => p.urgent && !p.settled)) this.pump();
        else if (this.queue.length > 0) this.linger();
      },
      (error: unknown) => {
        if (abandoned()) return;
        this.inFlight = false;
        this.failing = error;
        // Fail closed for whoever waits (a strict-mode command is refused now); the events stay
        // queued and are retried, so the stream keeps its sequence.
        for (const pending of batch) {
          if (!pending.settled) {
            pending.settled = true;
            pending.reject(error);
          }
        }
        this.retryTimer = setTimeout(() => {
          this.retryTimer = undefined;
          this.pump();
        }, this.retryMs);
        this.retryTimer.unref();
      },
    );
  }

  private linger(): void {
    this.lingerTimer ??= setTimeout(() => {
      this.lingerTimer = undefined;
      this.pump();
    }, this.lingerMs).unref();
  }

  private notify(): void {
    if (!this.saturated) for (const resolve of this.drainWaiters.splice(0)) resolve();
    if (this.queue.length === 0 && !this.inFlight) for (const resolve of this.idleWaiters.splice(0)) resolve();
  }
}
