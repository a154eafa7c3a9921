// The Kafka path of the evidence pipeline against the targets: spool fsync → Kafka
// (acks=-1, idempotent) → ingest → event store. First at saturation (strict sessions, as fast as
// accepted), then paced at half the saturation rate, where publish-to-stored p99 is what counts.
// The same workload and stages as `pipeline` (its drive() and buildWorkload()); only the Kafka path.
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { activeTopicSpecs } from '@custodian/event-bus';
import { KafkaEventBus } from '@custodian/event-bus-kafka';
import { startIngest } from '@custodian/event-ingest';
import { SqliteEventStore } from '@custodian/event-store-sqlite';
import { Spool, SpooledEvidencePipeline } from '@custodian/evidence-pipeline';
import { figure, type Benchmark, type Figure } from '../benchmark.ts';
import { percentile } from '../measurement.ts';
import { buildWorkload, drive, type RunResult } from './pipeline.ts';

const NAME = 'pipeline-kafka';
const TARGET_EVENTS_PER_SECOND = 50_000;
const TARGET_P99_MS = 500;

const rate = (r: RunResult): number => r.events / r.seconds;

export const pipelineKafka: Benchmark = {
  name: NAME,
  description: 'Kafka path (spool → Kafka → ingest → SQLite store): events/s at saturation and publish-to-stored p50/p99 at half that rate, against the issue-17 targets',
  async run({ quick, workDir, harness, log }): Promise<Figure[]> {
    // Quick: only keeps the benchmark from rotting (the whole --quick suite stays under 3 minutes).
    const sessions = quick ? 25 : 200;
    const commands = quick ? 20 : 100;
    const kafka = await harness.kafka();
    const bus = new KafkaEventBus({ brokers: kafka.brokers, clientId: 'bench-pipeline-kafka', producer: { lingerMs: 5 } });
    const store = await SqliteEventStore.open({ path: join(workDir, 'pipeline-kafka.db'), pollIntervalMs: 10 });
    let saturated: RunResult;
    let half: RunResult;
    try {
      await bus.ensureTopics(activeTopicSpecs({ partitions: 4, replicationFactor: 1, minInSyncReplicas: 1 }));
      const spool = await Spool.open({ dir: join(workDir, 'pipeline-kafka-spool'), maxBytes: 512 * 1024 * 1024 });
      const gateway = new SpooledEvidencePipeline({ spool, publisher: bus.publisher(), instance: 'bench' });
      const ingest = startIngest({ bus, store, groupId: `bench-ingest-${randomUUID()}` });
      try {
        // Warm-up: the group joined and caught up with whatever is on the topic once this is stored.
        await drive(store, buildWorkload(1, 1), (batch) => gateway.accept(batch));
        saturated = await drive(store, buildWorkload(sessions, commands), (batch) => gateway.accept(batch));
        log(`saturation ${Math.round(rate(saturated))} events/s, p50 ${percentile(saturated.latenciesMs, 50).toFixed(1)} ms, p99 ${percentile(saturated.latenciesMs, 99).toFixed(1)} ms`);
        const offered = rate(saturated) / 2;
        half = await drive(store, buildWorkload(sessions, commands), (batch) => gateway.accept(batch), { eventsPerSecond: offered });
        log(`half load (${Math.round(offered)} events/s offered): ${Math.round(rate(half))} events/s, p50 ${percentile(half.latenciesMs, 50).toFixed(1)} ms, p99 ${percentile(half.latenciesMs, 99).toFixed(1)} ms`);
      } finally {
        await ingest.stop();
        await gateway.close();
      }
    } finally {
      await store.close();
      await bus.close();
    }
    const notes = `${sessions} sessions × ${commands} commands × 2 events, strict mode; gzip, linger 5 ms, 4 partitions, one broker (harness), @platformatic/kafka`;
    return [
      figure(NAME, {
        metric: 'Kafka path at saturation: events/s publisher → stored',
        unit: 'events/s',
        better: 'higher',
        value: rate(saturated),
        baseline: { name: 'issue-17 target', value: TARGET_EVENTS_PER_SECOND },
        notes,
      }),
      figure(NAME, {
        metric: 'Kafka path at half the saturation rate: publish-to-stored p99',
        unit: 'ms',
        better: 'lower',
        value: percentile(half.latenciesMs, 99),
        baseline: { name: 'issue-17 target', value: TARGET_P99_MS },
        notes: `offered ${Math.round(rate(saturated) / 2)} events/s; p50 ${percentile(half.latenciesMs, 50).toFixed(1)} ms`,
      }),
    ];
  },
};
