// Webhook delivery against a real local HTTP receiver: signatures, retries with backoff (a receiver
// that fails twice), each attempt an event, the Slack format, resuming after a restart, replays.
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { CustodianEvent, Identity } from '@custodian/event-contracts';
import { SqliteEventStore } from '@custodian/event-store-sqlite';
import { maskText } from '@custodian/masking';
import type { ApprovalRequest } from '@custodian/session-pipeline';
import { TEST_POLICY, boundApprovalRequest } from '../testing/index.js';
import { ApprovalCommandHandlers, ApproveApprovalCommand, RequestApprovalCommand } from '../approval-commands.js';
import { ApprovalRepository } from '../approval-repository.js';
import { ApprovalsRuntime, type ApprovalsModuleOptions } from '../approvals.module.js';
import type { GenericApprovalNotification, SlackMessage } from './approval-notification-message.js';
import { notificationId, notificationStream, type WebhookChannel } from './webhook-notifier.js';
import { verifyWebhookSignature } from './webhook-signature.js';

interface Received {
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
}

/** A real HTTP receiver answering each request with the next scripted status (then 200). */
class Receiver {
  readonly requests: Received[] = [];
  private server!: Server;
  url = '';

  constructor(private readonly script: number[] = []) {}

  async start(): Promise<this> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        this.requests.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
        res.statusCode = this.script.shift() ?? 200;
        res.end(res.statusCode < 300 ? 'ok' : 'nope');
      });
    });
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/hooks/custodian`;
    return this;
  }

  async waitFor(count: number): Promise<void> {
    for (let i = 0; i < 500 && this.requests.length < count; i++) await new Promise((r) => setTimeout(r, 20));
    expect(this.requests.length).toBeGreaterThanOrEqual(count);
  }

  stop(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

const dir = mkdtempSync(join(tmpdir(), 'custodian-webhooks-'));
const secret = 'whsec-approvals-test';
const agent: Identity = { subject: 'agent-7', issuer: 'https://idp.test', groups: ['agents'], kind: 'agent' };
const bob: Identity = { subject: 'bob', issuer: 'https://idp.test', groups: ['dba-approvers'], kind: 'human' };
let store: SqliteEventStore;
let gateway: ApprovalCommandHandlers;
let api: ApprovalCommandHandlers;
const runtimes: ApprovalsRuntime[] = [];
const receivers: Receiver[] = [];

// A fresh log per test: a notifier starting on a log notifies every request that can still be decided.
beforeEach(async () => {
  store = await SqliteEventStore.open({ path: join(dir, `events-${randomUUID()}.sqlite`), pollIntervalMs: 50 });
  gateway = new ApprovalCommandHandlers(new ApprovalRepository({ eventStore: store, source: { service: 'gateway', instance: 'gw-1' } }));
  api = new ApprovalCommandHandlers(new ApprovalRepository({ eventStore: store, source: { service: 'api', instance: 'api-1' } }));
});

afterEach(async () => {
  for (const runtime of runtimes.splice(0)) await runtime.stop();
  for (const receiver of receivers.splice(0)) await receiver.stop();
  await store?.close();
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

async function receiver(script: number[] = []): Promise<Receiver> {
  const r = await new Receiver(script).start();
  receivers.push(r);
  return r;
}

function startRuntime(channels: WebhookChannel[], overrides: Partial<NonNullable<ApprovalsModuleOptions['notifications']>> = {}): ApprovalsRuntime {
  const runtime = new ApprovalsRuntime({
    eventStore: store,
    source: { service: 'api', instance: 'api-1' },
    sweep: false,
    notifications: { channels, retry: { maxAttempts: 4, initialDelayMs: 100, maxDelayMs: 400 }, publicUrl: 'https://custodian.example.com/', name: `notifier-${randomUUID()}`, ...overrides },
  });
  runtime.start();
  runtimes.push(runtime);
  return runtime;
}

function request(overrides: Partial<ApprovalRequest> = {}): ApprovalRequest {
  return boundApprovalRequest({
    approvalId: randomUUID(),
    sessionId: randomUUID(),
    commandId: randomUUID(),
    requester: agent,
    connection: { name: 'orders-prod', protocol: 'postgres' },
    command: "DELETE FROM orders WHERE email = '***'",
    ruleId: 'hold-deletes',
    approverGroups: ['dba-approvers'],
    required: 1,
    timeoutSeconds: 60,
    grantScope: { kind: 'once' },
    language: 'sql',
    policy: TEST_POLICY,
    ...overrides,
  });
}

async function notificationEvents(subjectEventId: string, channel: string): Promise<CustodianEvent[]> {
  const events: CustodianEvent[] = [];
  for await (const r of store.readStream(notificationStream(notificationId(subjectEventId, channel)))) events.push(r.event);
  return events;
}

async function waitForEvents(subjectEventId: string, channel: string, count: number): Promise<CustodianEvent[]> {
  for (let i = 0; i < 500; i++) {
    const events = await notificationEvents(subjectEventId, channel);
    if (events.length >= count) return events;
    await new Promise((r) => setTimeout(r, 20));
  }
  return notificationEvents(subjectEventId, channel);
}

describe('webhook notifications', () => {
  it('retries with backoff against a receiver that fails twice; every attempt is signed, same delivery id, and an event', async () => {
    const hook = await receiver([500, 503]);
    startRuntime([{ name: 'ops', url: hook.url, format: 'generic', secret, events: ['approval.requested'] }]);
    const req = request();
    const requested = await gateway.request.execute(new RequestApprovalCommand(req));
    await hook.waitFor(3);
    const events = await waitForEvents(requested.id, 'ops', 3);

    const deliveryIds = new Set(hook.requests.map((r) => r.headers['custodian-delivery']));
    expect(deliveryIds).toEqual(new Set([notificationId(requested.id, 'ops')]));
    for (const r of hook.requests) {
      expect(r.headers['content-type']).toBe('application/json');
      expect(r.headers['custodian-event']).toBe('approval.requested');
      expect(() => verifyWebhookSignature({ secret, signature: r.headers['custodian-signature'] as string, deliveryId: r.headers['custodian-delivery'] as string, body: r.body })).not.toThrow();
    }
    expect(new Set(hook.requests.map((r) => r.body)).size).toBe(1);
    const body = JSON.parse(hook.requests[0]?.body ?? '{}') as GenericApprovalNotification;
    expect(body).toMatchObject({
      type: 'approval.requested',
      eventId: requested.id,
      approval: { approvalId: req.approvalId, status: 'pending', command: req.command, ruleId: 'hold-deletes', requester: { subject: 'agent-7', kind: 'agent' }, required: 1, approvals: 0 },
      links: { approval: `https://custodian.example.com/v1/approvals/${req.approvalId}`, cli: `custodian approvals show ${req.approvalId}` },
    });

    expect(events.map((e) => e.type)).toEqual(['notification.failed', 'notification.failed', 'notification.delivered']);
    expect(events.map((e) => e.payload)).toMatchObject([
      { attempt: 1, statusCode: 500, errorCode: 'NOTIFICATION_HTTP_STATUS', final: false, channel: 'ops', format: 'generic', approvalId: req.approvalId, subjectEventId: requested.id },
      { attempt: 2, statusCode: 503, final: false },
      { attempt: 3, statusCode: 200 },
    ]);
    // Each failed attempt says when the next one is due, after it was recorded.
    const due = events.slice(0, 2).map((e) => (e.type === 'notification.failed' ? [Date.parse(e.occurredAt), Date.parse(e.payload.nextAttemptAt ?? '')] : [NaN, NaN]));
    for (const [at, next] of due) expect(next).toBeGreaterThanOrEqual(at ?? NaN);
    expect(events.every((e) => e.identity?.kind === 'service' && e.source.service === 'api' && e.correlationId === req.approvalId)).toBe(true);
    // No URL or secret in any event.
    expect(JSON.stringify(events)).not.toContain(hook.url);
    expect(JSON.stringify(events)).not.toContain(secret);
  });

  it('gives up after the last attempt (final), and at once on a 4xx that retrying cannot fix', async () => {
    const down = await receiver([500, 500, 500, 500]);
    const gone = await receiver([404]);
    startRuntime([
      { name: 'down', url: down.url, format: 'generic', secret, events: ['approval.requested'] },
      { name: 'gone', url: gone.url, format: 'generic', secret, events: ['approval.requested'] },
    ]);
    const requested = await gateway.request.execute(new RequestApprovalCommand(request()));
    const downEvents = await waitForEvents(requested.id, 'down', 4);
    const goneEvents = await waitForEvents(requested.id, 'gone', 1);
    expect(downEvents.map((e) => e.type === 'notification.failed' && [e.payload.attempt, e.payload.final])).toEqual([
      [1, false],
      [2, false],
      [3, false],
      [4, true],
    ]);
    expect(goneEvents.map((e) => e.type === 'notification.failed' && [e.payload.attempt, e.payload.statusCode, e.payload.final])).toEqual([[1, 404, true]]);
    expect(down.requests).toHaveLength(4);
    expect(gone.requests).toHaveLength(1);
  });

  it('records a network failure (nothing listening) as an attempt', async () => {
    const closed = await receiver();
    const url = closed.url;
    await closed.stop();
    receivers.splice(receivers.indexOf(closed), 1);
    startRuntime([{ name: 'nobody', url, format: 'generic', secret, events: ['approval.requested'] }], { retry: { maxAttempts: 1 } });
    const requested = await gateway.request.execute(new RequestApprovalCommand(request()));
    const events = await waitForEvents(requested.id, 'nobody', 1);
    expect(events[0]).toMatchObject({ type: 'notification.failed', payload: { attempt: 1, errorCode: 'NOTIFICATION_NETWORK_ERROR', final: true } });
    expect(events[0]?.payload).not.toHaveProperty('statusCode');
  });

  it('shows the full command with its literal values and parameters, masked only where the gateway masked it, in both formats', async () => {
    const hook = await receiver();
    const slack = await receiver();
    startRuntime([
      { name: 'ops', url: hook.url, format: 'generic', secret, events: ['approval.requested'] },
      { name: 'slack-dba', url: slack.url, format: 'slack', events: ['approval.requested'] },
    ]);
    // The gateway masks before it requests (detectors here: an email in the text, a card number in a parameter).
    const raw = { command: "UPDATE customers SET status = $1, email = 'jane.doe@example.com' WHERE id = 102", parameters: ['shipped', '4111 1111 1111 1111', null] };
    const req = request({ command: maskText(raw.command).text, parameters: raw.parameters.map((p) => (p === null ? null : maskText(p).text)) });
    expect(req.command).toBe("UPDATE customers SET status = $1, email = '[REDACTED:email]' WHERE id = 102");
    const requested = await gateway.request.execute(new RequestApprovalCommand(req));
    expect(requested.payload).toMatchObject({ command: req.command, parameters: ['shipped', '[REDACTED:card]', null], commandDigest: req.commandDigest });
    await hook.waitFor(1);
    await slack.waitFor(1);
    const body = JSON.parse(hook.requests[0]?.body ?? '{}') as GenericApprovalNotification;
    expect(body.approval).toMatchObject({ command: req.command, language: 'sql', parameters: ['shipped', '[REDACTED:card]', null], policy: TEST_POLICY, commandDigest: req.commandDigest });
    expect(body.approval.command).toContain('id = 102');
    const slackText = JSON.stringify((JSON.parse(slack.requests[0]?.body ?? '{}') as SlackMessage).blocks);
    expect(slackText).toContain('id = 102');
    expect(slackText).toContain("$1 = 'shipped'");
    expect(slackText).toContain("$2 = '[REDACTED:card]'");
    expect(slackText).toContain('$3 = NULL');
    for (const sent of [hook.requests[0]?.body ?? '', slack.requests[0]?.body ?? '']) {
      expect(sent).not.toContain('jane.doe@example.com');
      expect(sent).not.toContain('4111');
    }
  });

  it('sends Slack-compatible incoming-webhook messages, for the request and its outcome', async () => {
    const slack = await receiver();
    startRuntime([{ name: 'slack-dba', url: slack.url, format: 'slack' }]);
    const req = request({ command: 'DELETE FROM t WHERE note = \'<b>&``` injected\'' });
    await gateway.request.execute(new RequestApprovalCommand(req));
    await slack.waitFor(1);
    await api.approve.execute(new ApproveApprovalCommand(req.approvalId, bob, 'ticket OPS-7'));
    await slack.waitFor(2);
    const [asked, decided] = slack.requests.map((r) => JSON.parse(r.body) as SlackMessage);
    expect(slack.requests[0]?.headers['custodian-signature']).toBeUndefined();
    expect(asked?.text).toBe('Approval needed: agent-7 on orders-prod (rule hold-deletes)');
    const blocks = JSON.stringify(asked?.blocks);
    expect(blocks).toContain('&lt;b&gt;&amp;');
    expect(blocks).not.toContain('<b>');
    expect(blocks).toContain(`custodian approvals approve ${req.approvalId}`);
    expect(blocks).toContain(`<https://custodian.example.com/v1/approvals/${req.approvalId}|Open approval`);
    // The command stays inside one code block: the fence in it is broken up.
    const code = (asked?.blocks[2] as { text: { text: string } }).text.text;
    expect(code.startsWith('```') && code.endsWith('```')).toBe(true);
    expect(code.slice(3, -3)).not.toContain('```');
    expect(decided?.text).toBe('Approved by bob: agent-7 on orders-prod');
    expect(JSON.stringify(decided?.blocks)).toContain('ticket OPS-7');
  });

  it('resumes after a restart from the recorded attempts; a replay of the log re-sends nothing delivered', async () => {
    const hook = await receiver([500]);
    const name = `notifier-${randomUUID()}`;
    const channel: WebhookChannel = { name: 'ops', url: hook.url, format: 'generic', secret, events: ['approval.requested'] };
    const first = startRuntime([channel], { name, retry: { maxAttempts: 3, initialDelayMs: 60_000 } });
    const requested = await gateway.request.execute(new RequestApprovalCommand(request({ timeoutSeconds: 600 })));
    await waitForEvents(requested.id, 'ops', 1);
    // Stopped while waiting a minute for the second attempt.
    await first.stop();
    runtimes.splice(runtimes.indexOf(first), 1);
    expect(hook.requests).toHaveLength(1);

    // Restarted (same checkpoint): attempt 2 is due at the recorded nextAttemptAt, a minute
    // after attempt 1; a clock one minute ahead makes it due now.
    const later = new ApprovalsRuntime({
      eventStore: store,
      source: { service: 'api', instance: 'api-1' },
      sweep: false,
      clock: { nowMicros: () => BigInt(Date.now() + 61_000) * 1000n },
      notifications: { channels: [channel], retry: { maxAttempts: 3, initialDelayMs: 100 }, name },
    });
    later.start();
    runtimes.push(later);
    const events = await waitForEvents(requested.id, 'ops', 2);
    expect(events.map((e) => e.type === 'notification.delivered' || e.type === 'notification.failed' ? [e.type, e.payload.attempt] : [])).toEqual([
      ['notification.failed', 1],
      ['notification.delivered', 2],
    ]);
    expect(hook.requests).toHaveLength(2);

    // A notifier reading the whole log again (new checkpoint) finds the notification delivered.
    const replay = startRuntime([channel], { name: `notifier-${randomUUID()}` });
    await replay.caughtUp;
    await replay.notifier?.idle();
    await new Promise((r) => setTimeout(r, 200));
    await replay.notifier?.idle();
    expect(hook.requests).toHaveLength(2);
  });
});
