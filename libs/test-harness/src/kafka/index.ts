// A real single-node Apache Kafka broker (KRaft, combined broker+controller) for tests and
// benchmarks, run from the Maven Central artifacts on the machine's JDK 17.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, fstatSync, mkdirSync, mkdtempSync, openSync, readSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { spawnBrokerProcess, trackDir, untrackDir, type BrokerExit, type BrokerProcess } from './broker-process.js';
import { KAFKA_DEFAULT_VERSION, resolveKafkaClasspath } from './classpath.js';
import { KafkaHarnessError } from './errors.js';
import { kafkaServerProperties, type KafkaConfigValue } from './server-properties.js';

export { KAFKA_DEFAULT_VERSION, KAFKA_POM_PATH, resolveKafkaClasspath } from './classpath.js';
export type { ResolveKafkaClasspathOptions, ResolvedKafkaClasspath } from './classpath.js';
export { KafkaHarnessError } from './errors.js';
export type { KafkaHarnessErrorCode } from './errors.js';
export type { BrokerExit as KafkaBrokerExit } from './broker-process.js';
export type { KafkaConfigValue } from './server-properties.js';

export type KafkaBrokerLogLevel = 'error' | 'warn' | 'info' | 'debug';

export interface StartKafkaOptions {
  /** org.apache.kafka:kafka_2.13 version from Maven Central. Default KAFKA_DEFAULT_VERSION. */
  readonly version?: string;
  /** auto.create.topics.enable. Default true (Kafka's own default). */
  readonly autoCreateTopics?: boolean;
  /** Extra or overriding server.properties entries. */
  readonly brokerConfig?: Readonly<Record<string, KafkaConfigValue>>;
  /** JVM heap limit. Default 512 (MB). */
  readonly heapMb?: number;
  /** Extra JVM options, appended after the defaults. */
  readonly jvmOptions?: readonly string[];
  /** Level of the broker's own log (captured in `logFile`). Default 'info'. */
  readonly brokerLogLevel?: KafkaBrokerLogLevel;
  /** How long start() and restart() wait for the broker to answer. Default 90 s. */
  readonly startTimeoutMs?: number;
  /** Java executable (JDK 17+). Default `java` (env CUSTODIAN_JAVA overrides). */
  readonly javaCommand?: string;
  /** Maven executable used the first time a version is resolved. Default `mvn`. */
  readonly mavenCommand?: string;
  readonly name?: string;
}

export interface StartedKafka {
  readonly name: string;
  readonly backend: 'process';
  /** Bootstrap servers, e.g. ['127.0.0.1:40123']; stable across restart(). */
  readonly brokers: readonly string[];
  readonly version: string;
  readonly clusterId: string;
  /** Temp directory holding everything below; removed by stop(). */
  readonly dir: string;
  /** Kafka's data directory (log.dirs); survives kill() and restart(). */
  readonly logDir: string;
  /** The broker's captured stdout/stderr (appended to across restarts). */
  readonly logFile: string;
  readonly propertiesFile: string;
  /** JVM pid (= process group id) while running. */
  readonly pid: number | undefined;
  readonly running: boolean;
  /** Kills the process group, waits for it to exit and removes `dir`. Idempotent. */
  stop(): Promise<void>;
  /**
   * Sends `signal` (default SIGKILL) to the broker's process group and waits for it to exit,
   * keeping data dir and ports for restart(). SIGTERM/SIGINT shut down gracefully.
   */
  kill(signal?: 'SIGKILL' | 'SIGTERM' | 'SIGINT'): Promise<BrokerExit>;
  /** Starts the broker again on the same data dir and ports (shutting it down gracefully first if running). */
  restart(): Promise<void>;
  /** Last bytes of `logFile`. */
  logTail(bytes?: number): string;
}

const BROKER_MAIN_CLASS = 'kafka.Kafka';
const STORAGE_TOOL_MAIN_CLASS = 'kafka.tools.StorageTool';

export async function startKafka(options: StartKafkaOptions = {}): Promise<StartedKafka> {
  const version = options.version ?? KAFKA_DEFAULT_VERSION;
  const name = options.name ?? 'kafka';
  const javaCommand = options.javaCommand ?? process.env['CUSTODIAN_JAVA'] ?? 'java';
  const startTimeoutMs = options.startTimeoutMs ?? 90_000;
  const { classpath } = await resolveKafkaClasspath({ version, ...(options.mavenCommand ? { mavenCommand: options.mavenCommand } : {}) });

  const [brokerPort, controllerPort] = await freeLoopbackPorts(2);
  if (brokerPort === undefined || controllerPort === undefined) throw new Error('unreachable: two ports requested');
  const dir = mkdtempSync(join(tmpdir(), 'custodian-kafka-'));
  trackDir(dir);
  const logDir = join(dir, 'data');
  const logFile = join(dir, 'broker.log');
  const propertiesFile = join(dir, 'server.properties');
  const broker = `127.0.0.1:${brokerPort}`;
  const clusterId = randomKafkaUuid();

  let current: BrokerProcess | undefined;
  let stopped = false;

  const removeDir = async (): Promise<void> => {
    await rm(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 50 });
    untrackDir(dir);
  };

  const jvmArgs = [
    '-Xms64m',
    `-Xmx${options.heapMb ?? 512}m`,
    // Two cores: the serial collector avoids parallel GC threads competing with the tests.
    '-XX:+UseSerialGC',
    '-XX:+ExitOnOutOfMemoryError',
    '-Djava.awt.headless=true',
    `-Dorg.slf4j.simpleLogger.defaultLogLevel=${options.brokerLogLevel ?? 'info'}`,
    '-Dorg.slf4j.simpleLogger.showDateTime=true',
    '-Dorg.slf4j.simpleLogger.dateTimeFormat=yyyy-MM-dd HH:mm:ss.SSS',
    ...(options.jvmOptions ?? []),
  ];

  const launch = async (): Promise<void> => {
    appendMarker(logFile, `starting ${BROKER_MAIN_CLASS} (Kafka ${version})`);
    try {
      current = await spawnBrokerProcess(javaCommand, [...jvmArgs, '-cp', classpath, BROKER_MAIN_CLASS, propertiesFile], {
        logPath: logFile,
        ownedDir: dir,
        cwd: dir,
      });
    } catch (error) {
      const missing = (error as NodeJS.ErrnoException).code === 'ENOENT';
      throw new KafkaHarnessError(
        missing ? 'HARNESS_JAVA_MISSING' : 'HARNESS_START_FAILED',
        missing ? `${javaCommand} not found; install a JDK 17+ (Debian: openjdk-17-jre-headless)` : `${name}: could not spawn ${javaCommand}`,
        { cause: error },
      );
    }
    const proc = current;
    try {
      await waitUntilReady(broker, proc, startTimeoutMs);
    } catch (error) {
      // Leave nothing half-started behind; stop()/restart() can still clean up or retry.
      proc.signalGroup('SIGKILL');
      await proc.exited;
      const exit = proc.exitStatus();
      const exitedEarly = !(error instanceof ReadyTimeout);
      throw new KafkaHarnessError(
        exitedEarly ? 'HARNESS_START_FAILED' : 'HARNESS_START_TIMEOUT',
        `${name}: Kafka ${version} on ${broker} ${exitedEarly ? `exited while starting (${describeExit(exit)})` : `did not answer within ${startTimeoutMs} ms`}` +
          `\n--- last output (${logFile}) ---\n${readTail(logFile)}`,
        { cause: error },
      );
    }
  };

  const shutDown = async (signal: NodeJS.Signals, graceMs: number): Promise<BrokerExit | undefined> => {
    const proc = current;
    if (proc === undefined) return undefined;
    proc.signalGroup(signal);
    const timer = setTimeout(() => proc.signalGroup('SIGKILL'), graceMs);
    try {
      return await proc.exited;
    } finally {
      clearTimeout(timer);
    }
  };

  try {
    mkdirSync(logDir);
    writeFileSync(
      propertiesFile,
      kafkaServerProperties({ brokerPort, controllerPort, dataDir: logDir, autoCreateTopics: options.autoCreateTopics ?? true }, options.brokerConfig),
    );
    await formatStorage(javaCommand, classpath, clusterId, propertiesFile, join(dir, 'format.log'));
    await launch();
  } catch (error) {
    await shutDown('SIGKILL', 0);
    await removeDir();
    throw error;
  }

  return {
    name,
    backend: 'process',
    brokers: [broker],
    version,
    clusterId,
    dir,
    logDir,
    logFile,
    propertiesFile,
    get pid() {
      return current?.exitStatus() === undefined ? current?.pid : undefined;
    },
    get running() {
      return !stopped && current !== undefined && current.exitStatus() === undefined;
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      // The data is thrown away, so there is nothing to shut down gracefully for.
      await shutDown('SIGKILL', 0);
      await removeDir();
    },
    async kill(signal = 'SIGKILL') {
      if (stopped) throw new KafkaHarnessError('HARNESS_STOPPED', `${name} was stopped`);
      const exit = await shutDown(signal, 30_000);
      if (exit === undefined) throw new KafkaHarnessError('HARNESS_STOPPED', `${name} has no broker process`);
      return exit;
    },
    async restart() {
      if (stopped) throw new KafkaHarnessError('HARNESS_STOPPED', `${name} was stopped`);
      await shutDown('SIGTERM', 30_000);
      await launch();
    },
    logTail: (bytes = 4_000) => readTail(logFile, bytes),
  };
}

class ReadyTimeout extends Error {}

/** Ready = the PLAINTEXT listener answers a metadata request that lists this broker. */
async function waitUntilReady(broker: string, proc: BrokerProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    if (proc.exitStatus() !== undefined) throw new Error(`broker exited: ${describeExit(proc.exitStatus())}`);
    const kafka = new Kafka({
      clientId: 'custodian-harness-probe',
      brokers: [broker],
      logLevel: logLevel.NOTHING,
      connectionTimeout: 1_000,
      requestTimeout: 3_000,
      retry: { retries: 0 },
    });
    const admin = kafka.admin({ retry: { retries: 0 } });
    try {
      await admin.connect();
      const cluster = await admin.describeCluster();
      if (cluster.brokers.length > 0 && cluster.controller !== null) return;
    } catch (error) {
      lastError = error;
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
    await Promise.race([proc.exited, new Promise((resolve) => setTimeout(resolve, 250))]);
  }
  throw new ReadyTimeout(`no metadata answer from ${broker}`, { cause: lastError });
}

function formatStorage(javaCommand: string, classpath: string, clusterId: string, propertiesFile: string, logPath: string): Promise<void> {
  const args = [
    '-Xmx256m',
    '-XX:+UseSerialGC',
    // A short-lived tool: skipping the optimising JIT saves a few hundred ms per start.
    '-XX:TieredStopAtLevel=1',
    '-Dorg.slf4j.simpleLogger.defaultLogLevel=warn',
    '-cp',
    classpath,
    STORAGE_TOOL_MAIN_CLASS,
    'format',
    '--cluster-id',
    clusterId,
    '--config',
    propertiesFile,
  ];
  return new Promise((resolve, reject) => {
    execFile(javaCommand, args, { timeout: 120_000, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      writeFileSync(logPath, `${stdout}\n${stderr}`);
      if (!error) {
        resolve();
        return;
      }
      const missing = (error as NodeJS.ErrnoException).code === 'ENOENT';
      reject(
        new KafkaHarnessError(
          missing ? 'HARNESS_JAVA_MISSING' : 'HARNESS_STORAGE_FORMAT_FAILED',
          missing
            ? `${javaCommand} not found; install a JDK 17+ (Debian: openjdk-17-jre-headless)`
            : `${STORAGE_TOOL_MAIN_CLASS} format failed: ${error.message}\n--- output (${logPath}) ---\n${`${stdout}\n${stderr}`.slice(-4_000)}`,
          { cause: error },
        ),
      );
    });
  });
}

/** A Kafka Uuid (16 random bytes, base64url) as Uuid.randomUuid() makes them: never one that starts with '-'. */
function randomKafkaUuid(): string {
  for (;;) {
    const id = randomBytes(16).toString('base64url');
    if (!id.startsWith('-')) return id;
  }
}

/** Distinct free loopback ports; all held open until every one is chosen so none repeats. */
async function freeLoopbackPorts(count: number): Promise<number[]> {
  const servers: Server[] = [];
  try {
    const ports: number[] = [];
    for (let i = 0; i < count; i += 1) {
      const server = createServer();
      servers.push(server);
      ports.push(
        await new Promise<number>((resolve, reject) => {
          server.once('error', reject);
          server.listen({ host: '127.0.0.1', port: 0, exclusive: true }, () => {
            const address = server.address();
            if (address === null || typeof address === 'string') reject(new Error('no TCP address'));
            else resolve(address.port);
          });
        }),
      );
    }
    return ports;
  } finally {
    await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  }
}

function appendMarker(logFile: string, text: string): void {
  writeFileSync(logFile, `\n===== custodian test-harness ${new Date().toISOString()}: ${text} =====\n`, { flag: 'a' });
}

function describeExit(exit: BrokerExit | undefined): string {
  if (exit === undefined) return 'still running';
  return exit.signal !== null ? `signal ${exit.signal}` : `exit code ${String(exit.code)}`;
}

function readTail(path: string, bytes = 4_000): string {
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
