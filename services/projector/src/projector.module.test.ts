import 'reflect-metadata';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SqliteEventStore } from '@custodian/event-store-sqlite';
import { createLogger } from '@custodian/observability';
import { startNestService, type RunningNestService } from '@custodian/observability/nest';
import { ProjectorModule } from './index.js';

describe('projector service', () => {
  const dir = mkdtempSync(join(tmpdir(), 'custodian-projector-'));
  const logLines: string[] = [];
  let store: SqliteEventStore;
  let service: RunningNestService;

  beforeAll(async () => {
    store = await SqliteEventStore.open({ path: join(dir, 'events.sqlite') });
    const logger = createLogger({ service: 'projector', level: 'info', destination: { write: (s: string) => void logLines.push(s) } });
    service = await startNestService({
      module: ProjectorModule.register({ eventStore: store, logger }),
      logger,
      listen: { host: '127.0.0.1', port: 0 },
      shutdownHooks: false,
    });
  });

  afterAll(async () => {
    await service?.close();
    await store?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('boots on an ephemeral loopback port and answers /health/live and /health/ready', async () => {
    expect(service.port).toBeGreaterThan(0);
    const live = await fetch(`${service.url}/health/live`);
    expect(live.status).toBe(200);
    const ready = await fetch(`${service.url}/health/ready`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: 'ok', checks: [{ name: 'event-store', ok: true }], failing: [] });
  });

  it('logs Nest start-up as JSON lines tagged with the service', () => {
    const lines = logLines.join('').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.length).toBeGreaterThan(0);
    expect(lines.every((l) => l.service === 'projector')).toBe(true);
    expect(lines.some((l) => l.context === 'NestApplication')).toBe(true);
  });

  it('is not ready (503, failing check named) once the event store is closed, but still live', async () => {
    await store.close();
    const ready = await fetch(`${service.url}/health/ready`);
    expect(ready.status).toBe(503);
    expect(await ready.json()).toMatchObject({ status: 'unavailable', failing: ['event-store'] });
    expect((await fetch(`${service.url}/health/live`)).status).toBe(200);
  });
});
