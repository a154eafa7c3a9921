// SessionRecorder: one session's ordered writer into the evidence pipeline. Events go to a real
// StoreEvidencePipeline over a real SQLite event store (which refuses a sequence gap or a
// reordering, so "in order" is checked by the store itself). Where a test needs an append to wait
// or to be refused, ControlledPipeline, a test double of our own EvidencePipeline port, wraps the
// real pipeline: it holds or refuses calls on demand and passes every other call through.
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { EventFactory, type CustodianEvent, type EventType, type NewEvent } from '@custodian/event-contracts';
import { PipelineRefusedError, StoreEvidencePipeline, type Accepted, type EvidencePipeline, type PipelineStatus } from '@custodian/evidence-pipeline';
import { SqliteEventStore } from '@custodian/event-store-sqlite';
import { SessionRecorder } from './session-recorder.js';

const dir = mkdtempSync(join(tmpdir(), 'custodian-session-recorder-'));
let store: SqliteEventStore;
let real: StoreEvidencePipeline;
const factory = new EventFactory({ service: 'gateway', instance: 'recorder-test' });
const identity = { subject: 'agent-7', issuer: 'https://idp.example', groups: ['analysts'], kind: 'agent' as const };

beforeAll(async () => {
  store = await SqliteEventStore.open({ path: join(dir, 'events.sqlite') });
  real = new StoreEvidencePipeline({ store, instance: 'recorder-test' });
});

afterAll(async () => {
  await real?.close();
  await store?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A session's stream and a maker of its events (command.issued: 600 backlog bytes each; frames: their base64 + 300). */
function session(): { stream: string; command(sequence: number): CustodianEvent; frame(sequence: number, bytes: number): CustodianEvent } {
  const sessionId = randomUUID();
  const stream = `session-${sessionId}`;
  const make = (spec: NewEvent<EventType>): CustodianEvent => factory.create(spec) as CustodianEvent;
  return {
    stream,
    command: (sequence) => make({ type: 'command.issued', stream, sequence, identity, payload: { sessionId, commandId: randomUUID(), kind: 'sql', text: `SELECT ${sequence}` } }),
    frame: (sequence, bytes) =>
      make({ type: 'frame.recorded', stream, sequence, identity, payload: { sessionId, direction: 'upstream-to-client', offsetMicros: sequence, data: Buffer.alloc(bytes, 7).toString('base64'), byteLength: bytes } }),
  };
}

async function storedSequences(stream: string): Promise<number[]> {
  const sequences: number[] = [];
  for await (const recorded of store.readStream(stream)) sequences.push(recorded.event.sequence);
  return sequences;
}

async function until(condition: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not reached in time');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Test double of the EvidencePipeline port over the real pipeline: holds or refuses accept() on demand. */
class ControlledPipeline implements EvidencePipeline {
  /** Sequences of every accept() call, in call order, with what became of it. */
  readonly calls: { sequences: number[]; outcome: 'pending' | 'accepted' | 'refused' }[] = [];
  /** How many of the next calls are refused (Infinity: until changed). */
  refuse = 0;
  #gate: { promise: Promise<void>; open(): void } | undefined;

  constructor(private readonly inner: EvidencePipeline) {}

  /** Calls from now on wait (after being counted) until release(). */
  hold(): void {
    let open!: () => void;
    const promise = new Promise<void>((resolve) => (open = resolve));
    this.#gate = { promise, open };
  }

  release(): void {
    this.#gate?.open();
    this.#gate = undefined;
  }

  async accept(events: readonly CustodianEvent[]): Promise<Accepted> {
    const call = { sequences: events.map((e) => e.sequence), outcome: 'pending' as 'pending' | 'accepted' | 'refused' };
    this.calls.push(call);
    if (this.#gate) await this.#gate.promise;
    if (this.refuse > 0) {
      this.refuse--;
      call.outcome = 'refused';
      throw new PipelineRefusedError('PIPELINE_STORE_UNWRITABLE', 'command refused: the event store cannot record events (test)');
    }
    const accepted = await this.inner.accept(events);
    call.outcome = 'accepted';
    return accepted;
  }

  status(): PipelineStatus {
    return this.refuse > 0 ? { accepting: false, refusing: { code: 'PIPELINE_STORE_UNWRITABLE', message: 'test' }, undelivered: 0 } : this.inner.status();
  }

  async close(): Promise<void> {
    this.release();
  }
}

const recorders: SessionRecorder[] = [];
function recorder(evidence: EvidencePipeline, options: Omit<ConstructorParameters<typeof SessionRecorder>[0], 'evidence'> = {}): SessionRecorder {
  const made = new SessionRecorder({ evidence, ...options });
  recorders.push(made);
  return made;
}
afterEach(() => {
  // No retry timer outlives its test.
  for (const r of recorders.splice(0)) r.abandon();
});

describe('SessionRecorder', () => {
  it('makes events durable in sequence order through the real store pipeline, even when enqueued out of order', async () => {
    const s = session();
    const r = recorder(real);
    await r.enqueue([s.command(0), s.command(1)]);
    expect(await storedSequences(s.stream)).toEqual([0, 1]);
    // 3 arrives before 2: nothing is sent past the gap; once 2 arrives both go, in order.
    const third = r.enqueue([s.command(3)]);
    await sleep(30);
    expect(await storedSequences(s.stream)).toEqual([0, 1]);
    await Promise.all([r.enqueue([s.command(2)]), third]);
    expect(await storedSequences(s.stream)).toEqual([0, 1, 2, 3]);
    expect(r.backlogBytes).toBe(0);
  });

  it('group commit: what is enqueued while an append is in flight goes together in the next append, in order', async () => {
    const s = session();
    const pipeline = new ControlledPipeline(real);
    const r = recorder(pipeline);
    pipeline.hold();
    const first = r.enqueue([s.command(0)]);
    await until(() => pipeline.calls.length === 1);
    const later = [r.enqueue([s.command(1)]), r.enqueue([s.command(2), s.command(3)]), r.enqueue([s.frame(4, 100)], { urgent: false }), r.enqueue([s.command(5)])];
    await sleep(30);
    expect(pipeline.calls.map((c) => c.sequences)).toEqual([[0]]);
    pipeline.release();
    await Promise.all([first, ...later]);
    expect(pipeline.calls.map((c) => c.sequences)).toEqual([[0], [1, 2, 3, 4, 5]]);
    expect(await storedSequences(s.stream)).toEqual([0, 1, 2, 3, 4, 5]);
  });

  it('splits a long queue into appends of at most maxBatchEvents', async () => {
    const s = session();
    const pipeline = new ControlledPipeline(real);
    const r = recorder(pipeline, { maxBatchEvents: 2 });
    pipeline.hold();
    const all = [r.enqueue([s.command(0)]), r.enqueue([1, 2, 3, 4].map((n) => s.command(n)))];
    await until(() => pipeline.calls.length === 1);
    pipeline.release();
    await Promise.all(all);
    expect(pipeline.calls.map((c) => c.sequences)).toEqual([[0], [1, 2], [3, 4]]);
  });

  it('a refused batch fails its waiters now, stays at the head and is retried first: nothing lost, nothing reordered', async () => {
    const s = session();
    const pipeline = new ControlledPipeline(real);
    const r = recorder(pipeline, { retryMs: 20 });
    const gate = r.asPipeline();
    await r.enqueue([s.command(0)]);
    pipeline.refuse = 2;
    const refused = r.enqueue([s.command(1), s.command(2)]);
    await expect(refused).rejects.toMatchObject({ name: 'PipelineRefusedError', code: 'PIPELINE_STORE_UNWRITABLE' });
    // Strict mode reads this: the session's writer is failing, so new commands are refused.
    expect(gate.status()).toMatchObject({ accepting: false, refusing: { code: 'PIPELINE_STORE_UNWRITABLE' } });
    expect(r.backlogBytes).toBe(2 * 600);
    // Enqueued while the head waits for its retry: it goes after 1 and 2, never before (and,
    // sharing the second refused append, its waiter is refused too).
    const next = r.enqueue([s.command(3)]);
    await expect(next).rejects.toBeInstanceOf(PipelineRefusedError);
    expect(await r.idle(2_000)).toBe(true);
    expect(pipeline.calls.map((c) => [c.sequences, c.outcome])).toEqual([
      [[0], 'accepted'],
      [[1, 2], 'refused'],
      [[1, 2, 3], 'refused'],
      [[1, 2, 3], 'accepted'],
    ]);
    expect(await storedSequences(s.stream)).toEqual([0, 1, 2, 3]);
    expect(gate.status()).toMatchObject({ accepting: true });
    expect(r.backlogBytes).toBe(0);
  });

  it('urgent events go at once; lingering ones wait for lingerMs or ride with the next urgent append', async () => {
    const s = session();
    const pipeline = new ControlledPipeline(real);
    const r = recorder(pipeline, { lingerMs: 10_000 });
    const frames = [r.enqueue([s.frame(0, 10)], { urgent: false }), r.enqueue([s.frame(1, 10)], { urgent: false })];
    await sleep(50);
    expect(pipeline.calls).toEqual([]);
    await Promise.all([r.enqueue([s.command(2)]), ...frames]);
    expect(pipeline.calls.map((c) => c.sequences)).toEqual([[0, 1, 2]]);

    const short = recorder(new ControlledPipeline(real), { lingerMs: 20 });
    const t = session();
    const started = Date.now();
    await short.enqueue([t.frame(0, 10)], { urgent: false });
    expect(Date.now() - started).toBeGreaterThanOrEqual(15);
    expect(await storedSequences(t.stream)).toEqual([0]);
  });

  it('what nobody waits for, queued while an append is in flight, lingers after it too (relaxed sessions commit every lingerMs, not at the commit rate)', async () => {
    const s = session();
    const pipeline = new ControlledPipeline(real);
    const r = recorder(pipeline, { lingerMs: 10_000 });
    pipeline.hold();
    const first = r.enqueue([s.command(0)]);
    await until(() => pipeline.calls.length === 1);
    const frames = [r.enqueue([s.frame(1, 10)], { urgent: false }), r.enqueue([s.frame(2, 10)], { urgent: false })];
    pipeline.release();
    await first;
    await sleep(50);
    // The frames were not sent when the first append completed: they wait for company.
    expect(pipeline.calls.map((c) => c.sequences)).toEqual([[0]]);
    // An urgent event takes them along at once.
    await Promise.all([r.enqueue([s.command(3)]), ...frames]);
    expect(pipeline.calls.map((c) => c.sequences)).toEqual([[0], [1, 2, 3]]);
    // idle() (a session closing) does not wait for the linger either.
    const late = r.enqueue([s.frame(4, 10)], { urgent: false });
    expect(await r.idle(2_000)).toBe(true);
    await late;
    expect(await storedSequences(s.stream)).toEqual([0, 1, 2, 3, 4]);
  });

  it('backlog saturation: saturated above maxBacklogBytes (lingering stops), whenBelowLimit() resolves once it drains', async () => {
    const s = session();
    const pipeline = new ControlledPipeline(real);
    const r = recorder(pipeline, { maxBacklogBytes: 4_000, lingerMs: 10_000 });
    expect(r.saturated).toBe(false);
    await r.whenBelowLimit();
    pipeline.hold();
    const first = r.enqueue([s.frame(0, 1_500)]); // base64 of 1,500 bytes is 2,000 characters: 2,300 backlog bytes
    await until(() => pipeline.calls.length === 1);
    expect(r.saturated).toBe(false);
    const second = r.enqueue([s.frame(1, 1_500)], { urgent: false });
    expect(r.backlogBytes).toBe(4_600);
    expect(r.saturated).toBe(true);
    let drained = false;
    const below = r.whenBelowLimit().then(() => (drained = true));
    await sleep(30);
    expect(drained).toBe(false);
    pipeline.release();
    await below;
    expect(r.saturated).toBe(false);
    // Saturated, the lingering frame was not left to wait 10 s: it went right after the first append.
    await Promise.all([first, second]);
    expect(pipeline.calls.map((c) => c.sequences)).toEqual([[0], [1]]);
    expect(r.backlogBytes).toBe(0);
  });

  it('idle(timeout) is true once everything is durable, false when the pipeline keeps refusing', async () => {
    const s = session();
    const pipeline = new ControlledPipeline(real);
    const r = recorder(pipeline, { retryMs: 10, lingerMs: 10_000 });
    expect(await r.idle(10)).toBe(true);
    // idle() sends what lingers instead of waiting out lingerMs.
    void r.enqueue([s.frame(0, 10)], { urgent: false });
    expect(await r.idle(2_000)).toBe(true);
    expect(await storedSequences(s.stream)).toEqual([0]);

    pipeline.refuse = Infinity;
    r.enqueue([s.command(1)]).catch(() => undefined);
    expect(await r.idle(100)).toBe(false);
    expect(pipeline.calls.length).toBeGreaterThan(2); // retried meanwhile
    pipeline.refuse = 0;
    expect(await r.idle(2_000)).toBe(true);
    expect(await storedSequences(s.stream)).toEqual([0, 1]);
  });

  it('abandon() rejects what waits, empties the backlog, stops retrying and releases every waiter', async () => {
    const s = session();
    const pipeline = new ControlledPipeline(real);
    const r = recorder(pipeline, { retryMs: 10, maxBacklogBytes: 1_000, lingerMs: 10_000 });
    pipeline.refuse = Infinity;
    const refused = r.enqueue([s.command(0), s.command(1)]);
    await expect(refused).rejects.toBeInstanceOf(PipelineRefusedError);
    const lingering = r.enqueue([s.frame(2, 10)], { urgent: false });
    expect(r.saturated).toBe(true);
    const below = r.whenBelowLimit();
    r.abandon();
    await expect(lingering).rejects.toThrow('session recorder abandoned');
    await below;
    expect(r.backlogBytes).toBe(0);
    expect(await r.idle(10)).toBe(true);
    const calls = pipeline.calls.length;
    await sleep(60);
    expect(pipeline.calls.length).toBe(calls);
    expect(await storedSequences(s.stream)).toEqual([]);
  });

  it('abandon() while an append is in flight (idle() timed out at session close): the backlog stays empty when it completes', async () => {
    const s = session();
    const pipeline = new ControlledPipeline(real);
    const r = recorder(pipeline);
    pipeline.hold();
    const inFlight = r.enqueue([s.command(0)]);
    inFlight.catch(() => undefined);
    await until(() => pipeline.calls.length === 1);
    r.abandon();
    expect(r.backlogBytes).toBe(0);
    pipeline.release();
    await until(() => pipeline.calls[0]!.outcome !== 'pending');
    await sleep(10);
    expect(r.backlogBytes).toBe(0);
    expect(r.saturated).toBe(false);
  });
});
