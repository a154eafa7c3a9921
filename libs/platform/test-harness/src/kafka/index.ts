// A real single-node Apache Kafka broker (KRaft, combined broker+controller) for tests and
// benchmarks, run from the Maven Central artifacts on the machine's JDK 17. Process, temp dir,
// clean-up and errors are the harness's shared ones (process-service.ts, service.ts).
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Admin } from '@platformatic/kafka';
import { startProcessService } from '../process-service.js';
import { HarnessError, freePorts, readTail, runCommand, type CommandResult, type HarnessErrorCode, type ProcessExit } from '../service.js';
import { KAFKA_DEFAULT_VERSION, resolveKafkaClasspath } from './classpath.js';
import { kafkaServerProperties, type KafkaConfigValue } from './server-properties.js';

export { KAFKA_DEFAULT_VERSION, KAFKA_POM_PATH, resolveKafkaClasspath } from './classpath.js';
export type { ResolveKafkaClasspathOptions, ResolvedKafkaClasspath } from './classpath.js';
export type { KafkaConfigValue } from './server-properties.js';
export type { ProcessExit as KafkaBrokerExit } from '../service.js';

/**
 * @deprecated Kafka failures are plain `HarnessError`s now; this alias keeps
 * `instanceof KafkaHarnessError` and `KafkaHarnessError` type annotations working.
 */
export const KafkaHarnessError = HarnessError;
/** @deprecated Use `HarnessError`. */
export type KafkaHarnessError = HarnessError;
/** @deprecated The codes a Kafka start can fail with; all are `HarnessErrorCode`s. */
export type KafkaHarnessErrorCode = Extract<
  HarnessErrorCode,
  'HARNESS_MAVEN_FAILED' | 'HARNESS_JAVA_MISSING' | 'HARNESS_STORAGE_FORMAT_FAILED' | 'HARNESS_START_TIMEOUT' | 'HARNESS_START_FAILED' | 'HARNESS_STOPPED'
>;

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
  kill(signal?: 'SIGKILL' | 'SIGTERM' | 'SIGINT'): Promise<ProcessExit>;
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

  const [brokerPort, controllerPort] = await freePorts(2);
  if (brokerPort === undefined || controllerPort === undefined) throw new HarnessError('HARNESS_UNAVAILABLE', 'could not allocate two loopback ports');
  const broker = `127.0.0.1:${brokerPort}`;
  const clusterId = randomKafkaUuid();

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

  return startProcessService({ name }, async (service) => {
    const { dir } = service;
    const logDir = join(dir, 'data');
    const logFile = join(dir, 'broker.log');
    const propertiesFile = join(dir, 'server.properties');

    const launch = async (): Promise<void> => {
      appendMarker(logFile, `starting ${BROKER_MAIN_CLASS} (Kafka ${version})`);
      // The data is thrown away on stop(), so there is nothing to shut down gracefully for.
      service.spawn(javaCommand, [...jvmArgs, '-cp', classpath, BROKER_MAIN_CLASS, propertiesFile], { logPath: logFile, stopSignal: 'SIGKILL' });
      await service.waitUntilReady(() => brokerAnswersMetadata(broker), {
        timeoutMs: startTimeoutMs,
        what: `${name}: Kafka ${version} on ${broker}`,
        intervalMs: 250,
      });
    };

    /** Ends the broker process (signal, then SIGKILL after `graceMs`) and says how it ended. */
    const shutDown = async (signal: NodeJS.Signals, graceMs: number): Promise<ProcessExit | undefined> => {
      const proc = service.process;
      if (proc === undefined) return undefined;
      await proc.stop(graceMs, signal);
      return proc.exited;
    };

    mkdirSync(logDir);
    writeFileSync(
      propertiesFile,
      kafkaServerProperties({ brokerPort, controllerPort, dataDir: logDir, autoCreateTopics: options.autoCreateTopics ?? true }, options.brokerConfig),
    );
    await formatStorage(javaCommand, classpath, clusterId, propertiesFile, join(dir, 'format.log'));
    await launch();

    const running = (): boolean => !service.stopped && service.process !== undefined && service.process.exitStatus() === undefined;
    return service.publish<StartedKafka>({
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
        return running() ? service.process?.pid : undefined;
      },
      get running() {
        return running();
      },
      async kill(signal = 'SIGKILL') {
        if (service.stopped) throw new HarnessError('HARNESS_STOPPED', `${name} was stopped`);
        const exit = await shutDown(signal, 30_000);
        if (exit === undefined) throw new HarnessError('HARNESS_STOPPED', `${name} has no broker process`);
        return exit;
      },
      async restart() {
        if (service.stopped) throw new HarnessError('HARNESS_STOPPED', `${name} was stopped`);
        await shutDown('SIGTERM', 30_000);
        await launch();
      },
      logTail: (bytes = 4_000) => readTail(logFile, bytes),
    });
  });
}

/** Ready = the PLAINTEXT listener answers a metadata request that lists this broker. */
async function brokerAnswersMetadata(broker: string): Promise<boolean> {
  const admin = new Admin({ clientId: 'custodian-harness-probe', bootstrapBrokers: [broker], connectTimeout: 1_000, requestTimeout: 3_000, retries: 0 });
  try {
    const cluster = await admin.metadata({ topics: [], forceUpdate: true });
    return cluster.brokers.size > 0 && cluster.controllerId >= 0;
  } catch {
    return false;
  } finally {
    await admin.close().catch(() => undefined);
  }
}

async function formatStorage(javaCommand: string, classpath: string, clusterId: string, propertiesFile: string, logPath: string): Promise<void> {
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
  let result: CommandResult;
  try {
    result = await runCommand(javaCommand, args, { timeoutMs: 120_000, allowFailure: true });
  } catch (error) {
    const missing = error instanceof HarnessError && error.code === 'HARNESS_BINARY_MISSING';
    throw new HarnessError(
      missing ? 'HARNESS_JAVA_MISSING' : 'HARNESS_STORAGE_FORMAT_FAILED',
      missing ? `${javaCommand} not found; install a JDK 17+ (Debian: openjdk-17-jre-headless)` : `${STORAGE_TOOL_MAIN_CLASS} format failed: ${(error as Error).message}`,
      { cause: error },
    );
  }
  const output = `${result.stdout}\n${result.stderr}`;
  writeFileSync(logPath, output);
  if (result.exitCode !== 0) {
    throw new HarnessError(
      'HARNESS_STORAGE_FORMAT_FAILED',
      `${STORAGE_TOOL_MAIN_CLASS} format exited with ${result.exitCode}\n--- output (${logPath}) ---\n${output.slice(-4_000)}`,
    );
  }
}

/** A Kafka Uuid (16 random bytes, base64url) as Uuid.randomUuid() makes them: never one that starts with '-'. */
function randomKafkaUuid(): string {
  for (;;) {
    const id = randomBytes(16).toString('base64url');
    if (!id.startsWith('-')) return id;
  }
}

function appendMarker(logFile: string, text: string): void {
  writeFileSync(logFile, `\n===== custodian test-harness ${new Date().toISOString()}: ${text} =====\n`, { flag: 'a' });
}
