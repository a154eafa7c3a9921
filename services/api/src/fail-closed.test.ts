// With no identity issuer configured the API still starts, says so, and refuses every request;
// refusals are recorded, but a flood of them is rate-limited and summarised.
import 'reflect-metadata';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CustodianEvent } from '@custodian/event-contracts';
import { SqliteEventStore } from '@custodian/event-store-sqlite';
import { createLogger } from '@custodian/observability';
import { startNestService, type RunningNestService } from '@custodian/observability/nest';
import { FAILURES_SUPPRESSED_CODE, NO_ISSUER_NOTICE } from '@custodian/service-host';
import { describeServiceHealthContract } from '@custodian/service-host/testing';
import { ApiModule } from './index.js';

describeServiceHealthContract('api', (deps) => ApiModule.register(deps));

describe('api without an identity issuer (fail closed)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'custodian-api-closed-'));
  const logLines: string[] = [];
  let store: SqliteEventStore;
  let service: RunningNestService;

  beforeAll(async () => {
    store = await SqliteEventStore.open({ path: join(dir, 'events.sqlite') });
    const logger = createLogger({ service: 'api', level: 'info', destination: { write: (line: string) => void logLines.push(line) } });
    service = await startNestService({
      module: ApiModule.register({ eventStore: store, logger, failureEvents: { failuresPerClient: 3, windowMs: 3_600_000 } }),
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

  it('says at start-up that it refuses every request', () => {
    const warnings = logLines.map((l) => JSON.parse(l) as { level: string; msg: string }).filter((l) => l.level === 'warn');
    expect(warnings.map((w) => w.msg)).toContain(NO_ISSUER_NOTICE);
  });

  it('is live and ready, but every /v1 and /auth/me request is 401 IDENTITY_NOT_CONFIGURED, token or not', async () => {
    expect((await fetch(`${service.url}/health/ready`)).status).toBe(200);
    for (const headers of [{}, { authorization: 'Bearer eyJhbGciOiJSUzI1NiJ9.e30.c2ln' }, { cookie: 'custodian_session=AAAAAAAAAAAAAAAAAAAAAAAA' }]) {
      for (const path of ['/v1/version', '/v1/streams/session-x/events', '/auth/me']) {
        const response = await fetch(`${service.url}${path}`, { headers });
        expect(response.status, path).toBe(401);
        expect(response.headers.get('www-authenticate')).toMatch(/^Bearer/);
        expect(await response.json()).toMatchObject({ error: { code: 'IDENTITY_NOT_CONFIGURED' } });
      }
    }
  });

  it('human login is refused (503 LOGIN_NOT_CONFIGURED), not redirected anywhere', async () => {
    const response = await fetch(`${service.url}/auth/login?returnTo=/`, { redirect: 'manual' });
    expect(response.status).toBe(503);
    expect(response.headers.get('location')).toBeNull();
    expect(await response.json()).toEqual({ error: { code: 'LOGIN_NOT_CONFIGURED', message: expect.any(String) } });
  });

  it('records at most 3 failures per client and window, then one summary with the count (written at shutdown at the latest)', async () => {
    // 9 refused requests in the test above + these 10: only the first 3 of this client are recorded one by one.
    for (let i = 0; i < 10; i++) expect((await fetch(`${service.url}/v1/version`)).status).toBe(401);
    const failed = async (): Promise<CustodianEvent[]> => {
      const found: CustodianEvent[] = [];
      for await (const recorded of store.readAll()) if (recorded.event.type === 'authentication.failed') found.push(recorded.event);
      return found;
    };
    const individual = await failed();
    expect(individual).toHaveLength(3);
    expect(individual.every((e) => e.payload && (e.payload as { reasonCode: string }).reasonCode === 'IDENTITY_NOT_CONFIGURED')).toBe(true);

    await service.close();
    const all = await failed();
    expect(all).toHaveLength(4);
    const summary = all[3]!;
    expect(summary.payload).toMatchObject({ reasonCode: FAILURES_SUPPRESSED_CODE, clientAddress: '127.0.0.1', reason: expect.stringContaining('16 further authentication failures from 127.0.0.1') });
    expect((summary.payload as { reason: string }).reason).toContain('IDENTITY_NOT_CONFIGURED×16');
  });
});
