// The life of a service that runs as a managed process in its own temp dir, shared by
// PostgreSQL, PgBouncer, sshd and Kafka: create the dir, spawn, wait until ready, publish
// with an idempotent stop(), and tear everything down if any step of the start fails.
import {
  HarnessError,
  createServiceDir,
  currentIdentity,
  registerService,
  removeServiceDir,
  spawnManaged,
  startFailure,
  unregisterService,
  waitFor,
  type ManagedProcess,
  type ManagedProcessOptions,
  type ProcessIdentity,
  type StartedService,
} from './service.js';

export interface ProcessServiceOptions {
  /** Service name: names the temp dir (`custodian-<name>-…`) and the process in errors. */
  readonly name: string;
  /** Who the process runs as and owns the temp dir. Default: the current user. */
  readonly runAs?: ProcessIdentity;
  /** How long stop() lets the process shut down on its stop signal before SIGKILL. Default 5 s. */
  readonly stopGraceMs?: number;
}

export type ProcessServiceSpawnOptions = Omit<ManagedProcessOptions, 'name' | 'runAs' | 'ownedDir'>;

export interface ReadinessOptions {
  readonly timeoutMs: number;
  /** What is awaited, e.g. `PostgreSQL on 127.0.0.1:5432`; names the service in errors. */
  readonly what: string;
  readonly intervalMs?: number;
}

export interface PublishOptions {
  /** Runs first in stop() if the process still runs, e.g. `pg_ctl stop`; the group is killed afterwards regardless. */
  readonly beforeStop?: () => Promise<void>;
}

/** What a start function gets from startProcessService(). */
export interface ProcessServiceContext {
  readonly name: string;
  /** The service's temp dir; removed by stop(), by a failed start and by the watchdog. */
  readonly dir: string;
  readonly runAs: ProcessIdentity;
  /** The process spawned last (it may have exited since). */
  readonly process: ManagedProcess | undefined;
  /** True once stop() was called. */
  readonly stopped: boolean;
  /** Spawns the service's process (cwd: the temp dir); the previous one must have been stopped. */
  spawn(file: string, args: readonly string[], options: ProcessServiceSpawnOptions): ManagedProcess;
  /**
   * Polls `probe` until it returns true. If the process exits or the time runs out, the
   * process is killed and a HarnessError (START_FAILED / START_TIMEOUT) with its log tail thrown.
   */
  waitUntilReady(probe: () => boolean | Promise<boolean>, options: ReadinessOptions): Promise<void>;
  /** Adds an idempotent stop() to `service` and registers it for stopAllServices() and exit. */
  publish<T extends StartedService>(service: Omit<T, 'stop'>, options?: PublishOptions): T;
}

/**
 * Creates the service's temp dir and runs `start` with a context to spawn, await and publish
 * its process. If `start` throws, the process group is killed and the dir removed.
 */
export async function startProcessService<T>(
  options: ProcessServiceOptions,
  start: (context: ProcessServiceContext) => Promise<T>,
): Promise<T> {
  const { name } = options;
  const runAs = options.runAs ?? currentIdentity();
  const stopGraceMs = options.stopGraceMs ?? 5_000;
  const dir = createServiceDir(name, runAs);
  let current: ManagedProcess | undefined;
  let stopped = false;

  let tornDown: Promise<void> | undefined;
  const tearDown = (): Promise<void> =>
    (tornDown ??= (async () => {
      try {
        await current?.stop(stopGraceMs);
      } finally {
        await removeServiceDir(dir);
      }
    })());

  const context: ProcessServiceContext = {
    name,
    dir,
    runAs,
    get process() {
      return current;
    },
    get stopped() {
      return stopped;
    },
    spawn(file, args, spawnOptions) {
      if (stopped) throw new HarnessError('HARNESS_STOPPED', `${name} was stopped`);
      if (current !== undefined && current.exitStatus() === undefined) {
        throw new HarnessError('HARNESS_START_FAILED', `${name}: process ${current.pid} still runs; stop it before spawning another`);
      }
      current = spawnManaged(file, args, { cwd: dir, ...spawnOptions, name, runAs, ownedDir: dir });
      return current;
    },
    async waitUntilReady(probe, readiness) {
      const proc = current;
      if (proc === undefined) throw new HarnessError('HARNESS_START_FAILED', `${name}: nothing was spawned`);
      try {
        await waitFor(
          async () => {
            if (proc.exitStatus() !== undefined) throw new HarnessError('HARNESS_START_FAILED', `${name} exited during start-up`);
            return probe();
          },
          readiness,
        );
      } catch (error) {
        const failure = startFailure(error instanceof HarnessError ? error.code : 'HARNESS_START_FAILED', `${readiness.what} did not start`, proc, error);
        // Leave nothing half-started behind, so that stop() or another spawn can follow.
        await proc.stop(0, 'SIGKILL');
        throw failure;
      }
    },
    publish<S extends StartedService>(service: Omit<S, 'stop'>, publishOptions: PublishOptions = {}): S {
      let stopping: Promise<void> | undefined;
      const stop = (): Promise<void> =>
        (stopping ??= (async () => {
          stopped = true;
          try {
            if (current !== undefined && current.exitStatus() === undefined) await publishOptions.beforeStop?.();
          } finally {
            await tearDown();
            unregisterService(published);
          }
        })());
      // defineProperty rather than a spread, so that getters on `service` (e.g. Kafka's pid) stay live.
      const published = Object.defineProperty(service, 'stop', { value: stop, enumerable: true }) as S;
      return registerService(published);
    },
  };

  try {
    return await start(context);
  } catch (error) {
    await tearDown();
    throw error;
  }
}
