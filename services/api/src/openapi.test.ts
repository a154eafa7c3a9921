// services/api/openapi.yaml lists every route the app serves (and nothing it does not).
import 'reflect-metadata';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createConfig, lint } from '@redocly/openapi-core';
import { parse } from 'yaml';
import { SqliteEventStore } from '@custodian/event-store-sqlite';
import { createLogger } from '@custodian/observability';
import { startNestService, type RunningNestService } from '@custodian/observability/nest';
import { ApiModule } from './index.js';

interface OpenApiDocument {
  readonly openapi: string;
  readonly paths: Record<string, Record<string, { security?: unknown[] }>>;
}

interface ExpressLayer {
  readonly route?: { readonly path: string; readonly methods: Record<string, boolean> };
}

const DASHBOARD_FALLBACK = '{*any}';
const HTTP_METHODS = new Set(['get', 'post', 'put', 'patch', 'delete', 'head', 'options']);
const dir = mkdtempSync(join(tmpdir(), 'custodian-api-openapi-'));
const document = parse(readFileSync(new URL('../openapi.yaml', import.meta.url), 'utf8')) as OpenApiDocument;
const webDir = join(dir, 'web');
mkdirSync(webDir);
writeFileSync(join(webDir, 'index.html'), '<!doctype html><title>test</title>');
let store: SqliteEventStore;
let service: RunningNestService;

beforeAll(async () => {
  store = await SqliteEventStore.open({ path: join(dir, 'events.sqlite') });
  const logger = createLogger({ service: 'api', level: 'warn', destination: { write: () => undefined } });
  service = await startNestService({ module: ApiModule.register({ eventStore: store, logger, dashboardAssets: webDir }), logger, listen: { host: '127.0.0.1', port: 0 }, shutdownHooks: false });
});

afterAll(async () => {
  await service?.close();
  await store?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** `METHOD /path/{param}` for every route registered with the HTTP server. */
function servedRoutes(): string[] {
  const express = service.app.getHttpAdapter().getInstance() as { router: { stack: readonly ExpressLayer[] } };
  const routes: string[] = [];
  for (const layer of express.router.stack) {
    // The dashboard's fallback (index.html for client-side routes) is a web page, not an API route.
    if (!layer.route || layer.route.path === DASHBOARD_FALLBACK) continue;
    const path = layer.route.path.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
    for (const [method, on] of Object.entries(layer.route.methods)) if (on && method !== '_all') routes.push(`${method.toUpperCase()} ${path}`);
  }
  return routes.sort();
}

function documentedRoutes(): string[] {
  return Object.entries(document.paths)
    .flatMap(([path, item]) => Object.keys(item).filter((key) => HTTP_METHODS.has(key)).map((method) => `${method.toUpperCase()} ${path}`))
    .sort();
}

describe('openapi.yaml', () => {
  it('is OpenAPI 3.1 and documents exactly the routes the app serves', () => {
    expect(document.openapi).toBe('3.1.0');
    const served = servedRoutes();
    expect(served).toContain('GET /v1/version');
    expect(served).toContain('POST /auth/logout');
    expect(documentedRoutes()).toEqual(served);
  });

  it('marks exactly the anonymous routes as needing no security', () => {
    const anonymous = Object.entries(document.paths)
      .flatMap(([path, item]) => Object.entries(item).filter(([, op]) => Array.isArray(op.security) && op.security.length === 0).map(([method]) => `${method.toUpperCase()} ${path}`))
      .sort();
    expect(anonymous).toEqual(['GET /auth/callback', 'GET /auth/login', 'GET /health/live', 'GET /health/ready', 'POST /auth/logout']);
  });

  it('is a valid OpenAPI 3.1 document (no error under Redocly structural rules)', async () => {
    const problems = await lint({ ref: fileURLToPath(new URL('../openapi.yaml', import.meta.url)), config: await createConfig({ extends: ['minimal'] }) });
    const errors = problems.filter((p) => p.severity === 'error').map((p) => `${p.ruleId}: ${p.message} at ${p.location[0]?.pointer ?? '?'}`);
    expect(errors).toEqual([]);
  });
});
