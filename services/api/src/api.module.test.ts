import 'reflect-metadata';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventFactory, streamName } from '@custodian/event-contracts';
import { SqliteEventStore } from '@custodian/event-store-sqlite';
import { createLogger } from '@custodian/observability';
import { startNestService, type RunningNestService } from '@custodian/observability/nest';
import { ApiModule, type StreamEventsResponse } from './index.js';

describe('api service', () => {
  const dir = mkdtempSync(join(tmpdir(), 'custodian-api-'));
  let store: SqliteEventStore;
  let service: RunningNestService;
  const sessionId = randomUUID();
  const stream = streamName('session', sessionId);

  beforeAll(async () => {
    store = await SqliteEventStore.open({ path: join(dir, 'events.sqlite') });
    const events = new EventFactory({ service: 'gateway', instance: 'test' });
    const identity = { subject: 'agent-1', issuer: 'https://idp.example', groups: ['agents'], kind: 'agent' as const };
    await store.append(
      stream,
      [
        events.create({ type: 'session.opened', stream, sequence: 0, identity, payload: { sessionId, connection: { name: 'orders', protocol: 'postgres' }, client: { address: '127.0.0.1:5000' } } }),
      ],
      { expectedRevision: 'no-stream' },
    );
    const logger = createLogger({ service: 'api', level: 'warn', destination: { write: () => undefined } });
    service = await startNestService({
      module: ApiModule.register({ eventStore: store, logger, version: { name: 'custodian', version: '9.9.9-test' } }),
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

  it('answers /health/live and /health/ready', async () => {
    expect((await fetch(`${service.url}/health/live`)).status).toBe(200);
    expect((await fetch(`${service.url}/health/ready`)).status).toBe(200);
  });

  it('GET /v1/version', async () => {
    const res = await fetch(`${service.url}/v1/version`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ name: 'custodian', version: '9.9.9-test', node: process.versions.node });
  });

  it('GET /v1/streams/:stream/events returns the stored events as JSON', async () => {
    const res = await fetch(`${service.url}/v1/streams/${encodeURIComponent(stream)}/events`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as StreamEventsResponse;
    expect(body.stream).toBe(stream);
    expect(body.events).toHaveLength(1);
    expect(body.events[0]).toMatchObject({ revision: 0, position: expect.stringMatching(/^C\d+\/P\d+$/), event: { type: 'session.opened', stream, payload: { sessionId } } });
  });

  it('an unknown stream is empty; bad paging parameters are 400', async () => {
    const empty = await fetch(`${service.url}/v1/streams/session-unknown/events`);
    expect(await empty.json()).toEqual({ stream: 'session-unknown', events: [] });
    expect((await fetch(`${service.url}/v1/streams/${stream}/events?maxCount=-1`)).status).toBe(400);
    expect((await fetch(`${service.url}/v1/streams/${stream}/events?direction=sideways`)).status).toBe(400);
    expect((await fetch(`${service.url}/v1/streams/%24all/events`)).status).toBe(400);
  });

  it('with the store closed: ready is 503 naming the check, reads are 503', async () => {
    await store.close();
    const ready = await fetch(`${service.url}/health/ready`);
    expect(ready.status).toBe(503);
    expect(await ready.json()).toMatchObject({ failing: ['event-store'] });
    expect((await fetch(`${service.url}/v1/streams/${stream}/events`)).status).toBe(503);
  });
});
