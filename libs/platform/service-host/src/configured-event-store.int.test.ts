import 'reflect-metadata';
import { createServer } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startPostgres } from '@custodian/test-harness';
import { loadConfig } from '@custodian/runtime-config';
import { openConfiguredEventStore } from './configured-event-store.js';

const dir = mkdtempSync(join(tmpdir(), 'custodian-gateway-store-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A port nothing listens on (bound, then released). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe('openConfiguredEventStore', () => {
  it('opens the SQLite store under dataDir, creating the directory', async () => {
    const loaded = loadConfig({ env: { CUSTODIAN_DATA_DIR: join(dir, 'nested', 'data') }, cwd: dir });
    const store = await openConfiguredEventStore(loaded);
    await expect(store.ping()).resolves.toBeUndefined();
    await store.close();
  });

  it('an unreachable EventStoreDB (connection string from a secret reference) opens but is not ready', async () => {
    const port = await closedPort();
    const loaded = loadConfig({
      cwd: dir,
      env: { CUSTODIAN_EVENT_STORE__KIND: 'eventstoredb', CUSTODIAN_EVENT_STORE__CONNECTION_STRING__FROM_ENV: 'TEST_ESDB_URL' },
    });
    process.env.TEST_ESDB_URL = `esdb://127.0.0.1:${port}?tls=false`;
    try {
      const store = await openConfiguredEventStore(loaded);
      try {
        // Services register ping() as their readiness check, so this is what turns /health/ready into 503.
        await expect(store.ping()).rejects.toMatchObject({ code: 'EVENT_STORE_UNAVAILABLE' });
      } finally {
        await store.close();
      }
    } finally {
      delete process.env.TEST_ESDB_URL;
    }
  });

  it('opens the PostgreSQL store from a secret reference, creating its schema, and refuses an inline password', async () => {
    const server = await startPostgres();
    try {
      process.env.TEST_PG_STORE_URL = server.connectionString();
      const loaded = loadConfig({
        cwd: dir,
        env: { CUSTODIAN_EVENT_STORE__KIND: 'postgres', CUSTODIAN_EVENT_STORE__CONNECTION_STRING__FROM_ENV: 'TEST_PG_STORE_URL', CUSTODIAN_EVENT_STORE__SCHEMA: 'evidence_store' },
      });
      const store = await openConfiguredEventStore(loaded);
      try {
        await expect(store.ping()).resolves.toBeUndefined();
        expect(await server.psql(`SELECT count(*) FROM evidence_store.events`)).toBe('0');
      } finally {
        await store.close();
      }
      expect(() =>
        loadConfig({ cwd: dir, env: { CUSTODIAN_EVENT_STORE__KIND: 'postgres', CUSTODIAN_EVENT_STORE__CONNECTION_STRING: 'postgres://u:secret@127.0.0.1/db' } }),
      ).toThrow(/connectionString/);
    } finally {
      delete process.env.TEST_PG_STORE_URL;
      await server.stop();
    }
  }, 60_000);
});
