// The host's side of the services thread (services-thread.worker.ts): starts it, relays its log
// lines, and watches it. A thread that ends without being asked to (an uncaught error in one of
// its services, an exit) is reported through `ended`, so the host can stop everything: the gateway
// must not go on accepting commands whose approvals and evidence log nobody serves.
import type { Worker } from 'node:worker_threads';
import type { LogDestination } from '@custodian/observability';
import type { LoadedConfig, ServiceName } from '@custodian/runtime-config';
import { startModuleWorker } from '@custodian/service-host';
import { deserializeError, issueSourcesOf, type FromServicesThread, type ServicesThreadData, type ToServicesThread } from './services-thread-protocol.js';

export interface ServicesThread {
  readonly worker: Worker;
  /** The services it started, in start order, with their URLs. */
  readonly services: readonly { readonly name: ServiceName; readonly url: string }[];
  readonly notices: readonly string[];
  /** Resolves (never rejects) if the thread ends without having been asked to stop. */
  readonly ended: Promise<Error>;
  /** Its services close (API first), then its store; then the thread is terminated. Idempotent. */
  stop(): Promise<void>;
}

export class ServicesThreadError extends Error {
  override readonly name = 'ServicesThreadError';
  constructor(
    readonly code: 'SERVICES_THREAD_EXITED' | 'SERVICES_THREAD_FAILED',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export interface StartServicesThreadOptions {
  readonly services: ServicesThreadData['services'];
  /** The host's log destination (the thread's lines are sent to it), or stdout with the lock the host's loggers take there. */
  readonly log: { readonly to: 'host'; readonly destination: LogDestination } | { readonly to: 'fd'; readonly fd: number; readonly lock: SharedArrayBuffer };
}

/** Starts the services thread; resolves once every one of its services listens, rejects with the error that stopped one from starting. */
export function startServicesThread(loaded: LoadedConfig, options: StartServicesThreadOptions): Promise<ServicesThread> {
  const data: ServicesThreadData = {
    config: loaded.config,
    file: loaded.file,
    baseDir: loaded.baseDir,
    overriddenBy: loaded.overriddenBy,
    issueSources: issueSourcesOf(loaded),
    services: options.services,
    log: options.log.to === 'host' ? { to: 'host' } : options.log,
  };
  const hostDestination = options.log.to === 'host' ? options.log.destination : undefined;
  // execArgv []: the thread needs none of the parent's flags, and some (--input-type) break a worker.
  const worker: Worker = startModuleWorker(new URL('./services-thread.worker.js', import.meta.url), { workerData: data, execArgv: [] });
  const services: { name: ServiceName; url: string }[] = [];
  let phase: 'starting' | 'running' | 'stopping' | 'ended' = 'starting';
  let uncaught: Error | undefined;
  let reportEnded: (error: Error) => void = () => undefined;
  const ended = new Promise<Error>((resolve) => (reportEnded = resolve));
  let stopped: { resolve: () => void; reject: (error: unknown) => void } | undefined;
  let stopping: Promise<void> | undefined;

  return new Promise<ServicesThread>((resolve, reject) => {
    const failStart = (error: Error): void => {
      phase = 'ended';
      // Its services stopped themselves before reporting; nothing of it may outlive the failure.
      void worker.terminate().then(() => reject(error), () => reject(error));
    };
    worker.on('message', (message: FromServicesThread) => {
      switch (message.type) {
        case 'log':
          hostDestination?.write(message.line);
          return;
        case 'started':
          services.push({ name: message.name, url: message.url });
          return;
        case 'ready':
          if (phase !== 'starting') return;
          phase = 'running';
          resolve({ worker, services, notices: message.notices, ended, stop });
          return;
        case 'start-failed':
          if (phase === 'starting') failStart(deserializeError(message.error));
          return;
        case 'stopped':
          if (message.error) stopped?.reject(deserializeError(message.error));
          else stopped?.resolve();
          return;
      }
    });
    worker.on('error', (error) => {
      uncaught ??= error;
    });
    worker.on('exit', (code) => {
      const before = phase;
      phase = 'ended';
      const why = uncaught ? `: ${uncaught.name}: ${uncaught.message}` : ` with code ${code}`;
      if (before === 'starting') {
        reject(uncaught ?? new ServicesThreadError('SERVICES_THREAD_EXITED', `the services thread exited during start-up${why}`));
      } else if (before === 'running') {
        reportEnded(new ServicesThreadError(uncaught ? 'SERVICES_THREAD_FAILED' : 'SERVICES_THREAD_EXITED', `the services thread (${services.map((s) => s.name).join(', ')}) ended unexpectedly${why}`, { cause: uncaught }));
      } else if (before === 'stopping') {
        // Ended while its services were closing: the stop is over, with the error if there was one.
        if (uncaught) stopped?.reject(uncaught);
        else stopped?.resolve();
      }
    });

    function stop(): Promise<void> {
      stopping ??= (async () => {
        if (phase !== 'running') return;
        phase = 'stopping';
        try {
          await new Promise<void>((resolveStop, rejectStop) => {
            stopped = { resolve: resolveStop, reject: rejectStop };
            worker.postMessage({ type: 'stop' } satisfies ToServicesThread);
          });
        } finally {
          // Only now, with its services closed (or the thread gone): nothing is cut off mid-write.
          await worker.terminate();
        }
      })();
      return stopping;
    }
  });
}
