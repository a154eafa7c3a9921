// A real PostgreSQL server (Debian packages) in a temp dir on a free loopback port.
// Local-process backend only; a container backend can implement the same interface.
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, realpathSync, writeFileSync, appendFileSync, chownSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { startProcessService } from './process-service.js';
import {
  HarnessError,
  freePort,
  requireBinary,
  runCommand,
  serviceIdentity,
  type ProcessIdentity,
  type StartedService,
} from './service.js';

export interface PostgresUserSpec {
  readonly user: string;
  readonly password: string;
}

export interface StartPostgresOptions {
  /** Superuser name (default `custodian`). */
  readonly user?: string;
  /** Superuser password (default: random). */
  readonly password?: string;
  /** Database created for the tests (default `custodian_test`). */
  readonly database?: string;
  /** PostgreSQL major version, e.g. '15' (default: highest installed). */
  readonly version?: string;
  /**
   * Extra login roles whose password is stored as MD5 and who authenticate with the
   * `md5` method (older clients / gateways that do not speak SCRAM).
   */
  readonly md5Users?: readonly PostgresUserSpec[];
  /** Extra postgresql.conf settings. */
  readonly settings?: Readonly<Record<string, string | number>>;
  readonly startTimeoutMs?: number;
}

export interface PsqlOptions {
  readonly database?: string;
  readonly user?: string;
  readonly password?: string;
}

export interface StartedPostgres extends StartedService {
  readonly host: string;
  readonly port: number;
  /** Superuser. */
  readonly user: string;
  readonly password: string;
  readonly database: string;
  readonly binDir: string;
  readonly dataDir: string;
  readonly socketDir: string;
  readonly pid: number;
  /** Temp dir holding data, socket and logs; removed on stop. */
  readonly dir: string;
  readonly logPath: string;
  readonly md5Users: readonly PostgresUserSpec[];
  connectionString(database?: string, credentials?: PostgresUserSpec): string;
  /** Runs SQL with the real `psql` client; returns stdout (unaligned, tuples only) without the final newline. */
  psql(sql: string, options?: PsqlOptions): Promise<string>;
}

const DEBIAN_PG_ROOT = '/usr/lib/postgresql';

/** Finds the bin dir of the installed PostgreSQL (highest major unless `version` is given). */
export function findPostgresBinDir(version?: string): string {
  const fromEnv = process.env['CUSTODIAN_PG_BIN_DIR'];
  if (fromEnv) return fromEnv;
  if (existsSync(DEBIAN_PG_ROOT)) {
    const versions = readdirSync(DEBIAN_PG_ROOT)
      .filter((v) => /^\d+$/.test(v) && existsSync(join(DEBIAN_PG_ROOT, v, 'bin', 'postgres')))
      .sort((a, b) => Number(b) - Number(a));
    const chosen = version === undefined ? versions[0] : versions.find((v) => v === version);
    if (chosen !== undefined) return join(DEBIAN_PG_ROOT, chosen, 'bin');
  }
  // Symlinks such as /usr/local/bin/pg_ctl point into the real bin dir.
  for (const link of ['/usr/local/bin/pg_ctl', '/usr/local/bin/initdb', '/usr/local/bin/postgres']) {
    if (existsSync(link)) return dirname(realpathSync(link));
  }
  throw new HarnessError(
    'HARNESS_BINARY_MISSING',
    `PostgreSQL${version ? ` ${version}` : ''} not found under ${DEBIAN_PG_ROOT}; install the Debian package "postgresql"`,
  );
}

export interface PsqlTarget {
  readonly binDir: string;
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly password: string;
  readonly database: string;
}

/** Runs the real psql client against any PostgreSQL-protocol endpoint (server or pooler). */
export async function runPsql(target: PsqlTarget, sql: string): Promise<string> {
  const psql = requireBinary(join(target.binDir, 'psql'), 'postgresql-client');
  const args = ['-X', '-A', '-t', '-q', '-v', 'ON_ERROR_STOP=1', '-h', target.host, '-p', String(target.port), '-U', target.user, '-d', target.database, '-c', sql];
  const result = await runCommand(psql, args, { env: clientEnv({ PGPASSWORD: target.password, PGCONNECT_TIMEOUT: '10' }) });
  return result.stdout.replace(/\n$/, '');
}

/** `defaults` with the database and credentials a psql() call overrides. */
export function psqlTarget(defaults: PsqlTarget, overrides: PsqlOptions = {}): PsqlTarget {
  return {
    ...defaults,
    user: overrides.user ?? defaults.user,
    password: overrides.password ?? defaults.password,
    database: overrides.database ?? defaults.database,
  };
}

/** `postgresql://user:password@host:port/database`, each part URL-encoded. */
export function postgresUrl(target: Omit<PsqlTarget, 'binDir'>): string {
  const { host, port, user, password, database } = target;
  return `postgresql://${encodeURIComponent(user)}:${encodeURIComponent(password)}@${host}:${port}/${encodeURIComponent(database)}`;
}

/** The environment for libpq clients: ours without ambient PG* settings that would redirect them. */
function clientEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) if (!key.startsWith('PG')) env[key] = value;
  return { ...env, ...extra };
}

function quoteConf(value: string | number): string {
  return typeof value === 'number' ? String(value) : `'${value.replaceAll("'", "''")}'`;
}

function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

function quoteLiteral(value: string): string {
  return `'${value.replaceAll("'", "''")}'`;
}

export async function startPostgres(options: StartPostgresOptions = {}): Promise<StartedPostgres> {
  const binDir = findPostgresBinDir(options.version);
  const initdb = requireBinary(join(binDir, 'initdb'), 'postgresql');
  const postgresBin = requireBinary(join(binDir, 'postgres'), 'postgresql');
  const pgCtl = requireBinary(join(binDir, 'pg_ctl'), 'postgresql');
  const pgIsReady = requireBinary(join(binDir, 'pg_isready'), 'postgresql-client');

  const user = options.user ?? 'custodian';
  const password = options.password ?? randomBytes(18).toString('base64url');
  const database = options.database ?? 'custodian_test';
  const md5Users = options.md5Users ?? [];
  const host = '127.0.0.1';

  // PostgreSQL refuses to run as root.
  const identity: ProcessIdentity = await serviceIdentity('postgres');
  return startProcessService({ name: 'postgres', runAs: identity }, async (service) => {
    const { dir } = service;
    const dataDir = join(dir, 'data');
    const socketDir = dir;
    const logPath = join(dir, 'postgres.log');
    const pwFile = join(dir, 'superuser.pw');

    writeFileSync(pwFile, `${password}\n`, { mode: 0o600 });
    if (identity.switchUser) chownSync(pwFile, identity.uid, identity.gid);
    // -N: no fsync during initdb; --locale=C keeps it independent of the machine's locales.
    await runCommand(
      initdb,
      ['-D', dataDir, '-U', user, `--pwfile=${pwFile}`, '--auth=scram-sha-256', '-E', 'UTF8', '--locale=C', '-N'],
      { runAs: identity, cwd: dir, env: clientEnv({ LANG: 'C', LC_ALL: 'C' }), timeoutMs: 120_000 },
    );

    const port = await freePort();
    const settings: Record<string, string | number> = {
      listen_addresses: host,
      port,
      unix_socket_directories: socketDir,
      password_encryption: 'scram-sha-256',
      // Test data is disposable: skipping fsync and WAL page images makes start-up and
      // writes much faster, and a crash only loses a temp cluster we delete anyway.
      fsync: 'off',
      synchronous_commit: 'off',
      full_page_writes: 'off',
      shared_buffers: '32MB',
      max_connections: 100,
      logging_collector: 'off',
      log_line_prefix: '%m [%p] %q%u@%d ',
      ...options.settings,
    };
    appendFileSync(
      join(dataDir, 'postgresql.conf'),
      `\n# custodian test harness\n${Object.entries(settings)
        .map(([k, v]) => `${k} = ${quoteConf(v)}`)
        .join('\n')}\n`,
    );
    // First match wins: md5 users get the md5 method, everyone else SCRAM; no trust anywhere.
    const hba = [
      ...md5Users.flatMap((u) => [`local all ${quoteIdent(u.user)} md5`, `host all ${quoteIdent(u.user)} 127.0.0.1/32 md5`]),
      'local all all scram-sha-256',
      'host all all 127.0.0.1/32 scram-sha-256',
    ];
    writeFileSync(join(dataDir, 'pg_hba.conf'), `${hba.join('\n')}\n`);

    const started = service.spawn(postgresBin, ['-D', dataDir], {
      logPath,
      env: clientEnv({ LANG: 'C', LC_ALL: 'C' }),
      stopSignal: 'SIGINT', // fast shutdown
    });
    await service.waitUntilReady(
      async () => (await runCommand(pgIsReady, ['-q', '-h', host, '-p', String(port), '-t', '2'], { allowFailure: true, env: clientEnv({}) })).exitCode === 0,
      { timeoutMs: options.startTimeoutMs ?? 60_000, what: `PostgreSQL on ${host}:${port}`, intervalMs: 150 },
    );

    const superuser: PsqlTarget = { binDir, host, port, user, password, database: 'postgres' };
    const setup = [`CREATE DATABASE ${quoteIdent(database)}`];
    for (const u of md5Users) {
      setup.push(
        `SET password_encryption = 'md5'; CREATE ROLE ${quoteIdent(u.user)} LOGIN PASSWORD ${quoteLiteral(u.password)}`,
        `GRANT ALL ON DATABASE ${quoteIdent(database)} TO ${quoteIdent(u.user)}`,
      );
    }
    for (const statement of setup) await runPsql(superuser, statement);

    const target = { binDir, host, port, user, password, database };
    return service.publish<StartedPostgres>(
      {
        name: 'postgres',
        backend: 'process',
        host,
        port,
        user,
        password,
        database,
        binDir,
        dataDir,
        socketDir,
        pid: started.pid,
        dir,
        logPath,
        md5Users,
        connectionString(db = database, credentials = { user, password }) {
          return postgresUrl({ host, port, user: credentials.user, password: credentials.password, database: db });
        },
        psql: (sql, psqlOptions = {}) => runPsql(psqlTarget(target, psqlOptions), sql),
      },
      {
        // The graceful path; the group is killed afterwards if pg_ctl could not stop it.
        beforeStop: async () => {
          await runCommand(pgCtl, ['stop', '-D', dataDir, '-m', 'fast', '-w', '-t', '30'], { runAs: identity, allowFailure: true, env: clientEnv({}) });
        },
      },
    );
  });
}
