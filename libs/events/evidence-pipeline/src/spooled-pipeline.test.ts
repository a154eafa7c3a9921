import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EventFactory, parseEventJson, type CustodianEvent, type Identity } from '@custodian/event-contracts';
import { EVENTS_TOPIC, EVENT_HEADERS, activeTopicSpecs, type ConsumedMessage, type PipelineMetrics } from '@custodian/event-bus';
import { InProcessEventBus } from '@custodian/event-bus-in-process';
import { afterEach, describe, expect, it } from 'vitest';
import { CommandEvidenceGate } from './command-gate.js';
import { PipelineRefusedError } from './errors.js';
import { Spool } from './spool.js';
import { SpooledEvidencePipeline } from './spooled-pipeline.js';

const dirs: string[] = [];
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

const agent: Identity = { subject: 'agent-7', issuer: 'https://idp.example', groups: ['analysts'], kind: 'agent' };
const factory = new EventFactory({ service: 'gateway', instance: 'gw-test' });

/** A session's command: command.issued + policy.decided at the next two sequences. */
function command(sessionId: string, sequence: number): CustodianEvent[] {
  const stream = `session-${sessionId}`;
  const commandId = randomUUID();
  return [
    factory.create({ type: 'command.issued', stream, sequence, identity: agent, payload: { sessionId, commandId, kind: 'sql', text: 'SELECT 1' } }),
    factory.create({
      type: 'policy.decided',
      stream,
      sequence: sequence + 1,
      identity: agent,
      payload: { sessionId, commandId, decision: 'allow', policy: { name: 'default', version: 1, digest: 'a'.repeat(64) }, ruleId: 'r1', reason: 'allowed' },
    }),
  ];
}

interface Counters {
  spooled: number;
  published: number;
  refused: Record<string, number>;
  depth: number;
}

function countingMetrics(): { metrics: PipelineMetrics; counters: Counters } {
  const counters: Counters = { spooled: 0, published: 0, refused: {}, depth: 0 };
  return {
    counters,
    metrics: {
      eventsSpooled: (n) => void (counters.spooled += n),
      eventsPublished: (n) => void (counters.published += n),
      spoolDepth: (events) => void (counters.depth = events),
      refused: (code, n) => void (counters.refused[code] = (counters.refused[code] ?? 0) + n),
      ingestLag: () => undefined,
      deadLettered: () => undefined,
      eventsIngested: () => undefined,
    },
  };
}

async function setup(options: { maxBytes?: number; topics?: boolean } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'custodian-pipeline-'));
  dirs.push(dir);
  const bus = new InProcessEventBus({ retainPerPartition: 1_000_000 });
  if (options.topics ?? true) await bus.ensureTopics(activeTopicSpecs({ partitions: 4, replicationFactor: 1 }));
  const received: ConsumedMessage[] = [];
  const open = async () => {
    const spool = await Spool.open({ dir: join(dir, 'spool'), maxBytes: options.maxBytes ?? 8 * 1024 * 1024 });
    const { metrics, counters } = countingMetrics();
    const pipeline = new SpooledEvidencePipeline({ spool, publisher: bus.publisher(), instance: 'gw-test', metrics, retryBackoffMs: 20, recoveryProbeMs: 50 });
    return { pipeline, counters, spool };
  };
  const consume = () => {
    const consumer = bus.consume({ groupId: 'ingest', topics: [EVENTS_TOPIC], handleBatch: async (b) => void received.push(...b.messages) });
    cleanups.push(() => consumer.stop());
  };
  cleanups.push(() => bus.close());
  return { bus, open, consume, received, dir };
}

function eventsOf(messages: readonly ConsumedMessage[]): CustodianEvent[] {
  return messages.map((m) => parseEventJson(m.value));
}

describe('SpooledEvidencePipeline', () => {
  it('accept() resolves once spooled; the drainer delivers every event in per-stream order with key and headers', async () => {
    const { open, consume, received } = await setup();
    const { pipeline, counters } = await open();
    consume();
    const sessions = Array.from({ length: 20 }, () => randomUUID());
    const accepted: CustodianEvent[] = [];
    // 20 sessions issue 10 commands each, concurrently across sessions, in order within one.
    await Promise.all(
      sessions.map(async (sessionId) => {
        for (let c = 0; c < 10; c++) {
          const events = command(sessionId, c * 2);
          await expect(pipeline.accept(events)).resolves.toEqual({ events: 2, durableIn: 'spool' });
          accepted.push(...events);
        }
      }),
    );
    await pipeline.drained();
    await expect.poll(() => received.length).toBe(400);
    const delivered = eventsOf(received);
    expect(new Set(delivered.map((e) => e.id))).toEqual(new Set(accepted.map((e) => e.id)));
    for (const sessionId of sessions) {
      expect(delivered.filter((e) => e.stream === `session-${sessionId}`).map((e) => e.sequence)).toEqual(Array.from({ length: 20 }, (_, i) => i));
    }
    const first = received[0]!;
    const event = parseEventJson(first.value);
    expect(first.key).toBe(event.stream);
    expect(first.headers).toEqual({ [EVENT_HEADERS.id]: event.id, [EVENT_HEADERS.type]: event.type, [EVENT_HEADERS.schemaVersion]: String(event.schemaVersion) });
    expect(counters).toMatchObject({ spooled: 400, published: 400, depth: 0 });
    await pipeline.close();
  });

  it('keeps accepted events across a crash: the restarted pipeline delivers what was not acknowledged', async () => {
    // No topics yet: the bus refuses every delivery, as a broker outage would.
    const { bus, open, consume, received } = await setup({ topics: false });
    const first = await open();
    const accepted: CustodianEvent[] = [];
    for (let i = 0; i < 25; i++) {
      const events = command(randomUUID(), 0);
      await first.pipeline.accept(events);
      accepted.push(...events);
    }
    expect(first.pipeline.status()).toEqual({ accepting: true, undelivered: 50 });
    await first.pipeline.abandon(); // the gateway process dies

    await bus.ensureTopics(activeTopicSpecs({ partitions: 4, replicationFactor: 1 })); // the broker is back
    consume();
    const second = await open();
    expect(second.spool.recovery.records).toBe(25);
    await second.pipeline.drained();
    await expect.poll(() => received.length).toBe(50);
    expect(eventsOf(received).map((e) => e.id).sort()).toEqual(accepted.map((e) => e.id).sort());
    await second.pipeline.close();
  });

  it('fails closed when the spool is full: refuses with PIPELINE_SPOOL_FULL naming the cause, loses nothing accepted, records the refusals once it recovers', async () => {
    const { bus, open, consume, received } = await setup({ maxBytes: 16 * 1024, topics: false });
    const { pipeline, counters } = await open();
    const accepted: CustodianEvent[] = [];
    const refusedSessions: string[] = [];
    let refusal: unknown;
    for (let i = 0; i < 100 && !refusal; i++) {
      const sessionId = randomUUID();
      try {
        const events = command(sessionId, 0);
        await pipeline.accept(events);
        accepted.push(...events);
      } catch (error) {
        refusal = error;
        refusedSessions.push(sessionId);
      }
    }
    expect(refusal).toBeInstanceOf(PipelineRefusedError);
    expect(refusal).toMatchObject({ code: 'PIPELINE_SPOOL_FULL' });
    expect((refusal as Error).message).toMatch(/^command refused: the evidence spool is full/);
    // Strict gate: the command is not forwarded.
    const gate = new CommandEvidenceGate(pipeline);
    const second = randomUUID();
    refusedSessions.push(second);
    await expect(gate.beforeForward(command(second, 0))).rejects.toMatchObject({ code: 'PIPELINE_SPOOL_FULL' });
    expect(pipeline.status()).toMatchObject({ accepting: false, refusing: { code: 'PIPELINE_SPOOL_FULL' } });
    expect(counters.refused).toEqual({ PIPELINE_SPOOL_FULL: 2 });

    await bus.ensureTopics(activeTopicSpecs({ partitions: 4, replicationFactor: 1 }));
    consume();
    await pipeline.drained();
    const delivered = () => eventsOf(received);
    await expect.poll(() => delivered().filter((e) => e.type === 'command.refused').length).toBe(1);
    const ids = new Set(delivered().map((e) => e.id));
    expect(accepted.filter((e) => !ids.has(e.id))).toEqual([]);
    const refused = delivered().find((e) => e.type === 'command.refused');
    expect(refused?.type === 'command.refused' && refused.payload).toMatchObject({
      reasonCode: 'PIPELINE_SPOOL_FULL',
      count: 2,
      sessionIds: refusedSessions,
      sessionIdsTruncated: false,
    });
    expect(refused?.stream).toMatch(/^pipeline-gw-test\./);
    expect(refused?.identity).toMatchObject({ kind: 'service' });
    await expect(pipeline.accept(command(randomUUID(), 0))).resolves.toMatchObject({ events: 2 });
    expect(pipeline.status().accepting).toBe(true);
    await pipeline.close();
  });
});
