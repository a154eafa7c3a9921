import 'reflect-metadata';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DynamicModule } from '@nestjs/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EventStore } from '@custodian/event-store';
import { SqliteEventStore } from '@custodian/event-store-sqlite';
import { createLogger, type Logger } from '@custodian/observability';
import { startNestService, type RunningNestService } from '@custodian/observability/nest';

/**
 * What every Custodian service promises operators: it boots on a loopback port, logs JSON lines
 * tagged with its name, is live and ready while its event store answers, and reports the failing
 * check (503) once the store is gone while staying live. Each service runs this suite.
 */
export function describeServiceHealthContract(
  service: string,
  moduleFor: (deps: { readonly eventStore: EventStore; readonly logger: Logger }) => DynamicModule,
): void {
  describe(`${service} service health contract`, () => {
    const dir = mkdtempSync(join(tmpdir(), `custodian-${service}-`));
    const logLines: string[] = [];
    let store: SqliteEventStore;
    let running: RunningNestService;

    beforeAll(async () => {
      store = await SqliteEventStore.open({ path: join(dir, 'events.sqlite') });
      const logger = createLogger({ service, level: 'info', destination: { write: (s: string) => void logLines.push(s) } });
      running = await startNestService({ module: moduleFor({ eventStore: store, logger }), logger, listen: { host: '127.0.0.1', port: 0 }, shutdownHooks: false });
    });

    afterAll(async () => {
      await running?.close();
      await store?.close();
      rmSync(dir, { recursive: true, force: true });
    });

    it('boots on an ephemeral loopback port and answers /health/live and /health/ready', async () => {
      expect(running.port).toBeGreaterThan(0);
      expect((await fetch(`${running.url}/health/live`)).status).toBe(200);
      const ready = await fetch(`${running.url}/health/ready`);
      expect(ready.status).toBe(200);
      expect(await ready.json()).toEqual({ status: 'ok', checks: [{ name: 'event-store', ok: true }], failing: [] });
    });

    it('logs Nest start-up as JSON lines tagged with the service', () => {
      const lines = logLines.join('').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(lines.length).toBeGreaterThan(0);
      expect(lines.every((l) => l.service === service)).toBe(true);
      expect(lines.some((l) => l.context === 'NestApplication')).toBe(true);
    });

    it('is not ready (503, failing check named) once the event store is closed, but still live', async () => {
      await store.close();
      const ready = await fetch(`${running.url}/health/ready`);
      expect(ready.status).toBe(503);
      expect(await ready.json()).toMatchObject({ status: 'unavailable', failing: ['event-store'] });
      expect((await fetch(`${running.url}/health/live`)).status).toBe(200);
    });
  });
}
