// The api service serves the dashboard's static build: index.html for the app's own routes, its
// assets, and never the page in place of an API answer (any spelling of /v1, /auth, /health).
import 'reflect-metadata';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SqliteEventStore } from '@custodian/event-store-sqlite';
import { createLogger } from '@custodian/observability';
import { startNestService, type RunningNestService } from '@custodian/observability/nest';
import { ApiModule } from '../index.js';
import { dashboardAssets } from './dashboard-assets.js';

const dir = mkdtempSync(join(tmpdir(), 'custodian-api-dashboard-'));
const web = join(dir, 'web');
const INDEX = '<!doctype html><title>dashboard under test</title>';
let store: SqliteEventStore;
let service: RunningNestService;

beforeAll(async () => {
  mkdirSync(join(web, 'assets'), { recursive: true });
  writeFileSync(join(web, 'index.html'), INDEX);
  writeFileSync(join(web, 'assets', 'app.js'), 'console.log("app")');
  store = await SqliteEventStore.open({ path: join(dir, 'events.sqlite') });
  const logger = createLogger({ service: 'api', level: 'warn', destination: { write: () => undefined } });
  service = await startNestService({ module: ApiModule.register({ eventStore: store, logger, dashboardAssets: web }), logger, listen: { host: '127.0.0.1', port: 0 }, shutdownHooks: false });
});

afterAll(async () => {
  await service?.close();
  await store?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('the dashboard served by the api', () => {
  it('answers index.html at / and at the app routes, and serves the assets', async () => {
    for (const path of ['/', '/approvals', '/sessions/0190c8e2-0000-7000-8000-000000000000']) {
      const response = await fetch(`${service.url}${path}`);
      expect(response.status, path).toBe(200);
      expect(response.headers.get('content-type')).toMatch(/^text\/html/);
      expect(await response.text()).toBe(INDEX);
    }
    const asset = await fetch(`${service.url}/assets/app.js`);
    expect(asset.status).toBe(200);
    expect(asset.headers.get('content-type')).toMatch(/javascript/);
  });

  it('never answers an API path with the page: unknown or unauthenticated API paths stay JSON refusals', async () => {
    const unknown = await fetch(`${service.url}/v1/nothing-here`);
    expect(unknown.status).toBe(404);
    expect(unknown.headers.get('content-type')).toMatch(/^application\/json/);
    for (const path of ['/V1/version', '/auth/me', '/v1/approvals']) {
      const response = await fetch(`${service.url}${path}`);
      expect(response.status, path).toBe(401);
      expect(response.headers.get('content-type'), path).toMatch(/^application\/json/);
    }
    expect((await fetch(`${service.url}/health/nothing`)).headers.get('content-type')).not.toMatch(/^text\/html/);
  });

  it('without a build there is no page and a start-up notice says why', () => {
    const missing = dashboardAssets(join(dir, 'not-built'));
    expect(missing.module).toBeUndefined();
    expect(missing.notice).toContain('npm run build');
    expect(dashboardAssets(false)).toEqual({ module: undefined, notice: undefined });
  });
});
