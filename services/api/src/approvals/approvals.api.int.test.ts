// The approver API against the real OIDC provider of the test harness: a gateway-side
// EventSourcedApprovalGate holds commands on the same event store, approvers decide over HTTP with
// their own access tokens (groups checked on the token presented), and webhooks configured in
// custodian.yaml reach a real local receiver that fails twice.
import 'reflect-metadata';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventSourcedApprovalGate, approvalStream, notificationId, notificationStream, verifyWebhookSignature } from '@custodian/approvals';
import { EventFactory, type CustodianEvent, type Identity } from '@custodian/event-contracts';
import { SqliteEventStore } from '@custodian/event-store-sqlite';
import { createLogger } from '@custodian/observability';
import { startNestService, type RunningNestService } from '@custodian/observability/nest';
import { ConfigError, loadConfig } from '@custodian/runtime-config';
import { TEST_POLICY, boundApprovalRequest } from '@custodian/approvals/testing';
import { maskText } from '@custodian/masking';
import type { ApprovalRequest } from '@custodian/session-pipeline';
import { configuredIdentity } from '@custodian/service-host';
import { freePort, startOidcProvider, type StartedOidcProvider } from '@custodian/test-harness';
import { ApiModule, configuredApprovals, type ApiErrorBody, type ApprovalListResponse, type ApprovalResponse } from '../index.js';

const dir = mkdtempSync(join(tmpdir(), 'custodian-api-approvals-'));
const webhookSecret = 'whsec-api-approvals-test';
let idp: StartedOidcProvider;
let store: SqliteEventStore;
let service: RunningNestService;
let gate: EventSourcedApprovalGate;
let api: string;
let hook: Server;
const hookRequests: { headers: IncomingHttpHeaders; body: string; status: number }[] = [];
/** The receiver fails the first two attempts of every delivery. */
const attemptsByDelivery = new Map<string, number>();

const sessionId = randomUUID();
let alice: Identity;
let agent: Identity;

beforeAll(async () => {
  idp = await startOidcProvider({
    clients: [
      { clientId: 'agent-7', kind: 'agent', groups: ['agents'] },
      { clientId: 'alice', kind: 'human', groups: ['dba-approvers'] },
      { clientId: 'bob', kind: 'human', groups: ['dba-approvers'] },
      { clientId: 'carol', kind: 'human', groups: ['security'] },
      { clientId: 'dave', kind: 'human', groups: ['dba-approvers', 'oncall'] },
      { clientId: 'mallory', kind: 'human', groups: ['developers'] },
      { clientId: 'ci-bot', kind: 'service', groups: ['dba-approvers'] },
      { clientId: 'erin', kind: 'human', groups: ['dba-approvers'] },
    ],
  });
  agent = { subject: 'agent-7', issuer: idp.issuer, groups: ['agents'], kind: 'agent' };
  alice = { subject: 'alice', issuer: idp.issuer, groups: ['dba-approvers'], kind: 'human' };

  hook = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const delivery = String(req.headers['custodian-delivery']);
      const attempt = (attemptsByDelivery.get(delivery) ?? 0) + 1;
      attemptsByDelivery.set(delivery, attempt);
      res.statusCode = attempt <= 2 ? 503 : 204;
      hookRequests.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8'), status: res.statusCode });
      res.end();
    });
  });
  await new Promise<void>((resolve) => hook.listen(0, '127.0.0.1', resolve));
  const hookUrl = `http://127.0.0.1:${(hook.address() as AddressInfo).port}/custodian`;

  const port = await freePort();
  api = `http://127.0.0.1:${port}`;
  const configFile = join(dir, 'custodian.yaml');
  writeFileSync(
    configFile,
    JSON.stringify({
      dataDir: join(dir, 'data'),
      identity: { issuers: [{ issuer: idp.issuer, audiences: [idp.defaultAudience] }] },
      approvals: {
        publicUrl: api,
        notifications: {
          retry: { maxAttempts: 4, initialDelaySeconds: 0.05, maxDelaySeconds: 0.2 },
          webhooks: [{ name: 'ops', url: hookUrl, format: 'generic', secret: { fromEnv: 'TEST_WEBHOOK_SECRET' }, events: ['approval.requested'] }],
        },
      },
    }),
  );
  const loaded = loadConfig({ file: configFile, env: {}, cwd: dir });
  store = await SqliteEventStore.open({ path: join(dir, 'events.sqlite'), pollIntervalMs: 50 });
  // The session the held commands belong to, as the gateway records it.
  const events = new EventFactory({ service: 'gateway', instance: 'gw-test' });
  const stream = `session-${sessionId}`;
  await store.append(
    stream,
    [
      events.create({ type: 'session.opened', stream, sequence: 0, identity: agent, payload: { sessionId, connection: { name: 'orders-prod', protocol: 'postgres' }, client: { address: '127.0.0.1:5000' } } }),
      events.create({ type: 'command.issued', stream, sequence: 1, identity: agent, payload: { sessionId, commandId: randomUUID(), kind: 'sql', text: 'SELECT count(*) FROM orders' } } as Parameters<EventFactory['create']>[0]) as CustodianEvent,
    ],
    { expectedRevision: 'no-stream' },
  );
  const logger = createLogger({ service: 'api', level: 'warn', destination: { write: () => undefined } });
  service = await startNestService({
    module: ApiModule.register({
      eventStore: store,
      logger,
      identity: configuredIdentity(loaded, { logger }),
      approvals: configuredApprovals(loaded, { env: { TEST_WEBHOOK_SECRET: webhookSecret } }),
      listenHost: '127.0.0.1',
      instance: 'api-test',
      failureEvents: { failuresPerClient: 10_000, failuresTotal: 10_000 },
    }),
    logger,
    listen: { host: '127.0.0.1', port },
    shutdownHooks: false,
  });
  gate = new EventSourcedApprovalGate({ eventStore: store, instance: 'gw-test', pollIntervalMs: 50 });
  await gate.start();
});

afterAll(async () => {
  await gate?.close();
  await service?.close();
  await store?.close();
  await idp?.stop();
  await new Promise((resolve) => (hook ? hook.close(resolve) : resolve(undefined)));
  rmSync(dir, { recursive: true, force: true });
});

const tokens = new Map<string, string>();
async function tokenOf(clientId: string, fresh = false): Promise<string> {
  const cached = tokens.get(clientId);
  if (cached && !fresh) return cached;
  const { accessToken } = await idp.issueToken({ clientId });
  tokens.set(clientId, accessToken);
  return accessToken;
}

async function call(method: 'GET' | 'POST', path: string, who: string | undefined, body?: unknown): Promise<Response> {
  const headers: Record<string, string> = {};
  if (who) headers.authorization = `Bearer ${who.includes('.') ? who : await tokenOf(who)}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  return fetch(`${api}${path}`, { method, headers, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
}

async function expectRefused(response: Response, status: number, code: string): Promise<void> {
  const text = await response.text();
  expect(response.status, text).toBe(status);
  expect((JSON.parse(text) as ApiErrorBody).error.code).toBe(code);
}

function request(overrides: Partial<ApprovalRequest> = {}): ApprovalRequest {
  return boundApprovalRequest({
    approvalId: randomUUID(),
    sessionId,
    commandId: randomUUID(),
    requester: agent,
    connection: { name: 'orders-prod', protocol: 'postgres' },
    command: 'DELETE FROM orders WHERE id = $1',
    ruleId: 'hold-deletes',
    approverGroups: ['dba-approvers', 'security'],
    required: 1,
    timeoutSeconds: 60,
    grantScope: { kind: 'once' },
    language: 'sql',
    policy: TEST_POLICY,
    ...overrides,
  });
}

/** Holds a command through the gate (as the gateway does) and waits until the API lists it. */
async function hold(overrides: Partial<ApprovalRequest> = {}): Promise<{ req: ApprovalRequest; outcome: ReturnType<EventSourcedApprovalGate['request']>; client: AbortController }> {
  const req = request(overrides);
  const client = new AbortController();
  const outcome = gate.request(req, client.signal);
  outcome.catch(() => undefined);
  for (let i = 0; i < 200; i++) {
    const list = (await (await call('GET', '/v1/approvals', 'bob')).json()) as ApprovalListResponse;
    if (list.approvals.some((a) => a.approvalId === req.approvalId)) return { req, outcome, client };
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error('the held command never reached the approver queue');
}

async function streamTypes(approvalId: string): Promise<string[]> {
  const types: string[] = [];
  for await (const r of store.readStream(approvalStream(approvalId))) types.push(r.event.type);
  return types;
}

describe('approver API', () => {
  it('refuses anonymous callers', async () => {
    await expectRefused(await call('GET', '/v1/approvals', undefined), 401, 'AUTHENTICATION_REQUIRED');
    await expectRefused(await call('POST', `/v1/approvals/${randomUUID()}/approve`, undefined, { justification: 'x' }), 401, 'AUTHENTICATION_REQUIRED');
  });

  it('lists pending approvals to their approvers (and the requester), shows them with the session so far; others see nothing', async () => {
    const { req, client } = await hold();
    const forBob = (await (await call('GET', '/v1/approvals', 'bob')).json()) as ApprovalListResponse;
    const mine = forBob.approvals.find((a) => a.approvalId === req.approvalId);
    expect(mine).toMatchObject({ status: 'pending', command: req.command, ruleId: 'hold-deletes', connection: { name: 'orders-prod' }, requester: { subject: 'agent-7', kind: 'agent' }, required: 1, approvals: 0, canDecide: true });
    const forMallory = (await (await call('GET', '/v1/approvals', 'mallory')).json()) as ApprovalListResponse;
    expect(forMallory.approvals.some((a) => a.approvalId === req.approvalId)).toBe(false);
    const forAgent = (await (await call('GET', '/v1/approvals', 'agent-7')).json()) as ApprovalListResponse;
    expect(forAgent.approvals.find((a) => a.approvalId === req.approvalId)?.canDecide).toBe(false);

    const shown = await call('GET', `/v1/approvals/${req.approvalId}`, 'carol');
    expect(shown.status).toBe(200);
    const body = (await shown.json()) as ApprovalResponse;
    expect(body.approval).toMatchObject({ approvalId: req.approvalId, status: 'pending', command: req.command, canDecide: true, decisions: [], revision: 0 });
    expect(body.session?.events.map((e) => e.event.type)).toEqual(['session.opened', 'command.issued']);
    expect(body.session).toMatchObject({ sessionId, stream: `session-${sessionId}`, truncated: false });
    await expectRefused(await call('GET', `/v1/approvals/${req.approvalId}`, 'mallory'), 404, 'APPROVAL_NOT_FOUND');
    await expectRefused(await call('GET', '/v1/approvals/not-a-uuid', 'bob'), 400, 'APPROVAL_ID_INVALID');
    await expectRefused(await call('GET', '/v1/approvals?status=maybe', 'bob'), 400, 'APPROVAL_STATUS_INVALID');
    client.abort();
  });

  it('shows approvers the full command with its literal values and parameters, masked only where the gateway masked it', async () => {
    // The gateway masks before it requests: an email in the text and a card number in a parameter.
    const command = maskText("UPDATE customers SET status = $1, email = 'jane.doe@example.com' WHERE id = 102").text;
    const parameters = ['shipped', maskText('4111 1111 1111 1111').text, null];
    const { req, client } = await hold({ command, parameters });
    const expected = { command, language: 'sql', parameters: ['shipped', '[REDACTED:card]', null], policy: TEST_POLICY, commandDigest: req.commandDigest };
    const listed = (await (await call('GET', '/v1/approvals', 'bob')).json()) as ApprovalListResponse;
    expect(listed.approvals.find((a) => a.approvalId === req.approvalId)).toMatchObject(expected);
    const shownResponse = await call('GET', `/v1/approvals/${req.approvalId}`, 'bob');
    const shownText = await shownResponse.text();
    const shown = JSON.parse(shownText) as ApprovalResponse;
    expect(shown.approval).toMatchObject(expected);
    expect(shown.approval.command).toContain('id = 102');
    expect(shown.approval.command).toContain("email = '[REDACTED:email]'");
    for (const text of [shownText, JSON.stringify(listed)]) {
      expect(text).not.toContain('jane.doe@example.com');
      expect(text).not.toContain('4111');
    }
    client.abort();
  });

  it('a second identity approves: the held command is granted, the event bound to the approver', async () => {
    const { req, outcome } = await hold();
    await expectRefused(await call('POST', `/v1/approvals/${req.approvalId}/approve`, 'bob', {}), 400, 'APPROVAL_JUSTIFICATION_REQUIRED');
    await expectRefused(await call('POST', `/v1/approvals/${req.approvalId}/approve`, 'bob', { justification: '  ' }), 400, 'APPROVAL_JUSTIFICATION_REQUIRED');
    const approved = await call('POST', `/v1/approvals/${req.approvalId}/approve`, 'bob', { justification: 'ticket OPS-42' });
    expect(approved.status).toBe(200);
    expect(((await approved.json()) as ApprovalResponse).approval).toMatchObject({ status: 'granted', approvals: 1, canDecide: false, decisions: [{ approver: { subject: 'bob' }, justification: 'ticket OPS-42' }] });
    expect(await outcome).toMatchObject({ outcome: 'granted', approvers: [{ subject: 'bob', issuer: idp.issuer, groups: ['dba-approvers'] }], commandDigest: req.commandDigest });
    const granted: CustodianEvent[] = [];
    for await (const r of store.readStream(approvalStream(req.approvalId))) granted.push(r.event);
    expect(granted.at(-1)).toMatchObject({ type: 'approval.granted', identity: { subject: 'bob', issuer: idp.issuer, kind: 'human' }, source: { service: 'api', instance: 'api-test' } });
    // Deny after approve: one outcome.
    await expectRefused(await call('POST', `/v1/approvals/${req.approvalId}/deny`, 'dave', { justification: 'too late' }), 409, 'APPROVAL_NOT_PENDING');
  });

  it('the requester cannot approve their own request, with any token; nor can non-approvers or non-humans', async () => {
    const { req, client } = await hold({ requester: alice });
    const first = await tokenOf('alice');
    const second = await tokenOf('alice', true);
    expect(second).not.toBe(first);
    await expectRefused(await call('POST', `/v1/approvals/${req.approvalId}/approve`, first, { justification: 'mine' }), 403, 'APPROVAL_SELF_DECISION_FORBIDDEN');
    await expectRefused(await call('POST', `/v1/approvals/${req.approvalId}/approve`, second, { justification: 'mine, other token' }), 403, 'APPROVAL_SELF_DECISION_FORBIDDEN');
    await expectRefused(await call('POST', `/v1/approvals/${req.approvalId}/approve`, 'mallory', { justification: 'trust me' }), 403, 'APPROVAL_NOT_AN_APPROVER');
    await expectRefused(await call('POST', `/v1/approvals/${req.approvalId}/approve`, 'ci-bot', { justification: 'automated' }), 403, 'APPROVAL_APPROVER_NOT_HUMAN');
    expect(await streamTypes(req.approvalId)).toEqual(['approval.requested']);
    client.abort();
  });

  it('groups are checked on the token presented at decision time', async () => {
    const { req, client } = await hold();
    // Erin leaves the approver group; her next token says so.
    idp.registerClient({ clientId: 'erin', kind: 'human', groups: ['developers'] });
    await expectRefused(await call('POST', `/v1/approvals/${req.approvalId}/approve`, await tokenOf('erin', true), { justification: 'ok' }), 403, 'APPROVAL_NOT_AN_APPROVER');
    expect(await streamTypes(req.approvalId)).toEqual(['approval.requested']);
    client.abort();
  });

  it('deny resolves the held command as denied; approving afterwards is refused', async () => {
    const { req, outcome } = await hold();
    const denied = await call('POST', `/v1/approvals/${req.approvalId}/deny`, 'carol', { justification: 'not during the freeze' });
    expect(denied.status).toBe(200);
    expect(((await denied.json()) as ApprovalResponse).approval.resolution).toMatchObject({ status: 'denied', approver: { subject: 'carol' }, justification: 'not during the freeze' });
    expect(await outcome).toMatchObject({ outcome: 'denied', justification: 'not during the freeze' });
    await expectRefused(await call('POST', `/v1/approvals/${req.approvalId}/approve`, 'bob', { justification: 'ok' }), 409, 'APPROVAL_NOT_PENDING');
  });

  it('2-of-3: one approval leaves it pending, the same approver cannot count twice, a second approver grants', async () => {
    const { req, outcome } = await hold({ required: 2 });
    const first = await call('POST', `/v1/approvals/${req.approvalId}/approve`, 'bob', { justification: 'looks right' });
    expect(((await first.json()) as ApprovalResponse).approval).toMatchObject({ status: 'pending', approvals: 1, canDecide: false });
    await expectRefused(await call('POST', `/v1/approvals/${req.approvalId}/approve`, await tokenOf('bob', true), { justification: 'again' }), 409, 'APPROVAL_ALREADY_APPROVED');
    const second = await call('POST', `/v1/approvals/${req.approvalId}/approve`, 'carol', { justification: 'security ok' });
    expect(((await second.json()) as ApprovalResponse).approval).toMatchObject({ status: 'granted', approvals: 2 });
    expect(await outcome).toMatchObject({ outcome: 'granted', approvers: [{ subject: 'bob' }, { subject: 'carol' }] });
  });

  it('two approvers at once: exactly one outcome', async () => {
    const { req, outcome } = await hold();
    const responses = await Promise.all([
      call('POST', `/v1/approvals/${req.approvalId}/approve`, 'bob', { justification: 'ok' }),
      call('POST', `/v1/approvals/${req.approvalId}/approve`, 'dave', { justification: 'ok' }),
      call('POST', `/v1/approvals/${req.approvalId}/deny`, 'carol', { justification: 'no' }),
    ]);
    const statuses = responses.map((r) => r.status).sort();
    expect(statuses).toEqual([200, 409, 409]);
    const types = await streamTypes(req.approvalId);
    expect(types.filter((t) => t !== 'approval.requested')).toHaveLength(1);
    expect((await outcome).outcome).toBe(types.at(-1) === 'approval.granted' ? 'granted' : 'denied');
  });

  it('approve after expiry: refused, and the expiry is what the stream records', async () => {
    const req = request({ timeoutSeconds: 1 });
    // A request nobody waits on any more (its gateway is gone), so nobody else records the expiry.
    await gate.handlers.request.execute({ request: req });
    await new Promise((r) => setTimeout(r, 1_100));
    await expectRefused(await call('POST', `/v1/approvals/${req.approvalId}/approve`, 'bob', { justification: 'late' }), 409, 'APPROVAL_EXPIRED');
    expect(await streamTypes(req.approvalId)).toEqual(['approval.requested', 'approval.expired']);
    const shown = (await (await call('GET', `/v1/approvals/${req.approvalId}`, 'bob')).json()) as ApprovalResponse;
    expect(shown.approval).toMatchObject({ status: 'expired', canDecide: false });
  });

  it('notifies the configured webhook, signed, retried after the receiver failed twice; each attempt an event', async () => {
    const { req, client } = await hold();
    const requestedId = await (async () => {
      for await (const r of store.readStream(approvalStream(req.approvalId))) return r.event.id;
      return '';
    })();
    const delivery = notificationId(requestedId, 'ops');
    const attempts: CustodianEvent[] = [];
    for (let i = 0; i < 200 && attempts.length < 3; i++) {
      attempts.length = 0;
      for await (const r of store.readStream(notificationStream(delivery))) attempts.push(r.event);
      if (attempts.length < 3) await new Promise((r) => setTimeout(r, 25));
    }
    expect(attempts.map((e) => e.type)).toEqual(['notification.failed', 'notification.failed', 'notification.delivered']);
    const mine = hookRequests.filter((r) => r.headers['custodian-delivery'] === delivery);
    expect(mine.map((r) => r.status)).toEqual([503, 503, 204]);
    for (const r of mine) verifyWebhookSignature({ secret: webhookSecret, signature: r.headers['custodian-signature'] as string, deliveryId: delivery, body: r.body });
    expect(JSON.parse(mine[0]?.body ?? '{}')).toMatchObject({ type: 'approval.requested', approval: { approvalId: req.approvalId }, links: { approval: `${api}/v1/approvals/${req.approvalId}` } });
    client.abort();
  });
});

describe('configuredApprovals', () => {
  function load(approvals: unknown): ReturnType<typeof loadConfig> {
    const file = join(dir, `approvals-${randomUUID()}.yaml`);
    writeFileSync(file, JSON.stringify({ dataDir: join(dir, 'cfg'), approvals }));
    return loadConfig({ file, env: {}, cwd: dir });
  }

  it('resolves webhook URLs and secrets from references, the read model into dataDir', () => {
    const options = configuredApprovals(
      load({ readModel: 'file', webhooks: undefined, notifications: { webhooks: [{ name: 'slack-dba', url: { fromEnv: 'SLACK_URL' }, format: 'slack' }] } }),
      { env: { SLACK_URL: 'https://hooks.slack.example/services/T0/B0/secret' } },
    );
    expect(options.readModelPath).toBe(join(dir, 'cfg', 'approvals-api.sqlite'));
    expect(options.notifications?.channels).toEqual([{ name: 'slack-dba', url: 'https://hooks.slack.example/services/T0/B0/secret', format: 'slack' }]);
    expect(options.sweep).toEqual({ intervalMs: 30_000, graceMs: 5_000 });
  });

  it('refuses a generic webhook without a signing secret, and an unresolvable reference', () => {
    expect(() => load({ notifications: { webhooks: [{ name: 'ops', url: 'https://hooks.example/x' }] } })).toThrow(ConfigError);
    expect(() => configuredApprovals(load({ notifications: { webhooks: [{ name: 'ops', url: 'https://hooks.example/x', secret: { fromEnv: 'NOPE' } }] } }), { env: {} })).toThrow(/NOPE is not set/);
  });
});
