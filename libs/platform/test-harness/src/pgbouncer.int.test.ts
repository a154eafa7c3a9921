import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPgbouncer, type StartedPgbouncer } from './pgbouncer.js';
import { startPostgres, type StartedPostgres } from './postgres.js';
import { processAlive, processGroupAlive } from './service.js';

describe('startPgbouncer (real PgBouncer in front of real PostgreSQL)', () => {
  let pg: StartedPostgres;
  let bouncer: StartedPgbouncer;

  beforeAll(async () => {
    pg = await startPostgres({ md5Users: [{ user: 'legacy_app', password: 'legacy-secret' }] });
    bouncer = await startPgbouncer({ postgres: pg });
  });

  afterAll(async () => {
    await bouncer?.stop();
    await pg?.stop();
  });

  it('answers SELECT 1 via psql through PgBouncer (SCRAM secret in userlist)', async () => {
    expect(bouncer.port).not.toBe(pg.port);
    expect(await bouncer.psql('SELECT 1')).toBe('1');
    // The query really reached PostgreSQL's server, seen from the server side.
    expect(await bouncer.psql('SELECT inet_server_port()')).toBe(String(pg.port));
  });

  it('authenticates the md5 user through PgBouncer', async () => {
    expect(await bouncer.psql('SELECT current_user', { user: 'legacy_app', password: 'legacy-secret' })).toBe('legacy_app');
  });

  it('rejects a wrong password at PgBouncer', async () => {
    await expect(bouncer.psql('SELECT 1', { password: 'wrong' })).rejects.toMatchObject({ code: 'HARNESS_COMMAND_FAILED' });
  });

  it('runs in transaction pool mode and exposes the admin console', async () => {
    expect(bouncer.poolMode).toBe('transaction');
    const pools = await bouncer.admin('SHOW POOLS');
    expect(pools).toContain('custodian_test');
  });

  it('stop() leaves no process behind and removes the temp dir', async () => {
    const second = await startPgbouncer({ postgres: pg, userlist: 'plain', poolMode: 'session' });
    expect(await second.psql('SELECT 2')).toBe('2');
    expect(processAlive(second.pid)).toBe(true);
    await second.stop();
    expect(processAlive(second.pid)).toBe(false);
    expect(processGroupAlive(second.pid)).toBe(false);
    expect(existsSync(second.dir)).toBe(false);
  });
});
