// Ingest: custodian.events.v1 → event store, exactly once by event id. Each message is validated
// against schemas/events (parseEventJson) and its headers against the envelope; events are
// appended per stream in partition order; offsets are committed only after the store
// acknowledged (the consumer commits when handleBatch resolves). Poison messages go to the
// dead-letter topic with their reason, and are counted; they never block or vanish.
//
// Exactly once under redelivery (a crashed ingest, a rebalance, a producer retry, two ingest
// instances at once): the store's append is idempotent by event id and refuses any sequence but
// the next one. A redelivered stretch therefore either deduplicates as a whole (fast path) or,
// when it overlaps the stream's tail only partly, is split at the stream's current revision:
// the stored part is re-appended on its own (deduplicated, which also checks the content), the
// rest is appended after it. See docs/adr/0007-evidence-pipeline.md.
import { EventContractError, parseEventJson, type CustodianEvent } from '@custodian/event-contracts';
import {
  DEAD_LETTER_HEADERS,
  DEAD_LETTER_TOPIC,
  EVENT_HEADERS,
  NO_PIPELINE_METRICS,
  type BusMessage,
  type BusPublisher,
  type ConsumedBatch,
  type ConsumedMessage,
  type PipelineMetrics,
} from '@custodian/event-bus';
import { EventStoreError, type EventStore } from '@custodian/event-store';

export type DeadLetterReasonCode =
  | 'INGEST_NOT_JSON'
  | 'INGEST_INVALID_EVENT'
  | 'INGEST_HEADER_MISMATCH'
  | 'INGEST_IDEMPOTENCY_CONFLICT'
  | 'INGEST_SEQUENCE_CONFLICT'
  | 'INGEST_SEQUENCE_GAP'
  | 'INGEST_REFUSED_BY_STORE';

export interface DeadLetter {
  readonly message: ConsumedMessage;
  readonly reasonCode: DeadLetterReasonCode;
  readonly reason: string;
}

export interface EventIngestorOptions {
  readonly store: EventStore;
  /** Where dead letters go (custodian.events.dlq.v1). */
  readonly deadLetters: BusPublisher;
  readonly metrics?: PipelineMetrics;
  /** Told about every dead letter (logs). */
  readonly onDeadLetter?: (letter: DeadLetter) => void;
  readonly now?: () => Date;
}

interface Item {
  readonly message: ConsumedMessage;
  readonly event: CustodianEvent;
}

/** Store errors that say something about the data (dead-letter it), not about the store's health (retry). */
const DATA_ERRORS = new Set(['EVENT_STORE_IDEMPOTENCY_CONFLICT', 'EVENT_STORE_SEQUENCE_MISMATCH', 'EVENT_STORE_WRONG_EXPECTED_REVISION']);

function isDataError(error: unknown): error is EventStoreError {
  return error instanceof EventStoreError && DATA_ERRORS.has(error.code);
}

/** Refusals by the store that no retry will change (but that are not a sequence question). */
function isPermanentRefusal(error: unknown): boolean {
  return error instanceof EventContractError || (error instanceof EventStoreError && (error.code === 'EVENT_STORE_INVALID_REQUEST' || error.code === 'EVENT_STORE_STREAM_MISMATCH'));
}

export class EventIngestor {
  private readonly store: EventStore;
  private readonly metrics: PipelineMetrics;

  constructor(private readonly options: EventIngestorOptions) {
    this.store = options.store;
    this.metrics = options.metrics ?? NO_PIPELINE_METRICS;
  }

  /** The consumer's batch handler: resolves once every message is stored or dead-lettered. */
  async handleBatch(batch: ConsumedBatch): Promise<void> {
    const dead: DeadLetter[] = [];
    const streams = new Map<string, Item[]>();
    for (const message of batch.messages) {
      const checked = this.check(message);
      if ('reasonCode' in checked) {
        dead.push(checked);
        continue;
      }
      const items = streams.get(checked.event.stream);
      if (items) items.push(checked);
      else streams.set(checked.event.stream, [checked]);
    }
    // Streams are independent: append them concurrently (the store group-commits); within a
    // stream, in partition order.
    const results = await Promise.all([...streams].map(([stream, items]) => this.appendStream(stream, items)));
    for (const letters of results) dead.push(...letters);
    if (dead.length > 0) await this.deadLetter(batch, dead);
  }

  private check(message: ConsumedMessage): Item | DeadLetter {
    let event: CustodianEvent;
    try {
      event = parseEventJson(message.value);
    } catch (error) {
      if (error instanceof EventContractError) {
        return { message, reasonCode: error.code === 'EVENT_NOT_JSON' ? 'INGEST_NOT_JSON' : 'INGEST_INVALID_EVENT', reason: `${error.code}: ${error.message}` };
      }
      throw error;
    }
    const expected: [string, string | null, string | undefined][] = [
      ['key', event.stream, message.key ?? undefined],
      [EVENT_HEADERS.id, event.id, message.headers[EVENT_HEADERS.id]],
      [EVENT_HEADERS.type, event.type, message.headers[EVENT_HEADERS.type]],
    ];
    // The header names the version as produced; an older event was upcast since, so then compare to the raw one.
    let produced = String(event.schemaVersion);
    if (message.headers[EVENT_HEADERS.schemaVersion] !== produced) {
      produced = String((JSON.parse(message.value.toString('utf8')) as { schemaVersion?: unknown }).schemaVersion);
    }
    expected.push([EVENT_HEADERS.schemaVersion, produced, message.headers[EVENT_HEADERS.schemaVersion]]);
    const wrong = expected.filter(([, want, got]) => got !== want).map(([name, , got]) => (got === undefined ? `${name} is missing` : `${name} does not match the envelope`));
    if (wrong.length > 0) return { message, reasonCode: 'INGEST_HEADER_MISMATCH', reason: `the message contradicts its envelope: ${wrong.join('; ')}` };
    return { message, event };
  }

  /** Appends one stream's items; returns the ones that must be dead-lettered. Throws when the store is unhealthy (the batch is retried). */
  private async appendStream(stream: string, items: readonly Item[]): Promise<DeadLetter[]> {
    // Fast path: new, consecutive events (or a whole redelivered stretch).
    try {
      const result = await this.store.append(stream, items.map((i) => i.event), { expectedRevision: 'any' });
      this.metrics.eventsIngested(result.deduplicated ? 'deduplicated' : 'written', items.length);
      return [];
    } catch (error) {
      if (isPermanentRefusal(error)) return items.map((i) => this.refusedByStore(i, error));
      if (!isDataError(error)) throw error;
    }
    // Slow path: some of it is stored already, or the batch holds a duplicate, a gap or a conflict.
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.appendItemByItem(stream, items);
      } catch (error) {
        // Another ingest instance moved the stream meanwhile (a rebalance in progress): re-plan.
        if (!isDataError(error) || attempt >= 4) throw error;
      }
    }
  }

  private async appendItemByItem(stream: string, items: readonly Item[]): Promise<DeadLetter[]> {
    const current = await this.store.streamRevision(stream);
    let revision = current === 'no-stream' ? -1 : current;
    const dead: DeadLetter[] = [];
    let run: Item[] = [];
    const flushRun = async (): Promise<void> => {
      if (run.length === 0) return;
      const batch = run;
      run = [];
      try {
        const result = await this.store.append(stream, batch.map((i) => i.event), { expectedRevision: revision === -1 ? 'no-stream' : revision });
        this.metrics.eventsIngested(result.deduplicated ? 'deduplicated' : 'written', batch.length);
        revision = result.nextExpectedRevision;
      } catch (error) {
        if (!isPermanentRefusal(error)) throw error;
        // The stream does not move: what follows in this batch will show as a gap.
        dead.push(...batch.map((i) => this.refusedByStore(i, error)));
      }
    };
    for (const item of items) {
      const sequence = item.event.sequence;
      if (sequence === revision + run.length + 1) {
        run.push(item);
        continue;
      }
      await flushRun();
      if (sequence <= revision) {
        // Stored already (a redelivery): re-append alone, which checks it is the same event.
        try {
          await this.store.append(stream, [item.event], { expectedRevision: 'any' });
          this.metrics.eventsIngested('deduplicated', 1);
        } catch (error) {
          if (isPermanentRefusal(error)) dead.push(this.refusedByStore(item, error));
          else if (error instanceof EventStoreError && error.code === 'EVENT_STORE_IDEMPOTENCY_CONFLICT') {
            dead.push({ message: item.message, reasonCode: 'INGEST_IDEMPOTENCY_CONFLICT', reason: error.message });
          } else if (error instanceof EventStoreError && error.code === 'EVENT_STORE_SEQUENCE_MISMATCH') {
            dead.push({ message: item.message, reasonCode: 'INGEST_SEQUENCE_CONFLICT', reason: `stream ${stream} already holds another event at revision ${sequence}` });
          } else throw error;
        }
        continue;
      }
      dead.push({
        message: item.message,
        reasonCode: 'INGEST_SEQUENCE_GAP',
        reason: `stream ${stream} is at revision ${revision}, event ${item.event.id} has sequence ${sequence}: the events between were never received (or were dead-lettered)`,
      });
    }
    await flushRun();
    return dead;
  }

  private refusedByStore(item: Item, error: unknown): DeadLetter {
    const code = (error as { code?: string }).code ?? 'UNKNOWN';
    return { message: item.message, reasonCode: 'INGEST_REFUSED_BY_STORE', reason: `${code}: ${(error as Error).message}` };
  }

  private async deadLetter(batch: ConsumedBatch, letters: readonly DeadLetter[]): Promise<void> {
    const at = (this.options.now?.() ?? new Date()).toISOString();
    // Partition order, as received.
    const sorted = [...letters].sort((a, b) => (a.message.offset < b.message.offset ? -1 : 1));
    const messages: BusMessage[] = sorted.map(({ message, reasonCode, reason }) => ({
      topic: DEAD_LETTER_TOPIC,
      key: message.key,
      value: message.value,
      headers: {
        ...message.headers,
        [DEAD_LETTER_HEADERS.reasonCode]: reasonCode,
        [DEAD_LETTER_HEADERS.reason]: reason.slice(0, 4096),
        [DEAD_LETTER_HEADERS.sourceTopic]: batch.topic,
        [DEAD_LETTER_HEADERS.sourcePartition]: String(batch.partition),
        [DEAD_LETTER_HEADERS.sourceOffset]: message.offset.toString(),
        [DEAD_LETTER_HEADERS.at]: at,
      },
    }));
    // Not committed until the dead letters are durable: a poison message is never dropped.
    await this.options.deadLetters.publish(messages);
    const counts = new Map<string, number>();
    for (const l of sorted) counts.set(l.reasonCode, (counts.get(l.reasonCode) ?? 0) + 1);
    for (const [code, n] of counts) this.metrics.deadLettered(code, n);
    for (const l of sorted) this.options.onDeadLetter?.(l);
  }
}
