// The broker's JVM as a child in its own process group, with stdout/stderr going straight
// to a log file (a busy test worker can never block it on a full pipe), tracked so that
// it is killed and its temp dir removed when the test worker exits — even if the worker
// is SIGKILLed (a small shell watchdog per broker takes care of that case).
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, rmSync } from 'node:fs';

export interface BrokerExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export interface BrokerProcess {
  readonly pid: number;
  /** Resolves once the JVM has exited (never rejects). */
  readonly exited: Promise<BrokerExit>;
  exitStatus(): BrokerExit | undefined;
  /** Sends `signal` to the whole process group. */
  signalGroup(signal: NodeJS.Signals): void;
}

interface Tracked {
  readonly pgid: number;
  readonly watchdog: ChildProcess | undefined;
}

interface ExitRegistry {
  readonly groups: Map<number, Tracked>;
  readonly dirs: Set<string>;
  hooksInstalled: boolean;
}

// One registry per process even if this module is loaded twice (test isolation).
const registryKey = Symbol.for('@custodian/test-harness/kafka-processes');
const globalWithRegistry = globalThis as typeof globalThis & { [registryKey]?: ExitRegistry };
const registry: ExitRegistry = (globalWithRegistry[registryKey] ??= { groups: new Map(), dirs: new Set(), hooksInstalled: false });

export interface SpawnBrokerOptions {
  readonly logPath: string;
  /** Removed by the watchdog if this process dies without cleaning up. */
  readonly ownedDir: string;
  readonly env?: NodeJS.ProcessEnv;
  readonly cwd?: string;
}

export function spawnBrokerProcess(file: string, args: readonly string[], options: SpawnBrokerOptions): Promise<BrokerProcess> {
  installExitHooks();
  const logFd = openSync(options.logPath, 'a', 0o644);
  let child: ChildProcess;
  try {
    child = spawn(file, args, { detached: true, stdio: ['ignore', logFd, logFd], env: options.env ?? process.env, cwd: options.cwd });
  } finally {
    closeSync(logFd);
  }
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('spawn', () => {
      child.off('error', reject);
      const pid = child.pid;
      if (pid === undefined) {
        reject(new Error(`${file}: spawned without a pid`));
        return;
      }
      // The worker may exit while a broker runs; the exit hooks and the watchdog stop it.
      child.unref();
      const watchdog = spawnWatchdog(pid, options.ownedDir);
      registry.groups.set(pid, { pgid: pid, watchdog });
      let status: BrokerExit | undefined;
      const exited = new Promise<BrokerExit>((resolveExit) => {
        child.once('exit', (code, signal) => {
          status = { code, signal };
          registry.groups.delete(pid);
          watchdog?.kill('SIGKILL');
          resolveExit(status);
        });
      });
      resolve({
        pid,
        exited,
        exitStatus: () => status,
        signalGroup(signal) {
          if (status !== undefined) return;
          try {
            process.kill(-pid, signal);
          } catch {
            // Already gone.
          }
        },
      });
    });
  });
}

/** Marks a directory for removal at process exit; `untrackDir` once removed normally. */
export function trackDir(dir: string): void {
  installExitHooks();
  registry.dirs.add(dir);
}

export function untrackDir(dir: string): void {
  registry.dirs.delete(dir);
}

/**
 * If this Node process disappears without running its exit hooks (SIGKILL, OOM), the
 * watchdog kills the broker's process group and removes its directory.
 */
function spawnWatchdog(pgid: number, dir: string): ChildProcess | undefined {
  const script = 'while kill -0 "$1" 2>/dev/null; do sleep 1; done; kill -KILL -"$2" 2>/dev/null; sleep 1; rm -rf "$3"';
  try {
    const watchdog = spawn('/bin/sh', ['-c', script, 'custodian-kafka-watchdog', String(process.pid), String(pgid), dir], {
      detached: true,
      stdio: 'ignore',
    });
    watchdog.on('error', () => undefined);
    watchdog.unref();
    return watchdog;
  } catch {
    return undefined;
  }
}

function killEverythingNow(): void {
  for (const { pgid, watchdog } of registry.groups.values()) {
    try {
      process.kill(-pgid, 'SIGKILL');
    } catch {
      // Already gone.
    }
    watchdog?.kill('SIGKILL');
  }
  registry.groups.clear();
  for (const dir of registry.dirs) {
    // The JVM may still be writing for a moment after SIGKILL; retry on ENOTEMPTY.
    rmSync(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 50 });
  }
  registry.dirs.clear();
}

function installExitHooks(): void {
  if (registry.hooksInstalled) return;
  registry.hooksInstalled = true;
  process.once('exit', killEverythingNow);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      killEverythingNow();
      // Keep the default behaviour (terminate) unless someone else handles the signal.
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    });
  }
}
