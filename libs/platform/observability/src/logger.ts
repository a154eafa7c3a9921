import { hostname } from 'node:os';
import { pino, stdTimeFunctions, type DestinationStream, type Level, type LevelWithSilent, type Logger, type LoggerOptions } from 'pino';
import { isSecretKey, REDACTED, scrubError, scrubText, scrubValue } from './redaction.js';

export type { Logger } from 'pino';
/** Where log lines are written (a pino destination: anything with `write(line)`). */
export type LogDestination = DestinationStream;
export type LogLevel = LevelWithSilent;

export interface CreateLoggerOptions {
  /** Service name, e.g. `gateway`; on every line as `service`. */
  readonly service: string;
  /** Instance id (host, pod, process); on every line as `instance`. Defaults to hostname:pid. */
  readonly instance?: string;
  readonly level?: LogLevel;
  /** Where lines go; defaults to stdout (synchronous, so nothing is lost on exit). Tests pass a capture stream. */
  readonly destination?: LogDestination;
}

/** Literal key spellings redacted by pino itself at the top three levels (scrubValue covers any depth). */
const REDACT_KEYS = [
  'password',
  'passwd',
  'secret',
  'clientSecret',
  'token',
  'accessToken',
  'refreshToken',
  'idToken',
  'apiKey',
  'api_key',
  'x-api-key',
  'authorization',
  'Authorization',
  'cookie',
  'Cookie',
  'set-cookie',
  'connectionString',
  'privateKey',
  'credentials',
] as const;

function redactPaths(): string[] {
  const paths: string[] = [];
  for (const key of REDACT_KEYS) {
    const access = /^[A-Za-z_$][\w$]*$/.test(key) ? key : `["${key}"]`;
    const join = (prefix: string): string => (access.startsWith('[') ? `${prefix}${access}` : prefix ? `${prefix}.${access}` : access);
    paths.push(join(''), join('*'), join('*.*'));
  }
  return paths;
}

type LogArgs = [unknown, ...unknown[]];

/** Scrubs every argument of a log call before pino formats it, including the message and interpolation args. */
function scrubArgs(args: readonly unknown[]): unknown[] {
  const [first, ...rest] = args;
  if (first instanceof Error) {
    // pino puts an Error under `err` and uses its message when none is given; keep that shape.
    const err = scrubError(first);
    return rest.length > 0 ? [{ err }, ...rest.map((a) => scrubValue(a))] : [{ err }, err.message];
  }
  return args.map((a) => scrubValue(a));
}

/**
 * A structured JSON logger. Secrets never reach the output: values under secret-named keys
 * are replaced at any depth, and credential-shaped text (bearer tokens, JWTs, PEM private
 * keys, URL passwords, API keys) is scrubbed from messages, fields, errors and bindings.
 */
export function createLogger(options: CreateLoggerOptions): Logger {
  const loggerOptions: LoggerOptions = {
    level: options.level ?? 'info',
    base: { service: options.service, instance: options.instance ?? `${hostname()}:${process.pid}` },
    timestamp: stdTimeFunctions.isoTime,
    redact: { paths: redactPaths(), censor: REDACTED },
    formatters: {
      level: (label) => ({ level: label }),
      bindings: (bindings) => scrubValue(bindings) as Record<string, unknown>,
    },
    serializers: {
      // Errors set directly (`{ err }`) that bypassed the hook, e.g. from child loggers' bindings.
      err: (err: unknown) => (err instanceof Error ? scrubError(err) : scrubValue(err)),
    },
    hooks: {
      logMethod(args, method) {
        method.apply(this, scrubArgs(args) as LogArgs as Parameters<typeof method>);
      },
    },
  };
  return options.destination ? pino(loggerOptions, options.destination) : pino(loggerOptions, pino.destination({ fd: 1, sync: true }));
}

export { isSecretKey, REDACTED, scrubText, scrubValue };
export type { Level };
