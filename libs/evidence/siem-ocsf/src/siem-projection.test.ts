import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SIEM_HEADERS, SIEM_OCSF_TOPIC, activeTopicSpecs, type ConsumedMessage } from '@custodian/event-bus';
import { InProcessEventBus } from '@custodian/event-bus-in-process';
import { SqliteEventStore } from '@custodian/event-store-sqlite';
import { afterEach, describe, expect, it } from 'vitest';
import { runSiemProjection } from './siem-projection.js';
import { sampleEvents } from './testing/sample-events.js';

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe('SIEM projection', () => {
  it('publishes every stored event as OCSF keyed by session; when the bus refuses, it restarts from its checkpoint and skips nothing', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'custodian-siem-'));
    dirs.push(dir);
    const store = await SqliteEventStore.open({ path: join(dir, 'events.db'), pollIntervalMs: 20 });
    const events = sampleEvents();
    for (const e of events) await store.append(e.stream, [e], { expectedRevision: 'any' });
    // No SIEM topic yet: every publish fails, as with a broker outage.
    const bus = new InProcessEventBus();
    const publisher = bus.publisher();
    const errors: unknown[] = [];
    const { running } = runSiemProjection(store, publisher, { checkpointEvery: 5, onError: (e) => errors.push(e) });
    await expect.poll(() => errors.length, { timeout: 10_000 }).toBeGreaterThan(0);
    expect(await store.checkpoints.load('siem-ocsf')).toBeUndefined();

    await bus.ensureTopics(activeTopicSpecs({ partitions: 3, replicationFactor: 1 }));
    const received: ConsumedMessage[] = [];
    bus.consume({ groupId: 'siem-reader', topics: [SIEM_OCSF_TOPIC], handleBatch: async (b) => void received.push(...b.messages) });
    await expect.poll(() => new Set(received.map((m) => m.headers[SIEM_HEADERS.eventId])).size, { timeout: 15_000 }).toBe(events.length);
    await running.stop();
    const byId = new Map(received.map((m) => [m.headers[SIEM_HEADERS.eventId], m]));
    for (const e of events) {
      const m = byId.get(e.id)!;
      const ocsf = JSON.parse(m.value.toString()) as { class_uid: number; severity_id: number; metadata: { uid: string } };
      expect(ocsf.metadata.uid).toBe(e.id);
      expect(m.headers).toMatchObject({ [SIEM_HEADERS.classUid]: String(ocsf.class_uid), [SIEM_HEADERS.severityId]: String(ocsf.severity_id), [SIEM_HEADERS.eventType]: e.type });
      const sessionId = (e.payload as { sessionId?: string }).sessionId;
      expect(m.key).toBe(sessionId ?? e.stream);
    }
    expect(await store.checkpoints.load('siem-ocsf')).toBeDefined();
    await bus.close();
    await store.close();
  });
});
