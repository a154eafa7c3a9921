// A real PgBouncer (Debian package) in front of a harness PostgreSQL, on a free loopback port.
// Local-process backend only.
import { chownSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { postgresUrl, psqlTarget, runPsql, type PsqlOptions, type PsqlTarget, type StartedPostgres } from './postgres.js';
import { startProcessService } from './process-service.js';
import { HarnessError, freePort, requireBinary, serviceIdentity, tcpAccepts, type StartedService } from './service.js';

export type PgbouncerPoolMode = 'session' | 'transaction' | 'statement';

export interface StartPgbouncerOptions {
  readonly postgres: StartedPostgres;
  /** Default `transaction`, the mode that breaks session state and so matters most for tests. */
  readonly poolMode?: PgbouncerPoolMode;
  /**
   * How the test users' credentials appear in userlist.txt:
   * `scram-secret` (default) copies the SCRAM verifier from pg_authid, so PgBouncer never
   * sees the password and reuses the client's SCRAM keys towards PostgreSQL;
   * `plain` writes the clear-text password.
   */
  readonly userlist?: 'scram-secret' | 'plain';
  readonly startTimeoutMs?: number;
  readonly pgbouncerBin?: string;
}

export interface StartedPgbouncer extends StartedService {
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly password: string;
  readonly database: string;
  readonly poolMode: PgbouncerPoolMode;
  readonly pid: number;
  readonly dir: string;
  readonly iniPath: string;
  readonly logPath: string;
  connectionString(database?: string): string;
  /** Runs SQL through PgBouncer with the real psql client; returns stdout without the final newline. */
  psql(sql: string, options?: PsqlOptions): Promise<string>;
  /** Runs a command on the PgBouncer admin console (database `pgbouncer`), e.g. `SHOW POOLS`. */
  admin(command: string): Promise<string>;
}

function quoteUserlist(value: string): string {
  return `"${value.replaceAll('"', '""')}"`;
}

export async function startPgbouncer(options: StartPgbouncerOptions): Promise<StartedPgbouncer> {
  const { postgres } = options;
  const pgbouncerBin = requireBinary(options.pgbouncerBin ?? '/usr/sbin/pgbouncer', 'pgbouncer');
  const poolMode = options.poolMode ?? 'transaction';
  const host = '127.0.0.1';
  // PgBouncer refuses to run as root.
  const identity = await serviceIdentity('postgres');
  return startProcessService({ name: 'pgbouncer', runAs: identity }, async (service) => {
    const { dir } = service;
    const iniPath = join(dir, 'pgbouncer.ini');
    const userlistPath = join(dir, 'userlist.txt');
    const logPath = join(dir, 'pgbouncer.log');

    const users = [{ user: postgres.user, password: postgres.password }, ...postgres.md5Users];
    const lines: string[] = [];
    for (const u of users) {
      let secret = u.password;
      if ((options.userlist ?? 'scram-secret') === 'scram-secret') {
        secret = await postgres.psql(`SELECT rolpassword FROM pg_authid WHERE rolname = '${u.user.replaceAll("'", "''")}'`, {
          database: 'postgres',
        });
        // md5 users keep their md5 hash, which PgBouncer also understands.
        if (secret === '') throw new HarnessError('HARNESS_START_FAILED', `no stored password for role ${u.user}`);
      }
      lines.push(`${quoteUserlist(u.user)} ${quoteUserlist(secret)}`);
    }
    writeFileSync(userlistPath, `${lines.join('\n')}\n`, { mode: 0o600 });

    const port = await freePort();
    const ini = [
      '[databases]',
      `* = host=${postgres.host} port=${postgres.port}`,
      '',
      '[pgbouncer]',
      `listen_addr = ${host}`,
      `listen_port = ${port}`,
      // Empty disables the unix socket; everything goes over loopback TCP.
      'unix_socket_dir =',
      // PgBouncer's `md5` mode still uses SCRAM for users whose secret is SCRAM, so it is
      // only chosen when md5 users exist; otherwise SCRAM is required of every client.
      `auth_type = ${postgres.md5Users.length > 0 ? 'md5' : 'scram-sha-256'}`,
      `auth_file = ${userlistPath}`,
      `pool_mode = ${poolMode}`,
      `admin_users = ${postgres.user}`,
      `stats_users = ${postgres.user}`,
      'max_client_conn = 200',
      'default_pool_size = 20',
      // Drivers (e.g. JDBC, node-postgres) send these; PgBouncer must not reject them.
      'ignore_startup_parameters = extra_float_digits,options',
      'server_tls_sslmode = disable',
      'log_connections = 1',
      'log_disconnections = 1',
      '',
    ].join('\n');
    writeFileSync(iniPath, ini, { mode: 0o600 });
    if (identity.switchUser) {
      chownSync(userlistPath, identity.uid, identity.gid);
      chownSync(iniPath, identity.uid, identity.gid);
    }

    const started = service.spawn(pgbouncerBin, [iniPath], { logPath, stopSignal: 'SIGTERM' });
    await service.waitUntilReady(() => tcpAccepts(port, host), {
      timeoutMs: options.startTimeoutMs ?? 30_000,
      what: `PgBouncer on ${host}:${port}`,
    });

    const target: PsqlTarget = { binDir: postgres.binDir, host, port, user: postgres.user, password: postgres.password, database: postgres.database };
    return service.publish<StartedPgbouncer>({
      name: 'pgbouncer',
      backend: 'process',
      host,
      port,
      user: postgres.user,
      password: postgres.password,
      database: postgres.database,
      poolMode,
      pid: started.pid,
      dir,
      iniPath,
      logPath,
      connectionString: (db = postgres.database) => postgresUrl({ ...target, database: db }),
      psql: (sql, psqlOptions = {}) => runPsql(psqlTarget(target, psqlOptions), sql),
      admin: (command) => runPsql({ ...target, database: 'pgbouncer' }, command),
    });
  });
}
