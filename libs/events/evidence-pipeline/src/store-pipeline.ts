// Embedded deployment: accept() appends straight to the event store, whose commit is the durable
// point (SQLite WAL, synchronous=FULL: fsync'd before the append resolves; concurrent appends are
// group-committed). No spool and no bus hop: one durable write instead of two (ADR 0007).
import { SystemClock, type Clock, type CustodianEvent } from '@custodian/event-contracts';
import { NO_PIPELINE_METRICS, type PipelineMetrics } from '@custodian/event-bus';
import { EventStoreError, type EventStore } from '@custodian/event-store';
import { PipelineClosedError, PipelineRefusedError } from './errors.js';
import type { Accepted, EvidencePipeline, PipelineStatus } from './evidence-pipeline.js';
import { RefusalLedger, RefusalRecovery } from './refusals.js';

export interface StorePipelineOptions {
  readonly store: EventStore;
  readonly instance: string;
  readonly metrics?: PipelineMetrics;
  readonly clock?: Clock;
  /** How often a pending refusal record is tried again. Default 500 ms. */
  readonly recoveryProbeMs?: number;
}

/** Events grouped by stream, each group in the order given. */
export function groupByStream(events: readonly CustodianEvent[]): Map<string, CustodianEvent[]> {
  const groups = new Map<string, CustodianEvent[]>();
  for (const e of events) {
    const group = groups.get(e.stream);
    if (group) group.push(e);
    else groups.set(e.stream, [e]);
  }
  return groups;
}

/** Store failures that mean "cannot write now" (fail closed), as opposed to a refused append (a bug in the caller). */
function isUnwritable(error: unknown): boolean {
  return error instanceof EventStoreError && (error.code === 'EVENT_STORE_UNAVAILABLE' || error.code === 'EVENT_STORE_CLOSED');
}

export class StoreEvidencePipeline implements EvidencePipeline {
  private readonly store: EventStore;
  private readonly metrics: PipelineMetrics;
  private readonly refusals: RefusalLedger;
  private lastRefusal: PipelineRefusedError | undefined;
  private readonly recovery: RefusalRecovery;
  private closed = false;

  constructor(private readonly options: StorePipelineOptions) {
    this.store = options.store;
    this.metrics = options.metrics ?? NO_PIPELINE_METRICS;
    this.refusals = new RefusalLedger(options.instance, options.clock ?? new SystemClock());
    this.recovery = new RefusalRecovery(
      this.refusals,
      async (events) => {
        await this.append(events);
        this.metrics.eventsPublished(events.length);
      },
      options.recoveryProbeMs ?? 500,
    );
    this.metrics.spoolDepth(0, 0);
  }

  async accept(events: readonly CustodianEvent[]): Promise<Accepted> {
    if (this.closed) throw new PipelineClosedError();
    if (events.length === 0) return { events: 0, durableIn: 'store' };
    try {
      await this.append(events);
    } catch (error) {
      if (!isUnwritable(error)) throw error;
      const refusal = new PipelineRefusedError('PIPELINE_STORE_UNWRITABLE', `command refused: the event store cannot record events (${(error as Error).message})`, { cause: error });
      this.lastRefusal = refusal;
      this.refusals.record(refusal.code, refusal.message, events);
      this.metrics.refused(refusal.code, 1);
      this.recovery.schedule();
      throw refusal;
    }
    this.lastRefusal = undefined;
    this.metrics.eventsPublished(events.length);
    if (this.refusals.pending) this.recovery.schedule(0);
    return { events: events.length, durableIn: 'store' };
  }

  private async append(events: readonly CustodianEvent[]): Promise<void> {
    // Most often every event is of one session (a command's events): one append, no grouping.
    const stream = events[0]!.stream;
    if (events.every((e) => e.stream === stream)) {
      await this.store.append(stream, events, { expectedRevision: 'any' });
      return;
    }
    // One append per stream, all in flight together: the store group-commits them.
    await Promise.all([...groupByStream(events)].map(([s, group]) => this.store.append(s, group, { expectedRevision: 'any' })));
  }

  status(): PipelineStatus {
    return this.lastRefusal ? { accepting: false, refusing: { code: this.lastRefusal.code, message: this.lastRefusal.message }, undelivered: 0 } : { accepting: true, undelivered: 0 };
  }


  async close(): Promise<void> {
    this.closed = true;
    await this.recovery.stop();
  }
}
