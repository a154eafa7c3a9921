// API contract of the sessions routes (list with filters and keyset paging, one session, its query
// timeline), against the real OIDC provider and a SQLite event store holding sessions as the
// gateway records them (PostgreSQL wire bytes in frame.recorded). Every 200 body is validated
// against the schemas in openapi.yaml; who sees which session follows the stream visibility rules.
import 'reflect-metadata';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { EventFactory, type CustodianEvent, type Identity } from '@custodian/event-contracts';
import { SqliteEventStore } from '@custodian/event-store-sqlite';
import { configuredEvidence } from '@custodian/evidence-host';
import { createLogger } from '@custodian/observability';
import { startNestService, type RunningNestService } from '@custodian/observability/nest';
import { encodeCommandComplete, encodeDataRow, encodeErrorResponse, encodeReadyForQuery } from '@custodian/postgres-wire';
import { loadConfig } from '@custodian/runtime-config';
import { configuredIdentity } from '@custodian/service-host';
import { freePort, startOidcProvider, type StartedOidcProvider } from '@custodian/test-harness';
import { ApiModule, type SessionListResponse, type SessionResponse, type SessionTimelineResponse } from '../index.js';

const dir = mkdtempSync(join(tmpdir(), 'custodian-api-sessions-'));
const openapi = parse(readFileSync(new URL('../../openapi.yaml', import.meta.url), 'utf8')) as Record<string, unknown>;
const ajv = new Ajv2020({ strict: false, validateFormats: false });
ajv.addSchema({ ...openapi, $id: 'openapi' });
let idp: StartedOidcProvider;
let store: SqliteEventStore;
let service: RunningNestService;
let api: string;
const tokens = new Map<string, string>();
const agentSession = randomUUID();
const otherSession = randomUUID();
const heldSession = randomUUID();
const selectId = randomUUID();
const blockedId = randomUUID();
const updateId = randomUUID();

/** The 200 body, after checking it against the operation's response schema in openapi.yaml. */
async function okBody<T>(response: Response, path: string): Promise<T> {
  const text = await response.text();
  expect(response.status, text).toBe(200);
  const body = JSON.parse(text) as T;
  const pointer = `openapi#/paths/${path.replaceAll('/', '~1').replaceAll('{', '%7B').replaceAll('}', '%7D')}/get/responses/200/content/application~1json/schema`;
  const validate = ajv.getSchema(pointer);
  if (!validate) throw new Error(`no schema at ${pointer}`);
  expect(validate(body), JSON.stringify(validate.errors)).toBe(true);
  return body;
}

function get(path: string, who: string): Promise<Response> {
  return fetch(`${api}${path}`, { headers: { authorization: `Bearer ${tokens.get(who) ?? ''}` } });
}

function micros(date: Date): string {
  return date.toISOString().replace('Z', '000Z');
}

beforeAll(async () => {
  idp = await startOidcProvider({
    clients: [
      { clientId: 'agent-7', kind: 'agent', groups: ['analysts'] },
      { clientId: 'agent-9', kind: 'agent', groups: ['analysts'] },
      { clientId: 'bob', kind: 'human', groups: ['dba'] },
      { clientId: 'amy', kind: 'human', groups: ['auditors'] },
    ],
  });
  const port = await freePort();
  api = `http://127.0.0.1:${port}`;
  const configFile = join(dir, 'custodian.yaml');
  writeFileSync(configFile, JSON.stringify({ dataDir: join(dir, 'data'), identity: { issuers: [{ issuer: idp.issuer, audiences: [idp.defaultAudience] }] }, evidence: { auditorGroups: ['auditors'] } }));
  const loaded = loadConfig({ file: configFile, env: {}, cwd: dir });
  store = await SqliteEventStore.open({ path: join(dir, 'events.sqlite'), pollIntervalMs: 20 });
  const factory = new EventFactory({ service: 'gateway', instance: 'gw-test' });
  const identityOf = (subject: string): Identity => ({ subject, issuer: idp.issuer, groups: ['analysts'], kind: 'agent' });
  const policy = { name: 'shop', version: 3, digest: 'a'.repeat(64) };
  const frame = (sessionId: string, direction: 'client-to-upstream' | 'upstream-to-client', offsetMicros: number, messageType: string, data: Buffer) => ({
    type: 'frame.recorded' as const,
    payload: { sessionId, direction, offsetMicros, messageType, data: data.toString('base64'), byteLength: data.length },
  });
  const specs = (sessionId: string, who: string) => {
    const s = sessionId;
    return [
      { type: 'session.opened' as const, payload: { sessionId: s, connection: { name: 'shop', protocol: 'postgres' }, client: { address: '127.0.0.1:5000' } } },
      { type: 'credential.injected' as const, payload: { sessionId: s, connection: { name: 'shop', protocol: 'postgres' }, credentialRef: 'file:/run/secrets/shop', method: 'scram-sha-256' as const } },
      { type: 'command.issued' as const, payload: { sessionId: s, commandId: s === agentSession ? selectId : randomUUID(), kind: 'sql' as const, text: `SELECT name, email FROM customers -- ${who}` } },
      ...(s === agentSession
        ? [
            { type: 'policy.decided' as const, payload: { sessionId: s, commandId: selectId, decision: 'allow' as const, policy, ruleId: 'reads', reason: 'reads are allowed' } },
            frame(s, 'client-to-upstream', 1_000, 'Query', Buffer.from('Q')),
            { type: 'data.masked' as const, payload: { sessionId: s, commandId: selectId, maskings: [{ field: 'email', rule: 'email-column', count: 2 }] } },
            frame(s, 'upstream-to-client', 4_500, 'RowDescription,DataRow*2,CommandComplete,ReadyForQuery', Buffer.concat([encodeDataRow([Buffer.from('Ann'), Buffer.from('a***@example.com')]), encodeDataRow([Buffer.from('Bo'), null]), encodeCommandComplete('SELECT 2'), encodeReadyForQuery('I')])),
            { type: 'command.issued' as const, payload: { sessionId: s, commandId: blockedId, kind: 'sql' as const, text: 'DELETE FROM orders' } },
            { type: 'policy.decided' as const, payload: { sessionId: s, commandId: blockedId, decision: 'block' as const, policy, ruleId: 'no-unbounded-deletes', reason: 'DELETE without WHERE', clientMessage: 'DELETE without WHERE is not allowed' } },
            frame(s, 'upstream-to-client', 6_000, 'ErrorResponse,ReadyForQuery', Buffer.concat([encodeErrorResponse({ severity: 'ERROR', code: '42501', message: 'DELETE without WHERE is not allowed' }), encodeReadyForQuery('I')])),
            { type: 'session.closed' as const, payload: { sessionId: s, reason: 'client-closed' as const, durationMs: 12, frames: { clientToUpstream: 1, upstreamToClient: 2 }, bytes: { clientToUpstream: 1, upstreamToClient: 80 } } },
          ]
        : []),
      ...(s === heldSession
        ? [
            { type: 'command.issued' as const, payload: { sessionId: s, commandId: updateId, kind: 'sql' as const, text: "UPDATE orders SET status = 'shipped' WHERE id = 102" } },
            { type: 'policy.decided' as const, payload: { sessionId: s, commandId: updateId, decision: 'require-approval' as const, policy, ruleId: 'writes-need-approval', reason: 'writes need approval' } },
          ]
        : []),
    ];
  };
  for (const [sessionId, who] of [
    [agentSession, 'agent-7'],
    [otherSession, 'agent-9'],
    [heldSession, 'agent-9'],
  ] as const) {
    const stream = `session-${sessionId}`;
    const events = specs(sessionId, who).map((spec, sequence) => factory.create({ ...spec, stream, sequence, identity: identityOf(who) } as Parameters<EventFactory['create']>[0]) as CustodianEvent);
    await store.append(stream, events, { expectedRevision: 'no-stream' });
  }
  // The held UPDATE's approval request names its session and the approver group dba.
  const approvalId = randomUUID();
  const approvalStream = `approval-${approvalId}`;
  await store.append(
    approvalStream,
    [
      factory.create({
        type: 'approval.requested',
        stream: approvalStream,
        sequence: 0,
        identity: identityOf('agent-9'),
        payload: {
          approvalId,
          sessionId: heldSession,
          commandId: updateId,
          command: "UPDATE orders SET status = 'shipped' WHERE id = 102",
          language: 'sql',
          connection: { name: 'shop', protocol: 'postgres' },
          ruleId: 'writes-need-approval',
          approverGroups: ['dba'],
          required: 1,
          expiresAt: micros(new Date(Date.now() + 60_000)),
          grantScope: { kind: 'once' },
        },
      } as Parameters<EventFactory['create']>[0]) as CustodianEvent,
    ],
    { expectedRevision: 'no-stream' },
  );
  const logger = createLogger({ service: 'api', level: 'warn', destination: { write: () => undefined } });
  service = await startNestService({
    module: ApiModule.register({ eventStore: store, logger, identity: configuredIdentity(loaded, { logger }), evidence: configuredEvidence(loaded, {}), listenHost: '127.0.0.1', instance: 'api-test', dashboardAssets: false }),
    logger,
    listen: { host: '127.0.0.1', port },
    shutdownHooks: false,
  });
  for (const clientId of ['agent-7', 'agent-9', 'bob', 'amy']) tokens.set(clientId, (await idp.issueToken({ clientId })).accessToken);
  // The read model follows the log within a moment.
  for (let i = 0; i < 100; i++) {
    const body = (await (await get('/v1/sessions', 'amy')).json()) as SessionListResponse;
    if (body.sessions.length === 3) break;
    await new Promise((r) => setTimeout(r, 50));
  }
});

afterAll(async () => {
  await service?.close();
  await store?.close();
  await idp?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('GET /v1/sessions', () => {
  it('auditors list every session, newest first, with counts, live flag and credential reference', async () => {
    const body = await okBody<SessionListResponse>(await get('/v1/sessions', 'amy'), '/v1/sessions');
    expect(body.sessions.map((s) => s.sessionId)).toEqual([heldSession, otherSession, agentSession]);
    const closed = body.sessions.find((s) => s.sessionId === agentSession)!;
    expect(closed).toMatchObject({ live: false, closeReason: 'client-closed', durationMs: 12, credentialRef: 'file:/run/secrets/shop', counts: { commands: 2, allowed: 1, blocked: 1, held: 0 } });
    expect(closed.identity?.subject).toBe('agent-7');
    expect(body.sessions.find((s) => s.sessionId === heldSession)).toMatchObject({ live: true, counts: { held: 1 } });
    expect(body.nextCursor).toBeUndefined();
  });

  it('filters by identity, decision, live and time, and pages with a cursor', async () => {
    const byIdentity = await okBody<SessionListResponse>(await get('/v1/sessions?identity=agent-9', 'amy'), '/v1/sessions');
    expect(byIdentity.sessions.map((s) => s.sessionId).sort()).toEqual([otherSession, heldSession].sort());
    expect((await okBody<SessionListResponse>(await get('/v1/sessions?decision=blocked', 'amy'), '/v1/sessions')).sessions.map((s) => s.sessionId)).toEqual([agentSession]);
    expect((await okBody<SessionListResponse>(await get('/v1/sessions?decision=held', 'amy'), '/v1/sessions')).sessions.map((s) => s.sessionId)).toEqual([heldSession]);
    expect((await okBody<SessionListResponse>(await get('/v1/sessions?live=false', 'amy'), '/v1/sessions')).sessions.map((s) => s.sessionId)).toEqual([agentSession]);
    expect((await okBody<SessionListResponse>(await get(`/v1/sessions?from=${encodeURIComponent(new Date(Date.now() + 60_000).toISOString())}`, 'amy'), '/v1/sessions')).sessions).toEqual([]);
    const first = await okBody<SessionListResponse>(await get('/v1/sessions?limit=2', 'amy'), '/v1/sessions');
    expect(first.sessions).toHaveLength(2);
    expect(first.nextCursor).toBeDefined();
    const second = await okBody<SessionListResponse>(await get(`/v1/sessions?limit=2&cursor=${first.nextCursor ?? ''}`, 'amy'), '/v1/sessions');
    expect(second.sessions.map((s) => s.sessionId)).toEqual([agentSession]);
    expect(second.nextCursor).toBeUndefined();
  });

  it('filters by state (live, quiet, ended) and by findings of the evidence views', async () => {
    const live = await okBody<SessionListResponse>(await get('/v1/sessions?state=live', 'amy'), '/v1/sessions');
    expect(live.sessions.map((s) => s.sessionId).sort()).toEqual([otherSession, heldSession].sort());
    expect(live.sessions.every((s) => s.state === 'live' && s.live)).toBe(true);
    expect((await okBody<SessionListResponse>(await get('/v1/sessions?state=ended', 'amy'), '/v1/sessions')).sessions.map((s) => s.sessionId)).toEqual([agentSession]);
    expect((await okBody<SessionListResponse>(await get('/v1/sessions?state=quiet', 'amy'), '/v1/sessions')).sessions).toEqual([]);
    // No event of this test is in the evidence log's checkpointed leaves (no ingest runs here): no session has a finding.
    expect((await okBody<SessionListResponse>(await get('/v1/sessions?findings=true', 'amy'), '/v1/sessions')).sessions).toEqual([]);
  });

  it('anyone else sees their own sessions and those of approvals their groups may decide', async () => {
    expect((await okBody<SessionListResponse>(await get('/v1/sessions', 'agent-7'), '/v1/sessions')).sessions.map((s) => s.sessionId)).toEqual([agentSession]);
    expect((await okBody<SessionListResponse>(await get('/v1/sessions', 'bob'), '/v1/sessions')).sessions.map((s) => s.sessionId)).toEqual([heldSession]);
  });

  it('refuses bad parameters and unauthenticated callers', async () => {
    for (const query of ['decision=maybe', 'live=yes', 'state=dead', 'findings=yes', 'limit=-1', 'from=yesterday', 'cursor=not-a-cursor']) {
      const response = await get(`/v1/sessions?${query}`, 'amy');
      expect(response.status, query).toBe(400);
      expect(((await response.json()) as { error: { code: string } }).error.code).toBe('SESSION_QUERY_INVALID');
    }
    expect((await fetch(`${api}/v1/sessions`)).status).toBe(401);
  });
});

describe('GET /v1/sessions/{id} and /timeline', () => {
  it('the query timeline: statement, decision, rows, tag, masked columns, duration; the blocked statement with its error', async () => {
    const path = `/v1/sessions/${agentSession}/timeline`;
    const body = await okBody<SessionTimelineResponse>(await get(path, 'agent-7'), '/v1/sessions/{sessionId}/timeline');
    expect(body.nextRevision).toBeNull();
    expect(body.commands).toHaveLength(2);
    const [select, blocked] = body.commands;
    expect(select).toMatchObject({ commandId: selectId, text: 'SELECT name, email FROM customers -- agent-7', rows: 2, tag: 'SELECT 2', error: null, durationMicros: 3_500 });
    expect(select?.decision).toMatchObject({ decision: 'allow', ruleId: 'reads', policy: { name: 'shop', version: 3 } });
    expect(select?.maskings).toEqual([{ field: 'email', rule: 'email-column', count: 2 }]);
    expect(blocked).toMatchObject({ commandId: blockedId, text: 'DELETE FROM orders', rows: null, tag: null, error: { code: '42501', message: 'DELETE without WHERE is not allowed' } });
    expect(blocked?.decision?.decision).toBe('block');
    const paged = await okBody<SessionTimelineResponse>(await get(`${path}?fromRevision=5`, 'amy'), '/v1/sessions/{sessionId}/timeline');
    expect(paged.commands.map((c) => c.commandId)).toEqual([blockedId]);
  });

  it('a held command carries its approval as it stands', async () => {
    const path = `/v1/sessions/${heldSession}/timeline`;
    for (let i = 0; i < 100; i++) {
      const body = await okBody<SessionTimelineResponse>(await get(path, 'bob'), '/v1/sessions/{sessionId}/timeline');
      const update = body.commands.find((c) => c.commandId === updateId);
      if (update?.approval) {
        expect(update.approval).toMatchObject({ status: 'pending', approvals: 0, required: 1 });
        expect(update.decision?.decision).toBe('require-approval');
        return;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error('the held command never showed its approval');
  });

  it('one session: visible to its owner, its approvers and auditors; 404 for anyone else, as for a missing one', async () => {
    expect((await okBody<SessionResponse>(await get(`/v1/sessions/${heldSession}`, 'bob'), '/v1/sessions/{sessionId}')).session.sessionId).toBe(heldSession);
    expect((await okBody<SessionResponse>(await get(`/v1/sessions/${agentSession}`, 'amy'), '/v1/sessions/{sessionId}')).session.counts.commands).toBe(2);
    for (const path of [`/v1/sessions/${agentSession}`, `/v1/sessions/${agentSession}/timeline`, `/v1/sessions/${randomUUID()}`]) {
      const response = await get(path, 'bob');
      expect(response.status, path).toBe(404);
      expect(((await response.json()) as { error: { code: string } }).error.code).toBe('SESSION_NOT_FOUND');
    }
    expect((await get('/v1/sessions/not-a-uuid', 'amy')).status).toBe(400);
  });
});

/** An open server-sent event stream: its text so far, and a wait for text matching a test. */
async function openEvents(path: string, who: string): Promise<{ text: () => string; until: (test: (text: string) => boolean) => Promise<string>; close: () => void }> {
  const controller = new AbortController();
  const response = await fetch(`${api}${path}`, { headers: { authorization: `Bearer ${tokens.get(who) ?? ''}` }, signal: controller.signal });
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/);
  let text = '';
  const reader = response.body!.getReader();
  const decoder = new TextDecoder();
  const reading = (async () => {
    for (;;) {
      const { value, done } = await reader.read().catch(() => ({ value: undefined, done: true }));
      if (done) return;
      text += decoder.decode(value, { stream: true });
    }
  })();
  return {
    text: () => text,
    until: async (test) => {
      for (let i = 0; i < 400 && !test(text); i++) await new Promise((r) => setTimeout(r, 25));
      expect(test(text), text).toBe(true);
      return text;
    },
    close: () => {
      controller.abort();
      void reading;
    },
  };
}

describe('GET /v1/live', () => {
  it('tells each caller what changed among what they may see: ids only, after the read models applied it', async () => {
    const bob = await openEvents('/v1/live', 'bob');
    const agent7 = await openEvents('/v1/live', 'agent-7');
    const amy = await openEvents('/v1/live', 'amy');
    try {
      for (const stream of [bob, agent7, amy]) await stream.until((t) => t.includes('event: ready'));
      // A new held command in agent-9's session: bob (dba) may decide it, amy audits; agent-7 sees neither.
      const factory = new EventFactory({ service: 'gateway', instance: 'gw-test' });
      const approvalId = randomUUID();
      const approvalStream = `approval-${approvalId}`;
      await store.append(
        approvalStream,
        [
          factory.create({
            type: 'approval.requested',
            stream: approvalStream,
            sequence: 0,
            identity: { subject: 'agent-9', issuer: idp.issuer, groups: ['analysts'], kind: 'agent' },
            payload: { approvalId, sessionId: heldSession, commandId: randomUUID(), command: 'DELETE FROM orders WHERE id = 1', language: 'sql', connection: { name: 'shop', protocol: 'postgres' }, ruleId: 'writes-need-approval', approverGroups: ['dba'], required: 1, expiresAt: micros(new Date(Date.now() + 60_000)), grantScope: { kind: 'once' } },
          } as Parameters<EventFactory['create']>[0]) as CustodianEvent,
        ],
        { expectedRevision: 'no-stream' },
      );
      const bobText = await bob.until((t) => t.includes(approvalId) && t.includes(`{"sessionId":"${heldSession}"}`));
      expect(bobText).toContain(`event: approval\ndata: {"approvalId":"${approvalId}","sessionId":"${heldSession}"}`);
      await amy.until((t) => t.includes(`event: session\ndata: {"sessionId":"${heldSession}"}`));
      // agent-7's own session changes: it hears of that, and never of the approval or agent-9's session.
      const revisions: number[] = [];
      for await (const recorded of store.readStream(`session-${agentSession}`, { direction: 'backwards', maxCount: 1 })) revisions.push(recorded.revision);
      const next = (revisions[0] ?? 0) + 1;
      await store.append(
        `session-${agentSession}`,
        [factory.create({ type: 'command.issued', stream: `session-${agentSession}`, sequence: next, identity: { subject: 'agent-7', issuer: idp.issuer, groups: ['analysts'], kind: 'agent' }, payload: { sessionId: agentSession, commandId: randomUUID(), kind: 'sql', text: 'SELECT 1' } } as Parameters<EventFactory['create']>[0]) as CustodianEvent],
        { expectedRevision: next - 1 },
      );
      const agentText = await agent7.until((t) => t.includes(`event: session\ndata: {"sessionId":"${agentSession}"}`));
      expect(agentText).not.toContain(approvalId);
      expect(agentText).not.toContain(heldSession);
      expect(bob.text()).not.toContain(agentSession);
    } finally {
      for (const stream of [bob, agent7, amy]) stream.close();
    }
  });

  it('refuses unauthenticated callers', async () => {
    expect((await fetch(`${api}/v1/live`)).status).toBe(401);
  });
});
