// End to end: the built `custodian` command and a standalone service process, as real child
// processes, probed over HTTP and stopped with SIGTERM.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '../../..');
const custodianBin = join(repoRoot, 'node_modules/.bin/custodian');
const children = new Set<ChildProcess>();
const dirs: string[] = [];

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'custodian-e2e-'));
  dirs.push(dir);
  return dir;
}

beforeAll(() => {
  // Builds the CLI and everything it references (tsc -b is incremental; near no-op when built).
  const tsc = join(repoRoot, 'node_modules/typescript/bin/tsc');
  const build = spawnSync(process.execPath, [tsc, '-b', 'services/cli/tsconfig.lib.json'], { cwd: repoRoot, encoding: 'utf8' });
  if (build.status !== 0) throw new Error(`build failed:\n${build.stdout}${build.stderr}`);
  if (!existsSync(custodianBin)) throw new Error(`${custodianBin} is missing: run npm install at the repository root (it links the bin)`);
});

afterAll(() => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

interface Running {
  readonly child: ChildProcess;
  stdout(): string;
  stderr(): string;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function run(command: string, args: readonly string[], cwd: string, env: Record<string, string>): Running {
  const child = spawn(command, args, { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let out = '';
  let err = '';
  child.stdout?.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (err += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  return { child, stdout: () => out, stderr: () => err, exited };
}

async function poll<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, running: Running, attempts = 300): Promise<T> {
  for (let i = 0; i < attempts; i++) {
    if (running.child.exitCode !== null) throw new Error(`process exited (${running.child.exitCode}) while waiting for ${what}:\n${running.stderr()}`);
    const value = await probe();
    if (value !== undefined) return value;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}:\n${running.stderr()}`);
}

async function readyStatus(url: string): Promise<number | undefined> {
  try {
    return (await fetch(`${url}/health/ready`)).status;
  } catch {
    return undefined;
  }
}

const ephemeralPorts = {
  CUSTODIAN_SERVICES__GATEWAY__HTTP__PORT: '0',
  CUSTODIAN_SERVICES__INGEST__HTTP__PORT: '0',
  CUSTODIAN_SERVICES__PROJECTOR__HTTP__PORT: '0',
  CUSTODIAN_SERVICES__API__HTTP__PORT: '0',
};

describe('custodian (built, spawned through node_modules/.bin)', () => {
  it('--help and version exit 0', () => {
    const help = spawnSync(custodianBin, ['--help'], { encoding: 'utf8' });
    expect(help.status).toBe(0);
    expect(help.stdout).toContain('custodian <command>');
    const version = spawnSync(custodianBin, ['version'], { encoding: 'utf8' });
    expect(version.stdout).toMatch(/^custodian \d+\.\d+\.\d+/);
  });

  it('start: all four services become ready in one process, SIGTERM stops it cleanly', async () => {
    const cwd = tempDir();
    const custodian = run(custodianBin, ['start'], cwd, ephemeralPorts);
    const urls = await poll(
      'the listening summary',
      () => {
        const found = [...custodian.stderr().matchAll(/^\s+(gateway|ingest|projector|api)\s+(http:\/\/\S+)/gm)].map((m) => [m[1]!, m[2]!] as const);
        return found.length === 4 ? new Map(found) : undefined;
      },
      custodian,
    );
    for (const [name, url] of urls) {
      expect(await poll(`${name} ready`, async () => ((await readyStatus(url)) === 200 ? 200 : undefined), custodian)).toBe(200);
    }
    expect(existsSync(join(cwd, '.custodian', 'events.sqlite'))).toBe(true);
    // No identity issuer in the default config: the API is up but refuses every request, and says so.
    const version = await fetch(`${urls.get('api')}/v1/version`);
    expect(version.status).toBe(401);
    expect(((await version.json()) as { error: { code: string } }).error.code).toBe('IDENTITY_NOT_CONFIGURED');
    expect(custodian.stdout()).toContain('the API refuses every /v1 request');

    custodian.child.kill('SIGTERM');
    expect(await custodian.exited).toEqual({ code: 0, signal: null });
    expect(custodian.stderr()).toContain('custodian: stopped');
    // Every stdout line is a JSON log record from one of the services.
    const lines = custodian.stdout().trim().split('\n');
    const services = new Set(lines.map((l) => (JSON.parse(l) as { service: string }).service));
    expect([...services].sort()).toEqual(['api', 'gateway', 'ingest', 'projector']);
  });

  it('start with an unknown override exits 2 naming the variable', async () => {
    const cwd = tempDir();
    const custodian = run(custodianBin, ['start'], cwd, { CUSTODIAN_SERVICES__API__HTTP__PORTT: '1' });
    expect((await custodian.exited).code).toBe(2);
    expect(custodian.stderr()).toContain('CUSTODIAN_SERVICES__API__HTTP__PORTT');
  });
});

describe('a standalone service process (distributed deployment entry point)', () => {
  it('services/api/dist/main.js boots from env config, is ready, and exits 0 on SIGTERM', async () => {
    const cwd = tempDir();
    const api = run(process.execPath, [join(repoRoot, 'services/api/dist/main.js')], cwd, { CUSTODIAN_DATA_DIR: join(cwd, 'data'), ...ephemeralPorts });
    const url = await poll('the listening log line', () => /"msg":"api listening on (http:\/\/[^"]+)"/.exec(api.stdout())?.[1], api);
    expect(await poll('api ready', async () => ((await readyStatus(url)) === 200 ? 200 : undefined), api)).toBe(200);
    api.child.kill('SIGTERM');
    expect(await api.exited).toEqual({ code: 0, signal: null });
  });
});
