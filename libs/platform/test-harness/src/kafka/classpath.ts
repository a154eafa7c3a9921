// Resolves the broker's Java classpath from Maven Central with the minimal project in
// libs/platform/test-harness/kafka/pom.xml. The jars land in ~/.m2; the classpath string is cached
// per (Kafka version, pom content) so that later starts never run Maven.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HarnessError, runCommand, sleep, type CommandResult } from '../service.js';

/**
 * Newest Kafka on Maven Central whose artifacts are all published (4.4.0's kafka_2.13 pom
 * references kafka-tools-api 4.4.0, which Central does not have) and that runs on JDK 17
 * and works with @platformatic/kafka (see kafka.int.test.ts and libs/platform/test-harness/kafka/README.md).
 */
export const KAFKA_DEFAULT_VERSION = '4.3.1';

export const KAFKA_POM_PATH = fileURLToPath(new URL('../../kafka/pom.xml', import.meta.url));

export interface ResolveKafkaClasspathOptions {
  /** org.apache.kafka:kafka_2.13 version. Default KAFKA_DEFAULT_VERSION. */
  readonly version?: string;
  /** Maven executable. Default `mvn` (env CUSTODIAN_MVN overrides). */
  readonly mavenCommand?: string;
  /** Where classpath files are cached. Default $XDG_CACHE_HOME or ~/.cache, then custodian/test-harness. */
  readonly cacheDir?: string;
  /** Limit for one Maven run (a cold ~/.m2 downloads ~65 MB). Default 10 minutes. */
  readonly timeoutMs?: number;
}

export interface ResolvedKafkaClasspath {
  readonly version: string;
  readonly classpath: string;
  /** True when Maven ran now; false when the cached classpath was used. */
  readonly resolvedNow: boolean;
  readonly cacheFile: string;
}

export async function resolveKafkaClasspath(options: ResolveKafkaClasspathOptions = {}): Promise<ResolvedKafkaClasspath> {
  const version = options.version ?? KAFKA_DEFAULT_VERSION;
  if (!/^[0-9A-Za-z.+-]+$/.test(version)) {
    throw new HarnessError('HARNESS_MAVEN_FAILED', `invalid Kafka version ${JSON.stringify(version)}`);
  }
  const cacheDir = options.cacheDir ?? join(process.env['XDG_CACHE_HOME'] ?? join(homedir(), '.cache'), 'custodian', 'test-harness');
  const pomHash = createHash('sha256').update(readFileSync(KAFKA_POM_PATH)).digest('hex').slice(0, 12);
  const cacheFile = join(cacheDir, `kafka_2.13-${version}-${pomHash}.classpath`);

  const cached = readCachedClasspath(cacheFile);
  if (cached !== undefined) return { version, classpath: cached, resolvedNow: false, cacheFile };

  mkdirSync(cacheDir, { recursive: true });
  const release = await acquireLock(`${cacheFile}.lock`, options.timeoutMs ?? 600_000);
  try {
    // Another process may have resolved it while we waited for the lock.
    const resolvedMeanwhile = readCachedClasspath(cacheFile);
    if (resolvedMeanwhile !== undefined) return { version, classpath: resolvedMeanwhile, resolvedNow: false, cacheFile };

    const outputFile = `${cacheFile}.${process.pid}.tmp`;
    await runMaven(options.mavenCommand ?? process.env['CUSTODIAN_MVN'] ?? 'mvn', [
      '-q',
      '-B',
      '-Dstyle.color=never',
      '-f',
      KAFKA_POM_PATH,
      `-Dkafka.version=${version}`,
      'dependency:build-classpath',
      `-Dmdep.outputFile=${outputFile}`,
      '-Dmdep.includeScope=runtime',
    ], options.timeoutMs ?? 600_000);
    const classpath = readFileSync(outputFile, 'utf8').trim();
    if (readCachedClasspathFrom(classpath) === undefined) {
      rmSync(outputFile, { force: true });
      throw new HarnessError('HARNESS_MAVEN_FAILED', `Maven produced an unusable classpath for Kafka ${version}: ${classpath.slice(0, 300)}`);
    }
    // Atomic publish: readers never see a half-written file.
    renameSync(outputFile, cacheFile);
    return { version, classpath, resolvedNow: true, cacheFile };
  } finally {
    release();
  }
}

function readCachedClasspath(cacheFile: string): string | undefined {
  if (!existsSync(cacheFile)) return undefined;
  return readCachedClasspathFrom(readFileSync(cacheFile, 'utf8').trim());
}

/** The classpath if every jar on it still exists (~/.m2 may have been pruned) and the broker's jar is there. */
function readCachedClasspathFrom(classpath: string): string | undefined {
  const entries = classpath.split(delimiter).filter((entry) => entry !== '');
  if (!entries.some((entry) => /kafka_2\.13-[^/]*\.jar$/.test(entry))) return undefined;
  return entries.every((entry) => existsSync(entry)) ? classpath : undefined;
}

// Maven 3.8 still emits colour resets in batch mode; they only clutter error messages.
const ANSI_ESCAPE = new RegExp(`${String.fromCharCode(27)}\\[[0-9;]*m`, 'g');

async function runMaven(command: string, args: readonly string[], timeoutMs: number): Promise<void> {
  const failed = (message: string, cause?: unknown): HarnessError => new HarnessError('HARNESS_MAVEN_FAILED', message, { cause });
  let result: CommandResult;
  try {
    result = await runCommand(command, args, { timeoutMs, allowFailure: true });
  } catch (error) {
    if (error instanceof HarnessError && error.code === 'HARNESS_BINARY_MISSING') {
      throw failed(`Maven (${command}) is not installed; install the Debian package "maven"`, error);
    }
    throw failed(`${command} ${args.join(' ')} failed: ${(error as Error).message.replace(ANSI_ESCAPE, '')}`, error);
  }
  if (result.exitCode !== 0) {
    const output = `${result.stdout}\n${result.stderr}`.replace(ANSI_ESCAPE, '').trim();
    throw failed(`${command} ${args.join(' ')} exited with ${result.exitCode}\n--- maven output (tail) ---\n${output.slice(-4_000)}`);
  }
}

/** Cross-process lock (mkdir is atomic) so parallel test workers do not run Maven twice. */
async function acquireLock(lockDir: string, timeoutMs: number): Promise<() => void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      mkdirSync(lockDir);
      return () => rmSync(lockDir, { recursive: true, force: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    // A lock older than one Maven run belongs to a process that died holding it.
    const age = lockAgeMs(lockDir);
    if (age !== undefined && age > timeoutMs) rmSync(lockDir, { recursive: true, force: true });
    if (Date.now() > deadline) {
      throw new HarnessError('HARNESS_MAVEN_FAILED', `timed out waiting for ${lockDir} (another Maven resolution)`);
    }
    await sleep(250);
  }
}

function lockAgeMs(lockDir: string): number | undefined {
  try {
    return Date.now() - statSync(lockDir).mtimeMs;
  } catch {
    return undefined;
  }
}

