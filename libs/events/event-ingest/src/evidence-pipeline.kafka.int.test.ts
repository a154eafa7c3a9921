// The evidence pipeline end to end on a real Kafka broker (test harness, KRaft 4.3.1) and a real
// SQLite event store: gateway spool → Kafka → ingest → store → SIEM projection, under the failures
// the design must survive. One broker for the file; every test uses its own sessions (and store),
// and asserts on those only, so tests sharing the topics do not interfere.
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EventFactory, parseEventJson, type CustodianEvent, type Identity } from '@custodian/event-contracts';
import {
  DEAD_LETTER_HEADERS,
  DEAD_LETTER_TOPIC,
  EVENTS_TOPIC,
  SIEM_HEADERS,
  SIEM_OCSF_TOPIC,
  activeTopicSpecs,
  eventMessage,
  type ConsumedMessage,
  type EventBus,
  type PipelineMetrics,
} from '@custodian/event-bus';
import { KafkaEventBus } from '@custodian/event-bus-kafka';
import type { AppendOptions, EventStore } from '@custodian/event-store';
import { SqliteEventStore } from '@custodian/event-store-sqlite';
import { PipelineRefusedError, Spool, SpooledEvidencePipeline } from '@custodian/evidence-pipeline';
import { runSiemProjection } from '@custodian/siem-ocsf';
import { startKafka, type StartedKafka } from '@custodian/test-harness';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startIngest, type RunningIngest } from './ingest-runner.js';

let kafka: StartedKafka;
const dirs: string[] = [];
const cleanups: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  kafka = await startKafka({ brokerLogLevel: 'warn' });
  const bus = newBus('topic-setup');
  await bus.ensureTopics(activeTopicSpecs({ partitions: 4, replicationFactor: 1, minInSyncReplicas: 1 }));
  await bus.close();
}, 180_000);

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

afterAll(async () => {
  await kafka?.stop();
});

function newBus(clientId: string): KafkaEventBus {
  const bus = new KafkaEventBus({ brokers: kafka.brokers, clientId, producer: { lingerMs: 2 }, consumer: { sessionTimeoutMs: 6_000 } });
  cleanups.push(() => bus.close());
  return bus;
}

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'custodian-e2e-'));
  dirs.push(dir);
  return dir;
}

async function openStore(dir = tempDir()): Promise<SqliteEventStore> {
  const store = await SqliteEventStore.open({ path: join(dir, 'events.db'), pollIntervalMs: 50 });
  cleanups.push(() => store.close());
  return store;
}

interface Gateway {
  readonly pipeline: SpooledEvidencePipeline;
  readonly spoolDir: string;
}

async function openGateway(bus: EventBus, options: { spoolDir?: string; maxBytes?: number; metrics?: PipelineMetrics } = {}): Promise<Gateway> {
  const spoolDir = options.spoolDir ?? join(tempDir(), 'spool');
  const spool = await Spool.open({ dir: spoolDir, maxBytes: options.maxBytes ?? 32 * 1024 * 1024 });
  const pipeline = new SpooledEvidencePipeline({ spool, publisher: bus.publisher(), instance: 'gw-e2e', retryBackoffMs: 100, recoveryProbeMs: 200, ...(options.metrics ? { metrics: options.metrics } : {}) });
  cleanups.push(() => pipeline.abandon());
  return { pipeline, spoolDir };
}

const agent: Identity = { subject: 'agent-e2e', issuer: 'https://idp.example', groups: ['ops'], kind: 'agent' };
const factory = new EventFactory({ service: 'gateway', instance: 'gw-e2e' });

/** The two events strict mode waits for before forwarding a command. */
function commandEvents(sessionId: string, sequence: number): CustodianEvent[] {
  const stream = `session-${sessionId}`;
  const commandId = randomUUID();
  return [
    factory.create({ type: 'command.issued', stream, sequence, identity: agent, payload: { sessionId, commandId, kind: 'sql', text: `SELECT ${sequence}` } }),
    factory.create({
      type: 'policy.decided',
      stream,
      sequence: sequence + 1,
      identity: agent,
      payload: { sessionId, commandId, decision: 'allow', policy: { name: 'e2e', version: 1, digest: 'e'.repeat(64) }, ruleId: 'read', reason: 'reads are allowed' },
    }),
  ];
}

/**
 * Steady load: `sessions` sessions issue commands one after another (strict mode: the next only
 * after the previous was accepted), all sessions concurrently, until stopped or `commands` each.
 * Refused commands are retried (the client tries again), so every session stays gap-free.
 */
class Load {
  readonly accepted = new Map<string, string[]>();
  refusals: PipelineRefusedError[] = [];
  private stopped = false;
  readonly done: Promise<void>;

  constructor(
    pipeline: () => SpooledEvidencePipeline,
    sessions: number,
    commands: number,
    private readonly pauseMs = 2,
  ) {
    const ids = Array.from({ length: sessions }, () => randomUUID());
    for (const id of ids) this.accepted.set(`session-${id}`, []);
    this.done = Promise.all(
      ids.map(async (sessionId) => {
        const mine = this.accepted.get(`session-${sessionId}`)!;
        for (let c = 0; c < commands && !this.stopped; c++) {
          const events = commandEvents(sessionId, c * 2);
          for (;;) {
            try {
              await pipeline().accept(events);
              mine.push(...events.map((e) => e.id));
              break;
            } catch (error) {
              if (!(error instanceof PipelineRefusedError)) throw error;
              this.refusals.push(error);
              if (this.stopped) return;
              await new Promise((resolve) => setTimeout(resolve, 50));
            }
          }
          await new Promise((resolve) => setTimeout(resolve, this.pauseMs));
        }
      }),
    ).then(() => undefined);
  }

  count(): number {
    let n = 0;
    for (const ids of this.accepted.values()) n += ids.length;
    return n;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.done;
  }
}

async function until(predicate: () => boolean | Promise<boolean>, what: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function storedIds(store: EventStore, stream: string): Promise<string[]> {
  const ids: string[] = [];
  for await (const r of store.readStream(stream)) ids.push(r.event.id);
  return ids;
}

/** Every accepted event is stored exactly once, each session in the order it was accepted. */
async function expectExactlyOnceInOrder(store: EventStore, load: Load): Promise<void> {
  await until(async () => {
    for (const [stream, ids] of load.accepted) if ((await storedIds(store, stream)).length < ids.length) return false;
    return true;
  }, `all ${load.count()} accepted events in the store`);
  for (const [stream, ids] of load.accepted) expect(await storedIds(store, stream)).toEqual(ids);
}

function ingest(bus: EventBus, store: EventStore, groupId: string, metrics?: PipelineMetrics): RunningIngest {
  const running = startIngest({ bus, store, groupId, retryBackoffMs: 100, ...(metrics ? { metrics } : {}) });
  cleanups.push(() => running.stop());
  return running;
}

function countingMetrics() {
  const counts: Record<string, number> = {};
  const add = (key: string, n: number) => void (counts[key] = (counts[key] ?? 0) + n);
  const metrics: PipelineMetrics = {
    eventsSpooled: (n) => add('spooled', n),
    eventsPublished: (n) => add('published', n),
    spoolDepth: () => undefined,
    refused: (code, n) => add(`refused:${code}`, n),
    ingestLag: () => undefined,
    deadLettered: (code, n) => add(`dlq:${code}`, n),
    eventsIngested: (outcome, n) => add(outcome, n),
  };
  return { counts, metrics };
}

/** The real store, but one append at a time and `delayMs` per event: ingest is then reliably caught mid-batch. */
function slowStore(store: EventStore, delayMs: number): EventStore {
  let queue: Promise<unknown> = Promise.resolve();
  return new Proxy(store, {
    get(target, prop, receiver) {
      if (prop === 'append') {
        return (stream: string, events: readonly CustodianEvent[], options: AppendOptions) => {
          const next = queue.then(async () => {
            await new Promise((resolve) => setTimeout(resolve, delayMs * events.length));
            return target.append(stream, events, options);
          });
          queue = next.catch(() => undefined);
          return next;
        };
      }
      const value: unknown = Reflect.get(target, prop, receiver);
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}

// Broker restarts and group rebalances on a loaded two-core machine take a while.
const SCENARIO_TIMEOUT_MS = 180_000;

describe('evidence pipeline on a real Kafka broker', () => {
  it('round trip: gateway spool → Kafka → ingest → event store → SIEM projection (OCSF on the SIEM topic)', async () => {
    const bus = newBus('round-trip');
    const store = await openStore();
    const { pipeline } = await openGateway(bus);
    ingest(bus, store, `ingest-${randomUUID()}`);
    const load = new Load(() => pipeline, 10, 10, 0);
    await load.done;
    await expectExactlyOnceInOrder(store, load);

    const siemPublisher = bus.publisher();
    cleanups.push(() => siemPublisher.close());
    const { running } = runSiemProjection(store, siemPublisher, { checkpointEvery: 50 });
    cleanups.push(() => running.stop());
    const ours = new Set([...load.accepted.values()].flat());
    const siem: ConsumedMessage[] = [];
    const reader = bus.consume({ groupId: `siem-reader-${randomUUID()}`, topics: [SIEM_OCSF_TOPIC], handleBatch: async (b) => void siem.push(...b.messages.filter((m) => ours.has(m.headers[SIEM_HEADERS.eventId] ?? ''))) });
    cleanups.push(() => reader.stop());
    await until(() => new Set(siem.map((m) => m.headers[SIEM_HEADERS.eventId])).size >= ours.size, 'the SIEM feed');
    const first = siem[0]!;
    const ocsf = JSON.parse(first.value.toString()) as { class_uid: number; severity_id: number; metadata: { uid: string } };
    expect(first.headers[SIEM_HEADERS.classUid]).toBe(String(ocsf.class_uid));
    expect(first.headers[SIEM_HEADERS.severityId]).toBe(String(ocsf.severity_id));
    expect(ocsf.metadata.uid).toBe(first.headers[SIEM_HEADERS.eventId]);
    expect([6005, 2003]).toContain(ocsf.class_uid);
    // Keyed by session: one session's OCSF events share a partition.
    const bySession = new Map<string, Set<number>>();
    for (const m of siem) bySession.set(m.key ?? '', new Set([...(bySession.get(m.key ?? '') ?? []), m.partition]));
    expect([...bySession.values()].every((p) => p.size === 1)).toBe(true);
  }, SCENARIO_TIMEOUT_MS);

  it('ingest is killed mid-batch and restarted: every accepted event is stored exactly once, in per-session order', async () => {
    const bus = newBus('ingest-kill');
    const store = await openStore();
    const { pipeline } = await openGateway(bus);
    const groupId = `ingest-${randomUUID()}`;
    const load = new Load(() => pipeline, 20, 25, 0);
    await load.done;
    await pipeline.drained();
    // A slow store: the first instance is surely inside a batch when it dies.
    const slow = slowStore(store, 5);
    const { metrics, counts } = countingMetrics();
    const first = startIngest({ bus, store: slow, groupId, metrics });
    const ours = async () => {
      let n = 0;
      for (const stream of load.accepted.keys()) n += (await storedIds(store, stream)).length;
      return n;
    };
    await until(async () => (await ours()) >= 100, 'the first instance storing part of our events');
    await first.abort(); // no commit for the batches in hand; their appends may still land
    expect(await ours()).toBeLessThan(load.count());
    const second = ingest(bus, store, groupId, metrics);
    await expectExactlyOnceInOrder(store, load);
    // What the first instance stored but did not commit came again and was recognised.
    await until(() => (counts.deduplicated ?? 0) > 0, 'deduplicated redeliveries');
    await second.stop();
  }, SCENARIO_TIMEOUT_MS);

  it('two ingest instances in one group and a rebalance: every accepted event is stored exactly once, in per-session order', async () => {
    const bus = newBus('rebalance');
    const busB = newBus('rebalance-b');
    const store = await openStore();
    const { pipeline } = await openGateway(bus);
    const groupId = `ingest-${randomUUID()}`;
    const { metrics: metricsA, counts: countsA } = countingMetrics();
    const { metrics: metricsB, counts: countsB } = countingMetrics();
    const a = ingest(bus, store, groupId, metricsA);
    const load = new Load(() => pipeline, 20, 1_000, 5);
    await until(() => load.count() >= 400, 'load with one instance');
    const b = ingest(busB, store, groupId, metricsB); // joins: partitions are split
    await until(() => (countsB.written ?? 0) > 0, 'the second instance taking partitions', 60_000);
    await a.stop(); // leaves: everything moves to the second instance
    const afterLeave = load.count();
    await until(() => load.count() >= afterLeave + 300, 'load after the rebalance');
    await load.stop();
    await pipeline.drained();
    await expectExactlyOnceInOrder(store, load);
    expect(countsA.written ?? 0).toBeGreaterThan(0);
    await b.stop();
  }, SCENARIO_TIMEOUT_MS);

  it('poison messages go to the dead-letter topic with their reason and are counted; other events are unaffected', async () => {
    const bus = newBus('poison');
    const store = await openStore();
    const { pipeline } = await openGateway(bus);
    const { metrics, counts } = countingMetrics();
    const marker = randomUUID();
    const dead: ConsumedMessage[] = [];
    const dlqReader = bus.consume({ groupId: `dlq-${marker}`, topics: [DEAD_LETTER_TOPIC], handleBatch: async (b) => void dead.push(...b.messages.filter((m) => m.key?.startsWith(`poison-${marker}`))) });
    cleanups.push(() => dlqReader.stop());
    ingest(bus, store, `ingest-${randomUUID()}`, metrics);

    const load = new Load(() => pipeline, 5, 10, 0);
    const good = commandEvents(randomUUID(), 0)[0]!;
    const invalid = { ...JSON.parse(JSON.stringify(good)), payload: { sessionId: 'nope' } } as Record<string, unknown>;
    const raw = bus.publisher();
    cleanups.push(() => raw.close());
    await raw.publish([
      { topic: EVENTS_TOPIC, key: `poison-${marker}-1`, value: '{"truncated": ', headers: {} },
      { ...eventMessage(good), key: `poison-${marker}-2`, value: JSON.stringify(invalid) },
      { ...eventMessage(good), key: `poison-${marker}-3` }, // key contradicts the envelope's stream
    ]);
    await load.done;
    await expectExactlyOnceInOrder(store, load);
    await until(() => dead.length >= 3, 'three dead letters');
    const reasons = Object.fromEntries(dead.map((m) => [m.key, m.headers[DEAD_LETTER_HEADERS.reasonCode]]));
    expect(reasons).toEqual({ [`poison-${marker}-1`]: 'INGEST_NOT_JSON', [`poison-${marker}-2`]: 'INGEST_INVALID_EVENT', [`poison-${marker}-3`]: 'INGEST_HEADER_MISMATCH' });
    for (const m of dead) {
      expect(m.headers[DEAD_LETTER_HEADERS.reason]).toBeTruthy();
      expect(m.headers[DEAD_LETTER_HEADERS.sourceTopic]).toBe(EVENTS_TOPIC);
      expect(m.headers[DEAD_LETTER_HEADERS.sourceOffset]).toMatch(/^\d+$/);
    }
    expect(dead.find((m) => m.key?.endsWith('-1'))?.value.toString()).toBe('{"truncated": ');
    expect(counts).toMatchObject({ 'dlq:INGEST_NOT_JSON': 1, 'dlq:INGEST_INVALID_EVENT': 1, 'dlq:INGEST_HEADER_MISMATCH': 1 });
    expect(await storedIds(store, good.stream)).toEqual([]);
  }, SCENARIO_TIMEOUT_MS);

  it('spool full while the broker is down: commands are refused with a clear error; nothing accepted is lost; the refusals are recorded', async () => {
    const bus = newBus('spool-full');
    const store = await openStore();
    const { metrics, counts } = countingMetrics();
    const { pipeline } = await openGateway(bus, { maxBytes: 96 * 1024, metrics });
    ingest(bus, store, `ingest-${randomUUID()}`);
    await kafka.kill('SIGKILL');
    const load = new Load(() => pipeline, 10, 1_000, 1);
    await until(() => load.refusals.length >= 20, 'refusals once the spool is full');
    const refusal = load.refusals[0]!;
    expect(refusal.code).toBe('PIPELINE_SPOOL_FULL');
    expect(refusal.message).toMatch(/^command refused: the evidence spool is full \(the spool holds \d+ of 98304 bytes/);
    expect(pipeline.status()).toMatchObject({ accepting: false, refusing: { code: 'PIPELINE_SPOOL_FULL' } });
    await kafka.restart();
    await until(() => pipeline.status().accepting, 'the spool draining after the restart', 90_000);
    await load.stop();
    await pipeline.drained(60_000);
    await expectExactlyOnceInOrder(store, load);
    // The refusals themselves are evidence: command.refused events, counted.
    expect(counts['refused:PIPELINE_SPOOL_FULL']).toBe(load.refusals.length);
    const refused: CustodianEvent[] = [];
    await until(async () => {
      refused.length = 0;
      for await (const r of store.readAll()) if (r.event.type === 'command.refused' && r.event.source.instance === 'gw-e2e') refused.push(r.event);
      return refused.reduce((n, e) => n + (e.type === 'command.refused' ? e.payload.count : 0), 0) >= load.refusals.length;
    }, 'the command.refused records in the store');
    expect(refused.every((e) => e.type === 'command.refused' && e.payload.reasonCode === 'PIPELINE_SPOOL_FULL')).toBe(true);
    expect(refused.reduce((n, e) => n + (e.type === 'command.refused' ? e.payload.count : 0), 0)).toBe(load.refusals.length);
    expect(parseEventJson(JSON.stringify(refused[0])).type).toBe('command.refused');
  }, SCENARIO_TIMEOUT_MS);

  it('the broker is SIGKILLed under steady load and restarted: every accepted event is stored exactly once, in per-session order', async () => {
    const bus = newBus('broker-kill');
    const store = await openStore();
    const { metrics, counts } = countingMetrics();
    const { pipeline } = await openGateway(bus, { metrics });
    ingest(bus, store, `ingest-${randomUUID()}`);
    const load = new Load(() => pipeline, 10, 1_000, 10);
    await until(() => load.count() >= 400, 'load before the kill');
    await kafka.kill('SIGKILL');
    // The spool keeps accepting while the broker is gone: accepted means durable locally.
    const atKill = load.count();
    await until(() => load.count() >= atKill + 400, 'load while the broker is down');
    expect(pipeline.status().undelivered).toBeGreaterThan(0);
    await kafka.restart();
    await until(() => load.count() >= atKill + 800, 'load after the restart');
    await load.stop();
    expect(load.refusals).toEqual([]);
    await pipeline.drained(60_000);
    await expectExactlyOnceInOrder(store, load);
    expect(counts.spooled).toBe(load.count());
    expect(counts.published).toBeGreaterThanOrEqual(load.count());
  }, SCENARIO_TIMEOUT_MS);
});
