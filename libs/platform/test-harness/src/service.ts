// Shared machinery for the real-service harness: typed errors, a process-wide registry
// that always stops what was started, managed child processes, free ports and polling.
//
// Backends: every started service says which backend runs it. Only the local-process
// backend ('process') is implemented here: services run as child processes of the test
// worker from Debian packages. The 'container' value is reserved so that a testcontainers
// backend can be plugged in where a Docker engine exists (see containerRuntimeAvailable()).
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { chownSync, closeSync, existsSync, fstatSync, mkdtempSync, openSync, readdirSync, readSync, rmSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { createConnection, createServer, type Server } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';

export type ServiceBackend = 'process' | 'container';

/** A running service. `stop()` is idempotent and never leaves a process or temp dir behind. */
export interface StartedService {
  readonly name: string;
  readonly backend: ServiceBackend;
  stop(): Promise<void>;
}

export type HarnessErrorCode =
  /** The service ran but did not become ready in time. */
  | 'HARNESS_START_TIMEOUT'
  /** The service process exited (or could not be spawned) while starting. */
  | 'HARNESS_START_FAILED'
  | 'HARNESS_BINARY_MISSING'
  | 'HARNESS_UNAVAILABLE'
  | 'HARNESS_COMMAND_FAILED'
  | 'HARNESS_REQUEST_FAILED'
  /** Kafka: `mvn` is missing or could not resolve the Kafka artifacts. */
  | 'HARNESS_MAVEN_FAILED'
  /** Kafka: `java` (JDK 17+) is missing. */
  | 'HARNESS_JAVA_MISSING'
  /** Kafka: `kafka.tools.StorageTool format` failed. */
  | 'HARNESS_STORAGE_FORMAT_FAILED'
  /** An operation on a service that was already stopped. */
  | 'HARNESS_STOPPED';

export class HarnessError extends Error {
  override readonly name = 'HarnessError';
  constructor(
    readonly code: HarnessErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

// ---------------------------------------------------------------------------
// Registry
// ---------------------------------------------------------------------------

interface TrackedGroup {
  readonly pgid: number;
  readonly stopSignal: NodeJS.Signals;
  /** Kills the group and removes its dir should this process die without running any hook. */
  readonly watchdog: ChildProcess | undefined;
}

interface Registry {
  readonly services: Set<StartedService>;
  readonly groups: Map<number, TrackedGroup>;
  readonly dirs: Set<string>;
  hooksInstalled: boolean;
}

// One registry per process even if the module is loaded twice (e.g. test isolation),
// so that the exit hooks see every child.
const registryKey = Symbol.for('@custodian/test-harness/registry');
const globalWithRegistry = globalThis as typeof globalThis & { [registryKey]?: Registry };
const registry: Registry = (globalWithRegistry[registryKey] ??= {
  services: new Set(),
  groups: new Map(),
  dirs: new Set(),
  hooksInstalled: false,
});

/** Adds a service to the registry; it is stopped by stopAllServices() and on process exit/signals. */
export function registerService<T extends StartedService>(service: T): T {
  installExitHooks();
  registry.services.add(service);
  return service;
}

export function unregisterService(service: StartedService): void {
  registry.services.delete(service);
}

/** Stops every registered service (in reverse start order, so dependants go first). */
export async function stopAllServices(): Promise<void> {
  const services = [...registry.services].reverse();
  const failures: unknown[] = [];
  for (const service of services) {
    try {
      await service.stop();
    } catch (error) {
      failures.push(error);
    }
    registry.services.delete(service);
  }
  // Anything a failed start left behind.
  for (const group of [...registry.groups.values()]) await killGroup(group.pgid, group.stopSignal, 3_000);
  for (const dir of [...registry.dirs]) await removeServiceDir(dir);
  if (failures.length > 0) throw new AggregateError(failures, 'some services failed to stop cleanly');
}

function installExitHooks(): void {
  if (registry.hooksInstalled) return;
  registry.hooksInstalled = true;
  // 'exit' only allows synchronous work: signal the groups, wait briefly, kill, delete dirs.
  process.once('exit', cleanUpSynchronously);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const onSignal = (): void => {
      process.removeListener(signal, onSignal);
      void stopAllServices()
        .catch(() => undefined)
        .finally(() => {
          cleanUpSynchronously();
          // Re-raise so the default behaviour (or other listeners) still applies.
          process.kill(process.pid, signal);
        });
    };
    process.on(signal, onSignal);
  }
}

function cleanUpSynchronously(): void {
  const groups = [...registry.groups.values()];
  for (const group of groups) signalGroup(group.pgid, group.stopSignal);
  const deadline = Date.now() + 2_000;
  const pause = new Int32Array(new SharedArrayBuffer(4));
  // The event loop is blocked here, so exited leaders stay unreaped zombies: look at /proc.
  while (groups.some((g) => processGroupAlive(g.pgid)) && Date.now() < deadline) Atomics.wait(pause, 0, 0, 50);
  for (const group of groups) {
    if (groupAlive(group.pgid)) signalGroup(group.pgid, 'SIGKILL');
    group.watchdog?.kill('SIGKILL');
    registry.groups.delete(group.pgid);
  }
  for (const dir of registry.dirs) {
    try {
      // A process killed a moment ago may still be finishing a write: retry on ENOTEMPTY.
      rmSync(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 50 });
    } catch {
      // Best effort at exit; nothing else can be done here.
    }
  }
  registry.dirs.clear();
}

// ---------------------------------------------------------------------------
// Temp dirs, identities, binaries
// ---------------------------------------------------------------------------

/** Creates a private temp dir for a service, removed on stop or at exit. */
export function createServiceDir(name: string, owner?: ProcessIdentity): string {
  // The name may be a caller's label (e.g. Kafka's `name` option): keep only what is safe in a file name.
  const dir = mkdtempSync(join(tmpdir(), `custodian-${name.replace(/[^\w.-]/g, '-')}-`));
  registry.dirs.add(dir);
  installExitHooks();
  if (owner?.switchUser) chownSync(dir, owner.uid, owner.gid);
  return dir;
}

export async function removeServiceDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 50 });
  registry.dirs.delete(dir);
}

/** Which OS user a service process runs as. */
export interface ProcessIdentity {
  readonly user: string;
  readonly uid: number;
  readonly gid: number;
  /** True when we are root and switch to `user` for the child. */
  readonly switchUser: boolean;
}

export function isRoot(): boolean {
  return process.getuid?.() === 0;
}

/**
 * PostgreSQL and pgbouncer refuse to run as root. As root we run them as the Debian
 * service user (`postgres` by default); otherwise as ourselves.
 */
export async function serviceIdentity(unprivilegedUser = 'postgres'): Promise<ProcessIdentity> {
  if (!isRoot()) return currentIdentity();
  const uid = Number((await runCommand('id', ['-u', unprivilegedUser])).stdout.trim());
  const gid = Number((await runCommand('id', ['-g', unprivilegedUser])).stdout.trim());
  if (!Number.isInteger(uid) || !Number.isInteger(gid)) {
    throw new HarnessError('HARNESS_UNAVAILABLE', `cannot resolve uid/gid of user ${unprivilegedUser}`);
  }
  return { user: unprivilegedUser, uid, gid, switchUser: true };
}

export function currentIdentity(): ProcessIdentity {
  const me = userInfo();
  return { user: me.username, uid: me.uid, gid: me.gid, switchUser: false };
}

/** Throws HARNESS_BINARY_MISSING (naming the Debian package) unless `path` exists. */
export function requireBinary(path: string, debianPackage: string): string {
  if (!existsSync(path)) {
    throw new HarnessError('HARNESS_BINARY_MISSING', `${path} not found; install the Debian package "${debianPackage}"`);
  }
  return path;
}

// setpriv(1) switches user (when root) and sets PR_SET_PDEATHSIG after the switch, so the
// child is killed by the kernel even if this worker dies without running any hook.
const SETPRIV = '/usr/bin/setpriv';

function wrapCommand(file: string, args: readonly string[], identity: ProcessIdentity): [string, string[]] {
  requireBinary(SETPRIV, 'util-linux');
  const switchArgs = identity.switchUser ? [`--reuid=${identity.uid}`, `--regid=${identity.gid}`, '--init-groups'] : [];
  return [SETPRIV, [...switchArgs, '--pdeathsig', 'SIGKILL', '--', file, ...args]];
}

// ---------------------------------------------------------------------------
// Commands
// ---------------------------------------------------------------------------

export interface CommandResult {
  readonly stdout: string;
  readonly stderr: string;
  readonly exitCode: number;
}

export interface RunCommandOptions {
  readonly env?: NodeJS.ProcessEnv;
  readonly cwd?: string;
  readonly timeoutMs?: number;
  readonly runAs?: ProcessIdentity;
  /** Return a non-zero exit instead of throwing HARNESS_COMMAND_FAILED. */
  readonly allowFailure?: boolean;
}

/** Runs a short-lived command to completion and captures its output. */
export function runCommand(file: string, args: readonly string[], options: RunCommandOptions = {}): Promise<CommandResult> {
  const [cmd, cmdArgs] = options.runAs?.switchUser ? wrapCommand(file, args, options.runAs) : [file, [...args]];
  return new Promise((resolve, reject) => {
    execFile(
      cmd,
      cmdArgs,
      {
        env: options.env ?? process.env,
        cwd: options.cwd,
        timeout: options.timeoutMs ?? 60_000,
        killSignal: 'SIGKILL',
        maxBuffer: 64 * 1024 * 1024,
        encoding: 'utf8',
      },
      (error, stdout, stderr) => {
        if (error && typeof error.code !== 'number') {
          const missing = error.code === 'ENOENT';
          reject(
            new HarnessError(
              missing ? 'HARNESS_BINARY_MISSING' : 'HARNESS_COMMAND_FAILED',
              `${file} ${args.join(' ')} failed: ${error.message}${stderr ? `\n${stderr}` : ''}`,
              { cause: error },
            ),
          );
          return;
        }
        const exitCode = error ? Number(error.code) : 0;
        if (exitCode !== 0 && !options.allowFailure) {
          reject(
            new HarnessError('HARNESS_COMMAND_FAILED', `${file} ${args.join(' ')} exited with ${exitCode}:\n${stderr || stdout}`, {
              cause: error,
            }),
          );
          return;
        }
        resolve({ stdout, stderr, exitCode });
      },
    );
  });
}

// ---------------------------------------------------------------------------
// Managed long-running processes
// ---------------------------------------------------------------------------

export interface ManagedProcessOptions {
  readonly name: string;
  readonly logPath: string;
  readonly runAs: ProcessIdentity;
  readonly env?: NodeJS.ProcessEnv;
  readonly cwd?: string;
  /** Signal for a graceful stop of the whole group (e.g. SIGINT = PostgreSQL fast shutdown). */
  readonly stopSignal?: NodeJS.Signals;
  /** The service's temp dir: the watchdog removes it too if this process dies without cleaning up. */
  readonly ownedDir?: string;
}

/** How the leader of a managed process ended. */
export interface ProcessExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export interface ManagedProcess {
  readonly name: string;
  readonly pid: number;
  readonly logPath: string;
  /** Exit code or signal once the leader has exited, else undefined. */
  exitStatus(): string | undefined;
  /** Resolves once the leader has exited (never rejects). */
  readonly exited: Promise<ProcessExit>;
  /**
   * `signal` (default: the stopSignal option) to the group, SIGKILL to whatever is left
   * after `graceMs`; resolves once the group is gone. Idempotent: later calls join the first.
   */
  stop(graceMs?: number, signal?: NodeJS.Signals): Promise<void>;
  /** Last bytes of the captured stdout/stderr. */
  logTail(bytes?: number): string;
}

/**
 * Spawns a long-running child in its own process group (detached), stdout/stderr going
 * straight to `logPath` so a busy test worker can never block it on a full pipe.
 *
 * Every child is covered even if this worker is SIGKILLed: setpriv gives the leader a
 * parent-death signal, and a watchdog kills the rest of the group and removes `ownedDir`.
 */
export function spawnManaged(file: string, args: readonly string[], options: ManagedProcessOptions): ManagedProcess {
  const [cmd, cmdArgs] = wrapCommand(file, args, options.runAs);
  const logFd = openSync(options.logPath, 'a', 0o644);
  if (options.runAs.switchUser) chownSync(options.logPath, options.runAs.uid, options.runAs.gid);
  let child: ChildProcess;
  try {
    child = spawn(cmd, cmdArgs, {
      detached: true,
      stdio: ['ignore', logFd, logFd],
      env: options.env ?? process.env,
      cwd: options.cwd,
    });
  } finally {
    closeSync(logFd);
  }
  const pid = child.pid;
  if (pid === undefined) {
    child.once('error', () => undefined);
    throw new HarnessError('HARNESS_START_FAILED', `${options.name}: could not spawn ${file}`);
  }
  const stopSignal = options.stopSignal ?? 'SIGTERM';
  registry.groups.set(pid, { pgid: pid, stopSignal, watchdog: spawnWatchdog(pid, options.ownedDir) });
  installExitHooks();
  // The worker must be able to exit while services run; the registry keeps track of them.
  child.unref();

  let status: string | undefined;
  const exited = new Promise<ProcessExit>((resolve) => {
    child.once('exit', (code, signal) => {
      status = signal ? `signal ${signal}` : `exit code ${code}`;
      resolve({ code, signal });
    });
    child.once('error', (error) => {
      status = `spawn error ${error.message}`;
      resolve({ code: null, signal: null });
    });
  });

  let stopping: Promise<void> | undefined;
  return {
    name: options.name,
    pid,
    logPath: options.logPath,
    exitStatus: () => status,
    exited,
    stop(graceMs = 10_000, signal = stopSignal) {
      stopping ??= killGroup(pid, signal, graceMs, exited);
      return stopping;
    },
    logTail: (bytes = 4_000) => readTail(options.logPath, bytes),
  };
}

// The parent-death signal reaches only a group's leader (PostgreSQL's backends notice their
// postmaster is gone, but sshd's sessions or a JVM's helpers would not) and no one removes the
// temp dir. So each group gets a watchdog: a shell blocked reading a pipe that only this process
// holds. However this process ends, the kernel closes the pipe; on EOF the watchdog kills the
// group, waits until none of it runs (zombies count as gone: pid 1 may be slow to reap them)
// and removes the dir. A normal stop kills the watchdog first.
const WATCHDOG_SCRIPT = `
read -r _
kill -KILL -"$1" 2>/dev/null
group_running() {
  cat /proc/[0-9]*/stat 2>/dev/null | awk -v pgid="$1" '{ sub(/.*\\) /, ""); if ($1 != "Z" && $3 == pgid) { found = 1; exit } } END { exit !found }'
}
n=0
while group_running "$1" && [ "$n" -lt 100 ]; do sleep 0.1; n=$((n + 1)); done
[ -z "$2" ] || rm -rf -- "$2"
`;

function spawnWatchdog(pgid: number, ownedDir: string | undefined): ChildProcess | undefined {
  try {
    const watchdog = spawn('/bin/sh', ['-c', WATCHDOG_SCRIPT, 'custodian-harness-watchdog', String(pgid), ownedDir ?? ''], {
      // Its own group, so that a signal to the worker's group does not take it down as well.
      detached: true,
      stdio: ['pipe', 'ignore', 'ignore'],
    });
    watchdog.on('error', () => undefined);
    watchdog.stdin?.on('error', () => undefined);
    watchdog.unref();
    return watchdog;
  } catch {
    // Without /bin/sh the parent-death signal and the exit hooks still apply.
    return undefined;
  }
}

function signalGroup(pgid: number, signal: NodeJS.Signals | 0): boolean {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch {
    return false;
  }
}

function groupAlive(pgid: number): boolean {
  return signalGroup(pgid, 0);
}

interface ProcStat {
  readonly state: string;
  readonly pgid: number;
}

function readProcStat(pid: number | string): ProcStat | undefined {
  try {
    const stat = readFileHead(`/proc/${pid}/stat`);
    // After "pid (comm) " come: state ppid pgrp …; comm may contain spaces, so split after ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { state: fields[0] ?? '', pgid: Number(fields[2]) };
  } catch {
    return undefined;
  }
}

function running(stat: ProcStat | undefined): boolean {
  return stat !== undefined && stat.state !== 'Z' && stat.state !== 'X';
}

/** Whether a process with this pid still runs (a zombie counts as gone). */
export function processAlive(pid: number): boolean {
  return running(readProcStat(pid));
}

/** Whether any non-zombie process is still in process group `pgid` (scans /proc). */
export function processGroupAlive(pgid: number): boolean {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = readProcStat(entry);
    if (stat?.pgid === pgid && running(stat)) return true;
  }
  return false;
}

async function killGroup(pgid: number, signal: NodeJS.Signals, graceMs: number, leaderExited?: Promise<unknown>): Promise<void> {
  signalGroup(pgid, signal);
  const deadline = Date.now() + graceMs;
  while (groupAlive(pgid) && Date.now() < deadline) await sleep(50);
  // Kill stragglers (or everything, if the graceful signal was ignored).
  if (groupAlive(pgid)) signalGroup(pgid, 'SIGKILL');
  if (leaderExited) await Promise.race([leaderExited, sleep(5_000)]);
  while (groupAlive(pgid) && Date.now() < deadline + 5_000) await sleep(20);
  registry.groups.get(pgid)?.watchdog?.kill('SIGKILL');
  registry.groups.delete(pgid);
}

function readFileHead(path: string): string {
  const fd = openSync(path, 'r');
  try {
    const buffer = Buffer.alloc(1024);
    const n = readSync(fd, buffer, 0, buffer.length, 0);
    return buffer.subarray(0, n).toString('utf8');
  } finally {
    closeSync(fd);
  }
}

export function readTail(path: string, bytes = 4_000): string {
  try {
    const fd = openSync(path, 'r');
    try {
      const size = fstatSync(fd).size;
      const start = Math.max(0, size - bytes);
      const buffer = Buffer.alloc(size - start);
      readSync(fd, buffer, 0, buffer.length, start);
      return buffer.toString('utf8');
    } finally {
      closeSync(fd);
    }
  } catch {
    return '';
  }
}

/** Error for a service that failed to come up, with the tail of its log. */
export function startFailure(code: HarnessErrorCode, what: string, proc: ManagedProcess | undefined, cause?: unknown): HarnessError {
  const status = proc?.exitStatus();
  const tail = proc ? proc.logTail() : '';
  const message = [
    `${what}${status ? ` (process ended: ${status})` : ''}`,
    cause instanceof Error ? cause.message : undefined,
    tail ? `--- last output of ${proc?.name ?? 'the service'} (${proc?.logPath ?? ''}) ---\n${tail}` : undefined,
  ]
    .filter((part): part is string => part !== undefined)
    .join('\n');
  return new HarnessError(code, message, { cause });
}

// ---------------------------------------------------------------------------
// Ports and polling
// ---------------------------------------------------------------------------

/** A currently free TCP port on 127.0.0.1 (the OS picks it). */
export async function freePort(): Promise<number> {
  const [port] = await freePorts(1);
  if (port === undefined) throw new HarnessError('HARNESS_UNAVAILABLE', 'could not allocate a loopback port');
  return port;
}

/** `count` distinct free ports on 127.0.0.1: all are held open until every one is chosen, so none repeats. */
export async function freePorts(count: number): Promise<number[]> {
  const servers: Server[] = [];
  try {
    const ports: number[] = [];
    for (let i = 0; i < count; i += 1) {
      const server = createServer();
      server.unref();
      servers.push(server);
      ports.push(
        await new Promise<number>((resolve, reject) => {
          server.once('error', reject);
          server.listen({ host: '127.0.0.1', port: 0, exclusive: true }, () => {
            const address = server.address();
            if (address === null || typeof address === 'string') {
              reject(new HarnessError('HARNESS_UNAVAILABLE', 'could not allocate a loopback port'));
            } else {
              resolve(address.port);
            }
          });
        }),
      );
    }
    return ports;
  } finally {
    await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  }
}

/** True once a TCP connection to host:port succeeds. */
export function tcpAccepts(port: number, host = '127.0.0.1', timeoutMs = 1_000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host, port });
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

export interface WaitForOptions {
  readonly timeoutMs: number;
  /** Describes what is awaited, for the timeout error. */
  readonly what: string;
  readonly intervalMs?: number;
}

/**
 * Polls `predicate` until it returns true. A predicate that throws aborts the wait with
 * that error (e.g. because the child died). Times out with HARNESS_START_TIMEOUT.
 */
export async function waitFor(predicate: () => boolean | Promise<boolean>, options: WaitForOptions): Promise<void> {
  const deadline = Date.now() + options.timeoutMs;
  const interval = options.intervalMs ?? 100;
  for (;;) {
    if (await predicate()) return;
    if (Date.now() >= deadline) {
      throw new HarnessError('HARNESS_START_TIMEOUT', `timed out after ${options.timeoutMs} ms waiting for ${options.what}`);
    }
    await sleep(interval);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// ---------------------------------------------------------------------------
// Container runtime detection (for a future testcontainers backend)
// ---------------------------------------------------------------------------

/** True only if a Docker engine answers GET /_ping (DOCKER_HOST or /var/run/docker.sock). */
export function containerRuntimeAvailable(timeoutMs = 1_000): Promise<boolean> {
  const dockerHost = process.env['DOCKER_HOST'];
  let target: { socketPath: string } | { host: string; port: number };
  if (dockerHost?.startsWith('tcp://') || dockerHost?.startsWith('http://')) {
    const url = new URL(dockerHost.replace(/^tcp:/, 'http:'));
    target = { host: url.hostname, port: Number(url.port || 2375) };
  } else if (dockerHost?.startsWith('unix://')) {
    target = { socketPath: dockerHost.slice('unix://'.length) };
  } else {
    target = { socketPath: '/var/run/docker.sock' };
  }
  if ('socketPath' in target && !existsSync(target.socketPath)) return Promise.resolve(false);
  return new Promise((resolve) => {
    const req = httpRequest({ ...target, path: '/_ping', method: 'GET', timeout: timeoutMs }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.once('timeout', () => {
      req.destroy();
      resolve(false);
    });
    req.once('error', () => resolve(false));
    req.end();
  });
}
