import { spawn } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { HarnessError, containerRuntimeAvailable, freePort, processAlive, processGroupAlive, waitFor } from './service.js';

const here = dirname(fileURLToPath(import.meta.url));

describe('freePort', () => {
  it('returns a loopback port that can be bound', async () => {
    const port = await freePort();
    expect(port).toBeGreaterThan(0);
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    expect(server.address()).toMatchObject({ address: '127.0.0.1', port });
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
});

describe('waitFor', () => {
  it('resolves once the predicate holds', async () => {
    let calls = 0;
    await waitFor(() => ++calls >= 3, { timeoutMs: 5_000, what: 'three calls', intervalMs: 1 });
    expect(calls).toBe(3);
  });

  it('fails with HARNESS_START_TIMEOUT naming what it waited for', async () => {
    const error = await waitFor(() => false, { timeoutMs: 50, what: 'the impossible', intervalMs: 10 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(HarnessError);
    expect(error).toMatchObject({ code: 'HARNESS_START_TIMEOUT' });
    expect((error as Error).message).toContain('the impossible');
  });

  it('aborts with the error a predicate throws', async () => {
    const failure = new HarnessError('HARNESS_START_FAILED', 'child died');
    await expect(waitFor(() => Promise.reject(failure), { timeoutMs: 5_000, what: 'x' })).rejects.toBe(failure);
  });
});

describe('containerRuntimeAvailable', () => {
  const dockerConfigured = existsSync('/var/run/docker.sock') || process.env['DOCKER_HOST'] !== undefined;
  if (dockerConfigured) console.warn('skipping the "no Docker engine" check: a Docker socket or DOCKER_HOST is configured here');
  it.skipIf(dockerConfigured)('is false when no Docker engine is reachable', async () => {
    expect(await containerRuntimeAvailable()).toBe(false);
  });
});

// A separate Node process starts services through the harness and then ends in various ways;
// afterwards none of its service processes may survive.
interface ChildReport {
  readonly pids: number[];
  readonly dirs: string[];
}

type ChildService = 'postgres' | 'pgbouncer' | 'sshd' | 'kafka';

const childScript = (services: readonly ChildService[], ending: string): string => `
import { registerHooks } from 'node:module';
// Sources import './x.js' for './x.ts' (NodeNext); map that for this plain-Node child.
registerHooks({
  resolve(specifier, context, next) {
    try { return next(specifier, context); }
    catch (error) { if (specifier.startsWith('.') && specifier.endsWith('.js')) return next(specifier.slice(0, -3) + '.ts', context); throw error; }
  },
});
const wanted = new Set(${JSON.stringify(services)});
const started = [];
const { startPostgres } = await import(${JSON.stringify(join(here, 'postgres.ts'))});
const pg = await startPostgres();
started.push(pg);
if (wanted.has('pgbouncer')) {
  const { startPgbouncer } = await import(${JSON.stringify(join(here, 'pgbouncer.ts'))});
  started.push(await startPgbouncer({ postgres: pg }));
}
if (wanted.has('sshd')) {
  const { startSshd } = await import(${JSON.stringify(join(here, 'sshd.ts'))});
  started.push(await startSshd());
}
if (wanted.has('kafka')) {
  const { startKafka } = await import(${JSON.stringify(join(here, 'kafka', 'index.ts'))});
  started.push(await startKafka({ heapMb: 256 }));
}
console.log(JSON.stringify({ pids: started.map((s) => s.pid), dirs: started.map((s) => s.dir) }));
${ending}
`;

async function runChild(
  services: readonly ChildService[],
  ending: string,
  afterReport?: (child: ReturnType<typeof spawn>) => void,
): Promise<{ report: ChildReport; exit: string }> {
  const child = spawn(process.execPath, ['--experimental-transform-types', '--no-warnings', '--input-type=module', '-e', childScript(services, ending)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const report = await new Promise<ChildReport>((resolve, reject) => {
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      const line = stdout.split('\n').find((l) => l.startsWith('{'));
      if (line) resolve(JSON.parse(line) as ChildReport);
    });
    child.once('exit', () => reject(new Error(`child ended before reporting: ${stderr}`)));
  });
  expect(report.pids).toHaveLength(services.length);
  afterReport?.(child);
  const exit = await new Promise<string>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve(`${child.exitCode ?? child.signalCode}`);
    else child.once('exit', (code, signal) => resolve(`${code ?? signal}`));
  });
  return { report, exit };
}

async function expectGone(report: ChildReport): Promise<void> {
  // The kernel delivers the parent-death signal and the watchdogs see their pipe close
  // asynchronously; give them a moment.
  await waitFor(() => report.pids.every((pid) => !processGroupAlive(pid)) && report.dirs.every((dir) => !existsSync(dir)), {
    timeoutMs: 15_000,
    what: 'service process groups to end and their temp dirs to go',
  });
  for (const pid of report.pids) {
    expect(processAlive(pid)).toBe(false);
    // Also the rest of its group (sshd sessions, JVM helpers). PostgreSQL's workers setsid() into
    // groups of their own and exit when they see their postmaster gone.
    expect(processGroupAlive(pid)).toBe(false);
  }
  for (const dir of report.dirs) expect(existsSync(dir)).toBe(false);
}

describe('no orphans when the test process ends', () => {
  it('stops services and removes temp dirs on process.exit()', async () => {
    const { report, exit } = await runChild(['postgres', 'sshd'], 'process.exit(0);');
    expect(exit).toBe('0');
    await expectGone(report);
  });

  it('stops services and removes temp dirs on SIGTERM, then dies of SIGTERM', async () => {
    const { report, exit } = await runChild(['postgres', 'sshd'], 'setInterval(() => {}, 1000);', (child) => child.kill('SIGTERM'));
    expect(exit).toBe('SIGTERM');
    await expectGone(report);
  });

  it('kills every service group and removes its temp dir even when the test process is SIGKILLed (watchdog)', async () => {
    const services: ChildService[] = ['postgres', 'pgbouncer', 'sshd', 'kafka'];
    const { report, exit } = await runChild(services, 'setInterval(() => {}, 1000);', (child) => child.kill('SIGKILL'));
    try {
      expect(exit).toBe('SIGKILL');
      await expectGone(report);
    } finally {
      // Should the guarantee be broken, leave nothing behind for the next run.
      for (const pid of report.pids) {
        try {
          process.kill(-pid, 'SIGKILL');
        } catch {
          // Gone, as it should be.
        }
      }
      for (const dir of report.dirs) rmSync(dir, { recursive: true, force: true });
    }
  }, 180_000);
});
