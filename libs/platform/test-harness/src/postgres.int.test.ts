import { chmodSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPostgres, type StartedPostgres } from './postgres.js';
import { HarnessError, processAlive, processGroupAlive } from './service.js';

describe('startPostgres (real PostgreSQL from Debian packages)', () => {
  let pg: StartedPostgres;

  beforeAll(async () => {
    pg = await startPostgres({ md5Users: [{ user: 'legacy_app', password: 'legacy-secret' }] });
  });

  afterAll(async () => {
    await pg?.stop();
  });

  it('answers SELECT 1 through the real psql client over TCP with SCRAM', async () => {
    expect(await pg.psql('SELECT 1')).toBe('1');
    expect(await pg.psql('SELECT current_database()')).toBe('custodian_test');
    expect(await pg.psql("SELECT setting FROM pg_settings WHERE name = 'listen_addresses'")).toBe('127.0.0.1');
  });

  it('stores the superuser password as SCRAM and the md5 user as MD5, and both can log in', async () => {
    const stored = await pg.psql("SELECT rolname || ':' || left(rolpassword, 13) FROM pg_authid WHERE rolname IN ('custodian', 'legacy_app') ORDER BY rolname");
    expect(stored).toMatch(/^custodian:SCRAM-SHA-256\nlegacy_app:md5[0-9a-f]{10}$/);
    expect(await pg.psql('SELECT current_user', { user: 'legacy_app', password: 'legacy-secret' })).toBe('legacy_app');
  });

  it('rejects a wrong password', async () => {
    await expect(pg.psql('SELECT 1', { password: 'wrong' })).rejects.toMatchObject({ code: 'HARNESS_COMMAND_FAILED' });
  });

  it('builds a connection string with the credentials', () => {
    expect(pg.connectionString('other')).toBe(`postgresql://custodian:${encodeURIComponent(pg.password)}@127.0.0.1:${pg.port}/other`);
  });
});

describe('PostgreSQL start failure', () => {
  it('fails with HARNESS_START_FAILED carrying the tail of the server log, and cleans up', async () => {
    // A private TMPDIR, so other test files starting PostgreSQL in parallel do not interfere.
    const privateTmp = mkdtempSync(join(tmpdir(), 'custodian-harness-test-'));
    chmodSync(privateTmp, 0o755); // the postgres user must be able to reach its dir inside
    const previous = process.env['TMPDIR'];
    process.env['TMPDIR'] = privateTmp;
    try {
      const error = await startPostgres({ settings: { shared_buffers: 'not-a-size' } }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(HarnessError);
      expect(error).toMatchObject({ code: 'HARNESS_START_FAILED' });
      expect((error as Error).message).toContain('invalid value for parameter "shared_buffers"');
      expect(readdirSync(privateTmp)).toEqual([]);
    } finally {
      if (previous === undefined) delete process.env['TMPDIR'];
      else process.env['TMPDIR'] = previous;
      rmSync(privateTmp, { recursive: true, force: true });
    }
  });
});

describe('PostgreSQL stop()', () => {
  it('leaves no process behind and removes the temp dir', async () => {
    const pg = await startPostgres();
    expect(processAlive(pg.pid)).toBe(true);
    expect(existsSync(pg.dataDir)).toBe(true);
    await pg.stop();
    expect(processAlive(pg.pid)).toBe(false);
    expect(processGroupAlive(pg.pid)).toBe(false);
    expect(existsSync(pg.dir)).toBe(false);
    // Idempotent.
    await pg.stop();
  });
});
