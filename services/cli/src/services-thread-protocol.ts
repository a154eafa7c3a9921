// What the embedded host (embedded-host.ts, the gateway's thread) and its services thread
// (services-thread.worker.ts) send each other. Everything here is structured-cloneable: the
// configuration crosses as the validated object (secrets in it are references, resolved where
// used, as in one thread), errors as their name, message, code and config issues.
import { ConfigError, type ConfigIssue, type ConfigIssueSource, type CustodianConfig, type LoadedConfig, type ServiceName } from '@custodian/runtime-config';

export interface ServicesThreadData {
  readonly config: CustodianConfig;
  readonly file: string | undefined;
  readonly baseDir: string;
  readonly overriddenBy: readonly string[];
  /** Where each key of the config came from (LoadedConfig.issueAt cannot cross: it holds the parsed YAML). */
  readonly issueSources: Readonly<Record<string, ConfigIssueSource>>;
  /** The services this thread runs, in start order. */
  readonly services: readonly Exclude<ServiceName, 'gateway'>[];
  /**
   * Where log lines go: to the host as messages (it writes them to its destination), or straight
   * to stdout (fd 1) under the lock the host's own loggers take (locked-fd-destination.ts).
   */
  readonly log: { readonly to: 'host' } | { readonly to: 'fd'; readonly fd: number; readonly lock: SharedArrayBuffer };
}

/** A thrown value as it crosses the thread boundary. */
export interface SerializedError {
  readonly name: string;
  readonly message: string;
  readonly code?: string;
  readonly stack?: string;
  readonly issues?: readonly ConfigIssue[];
}

export type ToServicesThread = { readonly type: 'stop' };

export type FromServicesThread =
  | { readonly type: 'log'; readonly line: string }
  | { readonly type: 'started'; readonly name: ServiceName; readonly url: string }
  | { readonly type: 'ready'; readonly notices: readonly string[] }
  | { readonly type: 'start-failed'; readonly error: SerializedError }
  | { readonly type: 'stopped'; readonly error?: SerializedError };

export function serializeError(error: unknown): SerializedError {
  if (!(error instanceof Error)) return { name: 'Error', message: String(error) };
  const code = (error as { code?: unknown }).code;
  const issues = error instanceof ConfigError ? error.issues : undefined;
  return {
    name: error.name,
    message: error.message,
    ...(typeof code === 'string' ? { code } : {}),
    ...(error.stack === undefined ? {} : { stack: error.stack }),
    ...(issues ? { issues } : {}),
  };
}

/** The error again, on this side: a ConfigError stays one (the CLI exits 2 on it), others keep name and code. */
export function deserializeError(serialized: SerializedError): Error {
  let error: Error;
  if (serialized.name === 'ConfigError' && serialized.code !== undefined) {
    // The message already lists the issues: pass them after construction, not to the constructor.
    error = new ConfigError(serialized.code as ConfigError['code'], serialized.message);
    Object.defineProperty(error, 'issues', { value: serialized.issues ?? [], enumerable: true });
  } else {
    error = new Error(serialized.message);
    Object.defineProperty(error, 'name', { value: serialized.name, enumerable: false, configurable: true, writable: true });
    if (serialized.code !== undefined) Object.assign(error, { code: serialized.code });
  }
  if (serialized.stack !== undefined) error.stack = serialized.stack;
  return error;
}

function pointerOf(keys: readonly string[]): string {
  return keys.map((k) => `/${k.replace(/~/g, '~0').replace(/\//g, '~1')}`).join('');
}

/** Every key path of the config with the source LoadedConfig.issueAt names for it. */
export function issueSourcesOf(loaded: LoadedConfig): Record<string, ConfigIssueSource> {
  const sources: Record<string, ConfigIssueSource> = {};
  const walk = (value: unknown, keys: readonly string[]): void => {
    if (keys.length > 0) {
      const path = keys.join('.');
      sources[path] = loaded.issueAt(path, '').source;
    }
    if (typeof value === 'object' && value !== null) for (const [key, child] of Object.entries(value)) walk(child, [...keys, key]);
  };
  walk(loaded.config, []);
  return sources;
}

/** The LoadedConfig the host loaded, rebuilt in the services thread. */
export function loadedFromData(data: ServicesThreadData): LoadedConfig {
  return {
    config: data.config,
    file: data.file,
    baseDir: data.baseDir,
    overriddenBy: data.overriddenBy,
    issueAt: (path, message) => {
      const keys = path.split('.');
      // The key itself, else the nearest enclosing key the host knew (a key the config lacks).
      let source: ConfigIssueSource = { kind: 'default' };
      for (let n = keys.length; n > 0; n--) {
        const known = data.issueSources[keys.slice(0, n).join('.')];
        if (known) {
          source = known;
          break;
        }
      }
      return { pointer: pointerOf(keys), path, message, source };
    },
  };
}
