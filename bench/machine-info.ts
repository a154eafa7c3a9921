// What the figures were measured on: enough to tell whether two result files are comparable.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus, loadavg, release, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { KAFKA_DEFAULT_VERSION, findPostgresBinDir } from '@custodian/test-harness';
import BetterSqlite3 from 'better-sqlite3';

const run = promisify(execFile);
const REPO_ROOT = new URL('../', import.meta.url).pathname;

export interface MachineInfo {
  readonly cpus: number;
  readonly cpuModel: string;
  readonly memoryBytes: number;
  readonly os: string;
  readonly node: string;
  /** 1/5/15-minute load averages when the run started: other work on the box skews absolute figures. */
  readonly loadAverageAtStart: readonly number[];
  /** Where benchmarks put their files (SQLite databases, pgbench logs) and its file system: fsync cost depends on it. */
  readonly tmpDir: { readonly path: string; readonly filesystem: string | null };
  readonly git: { readonly commit: string | null; readonly dirty: boolean | null };
  readonly versions: {
    readonly postgresql: string | null;
    readonly pgbench: string | null;
    readonly pgbouncer: string | null;
    /** The broker version the harness starts (org.apache.kafka:kafka_2.13). */
    readonly kafka: string;
    readonly sqlite: string;
    readonly betterSqlite3: string | null;
    readonly libpgQuery: string | null;
  };
}

async function firstLine(file: string, args: readonly string[]): Promise<string | null> {
  try {
    const { stdout } = await run(file, [...args], { timeout: 10_000 });
    return stdout.split('\n')[0]?.trim() || null;
  } catch {
    return null;
  }
}

function packageVersion(name: string): string | null {
  try {
    const manifest = JSON.parse(readFileSync(join(REPO_ROOT, 'node_modules', name, 'package.json'), 'utf8')) as { version?: unknown };
    return typeof manifest.version === 'string' ? manifest.version : null;
  } catch {
    return null;
  }
}

function osName(): string {
  try {
    const pretty = /^PRETTY_NAME="?([^"\n]*)"?$/m.exec(readFileSync('/etc/os-release', 'utf8'))?.[1];
    return `${pretty ?? process.platform}, kernel ${release()}`;
  } catch {
    return `${process.platform} ${release()}`;
  }
}

function sqliteVersion(): string {
  const db = new BetterSqlite3(':memory:');
  try {
    return String(db.prepare<[], { v: string }>('SELECT sqlite_version() AS v').get()?.v);
  } finally {
    db.close();
  }
}

export async function collectMachineInfo(): Promise<MachineInfo> {
  let binDir: string | null = null;
  try {
    binDir = findPostgresBinDir();
  } catch {
    binDir = null;
  }
  const [postgresql, pgbench, pgbouncer, filesystem, commit, status] = await Promise.all([
    binDir ? firstLine(join(binDir, 'postgres'), ['--version']) : Promise.resolve(null),
    binDir ? firstLine(join(binDir, 'pgbench'), ['--version']) : Promise.resolve(null),
    firstLine('/usr/sbin/pgbouncer', ['--version']),
    firstLine('findmnt', ['-n', '-o', 'FSTYPE,SOURCE', '-T', tmpdir()]),
    firstLine('git', ['-C', REPO_ROOT, 'rev-parse', 'HEAD']),
    run('git', ['-C', REPO_ROOT, 'status', '--porcelain'], { timeout: 10_000 }).then(
      ({ stdout }) => stdout.trim() !== '',
      () => null,
    ),
  ]);
  const cpuList = cpus();
  return {
    cpus: cpuList.length,
    cpuModel: cpuList[0]?.model ?? 'unknown',
    memoryBytes: totalmem(),
    os: osName(),
    node: process.version,
    loadAverageAtStart: loadavg().map((l) => Math.round(l * 100) / 100),
    tmpDir: { path: tmpdir(), filesystem: filesystem?.replace(/\s+/g, ' ') ?? null },
    git: { commit, dirty: status },
    versions: {
      postgresql,
      pgbench,
      pgbouncer,
      kafka: KAFKA_DEFAULT_VERSION,
      sqlite: sqliteVersion(),
      betterSqlite3: packageVersion('better-sqlite3'),
      libpgQuery: packageVersion('libpg-query'),
    },
  };
}
