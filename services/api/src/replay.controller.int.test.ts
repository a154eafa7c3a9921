// GET /v1/sessions/{id}/replay with real tokens from the test harness's OIDC provider and the real
// SQLite event store: the recording is served (v3 and v2) to exactly those who may read the session
// stream (its own identity, auditors); anyone else gets 404 whether the session exists or not.
import 'reflect-metadata';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventFactory, type CustodianEvent, type EventType, type FrameRecorded, type Identity, type NewEvent } from '@custodian/event-contracts';
import { SqliteEventStore } from '@custodian/event-store-sqlite';
import { configuredEvidence } from '@custodian/evidence-host';
import { createLogger } from '@custodian/observability';
import { startNestService, type RunningNestService } from '@custodian/observability/nest';
import { loadConfig } from '@custodian/runtime-config';
import { configuredIdentity } from '@custodian/service-host';
import { freePort, startOidcProvider, type StartedOidcProvider } from '@custodian/test-harness';
import { ApiModule, type ApiErrorBody } from './index.js';

const dir = mkdtempSync(join(tmpdir(), 'custodian-api-replay-'));
const SESSION_A = randomUUID();
const SESSION_B = randomUUID();
/** A PostgreSQL session: frames, but no terminal channel. */
const SESSION_SQL = randomUUID();
/** A Kubernetes tty exec: WebSocket messages recorded channel byte first. */
const SESSION_K8S = randomUUID();
let idp: StartedOidcProvider;
let store: SqliteEventStore;
let service: RunningNestService;
let api: string;

function frame(sessionId: string, offsetMicros: number, direction: FrameRecorded['direction'], messageType: string, data: string, channel: number): FrameRecorded {
  const bytes = Buffer.from(data, 'utf8');
  return { sessionId, direction, offsetMicros, messageType, channel, data: bytes.toString('base64'), byteLength: bytes.length };
}

/** An SSH session as the gateway records it: a shell on channel 0 and an exec on channel 1. */
function sshSession(sessionId: string, who: Identity): NewEvent<EventType>[] {
  const stream = `session-${sessionId}`;
  const frames: FrameRecorded[] = [
    frame(sessionId, 1_000_000, 'client-to-upstream', 'shell', JSON.stringify({ term: 'xterm-256color', cols: 120, rows: 40 }), 0),
    frame(sessionId, 1_200_000, 'upstream-to-client', 'stdout', '$ ', 0),
    frame(sessionId, 1_500_000, 'client-to-upstream', 'stdin', 'id\r', 0),
    frame(sessionId, 1_600_000, 'upstream-to-client', 'stdout', `uid=1000(${who.subject})\r\n$ `, 0),
    frame(sessionId, 2_000_000, 'client-to-upstream', 'window-change', JSON.stringify({ cols: 100, rows: 30 }), 0),
    frame(sessionId, 2_500_000, 'client-to-upstream', 'exec', '{}', 1),
    frame(sessionId, 2_600_000, 'upstream-to-client', 'stdout', 'exec output\n', 1),
    frame(sessionId, 2_700_000, 'upstream-to-client', 'exit-status', JSON.stringify({ code: 3 }), 1),
    frame(sessionId, 3_000_000, 'upstream-to-client', 'exit-status', JSON.stringify({ code: 0 }), 0),
  ];
  return [
    { type: 'authentication.succeeded', stream, sequence: 0, identity: who, payload: { sessionId, method: 'oidc-access-token', protocol: 'ssh', clientAddress: '127.0.0.1:5000', tokenExpiresAt: '2030-01-01T00:00:00.000000Z' } },
    { type: 'session.opened', stream, sequence: 1, identity: who, payload: { sessionId, connection: { name: 'bastion', protocol: 'ssh' }, client: { address: '127.0.0.1:5000' } } },
    ...frames.map((payload, i) => ({ type: 'frame.recorded' as const, stream, sequence: 2 + i, identity: who, payload })),
  ];
}

/** A Kubernetes exec message as the gateway records it (channel.k8s.io: the channel byte, then the payload). */
function k8sFrame(sessionId: string, offsetMicros: number, direction: FrameRecorded['direction'], label: string, channel: number, payload: string): FrameRecorded {
  const bytes = Buffer.concat([Buffer.from([channel]), Buffer.from(payload, 'utf8')]);
  return { sessionId, direction, offsetMicros, messageType: label, channel, data: bytes.toString('base64'), byteLength: bytes.length };
}

beforeAll(async () => {
  idp = await startOidcProvider({
    clients: [
      { clientId: 'agent-a', kind: 'agent', groups: ['agents'] },
      { clientId: 'agent-b', kind: 'agent', groups: ['agents'] },
      { clientId: 'auditor-bot', kind: 'service', groups: ['auditors'] },
      { clientId: 'mallory', kind: 'human', groups: ['developers'] },
    ],
  });
  const port = await freePort();
  api = `http://127.0.0.1:${port}`;
  const configFile = join(dir, 'custodian.yaml');
  writeFileSync(
    configFile,
    JSON.stringify({
      dataDir: join(dir, 'data'),
      identity: { issuers: [{ issuer: idp.issuer, audiences: [idp.defaultAudience] }] },
      evidence: { origin: 'api.test/replay', auditorGroups: ['auditors'] },
    }),
  );
  const loaded = loadConfig({ file: configFile, env: {}, cwd: dir });
  store = await SqliteEventStore.open({ path: join(dir, 'events.sqlite') });
  const gateway = new EventFactory({ service: 'gateway', instance: 'gw-test' });
  const write = async (specs: NewEvent<EventType>[]): Promise<void> => {
    await store.append(specs[0]!.stream, specs.map((s) => gateway.create(s) as CustodianEvent), { expectedRevision: 'no-stream' });
  };
  const identityOf = (subject: string): Identity => ({ subject, issuer: idp.issuer, groups: ['agents'], kind: 'agent' });
  await write(sshSession(SESSION_A, identityOf('agent-a')));
  await write(sshSession(SESSION_B, identityOf('agent-b')));
  const sql = `session-${SESSION_SQL}`;
  await write([
    { type: 'session.opened', stream: sql, sequence: 0, identity: identityOf('agent-a'), payload: { sessionId: SESSION_SQL, connection: { name: 'orders', protocol: 'postgres' }, client: { address: '127.0.0.1:5000' } } },
    { type: 'frame.recorded', stream: sql, sequence: 1, identity: identityOf('agent-a'), payload: frame(SESSION_SQL, 10, 'client-to-upstream', 'Q', 'SELECT 1', 0) },
  ]);
  const k8s = `session-${SESSION_K8S}`;
  const k8sFrames: FrameRecorded[] = [
    frame(SESSION_K8S, 1_000, 'client-to-upstream', 'shell', JSON.stringify({ tty: true }), 0),
    k8sFrame(SESSION_K8S, 2_000, 'client-to-upstream', 'resize', 4, JSON.stringify({ Width: 132, Height: 43 })),
    k8sFrame(SESSION_K8S, 500_000, 'upstream-to-client', 'stdout', 1, 'pod-shell$ '),
    k8sFrame(SESSION_K8S, 700_000, 'client-to-upstream', 'stdin', 0, 'ls\r'),
    k8sFrame(SESSION_K8S, 900_000, 'upstream-to-client', 'error', 3, JSON.stringify({ metadata: {}, status: 'Success' })),
  ];
  await write([
    { type: 'session.opened', stream: k8s, sequence: 0, identity: identityOf('agent-a'), payload: { sessionId: SESSION_K8S, connection: { name: 'prod-cluster', protocol: 'kubernetes' }, client: { address: '127.0.0.1:5000' } } },
    ...k8sFrames.map((payload, i) => ({ type: 'frame.recorded' as const, stream: k8s, sequence: 1 + i, identity: identityOf('agent-a'), payload })),
  ]);
  const logger = createLogger({ service: 'api', level: 'warn', destination: { write: () => undefined } });
  service = await startNestService({
    module: ApiModule.register({ eventStore: store, logger, identity: configuredIdentity(loaded, { logger }), evidence: configuredEvidence(loaded, {}), listenHost: '127.0.0.1', instance: 'api-test' }),
    logger,
    listen: { host: '127.0.0.1', port },
    shutdownHooks: false,
  });
});

afterAll(async () => {
  await service?.close();
  await store?.close();
  await idp?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const tokens = new Map<string, string>();
async function replay(who: string | undefined, sessionId: string, query = ''): Promise<Response> {
  const headers: Record<string, string> = {};
  if (who) {
    let token = tokens.get(who);
    if (!token) tokens.set(who, (token = (await idp.issueToken({ clientId: who })).accessToken));
    headers['authorization'] = `Bearer ${token}`;
  }
  return fetch(`${api}/v1/sessions/${encodeURIComponent(sessionId)}/replay${query}`, { headers });
}

async function expectCast(response: Response): Promise<unknown[]> {
  const text = await response.text();
  expect(response.status, text).toBe(200);
  expect(response.headers.get('content-type')).toMatch(/^application\/x-asciicast/);
  expect(text.endsWith('\n')).toBe(true);
  return text.trimEnd().split('\n').map((line) => JSON.parse(line) as unknown);
}

async function expectError(response: Response, status: number, code: string): Promise<void> {
  const text = await response.text();
  expect(response.status, text).toBe(status);
  expect((JSON.parse(text) as ApiErrorBody).error.code).toBe(code);
}

describe('GET /v1/sessions/{id}/replay', () => {
  it("serves the session's first terminal channel as asciicast v3 to the session's own identity", async () => {
    const [header, ...events] = await expectCast(await replay('agent-a', SESSION_A));
    expect(header).toMatchObject({ version: 3, term: { cols: 120, rows: 40, type: 'xterm-256color' }, title: `Custodian session ${SESSION_A}` });
    expect(typeof (header as { timestamp?: unknown }).timestamp).toBe('number');
    // Intervals (v3): 0.2 s after the shell start, then 0.3, 0.1, 0.4, 1.0.
    expect(events).toEqual([
      [0.2, 'o', '$ '],
      [0.3, 'i', 'id\r'],
      [0.1, 'o', 'uid=1000(agent-a)\r\n$ '],
      [0.4, 'r', '100x30'],
      [1, 'x', '0'],
    ]);
  });

  it('serves a Kubernetes exec (frames recorded channel byte first) as the same asciicast: the first resize sizes the terminal, the Status is the exit', async () => {
    const [header, ...events] = await expectCast(await replay('agent-a', SESSION_K8S));
    expect(header).toMatchObject({ version: 3, term: { cols: 132, rows: 43 } });
    expect(events).toEqual([
      [0.499, 'o', 'pod-shell$ '],
      [0.2, 'i', 'ls\r'],
      [0.2, 'x', '0'],
    ]);
  });

  it('serves another channel with ?channel= and v2 (absolute times, no exit event) with ?format=v2', async () => {
    const [header, ...events] = await expectCast(await replay('agent-a', SESSION_A, '?channel=1&format=v2'));
    expect(header).toMatchObject({ version: 2, width: 80, height: 24 });
    expect(events).toEqual([[0.1, 'o', 'exec output\n']]);
  });

  it('an auditor replays any session; other agents and humans get 404 for foreign and unknown sessions alike', async () => {
    const [, ...events] = await expectCast(await replay('auditor-bot', SESSION_B));
    expect(events).toContainEqual([0.1, 'o', 'uid=1000(agent-b)\r\n$ ']);
    await expectError(await replay('agent-b', SESSION_A), 404, 'SESSION_NOT_FOUND');
    await expectError(await replay('mallory', SESSION_A), 404, 'SESSION_NOT_FOUND');
    await expectError(await replay('agent-a', SESSION_B, '?channel=1'), 404, 'SESSION_NOT_FOUND');
    await expectError(await replay('agent-a', randomUUID()), 404, 'SESSION_NOT_FOUND');
    await expectError(await replay('auditor-bot', randomUUID()), 404, 'SESSION_NOT_FOUND');
  });

  it('a foreign session reads as not found even when the query names a missing channel (no existence oracle)', async () => {
    await expectError(await replay('agent-b', SESSION_A, '?channel=7'), 404, 'SESSION_NOT_FOUND');
    await expectError(await replay('agent-a', SESSION_A, '?channel=7'), 404, 'REPLAY_CHANNEL_NOT_FOUND');
  });

  it('a session without a terminal channel is REPLAY_NO_CHANNEL to its reader', async () => {
    await expectError(await replay('agent-a', SESSION_SQL), 404, 'REPLAY_NO_CHANNEL');
    await expectError(await replay('agent-b', SESSION_SQL), 404, 'SESSION_NOT_FOUND');
  });

  it('refuses bad queries (400) and anonymous callers (401)', async () => {
    await expectError(await replay('agent-a', 'not-a-uuid'), 400, 'REPLAY_QUERY_INVALID');
    await expectError(await replay('agent-a', SESSION_A, '?channel=-1'), 400, 'REPLAY_QUERY_INVALID');
    await expectError(await replay('agent-a', SESSION_A, '?format=v9'), 400, 'REPLAY_QUERY_INVALID');
    const anonymous = await replay(undefined, SESSION_A);
    expect(anonymous.status).toBe(401);
  });
});

describe('GET /v1/sessions/{id}/replay/live (server-sent events for asciinema-player)', () => {
  /** Reads `data:` messages (and `event: done`) from an SSE response until `until` says stop. */
  async function readEvents(response: Response, until: (messages: unknown[]) => boolean): Promise<{ messages: unknown[]; done: boolean }> {
    const reader = response.body!.getReader();
    const decoder = new TextDecoder();
    const messages: unknown[] = [];
    let buffer = '';
    let done = false;
    while (!until(messages) && !done) {
      const chunk = await reader.read();
      if (chunk.done) break;
      buffer += decoder.decode(chunk.value, { stream: true });
      let end: number;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        if (block.startsWith('event: done')) done = true;
        else if (block.startsWith('data: ')) messages.push(JSON.parse(block.slice(6)) as unknown);
      }
    }
    if (!done) await reader.cancel();
    return { messages, done };
  }

  it('streams a running session from its start, then what is recorded while it runs, then done when it closes', async () => {
    const sessionId = randomUUID();
    const who: Identity = { subject: 'agent-a', issuer: idp.issuer, groups: ['agents'], kind: 'agent' };
    const stream = `session-${sessionId}`;
    const gateway = new EventFactory({ service: 'gateway', instance: 'gw-test' });
    const all = sshSession(sessionId, who);
    // The session so far: login, open, the shell start and its first output.
    await store.append(stream, all.slice(0, 4).map((s) => gateway.create(s) as CustodianEvent), { expectedRevision: 'no-stream' });
    const token = (await idp.issueToken({ clientId: 'agent-a' })).accessToken;
    const response = await fetch(`${api}/v1/sessions/${sessionId}/replay/live`, { headers: { authorization: `Bearer ${token}` } });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const reading = readEvents(response, () => false);
    // Later frames and the close, appended while the client is connected.
    await new Promise((r) => setTimeout(r, 300));
    const rest = [...all.slice(4), { type: 'session.closed' as const, stream, sequence: all.length, identity: who, payload: { sessionId, reason: 'client-closed' as const, durationMs: 3000, frames: { clientToUpstream: 4, upstreamToClient: 5 }, bytes: { clientToUpstream: 10, upstreamToClient: 20 } } }];
    await store.append(stream, rest.map((s) => gateway.create(s as NewEvent<EventType>) as CustodianEvent), { expectedRevision: 3 });
    const { messages, done } = await reading;
    expect(done).toBe(true);
    expect(messages).toEqual([
      { cols: 120, rows: 40, time: 0 },
      [0.2, 'o', '$ '],
      [0.5, 'i', 'id\r'],
      [0.6, 'o', 'uid=1000(agent-a)\r\n$ '],
      [1, 'r', '100x30'],
      [2, 'x', '0'],
    ]);
  });

  it('is 404 for a session the caller may not read, before any stream starts', async () => {
    const token = (await idp.issueToken({ clientId: 'agent-b' })).accessToken;
    const response = await fetch(`${api}/v1/sessions/${SESSION_A}/replay/live`, { headers: { authorization: `Bearer ${token}` } });
    await expectError(response, 404, 'SESSION_NOT_FOUND');
    const auditor = (await idp.issueToken({ clientId: 'auditor-bot' })).accessToken;
    const closed = await fetch(`${api}/v1/sessions/${SESSION_A}/replay/live?channel=1`, { headers: { authorization: `Bearer ${auditor}` } });
    // SESSION_A has no session.closed: read the exec channel's events, then stop.
    const { messages } = await readEvents(closed, (m) => m.length >= 3);
    expect(messages).toEqual([{ cols: 80, rows: 24, time: 0 }, [0.1, 'o', 'exec output\n'], [0.2, 'x', '3']]);
  });
});
