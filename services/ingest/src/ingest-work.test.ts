// The ingest service consuming a bus into the store, with its Prometheus metrics (dead letters,
// lag, ingest outcomes). The in-process bus stands in for Kafka here; the Kafka path is covered by
// libs/events/event-ingest/src/evidence-pipeline.kafka.int.test.ts.
import 'reflect-metadata';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventFactory } from '@custodian/event-contracts';
import { EVENTS_TOPIC, activeTopicSpecs, eventMessage } from '@custodian/event-bus';
import { InProcessEventBus } from '@custodian/event-bus-in-process';
import { SqliteEventStore } from '@custodian/event-store-sqlite';
import { MetricsRegistry, createLogger } from '@custodian/observability';
import { startNestService, type RunningNestService } from '@custodian/observability/nest';
import { parseConfig } from '@custodian/runtime-config';
import { pipelineMetrics } from '@custodian/service-host';
import { IngestModule, openIngestWork } from './index.js';

const dir = mkdtempSync(join(tmpdir(), 'custodian-ingest-work-'));
let store: SqliteEventStore;
let bus: InProcessEventBus;
let running: RunningNestService;

beforeAll(async () => {
  const loaded = parseConfig(`dataDir: ${dir}\n`, { env: {}, cwd: dir });
  store = await SqliteEventStore.open({ path: join(dir, 'events.sqlite') });
  bus = new InProcessEventBus();
  await bus.ensureTopics(activeTopicSpecs({ partitions: 2, replicationFactor: 1 }));
  const logger = createLogger({ service: 'ingest', level: 'silent' });
  const metrics = new MetricsRegistry({ processMetrics: false });
  running = await startNestService({
    module: IngestModule.register({ eventStore: store, logger, metrics, ingest: () => openIngestWork(loaded, { store, logger, bus, metrics: pipelineMetrics(metrics) }) }),
    logger,
    listen: { host: '127.0.0.1', port: 0 },
    shutdownHooks: false,
  });
});

afterAll(async () => {
  await running?.close();
  await bus?.close();
  await store?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('ingest service', () => {
  it('stores valid events, dead-letters poison and reports both at GET /metrics', async () => {
    const f = new EventFactory({ service: 'gateway', instance: 'gw-test' });
    const event = f.create({ type: 'policy.activated', stream: `policy-${randomUUID()}`, sequence: 0, identity: null, payload: { policyName: 'p', version: 1, digest: 'a'.repeat(64), source: 'p.yaml', rules: 1 } });
    const publisher = bus.publisher();
    await publisher.publish([eventMessage(event), { topic: EVENTS_TOPIC, key: 'poison', value: 'not json', headers: {} }]);
    const deadline = Date.now() + 10_000;
    let text = '';
    while (Date.now() < deadline) {
      text = await (await fetch(`${running.url}/metrics`)).text();
      if (/custodian_ingest_dead_letters_total\{reason="INGEST_NOT_JSON"\} 1/.test(text) && /custodian_ingest_events_total\{outcome="written"\} 1/.test(text)) break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(text).toMatch(/^custodian_ingest_dead_letters_total\{reason="INGEST_NOT_JSON"\} 1$/m);
    expect(text).toMatch(/^custodian_ingest_events_total\{outcome="written"\} 1$/m);
    expect(text).toMatch(/^custodian_ingest_lag_messages\{topic="custodian.events.v1",partition="\d"\} 0$/m);
    const stored: string[] = [];
    for await (const r of store.readStream(event.stream)) stored.push(r.event.id);
    expect(stored).toEqual([event.id]);
    await publisher.close();
  });
});
