// The gateway's evidence pipeline as `custodian start` wires it (bus: in-process → the SQLite
// store is the durable point), with its readiness check and its Prometheus metrics.
import 'reflect-metadata';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventFactory, type Identity } from '@custodian/event-contracts';
import { InProcessEventBus } from '@custodian/event-bus-in-process';
import { SqliteEventStore } from '@custodian/event-store-sqlite';
import { MetricsRegistry, createLogger } from '@custodian/observability';
import { startNestService, type RunningNestService } from '@custodian/observability/nest';
import { parseConfig } from '@custodian/runtime-config';
import { pipelineMetrics } from '@custodian/service-host';
import { GatewayModule, openGatewayEvidence, type GatewayEvidence } from './index.js';

const dir = mkdtempSync(join(tmpdir(), 'custodian-gateway-evidence-'));
let store: SqliteEventStore;
let bus: InProcessEventBus;
let running: RunningNestService;
let evidence: GatewayEvidence | undefined;

beforeAll(async () => {
  const loaded = parseConfig(`dataDir: ${dir}\n`, { env: {}, cwd: dir });
  store = await SqliteEventStore.open({ path: join(dir, 'events.sqlite') });
  bus = new InProcessEventBus();
  const logger = createLogger({ service: 'gateway', level: 'silent' });
  const metrics = new MetricsRegistry({ processMetrics: false });
  running = await startNestService({
    module: GatewayModule.register({
      eventStore: store,
      logger,
      metrics,
      evidence: async () => (evidence = await openGatewayEvidence(loaded, { store, logger, bus, metrics: pipelineMetrics(metrics), instance: 'gw-test' })),
    }),
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

const agent: Identity = { subject: 'agent-7', issuer: 'https://idp.example', groups: [], kind: 'agent' };

describe('gateway evidence pipeline (embedded)', () => {
  it('is strict by default and ready; accepted events are in the store when accept() resolves', async () => {
    expect(evidence?.strict).toBe(true);
    const ready = await fetch(`${running.url}/health/ready`);
    expect(await ready.json()).toMatchObject({ status: 'ok', checks: [{ name: 'event-store', ok: true }, { name: 'evidence-pipeline', ok: true }] });
    const sessionId = randomUUID();
    const stream = `session-${sessionId}`;
    const f = new EventFactory({ service: 'gateway', instance: 'gw-test' });
    const events = [
      f.create({ type: 'command.issued', stream, sequence: 0, identity: agent, payload: { sessionId, commandId: randomUUID(), kind: 'sql', text: 'SELECT 1' } }),
      f.create({ type: 'frame.recorded', stream, sequence: 1, identity: agent, payload: { sessionId, direction: 'client-to-upstream', offsetMicros: 0, data: 'eA==', byteLength: 1 } }),
    ];
    await expect(evidence!.pipeline.accept(events)).resolves.toEqual({ events: 2, durableIn: 'store' });
    const stored: string[] = [];
    for await (const r of store.readStream(stream)) stored.push(r.event.id);
    expect(stored).toEqual(events.map((e) => e.id));
  });

  it('serves the pipeline metrics as Prometheus text at GET /metrics', async () => {
    const response = await fetch(`${running.url}/metrics`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = await response.text();
    expect(text).toContain('# TYPE custodian_pipeline_events_published_total counter');
    expect(text).toMatch(/^custodian_pipeline_events_published_total 2$/m);
    expect(text).toMatch(/^custodian_pipeline_spool_depth_events 0$/m);
    expect(text).toMatch(/^custodian_pipeline_refusals_total\{reason="PIPELINE_SPOOL_FULL"\} 0$/m);
    for (const name of ['custodian_pipeline_events_spooled_total', 'custodian_ingest_lag_messages', 'custodian_ingest_dead_letters_total']) expect(text).toContain(`# HELP ${name} `);
  });
});
