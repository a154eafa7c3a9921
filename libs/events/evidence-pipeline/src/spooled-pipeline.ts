// Distributed deployment: accept() = append to the gateway's spool (fsync, group commit);
// a drainer delivers spooled events to the bus in order and acknowledges them in the spool only
// after the bus acknowledged them (Kafka acks=-1). A crash or a broker outage loses nothing: the
// spool is drained again on restart / reconnect; what was delivered twice is deduplicated by
// event id downstream (ingest).
import { SystemClock, eventJson, type Clock, type CustodianEvent } from '@custodian/event-contracts';
import { NO_PIPELINE_METRICS, eventMessage, type BusMessage, type BusPublisher, type PipelineMetrics } from '@custodian/event-bus';
import { PipelineClosedError, PipelineRefusedError, SpoolError } from './errors.js';
import type { Accepted, EvidencePipeline, PipelineStatus } from './evidence-pipeline.js';
import { RefusalLedger, RefusalRecovery } from './refusals.js';
import type { Spool, SpoolRecord } from './spool.js';

export interface SpooledPipelineOptions {
  readonly spool: Spool;
  readonly publisher: BusPublisher;
  /** Names this gateway instance on refusal events. */
  readonly instance: string;
  readonly metrics?: PipelineMetrics;
  readonly clock?: Clock;
  /** Most bytes per delivery to the bus. Default 1 MiB. */
  readonly maxDeliveryBytes?: number;
  /** Most events per delivery. Default 5,000. */
  readonly maxDeliveryEvents?: number;
  /** First retry delay after a failed delivery (doubles up to 5 s). Default 100 ms. */
  readonly retryBackoffMs?: number;
  /** How often a pending refusal record is tried again. Default 500 ms. */
  readonly recoveryProbeMs?: number;
  /** How long close() keeps delivering. Default 5,000 ms. */
  readonly closeGraceMs?: number;
  /** Told about delivery failures (the drainer keeps retrying). */
  readonly onDeliveryError?: (error: unknown) => void;
}

/** Spool payload: per event, a line `<id> <type> <schemaVersion> <stream>` and a line of envelope JSON. */
export function encodeEvents(events: readonly CustodianEvent[]): Buffer {
  let text = '';
  for (const e of events) text += `${e.id} ${e.type} ${e.schemaVersion} ${e.stream}\n${eventJson(e)}\n`;
  return Buffer.from(text, 'utf8');
}

/** The bus messages of one spool payload (no JSON parsing: the meta line carries key and headers). */
export function decodeEventMessages(payload: Buffer): BusMessage[] {
  const lines = payload.toString('utf8').split('\n');
  const messages: BusMessage[] = [];
  for (let i = 0; i + 1 < lines.length; i += 2) {
    const [id, type, version, stream] = lines[i]!.split(' ') as [string, string, string, string];
    const json = lines[i + 1]!;
    messages.push(eventMessage({ id, type, schemaVersion: Number(version), stream } as CustodianEvent, json));
  }
  return messages;
}

/** Resolves true when `promise` settles first (rethrowing its failure), false when `signal` aborts first. */
async function untilAborted(promise: Promise<void>, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return false;
  let onAbort: () => void = () => undefined;
  const aborted = new Promise<false>((resolve) => {
    onAbort = () => resolve(false);
    signal.addEventListener('abort', onAbort, { once: true });
  });
  try {
    return await Promise.race([promise.then(() => true as const), aborted]);
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}

function refusalFor(error: unknown): PipelineRefusedError | undefined {
  if (!(error instanceof SpoolError)) return undefined;
  if (error.code === 'SPOOL_FULL') {
    return new PipelineRefusedError(
      'PIPELINE_SPOOL_FULL',
      `command refused: the evidence spool is full (${error.message}); events cannot be recorded until the event bus catches up`,
      { cause: error },
    );
  }
  if (error.code === 'SPOOL_UNWRITABLE') {
    return new PipelineRefusedError('PIPELINE_SPOOL_UNWRITABLE', `command refused: the evidence spool cannot be written (${error.message})`, { cause: error });
  }
  return undefined;
}

export class SpooledEvidencePipeline implements EvidencePipeline {
  private readonly spool: Spool;
  private readonly publisher: BusPublisher;
  private readonly metrics: PipelineMetrics;
  private readonly refusals: RefusalLedger;
  private readonly stopping = new AbortController();
  private readonly drainer: Promise<void>;
  private lastRefusal: PipelineRefusedError | undefined;
  private readonly recovery: RefusalRecovery;
  private closed = false;
  private closing: Promise<void> | undefined;
  private readonly drainedWaiters = new Set<() => void>();

  constructor(private readonly options: SpooledPipelineOptions) {
    this.spool = options.spool;
    this.publisher = options.publisher;
    this.metrics = options.metrics ?? NO_PIPELINE_METRICS;
    this.refusals = new RefusalLedger(options.instance, options.clock ?? new SystemClock());
    this.recovery = new RefusalRecovery(
      this.refusals,
      async (events) => {
        await this.spool.append(encodeEvents(events), events.length);
        this.metrics.eventsSpooled(events.length);
        this.reportDepth();
      },
      options.recoveryProbeMs ?? 500,
    );
    this.reportDepth();
    this.drainer = this.drain();
  }

  async accept(events: readonly CustodianEvent[]): Promise<Accepted> {
    if (this.closed) throw new PipelineClosedError();
    if (events.length === 0) return { events: 0, durableIn: 'spool' };
    try {
      await this.spool.append(encodeEvents(events), events.length);
    } catch (error) {
      const refusal = refusalFor(error);
      if (!refusal) throw error;
      this.lastRefusal = refusal;
      this.refusals.record(refusal.code, refusal.message, events);
      this.metrics.refused(refusal.code, 1);
      this.recovery.schedule();
      throw refusal;
    }
    this.lastRefusal = undefined;
    this.metrics.eventsSpooled(events.length);
    this.reportDepth();
    if (this.refusals.pending) this.recovery.schedule(0);
    return { events: events.length, durableIn: 'spool' };
  }

  status(): PipelineStatus {
    const undelivered = this.spool.depth().events;
    return this.lastRefusal
      ? { accepting: false, refusing: { code: this.lastRefusal.code, message: this.lastRefusal.message }, undelivered }
      : { accepting: true, undelivered };
  }

  /** Resolves when every accepted event has been delivered to the bus (tests, shutdown). */
  async drained(timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.spool.depth().records > 0 || this.refusals.pending) {
      if (Date.now() > deadline) throw new Error(`the spool still holds ${this.spool.depth().events} undelivered events after ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const done = (): void => {
          clearTimeout(timer);
          this.drainedWaiters.delete(done);
          resolve();
        };
        const timer = setTimeout(done, 50);
        this.drainedWaiters.add(done);
      });
    }
  }

  private reportDepth(): void {
    const depth = this.spool.depth();
    this.metrics.spoolDepth(depth.events, depth.bytes);
  }


  private async drain(): Promise<void> {
    const maxBytes = this.options.maxDeliveryBytes ?? 1024 * 1024;
    const maxEvents = this.options.maxDeliveryEvents ?? 5_000;
    let backoff = this.options.retryBackoffMs ?? 100;
    const signal = this.stopping.signal;
    while (!signal.aborted) {
      let records: SpoolRecord[];
      try {
        records = await this.spool.read(maxBytes, maxEvents);
      } catch (error) {
        if (signal.aborted) return;
        this.options.onDeliveryError?.(error);
        await this.spool.waitForAppend(signal, 1_000);
        continue;
      }
      if (records.length === 0) {
        for (const wake of [...this.drainedWaiters]) wake();
        await this.spool.waitForAppend(signal, 1_000);
        continue;
      }
      const messages = records.flatMap((r) => decodeEventMessages(r.payload));
      // The same records until the bus takes them: order is kept and nothing is skipped.
      for (;;) {
        try {
          const published = this.publisher.publish(messages);
          published.catch(() => undefined);
          // A crash (abandon) does not wait for the bus; an unacknowledged delivery is simply repeated later.
          if (!(await untilAborted(published, signal))) return;
          break;
        } catch (error) {
          this.options.onDeliveryError?.(error);
          if (signal.aborted) return;
          await new Promise<void>((resolve) => {
            const timer = setTimeout(done, backoff);
            function done(): void {
              clearTimeout(timer);
              resolve();
            }
            signal.addEventListener('abort', done, { once: true });
          });
          if (signal.aborted) return;
          backoff = Math.min(backoff * 2, 5_000);
        }
      }
      backoff = this.options.retryBackoffMs ?? 100;
      await this.spool.ack(records);
      this.metrics.eventsPublished(messages.length);
      this.reportDepth();
      if (this.refusals.pending) this.recovery.schedule(0);
    }
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      this.closed = true;
      await this.recovery.stop();
      // Deliver what we can within the grace period; the rest stays spooled for the next start.
      await this.drained(this.options.closeGraceMs ?? 5_000).catch(() => undefined);
      this.stopping.abort();
      await this.drainer;
      await this.spool.close();
    })();
    return this.closing;
  }

  /** Stops at once without delivering more (what a crash leaves behind); for tests. */
  async abandon(): Promise<void> {
    this.closed = true;
    void this.recovery.stop();
    this.stopping.abort();
    await this.drainer;
    await this.spool.close();
  }
}
