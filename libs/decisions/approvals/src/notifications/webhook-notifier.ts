// Notifies approvers through webhooks: every approval request (and every outcome) is POSTed, signed
// with HMAC, to each configured channel, retried with exponential backoff. Each attempt is an event
// (`notification.delivered` / `notification.failed`) on the stream `notification-<notificationId>`,
// appended with optimistic concurrency, so two notifier replicas never both record one attempt and
// a restarted notifier resumes where the recorded attempts stopped.
//
// Driven by the event store (a checkpointed subscription), never by the in-process bus. Deliveries
// run in the background; the checkpoint never passes an event whose deliveries are unfinished
// (SafeCheckpoints), so a crash re-delivers it and the recorded attempts say what is left to do.
import { EventsHandler } from '@nestjs/cqrs';
import { v5 as uuidv5 } from 'uuid';
import { EventFactory, formatRfc3339Micros, type Clock, type CustodianEvent, type EventSource } from '@custodian/event-contracts';
import { WrongExpectedRevisionError, type CheckpointStore, type EventStore, type GlobalPosition, type RecordedEvent } from '@custodian/event-store';
import type { Projection } from '@custodian/evidence-pipeline';
import { Alarm } from '../alarm.js';
import { isApprovalEvent, type ApprovalEvent } from '../approval.js';
import { ApprovalEventRecorded, type ApprovalEventHandler } from '../approval-events.js';
import { ApprovalRepository, serviceIdentity } from '../approval-repository.js';
import { SILENT_LOGGER, type ApprovalsLogger } from '../approvals-logger.js';
import { renderNotification, type NotificationFormat } from './approval-notification-message.js';
import { DELIVERY_HEADER, EVENT_HEADER, SIGNATURE_HEADER, signWebhook } from './webhook-signature.js';

/** Events a channel can be told about. */
export type NotifiedEvent = 'approval.requested' | 'approval.granted' | 'approval.denied' | 'approval.expired' | 'approval.cancelled';
export const DEFAULT_NOTIFIED_EVENTS: readonly NotifiedEvent[] = ['approval.requested', 'approval.granted', 'approval.denied', 'approval.expired', 'approval.cancelled'];

export interface WebhookChannel {
  /** Names the channel in events and logs (the URL never appears there: a Slack URL is a credential). `[a-z0-9][a-z0-9-]*`, ≤ 64. */
  readonly name: string;
  /** http(s) URL (resolved from its secret reference). */
  readonly url: string;
  readonly format: NotificationFormat;
  /** HMAC key of `Custodian-Signature` (required for `generic`). */
  readonly secret?: string;
  /** Default: the request and every outcome (`approval.granted` only when final). */
  readonly events?: readonly NotifiedEvent[];
}

export interface RetryPolicy {
  /** Attempts in all, the first included (default 5). */
  readonly maxAttempts?: number;
  /** Wait before the second attempt; doubled each time (default 1000 ms). */
  readonly initialDelayMs?: number;
  /** Upper bound of one wait (default 60 000 ms). */
  readonly maxDelayMs?: number;
}

export interface WebhookNotifierOptions {
  readonly eventStore: EventStore;
  /** `source` of the notification events (the API). */
  readonly source: EventSource;
  readonly channels: readonly WebhookChannel[];
  readonly retry?: RetryPolicy;
  /** Per attempt (default 10 000 ms). */
  readonly timeoutMs?: number;
  /** Public base URL of the API: notifications link to `<publicUrl>/v1/approvals/<id>`. */
  readonly publicUrl?: string;
  /** Outcomes recorded longer ago than this are not notified (a first start on an old log); default 1 h. Requests are notified while they can still be decided. */
  readonly staleAfterMs?: number;
  /** Subscription id (checkpoint name); default `approvals-notifier`. */
  readonly name?: string;
  readonly clock?: Clock;
  readonly logger?: ApprovalsLogger;
}

export type NotificationErrorCode = 'NOTIFICATION_CHANNEL_INVALID';

export class NotificationConfigError extends Error {
  override readonly name = 'NotificationConfigError';
  constructor(
    readonly code: NotificationErrorCode,
    message: string,
  ) {
    super(message);
  }
}

const CHANNEL_NAME = /^[a-z0-9][a-z0-9-]{0,63}$/;
/** Namespace of notification ids: uuidv5(`<event id>/<channel>`). */
const NOTIFICATION_NAMESPACE = '2f8f6f8e-5d1c-4c35-9a53-7c0b3f0d9e61';

export function checkChannels(channels: readonly WebhookChannel[]): void {
  const names = new Set<string>();
  for (const channel of channels) {
    if (!CHANNEL_NAME.test(channel.name)) throw new NotificationConfigError('NOTIFICATION_CHANNEL_INVALID', `webhook name ${JSON.stringify(channel.name)} must match ${CHANNEL_NAME.source}`);
    if (names.has(channel.name)) throw new NotificationConfigError('NOTIFICATION_CHANNEL_INVALID', `webhook name ${channel.name} is used twice`);
    names.add(channel.name);
    let url: URL;
    try {
      url = new URL(channel.url);
    } catch {
      throw new NotificationConfigError('NOTIFICATION_CHANNEL_INVALID', `webhook ${channel.name}: the URL is not a URL`);
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new NotificationConfigError('NOTIFICATION_CHANNEL_INVALID', `webhook ${channel.name}: the URL must be http(s)`);
    if (channel.format === 'generic' && !channel.secret) throw new NotificationConfigError('NOTIFICATION_CHANNEL_INVALID', `webhook ${channel.name}: a generic webhook needs a signing secret`);
  }
}

export function notificationId(subjectEventId: string, channel: string): string {
  return uuidv5(`${subjectEventId}/${channel}`, NOTIFICATION_NAMESPACE);
}

export function notificationStream(id: string): string {
  return `notification-${id}`;
}

type AttemptResult =
  | { readonly ok: true; readonly statusCode: number }
  | { readonly ok: false; readonly statusCode?: number; readonly errorCode: 'NOTIFICATION_HTTP_STATUS' | 'NOTIFICATION_NETWORK_ERROR' | 'NOTIFICATION_TIMEOUT'; readonly reason: string; readonly retryable: boolean };

/** Positions handled, and which of them still have deliveries running: the checkpoint stays before the oldest of those. */
class SafeCheckpoints implements CheckpointStore {
  private readonly open: { readonly before: GlobalPosition | undefined; remaining: number }[] = [];

  constructor(private readonly base: CheckpointStore) {}

  /** Registers an event with deliveries running; `before` is the position handled before it. */
  track(before: GlobalPosition | undefined): { done(): void } {
    const entry = { before, remaining: 1 };
    this.open.push(entry);
    return {
      done: () => {
        entry.remaining = 0;
        while (this.open[0]?.remaining === 0) this.open.shift();
      },
    };
  }

  load(subscriptionId: string): Promise<GlobalPosition | undefined> {
    return this.base.load(subscriptionId);
  }

  async save(subscriptionId: string, position: GlobalPosition): Promise<void> {
    const oldest = this.open[0];
    if (!oldest) return this.base.save(subscriptionId, position);
    if (oldest.before) await this.base.save(subscriptionId, oldest.before);
  }
}

@EventsHandler(ApprovalEventRecorded)
export class WebhookNotifier implements ApprovalEventHandler {
  readonly checkpoints: SafeCheckpoints;
  private readonly repository: ApprovalRepository;
  private readonly factory: EventFactory;
  private readonly logger: ApprovalsLogger;
  private readonly clock: Clock;
  private readonly running = new Set<Promise<void>>();
  private readonly alarms = new Set<Alarm>();
  private lastSeen: GlobalPosition | undefined;
  private closed = false;

  constructor(private readonly options: WebhookNotifierOptions) {
    checkChannels(options.channels);
    this.clock = options.clock ?? { nowMicros: () => BigInt(Date.now()) * 1000n };
    this.repository = new ApprovalRepository({ eventStore: options.eventStore, source: options.source, clock: this.clock });
    this.factory = new EventFactory(options.source, options.clock);
    this.logger = options.logger ?? SILENT_LOGGER;
    this.checkpoints = new SafeCheckpoints(options.eventStore.checkpoints);
  }

  /** The subscription to run with runProjection (pass `checkpoints` too). */
  projection(): Projection {
    return {
      name: this.options.name ?? 'approvals-notifier',
      handle: async (recorded: RecordedEvent) => {
        const event = recorded.event;
        if (isApprovalEvent(event)) await this.handle(new ApprovalEventRecorded({ ...recorded, event }));
        this.lastSeen = recorded.position;
      },
    };
  }

  handle({ recorded, event }: ApprovalEventRecorded): void {
    if (this.closed) return;
    const channels = this.options.channels.filter((c) => (c.events ?? DEFAULT_NOTIFIED_EVENTS).includes(event.type) && this.worthNotifying(event, recorded));
    if (channels.length === 0) return;
    const tracked = this.checkpoints.track(this.lastSeen);
    const work = Promise.allSettled(channels.map((channel) => this.deliver(channel, event)))
      .then((results) => {
        for (const r of results) if (r.status === 'rejected') this.logger.error({ err: r.reason, eventId: event.id }, 'notification delivery failed');
        // An interrupted delivery (shutdown) keeps the checkpoint before its event: redone at the next start.
        if (!this.closed) tracked.done();
      })
      .finally(() => this.running.delete(work));
    this.running.add(work);
  }

  /** Resolves when every delivery started so far has finished (tests; shutdown uses close()). */
  async idle(): Promise<void> {
    while (this.running.size > 0) await Promise.allSettled([...this.running]);
  }

  /** Interrupts backoff waits; deliveries stop after their attempt in hand. Their checkpoint stays behind them. */
  async close(): Promise<void> {
    this.closed = true;
    for (const alarm of this.alarms) alarm.wake();
    await this.idle();
  }

  private nowMs(): number {
    return Number(this.clock.nowMicros() / 1000n);
  }

  private worthNotifying(event: ApprovalEvent, recorded: RecordedEvent): boolean {
    const now = this.nowMs();
    if (event.type === 'approval.requested') return Date.parse(event.payload.expiresAt) > now;
    if (event.type === 'approval.granted' && !event.payload.final) return false;
    return now - Date.parse(recorded.recordedAt) <= (this.options.staleAfterMs ?? 3_600_000);
  }

  private async deliver(channel: WebhookChannel, event: ApprovalEvent): Promise<void> {
    const id = notificationId(event.id, channel.name);
    const stream = notificationStream(id);
    // What was already recorded (a restart, another replica): resume after it.
    let revision: number | 'no-stream' = 'no-stream';
    let nextAttempt = 1;
    let notBefore = 0;
    for await (const r of this.options.eventStore.readStream(stream)) {
      revision = r.revision;
      const e = r.event;
      if (e.type === 'notification.delivered') return;
      if (e.type === 'notification.failed') {
        if (e.payload.final) return;
        nextAttempt = e.payload.attempt + 1;
        notBefore = e.payload.nextAttemptAt ? Date.parse(e.payload.nextAttemptAt) : 0;
      }
    }
    const approval = await this.repository.load(event.payload.approvalId);
    if (!approval) return;
    const body = renderNotification(channel.format, {
      deliveryId: id,
      event,
      approval,
      ...(this.options.publicUrl ? { approvalUrl: `${this.options.publicUrl.replace(/\/+$/, '')}/v1/approvals/${approval.approvalId}` } : {}),
    });
    const maxAttempts = Math.max(1, this.options.retry?.maxAttempts ?? 5);
    let previous: CustodianEvent | undefined;
    for (let attempt = nextAttempt; attempt <= maxAttempts; attempt++) {
      if (!(await this.waitUntil(notBefore))) return;
      const result = await this.attempt(channel, id, event, body);
      const final = result.ok || !result.retryable || attempt >= maxAttempts;
      const delay = final ? 0 : this.backoff(attempt);
      notBefore = this.nowMs() + delay;
      const common = { notificationId: id, channel: channel.name, format: channel.format, approvalId: event.payload.approvalId, subjectEventId: event.id, subjectEventType: event.type, attempt };
      const recorded = result.ok
        ? this.factory.create({ type: 'notification.delivered', stream, sequence: revision === 'no-stream' ? 0 : revision + 1, identity: serviceIdentity(this.options.source), payload: { ...common, statusCode: result.statusCode }, correlationId: event.correlationId, causationId: previous?.id ?? event.id })
        : this.factory.create({
            type: 'notification.failed',
            stream,
            sequence: revision === 'no-stream' ? 0 : revision + 1,
            identity: serviceIdentity(this.options.source),
            payload: {
              ...common,
              ...(result.statusCode !== undefined ? { statusCode: result.statusCode } : {}),
              errorCode: result.errorCode,
              reason: result.reason.slice(0, 1024),
              final,
              ...(final ? {} : { nextAttemptAt: formatRfc3339Micros(BigInt(notBefore) * 1000n) }),
            },
            correlationId: event.correlationId,
            causationId: previous?.id ?? event.id,
          });
      try {
        const appended = await this.options.eventStore.append(stream, [recorded], { expectedRevision: revision });
        revision = appended.nextExpectedRevision;
        previous = recorded;
      } catch (error) {
        // Another notifier recorded this attempt: it owns the notification from here.
        if (error instanceof WrongExpectedRevisionError) return;
        throw error;
      }
      if (result.ok) {
        this.logger.info({ channel: channel.name, approvalId: event.payload.approvalId, type: event.type, attempt }, 'notification delivered');
        return;
      }
      this.logger.warn({ channel: channel.name, approvalId: event.payload.approvalId, attempt, final, errorCode: result.errorCode, statusCode: result.statusCode }, 'notification attempt failed');
      if (final) return;
    }
  }

  private backoff(attempt: number): number {
    const initial = this.options.retry?.initialDelayMs ?? 1_000;
    const max = this.options.retry?.maxDelayMs ?? 60_000;
    return Math.min(max, initial * 2 ** (attempt - 1));
  }

  /** Sleeps until `at` (ms); false when interrupted by close(). */
  private async waitUntil(at: number): Promise<boolean> {
    const alarm = new Alarm();
    this.alarms.add(alarm);
    try {
      while (!this.closed) {
        const wait = at - this.nowMs();
        if (wait <= 0) return true;
        await alarm.sleep(wait);
      }
      return false;
    } finally {
      this.alarms.delete(alarm);
    }
  }

  private async attempt(channel: WebhookChannel, deliveryId: string, event: ApprovalEvent, body: string): Promise<AttemptResult> {
    const headers: Record<string, string> = { 'content-type': 'application/json', 'user-agent': 'custodian-webhook/1', [DELIVERY_HEADER]: deliveryId, [EVENT_HEADER]: event.type };
    if (channel.secret) headers[SIGNATURE_HEADER] = signWebhook(channel.secret, deliveryId, body, Math.floor(this.nowMs() / 1000));
    const timeoutMs = this.options.timeoutMs ?? 10_000;
    try {
      // No redirects: the configured URL is the only place a notification goes.
      const response = await fetch(channel.url, { method: 'POST', headers, body, redirect: 'manual', signal: AbortSignal.timeout(timeoutMs) });
      await response.body?.cancel().catch(() => undefined);
      if (response.status >= 200 && response.status < 300) return { ok: true, statusCode: response.status };
      const retryable = response.status === 408 || response.status === 429 || response.status >= 500;
      return { ok: false, statusCode: response.status, errorCode: 'NOTIFICATION_HTTP_STATUS', reason: `the receiver answered HTTP ${response.status}`, retryable };
    } catch (error) {
      const name = error instanceof Error ? error.name : '';
      if (name === 'TimeoutError' || name === 'AbortError') return { ok: false, errorCode: 'NOTIFICATION_TIMEOUT', reason: `no answer within ${timeoutMs} ms`, retryable: true };
      const cause = error instanceof Error && error.cause instanceof Error ? ((error.cause as NodeJS.ErrnoException).code ?? error.cause.name) : name;
      return { ok: false, errorCode: 'NOTIFICATION_NETWORK_ERROR', reason: `the request failed (${cause || 'network error'})`, retryable: true };
    }
  }
}
