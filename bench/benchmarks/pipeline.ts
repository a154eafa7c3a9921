// The evidence pipeline: sustained events/s from the gateway's publisher to the event store, and
// publish-to-stored latency (p50/p99), embedded (accept = SQLite append) and distributed (accept =
// spool fsync, then Kafka → ingest → SQLite) side by side in one run. Baselines, measured in the
// same run: the SQLite store appending the same events directly (embedded), and the Kafka bus alone
// publishing and consuming the same messages with no spool, ingest or store (distributed).
//
// Workload: `sessions` concurrent sessions; each issues commands one after another in strict mode
// (command.issued + policy.decided accepted together, the next command after the previous was
// accepted). Events are built before the clock starts. "Stored" is when a live subscription on the
// store sees the event (the same way for both paths), so latency is publish call → visible in the store.
// Plus peak RSS of the spool draining a backlog, in child processes (bench/probes/spool-drain-peak-rss.ts).
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { EventFactory, type CustodianEvent, type Identity } from '@custodian/event-contracts';
import { EVENTS_TOPIC, activeTopicSpecs, eventMessage, type BusMessage } from '@custodian/event-bus';
import { KafkaEventBus } from '@custodian/event-bus-kafka';
import { startIngest } from '@custodian/event-ingest';
import type { EventStore } from '@custodian/event-store';
import { SqliteEventStore } from '@custodian/event-store-sqlite';
import { Spool, SpooledEvidencePipeline, StoreEvidencePipeline } from '@custodian/evidence-pipeline';
import { BenchmarkError, figure, type Benchmark, type Figure } from '../benchmark.ts';
import { MIB, nowNs, percentile } from '../measurement.ts';

const NAME = 'pipeline';
const SPOOL_PROBE = fileURLToPath(new URL('../probes/spool-drain-peak-rss.ts', import.meta.url));
const runFile = promisify(execFile);
const agent: Identity = { subject: 'agent-bench', issuer: 'https://idp.example.com', groups: ['agents'], kind: 'agent' };

/**
 * Per session: its commands, each the two events strict mode waits for. Event ids (UUIDv7, from
 * one generator: increasing) are minted in `idOrder`: 'publish' (default), command by command
 * across the sessions, the order in which the sessions publish them, as a gateway minting them
 * when each command happens would; 'session', session by session, so the events committed
 * together carry ids from all over the id index (as random ids would).
 */
export function buildWorkload(sessions: number, commandsPerSession: number, idOrder: 'publish' | 'session' = 'publish'): CustodianEvent[][][] {
  const factory = new EventFactory({ service: 'gateway', instance: 'bench' });
  const sessionIds = Array.from({ length: sessions }, () => randomUUID());
  const command = (s: number, c: number): CustodianEvent[] => {
    const sessionId = sessionIds[s]!;
    const stream = `session-${sessionId}`;
    const commandId = randomUUID();
    return [
      factory.create({ type: 'command.issued', stream, sequence: 2 * c, identity: agent, payload: { sessionId, commandId, kind: 'sql', text: 'SELECT o.id, o.total FROM orders o WHERE o.created_at > $1 LIMIT 100', parameters: ['***'] } }),
      factory.create({
        type: 'policy.decided',
        stream,
        sequence: 2 * c + 1,
        identity: agent,
        payload: { sessionId, commandId, decision: 'allow', policy: { name: 'orders', version: 3, digest: 'a'.repeat(64) }, ruleId: 'read-orders', reason: 'reads are allowed' },
      }),
    ];
  };
  const workload: CustodianEvent[][][] = sessionIds.map(() => []);
  if (idOrder === 'session') for (let s = 0; s < sessions; s++) for (let c = 0; c < commandsPerSession; c++) workload[s]!.push(command(s, c));
  else for (let c = 0; c < commandsPerSession; c++) for (let s = 0; s < sessions; s++) workload[s]!.push(command(s, c));
  return workload;
}

export interface RunResult {
  readonly events: number;
  readonly seconds: number;
  /** Publish call → stored, ms, ascending. */
  readonly latenciesMs: number[];
}

/**
 * Runs the workload through `publish` and waits until a store subscription saw every event.
 * Throughput = events / (first publish → last event stored). With `eventsPerSecond`, each session
 * starts its commands on a fixed schedule so that all sessions together offer that rate (a command
 * still waits for the previous one of its session: strict mode).
 */
export async function drive(store: EventStore, workload: CustodianEvent[][][], publish: (events: CustodianEvent[]) => Promise<unknown>, pace?: { readonly eventsPerSecond: number }): Promise<RunResult> {
  const total = workload.reduce((n, s) => n + s.length * 2, 0);
  const publishedAt = new Map<string, bigint>();
  const latenciesMs: number[] = [];
  let seen = 0;
  let resolveAll: () => void = () => undefined;
  const allSeen = new Promise<void>((resolve) => (resolveAll = resolve));
  const subscription = store.subscribeToAll({
    subscriptionId: `bench-${randomUUID()}`,
    from: 'checkpoint',
    checkpointEvery: 1_000_000,
    handler: (recorded) => {
      const start = publishedAt.get(recorded.event.id);
      if (start === undefined) return;
      latenciesMs.push(Number(nowNs() - start) / 1e6);
      publishedAt.delete(recorded.event.id);
      if (++seen === total) resolveAll();
    },
  });
  await subscription.caughtUp;
  const begin = nowNs();
  await Promise.all(
    workload.map(async (commands, session) => {
      // Per session: one command (two events) every `intervalNs`, sessions spread over the interval.
      const intervalNs = pace ? BigInt(Math.round((2 * workload.length * 1e9) / pace.eventsPerSecond)) : 0n;
      let due = begin + (intervalNs * BigInt(session)) / BigInt(workload.length);
      for (const events of commands) {
        if (pace) {
          const wait = Number(due - nowNs()) / 1e6;
          if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
          due += intervalNs;
        }
        const t = nowNs();
        for (const e of events) publishedAt.set(e.id, t);
        await publish(events);
      }
    }),
  );
  const timeout = setTimeout(() => resolveAll(), 300_000);
  await allSeen;
  clearTimeout(timeout);
  const seconds = Number(nowNs() - begin) / 1e9;
  await subscription.stop();
  if (seen !== total) throw new BenchmarkError('BENCH_MEASUREMENT_FAILED', `only ${seen} of ${total} events reached the store`);
  return { events: total, seconds, latenciesMs: latenciesMs.sort((a, b) => a - b) };
}

/** The Kafka bus alone: publish the same messages, consume them; latency = publish call → consumed. */
async function busAlone(bus: KafkaEventBus, workload: CustodianEvent[][][]): Promise<RunResult> {
  const total = workload.reduce((n, s) => n + s.length * 2, 0);
  const publishedAt = new Map<string, bigint>();
  const latenciesMs: number[] = [];
  let seen = 0;
  let resolveAll: () => void = () => undefined;
  const allSeen = new Promise<void>((resolve) => (resolveAll = resolve));
  const consumer = bus.consume({
    groupId: `bench-bus-${randomUUID()}`,
    topics: [EVENTS_TOPIC],
    fromBeginning: false,
    handleBatch: async (batch) => {
      for (const m of batch.messages) {
        const start = publishedAt.get(m.headers['custodian-event-id'] ?? '');
        if (start === undefined) continue;
        latenciesMs.push(Number(nowNs() - start) / 1e6);
        if (++seen === total) resolveAll();
      }
    },
  });
  await consumer.ready;
  await new Promise((resolve) => setTimeout(resolve, 1_000)); // offsets resolved to the end before publishing
  const publisher = bus.publisher();
  const messages: BusMessage[][][] = workload.map((commands) => commands.map((events) => events.map((e) => eventMessage(e))));
  const begin = nowNs();
  await Promise.all(
    messages.map(async (commands, s) => {
      for (let c = 0; c < commands.length; c++) {
        const t = nowNs();
        for (const e of workload[s]![c]!) publishedAt.set(e.id, t);
        await publisher.publish(commands[c]!);
      }
    }),
  );
  const timeout = setTimeout(() => resolveAll(), 300_000);
  await allSeen;
  clearTimeout(timeout);
  const seconds = Number(nowNs() - begin) / 1e9;
  await consumer.stop();
  await publisher.close();
  if (seen !== total) throw new BenchmarkError('BENCH_MEASUREMENT_FAILED', `only ${seen} of ${total} messages were consumed`);
  return { events: total, seconds, latenciesMs: latenciesMs.sort((a, b) => a - b) };
}

const rate = (r: RunResult): number => r.events / r.seconds;

interface SpoolDrain {
  readonly events: number;
  readonly drained: number;
  readonly seconds: number;
  readonly backlogBytes: number;
  readonly rssBeforeOpenBytes: number;
  readonly peakRssBytes: number;
}

/** Writes `events` into a fresh spool (one process, nothing drains), then drains it in a fresh process. */
async function spoolDrainPeakRss(events: number, dir: string, segmentBytes: number): Promise<SpoolDrain> {
  await mkdir(dir, { recursive: true });
  const probe = async (mode: 'write' | 'drain'): Promise<string> => {
    const { stdout } = await runFile(process.execPath, [SPOOL_PROBE, mode, String(events), dir, String(segmentBytes)], { timeout: 600_000, maxBuffer: 1024 * 1024 });
    return stdout.trim().split('\n').at(-1) ?? '';
  };
  await probe('write');
  const result = JSON.parse(await probe('drain')) as SpoolDrain;
  if (result.drained !== events) throw new BenchmarkError('BENCH_MEASUREMENT_FAILED', `the spool drained ${result.drained} of ${events} events`);
  return result;
}

export const pipeline: Benchmark = {
  name: NAME,
  description:
    'evidence pipeline: events/s publisher → event store and publish-to-stored latency p50/p99, embedded (SQLite) vs Kafka (spool → Kafka → ingest → SQLite), side by side',
  async run({ quick, workDir, harness, log }): Promise<Figure[]> {
    const sessions = quick ? 50 : 200;
    const commands = quick ? 40 : 100;
    const events = sessions * commands * 2;
    log(`${sessions} sessions × ${commands} commands × 2 events = ${events} events per candidate`);

    // Embedded: the pipeline (accept = SQLite append, group commit) vs the store appended directly.
    const embeddedStore = await SqliteEventStore.open({ path: join(workDir, 'embedded.db'), pollIntervalMs: 10 });
    const directStore = await SqliteEventStore.open({ path: join(workDir, 'direct.db'), pollIntervalMs: 10 });
    let embedded: RunResult;
    let direct: RunResult;
    try {
      const embeddedPipeline = new StoreEvidencePipeline({ store: embeddedStore, instance: 'bench' });
      direct = await drive(directStore, buildWorkload(sessions, commands), (batch) => directStore.append(batch[0]!.stream, batch, { expectedRevision: 'any' }));
      embedded = await drive(embeddedStore, buildWorkload(sessions, commands), (batch) => embeddedPipeline.accept(batch));
      await embeddedPipeline.close();
    } finally {
      await embeddedStore.close();
      await directStore.close();
    }
    log(`embedded ${Math.round(rate(embedded))} events/s (direct store ${Math.round(rate(direct))}), p50 ${percentile(embedded.latenciesMs, 50).toFixed(2)} ms, p99 ${percentile(embedded.latenciesMs, 99).toFixed(2)} ms`);

    // Memory while the gateway's spool drains a backlog: does it grow with the backlog?
    const backlog = quick ? 100_000 : 1_000_000;
    const smallBacklog = backlog / 10;
    const segmentBytes = 16 * 1024 * 1024;
    log(`spool drain peak RSS probes: backlogs of ${backlog} and ${smallBacklog} events`);
    const bigDrain = await spoolDrainPeakRss(backlog, join(workDir, 'spool-backlog'), segmentBytes);
    const smallDrain = await spoolDrainPeakRss(smallBacklog, join(workDir, 'spool-backlog-small'), segmentBytes);
    const mib = (bytes: number): number => bytes / MIB;
    log(`spool drain: ${backlog} events peak ${mib(bigDrain.peakRssBytes).toFixed(0)} MiB in ${bigDrain.seconds.toFixed(1)} s, ${smallBacklog} events peak ${mib(smallDrain.peakRssBytes).toFixed(0)} MiB`);

    // Distributed: spool → Kafka → ingest → SQLite, against the bus alone.
    const kafka = await harness.kafka();
    const bus = new KafkaEventBus({ brokers: kafka.brokers, clientId: 'bench-pipeline', producer: { lingerMs: 5 } });
    const kafkaStore = await SqliteEventStore.open({ path: join(workDir, 'kafka.db'), pollIntervalMs: 10 });
    let distributed: RunResult;
    let alone: RunResult;
    try {
      await bus.ensureTopics(activeTopicSpecs({ partitions: 4, replicationFactor: 1, minInSyncReplicas: 1 }));
      alone = await busAlone(bus, buildWorkload(sessions, commands));
      log(`Kafka bus alone ${Math.round(rate(alone))} events/s, p50 ${percentile(alone.latenciesMs, 50).toFixed(2)} ms`);
      const spool = await Spool.open({ dir: join(workDir, 'spool'), maxBytes: 512 * 1024 * 1024 });
      const gateway = new SpooledEvidencePipeline({ spool, publisher: bus.publisher(), instance: 'bench' });
      // A fresh group starts at the beginning: skip what the baseline left on the topic.
      const ingest = startIngest({ bus, store: kafkaStore, groupId: `bench-ingest-${randomUUID()}` });
      try {
        // Warm-up: the group has joined and caught up with the baseline's messages once this is stored.
        await drive(kafkaStore, buildWorkload(1, 1), (batch) => gateway.accept(batch));
        distributed = await drive(kafkaStore, buildWorkload(sessions, commands), (batch) => gateway.accept(batch));
      } finally {
        await ingest.stop();
        await gateway.close();
      }
    } finally {
      await kafkaStore.close();
      await bus.close();
    }
    log(`Kafka pipeline ${Math.round(rate(distributed))} events/s, p50 ${percentile(distributed.latenciesMs, 50).toFixed(2)} ms, p99 ${percentile(distributed.latenciesMs, 99).toFixed(2)} ms`);

    const workloadNote = `${sessions} sessions, strict mode (2 events per command, next command after accept), ${events} events`;
    return [
      figure(NAME, {
        metric: 'embedded: events/s publisher → stored (accept = SQLite append, synchronous=FULL)',
        unit: 'events/s',
        better: 'higher',
        value: rate(embedded),
        baseline: { name: 'the SQLite store appended directly (same workload)', value: rate(direct) },
        notes: workloadNote,
      }),
      figure(NAME, {
        metric: 'embedded: publish-to-stored latency p50',
        unit: 'ms',
        better: 'lower',
        value: percentile(embedded.latenciesMs, 50),
        baseline: { name: 'direct SQLite append p50', value: percentile(direct.latenciesMs, 50) },
      }),
      figure(NAME, {
        metric: 'embedded: publish-to-stored latency p99',
        unit: 'ms',
        better: 'lower',
        value: percentile(embedded.latenciesMs, 99),
        baseline: { name: 'direct SQLite append p99', value: percentile(direct.latenciesMs, 99) },
      }),
      figure(NAME, {
        metric: 'Kafka: events/s publisher → stored (spool fsync → Kafka acks=-1 → ingest → SQLite)',
        unit: 'events/s',
        better: 'higher',
        value: rate(distributed),
        baseline: { name: 'Kafka bus alone: publish → consume, no spool/ingest/store', value: rate(alone) },
        notes: `${workloadNote}; gzip, linger 5 ms, 4 partitions, one broker (harness)`,
      }),
      figure(NAME, {
        metric: 'Kafka: publish-to-stored latency p50',
        unit: 'ms',
        better: 'lower',
        value: percentile(distributed.latenciesMs, 50),
        baseline: { name: 'Kafka bus alone p50 (publish → consumed)', value: percentile(alone.latenciesMs, 50) },
      }),
      figure(NAME, {
        metric: 'Kafka: publish-to-stored latency p99',
        unit: 'ms',
        better: 'lower',
        value: percentile(distributed.latenciesMs, 99),
        baseline: { name: 'Kafka bus alone p99 (publish → consumed)', value: percentile(alone.latenciesMs, 99) },
      }),
      figure(NAME, {
        metric: 'side by side: Kafka pipeline events/s relative to embedded',
        unit: 'events/s',
        better: 'higher',
        subject: 'Kafka pipeline',
        value: rate(distributed),
        baseline: { name: 'embedded pipeline (same workload, same run)', value: rate(embedded) },
      }),
      figure(NAME, {
        metric: `spool: peak RSS draining a backlog of ${backlog} events (fresh process)`,
        unit: 'MiB',
        better: 'lower',
        value: mib(bigDrain.peakRssBytes),
        baseline: { name: `the same drain of a ${smallBacklog}-event backlog (fresh process)`, value: mib(smallDrain.peakRssBytes) },
        notes:
          `${backlog} events (${mib(bigDrain.backlogBytes).toFixed(0)} MiB in ${segmentBytes / MIB} MiB segments) vs ${smallBacklog} (${mib(smallDrain.backlogBytes).toFixed(0)} MiB), ` +
          `command.issued + policy.decided per record, written by another process while nothing drained, then drained in order to an in-process bus publisher keeping 1 message per partition ` +
          `(default delivery batches: 1 MiB / 5000 events); peak = VmHWM; RSS before opening the spool ${mib(bigDrain.rssBeforeOpenBytes).toFixed(0)} MiB; drained in ${bigDrain.seconds.toFixed(1)} s`,
      }),
    ];
  },
};
