// Records `authentication.succeeded` / `authentication.failed` through the event store port, with
// failures rate-limited per client so that a stream of bad credentials cannot grow the store
// without bound.
import { randomUUID } from 'node:crypto';
import { EventFactory, streamName, type AuthenticationFailed, type AuthenticationSucceeded, type EventSource, type Identity } from '@custodian/event-contracts';
import type { EventStore } from '@custodian/event-store';
import type { Logger } from '@custodian/observability';

export interface AuthenticationEventRecorderOptions {
  readonly eventStore: EventStore;
  readonly source: EventSource;
  readonly logger: Logger;
  /** Failure events recorded individually per client and window (default 10); further ones are counted and summarised. */
  readonly failuresPerClient?: number;
  /** Failure events recorded individually per window across all clients (default 300). */
  readonly failuresTotal?: number;
  /** Length of a rate-limit window (default 60 s). */
  readonly windowMs?: number;
  /** Clients tracked at once (default 10 000); beyond that, new clients share one bucket. */
  readonly maxTrackedClients?: number;
  readonly now?: () => number;
}

/** reasonCode of the event that summarises the failures not recorded one by one. */
export const FAILURES_SUPPRESSED_CODE = 'AUTHENTICATION_FAILURES_SUPPRESSED';
/** Bucket for every client once `maxTrackedClients` are tracked, and for the global limit. */
const OVERFLOW_CLIENT = '*';

interface FailureWindow {
  readonly startedAt: number;
  recorded: number;
  suppressed: number;
  readonly codes: Map<string, number>;
  method: AuthenticationFailed['method'];
}

/**
 * One stream per event (`auth-<uuid>`, sequence 0, expectedRevision `no-stream`): appends need no
 * coordination, neither between requests of one process nor between API replicas sharing the
 * store, and there is no revision to read at start-up. Readers find them by type or by the `auth`
 * category (`readAll`, or EventStoreDB's `$ce-auth`).
 *
 * Failures: at most `failuresPerClient` per client and `failuresTotal` overall are recorded per
 * window; the rest are counted, and when the window ends (or on close) one `authentication.failed`
 * with reasonCode AUTHENTICATION_FAILURES_SUPPRESSED records how many, from where and why.
 */
export class AuthenticationEventRecorder {
  private readonly events: EventFactory;
  private readonly windows = new Map<string, FailureWindow>();
  private global: { startedAt: number; recorded: number };
  private readonly failuresPerClient: number;
  private readonly failuresTotal: number;
  private readonly windowMs: number;
  private readonly maxTrackedClients: number;
  private readonly now: () => number;
  private readonly timer: NodeJS.Timeout;
  private readonly pending = new Set<Promise<unknown>>();

  constructor(private readonly options: AuthenticationEventRecorderOptions) {
    this.events = new EventFactory(options.source);
    this.failuresPerClient = options.failuresPerClient ?? 10;
    this.failuresTotal = options.failuresTotal ?? 300;
    this.windowMs = options.windowMs ?? 60_000;
    this.maxTrackedClients = options.maxTrackedClients ?? 10_000;
    this.now = options.now ?? Date.now;
    this.global = { startedAt: this.now(), recorded: 0 };
    // Summaries are written when a window ends even if that client never comes back.
    this.timer = setInterval(() => void this.flushEnded().catch(() => undefined), this.windowMs);
    this.timer.unref();
  }

  /** Appends `authentication.succeeded`; rejects when the store refuses (the caller decides whether to deny). */
  async succeeded(identity: Identity, payload: AuthenticationSucceeded): Promise<void> {
    await this.track(this.append('authentication.succeeded', identity, payload));
  }

  /**
   * Appends `authentication.failed` unless the client (`clientKey`, e.g. its IP address) or all
   * clients together used up this window's allowance; then it is only counted. Never rejects: a
   * failure to record is logged, the request is refused either way.
   */
  async failed(payload: AuthenticationFailed, clientKey: string): Promise<void> {
    const now = this.now();
    // Only this client's window is checked here (O(1) per request); the timer flushes the others.
    const ended = this.windows.get(clientKey);
    if (ended && now - ended.startedAt >= this.windowMs) {
      this.windows.delete(clientKey);
      if (ended.suppressed > 0) await this.summarise(clientKey, ended);
    }
    const window = this.windowFor(clientKey, now);
    if (now - this.global.startedAt >= this.windowMs) this.global = { startedAt: now, recorded: 0 };
    if (window.recorded >= this.failuresPerClient || this.global.recorded >= this.failuresTotal) {
      window.suppressed += 1;
      window.method = payload.method;
      window.codes.set(payload.reasonCode, (window.codes.get(payload.reasonCode) ?? 0) + 1);
      return;
    }
    window.recorded += 1;
    this.global.recorded += 1;
    await this.track(this.append('authentication.failed', null, payload)).catch((error: unknown) => {
      this.options.logger.warn({ err: error instanceof Error ? { name: error.name, message: error.message } : String(error), reasonCode: payload.reasonCode }, 'authentication.failed could not be recorded');
    });
  }

  /** Writes the summaries of every window with suppressed failures, ended or not, and waits for appends in flight. */
  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.flushWhere(() => true);
    await Promise.allSettled([...this.pending]);
  }

  /** Writes the summaries of ended windows. */
  async flushEnded(now = this.now()): Promise<void> {
    await this.flushWhere((window) => now - window.startedAt >= this.windowMs);
  }

  private async flushWhere(ended: (window: FailureWindow) => boolean): Promise<void> {
    const summaries: Promise<void>[] = [];
    for (const [client, window] of this.windows) {
      if (!ended(window)) continue;
      this.windows.delete(client);
      if (window.suppressed > 0) summaries.push(this.summarise(client, window));
    }
    await Promise.all(summaries);
  }

  private async summarise(client: string, window: FailureWindow): Promise<void> {
    const codes = [...window.codes].sort((a, b) => b[1] - a[1]).slice(0, 10).map(([code, count]) => `${code}×${count}`).join(', ');
    const from = client === OVERFLOW_CLIENT ? 'untracked clients' : client;
    const payload: AuthenticationFailed = {
      method: window.method,
      clientAddress: client,
      reasonCode: FAILURES_SUPPRESSED_CODE,
      reason: `${window.suppressed} further authentication failures from ${from} since ${new Date(window.startedAt).toISOString()} were counted, not recorded one by one (${codes})`.slice(0, 1024),
    };
    await this.track(this.append('authentication.failed', null, payload)).catch((error: unknown) => {
      this.options.logger.warn({ err: error instanceof Error ? { name: error.name, message: error.message } : String(error), suppressed: window.suppressed }, 'authentication failure summary could not be recorded');
    });
  }

  private windowFor(clientKey: string, now: number): FailureWindow {
    let key = clientKey;
    if (!this.windows.has(key) && this.windows.size >= this.maxTrackedClients) key = OVERFLOW_CLIENT;
    let window = this.windows.get(key);
    if (!window) {
      window = { startedAt: now, recorded: 0, suppressed: 0, codes: new Map(), method: 'oidc-access-token' };
      this.windows.set(key, window);
    }
    return window;
  }

  private async append(type: 'authentication.succeeded', identity: Identity, payload: AuthenticationSucceeded): Promise<void>;
  private async append(type: 'authentication.failed', identity: null, payload: AuthenticationFailed): Promise<void>;
  private async append(type: 'authentication.succeeded' | 'authentication.failed', identity: Identity | null, payload: AuthenticationSucceeded | AuthenticationFailed): Promise<void> {
    const stream = streamName('auth', randomUUID());
    const event =
      type === 'authentication.succeeded'
        ? this.events.create({ type, stream, sequence: 0, identity, payload: payload as AuthenticationSucceeded })
        : this.events.create({ type, stream, sequence: 0, identity, payload: payload as AuthenticationFailed });
    await this.options.eventStore.append(stream, [event], { expectedRevision: 'no-stream' });
  }

  private track<T>(promise: Promise<T>): Promise<T> {
    this.pending.add(promise);
    void promise.finally(() => this.pending.delete(promise)).catch(() => undefined);
    return promise;
  }
}
