// Who reads which stream through GET /v1/streams/{stream}/events, with real tokens from the test
// harness's OIDC provider and the real SQLite event store: agents read their own sessions and the
// approvals they requested; approvers the approvals they may decide; auditors (evidence.auditorGroups)
// everything; anyone else gets 404 whether the stream exists or not.
import 'reflect-metadata';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type RequestListener } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventFactory, type CustodianEvent, type EventType, type Identity, type NewEvent } from '@custodian/event-contracts';
import { SqliteEventStore } from '@custodian/event-store-sqlite';
import { configuredEvidence } from '@custodian/evidence-host';
import { createLogger } from '@custodian/observability';
import { startNestService, type RunningNestService } from '@custodian/observability/nest';
import { loadConfig } from '@custodian/runtime-config';
import { configuredIdentity } from '@custodian/service-host';
import { freePort, startOidcProvider, type StartedOidcProvider } from '@custodian/test-harness';
import { ApiModule, type ApiErrorBody, type StreamEventsResponse } from './index.js';
import type { SessionTranscriptResponse } from './streams.controller.js';

const dir = mkdtempSync(join(tmpdir(), 'custodian-api-streams-'));
const SESSION_A = randomUUID();
const SESSION_B = randomUUID();
const APPROVAL_A = randomUUID();
const SESSION_MCP = randomUUID();
const SESSION_LLM = randomUUID();
/** Events in A's session: more than one page, so that paging is checked on a long stream. */
const SESSION_A_COMMANDS = 150;
let idp: StartedOidcProvider;
let store: SqliteEventStore;
let service: RunningNestService;
let api: string;

function identityOf(subject: string, kind: Identity['kind'], groups: string[]): Identity {
  return { subject, issuer: idp.issuer, groups, kind };
}

/** A session as the gateway records it: authentication.succeeded, session.opened, then commands. */
function sessionEvents(sessionId: string, who: Identity, commands: number): NewEvent<EventType>[] {
  const stream = `session-${sessionId}`;
  const specs: NewEvent<EventType>[] = [
    { type: 'authentication.succeeded', stream, sequence: 0, identity: who, payload: { sessionId, method: 'oidc-access-token', protocol: 'postgres', clientAddress: '127.0.0.1:5000', tokenExpiresAt: '2030-01-01T00:00:00.000000Z' } },
    { type: 'session.opened', stream, sequence: 1, identity: who, payload: { sessionId, connection: { name: 'orders', protocol: 'postgres' }, client: { address: '127.0.0.1:5000' } } },
  ];
  for (let i = 0; i < commands; i++) {
    specs.push({ type: 'command.issued', stream, sequence: specs.length, identity: who, payload: { sessionId, commandId: randomUUID(), kind: 'sql', text: `SELECT ${i}` } });
  }
  return specs;
}


/** The exact bytes a real node:http server sends for one response (status line, headers, chunk framing). */
async function wireBytes(handler: RequestListener): Promise<Buffer> {
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.address() as { port: number }).port;
  const bytes = await new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    const socket = connect(port, '127.0.0.1', () => socket.write('POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n'));
    socket.on('data', (chunk) => chunks.push(chunk)).on('end', () => resolve(Buffer.concat(chunks))).on('error', reject);
  });
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return bytes;
}

/** Splits bytes into pieces of `size` (frames as the gateway coalesces them cut anywhere). */
function pieces(bytes: Buffer, size: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += size) out.push(bytes.subarray(i, i + size));
  return out;
}

const sse = (event: string, data: unknown): string => `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;

beforeAll(async () => {
  idp = await startOidcProvider({
    clients: [
      { clientId: 'agent-a', kind: 'agent', groups: ['agents'] },
      { clientId: 'agent-b', kind: 'agent', groups: ['agents'] },
      { clientId: 'auditor-bot', kind: 'service', groups: ['auditors'] },
      { clientId: 'alice', kind: 'human', groups: ['dba-approvers'] },
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
      evidence: { origin: 'api.test/streams', auditorGroups: ['auditors'] },
    }),
  );
  const loaded = loadConfig({ file: configFile, env: {}, cwd: dir });
  store = await SqliteEventStore.open({ path: join(dir, 'events.sqlite') });
  const gateway = new EventFactory({ service: 'gateway', instance: 'gw-test' });
  const agentA = identityOf('agent-a', 'agent', ['agents']);
  const write = async (specs: NewEvent<EventType>[]): Promise<void> => {
    await store.append(specs[0]!.stream, specs.map((s) => gateway.create(s) as CustodianEvent), { expectedRevision: 'no-stream' });
  };
  await write(sessionEvents(SESSION_A, agentA, SESSION_A_COMMANDS));
  await write(sessionEvents(SESSION_B, identityOf('agent-b', 'agent', ['agents']), 1));
  // An MCP session as the MCP gateway records it: a JSON request, an SSE reply with a keep-alive
  // comment, then the result event; and one binary frame.
  const mcpStream = `session-${SESSION_MCP}`;
  const frame = (sequence: number, direction: 'client-to-upstream' | 'upstream-to-client', messageType: string, bytes: Buffer): NewEvent<EventType> => ({
    type: 'frame.recorded',
    stream: mcpStream,
    sequence,
    identity: agentA,
    payload: { sessionId: SESSION_MCP, direction, offsetMicros: sequence * 1000, messageType, data: bytes.toString('base64'), byteLength: bytes.length },
  });
  await write([
    { type: 'session.opened', stream: mcpStream, sequence: 0, identity: agentA, payload: { sessionId: SESSION_MCP, connection: { name: 'helpdesk', protocol: 'mcp' }, client: { address: '127.0.0.1:5001' } } },
    frame(1, 'client-to-upstream', 'tools/call', Buffer.from('{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"lookup"}}')),
    frame(2, 'upstream-to-client', 'sse:keep-alive', Buffer.from(': keep-alive\n\n')),
    frame(3, 'upstream-to-client', 'result', Buffer.from('event: message\ndata: {"jsonrpc":"2.0","id":4,"result":{"content":[{"type":"text","text":"mail [REDACTED:pii-email]"}]}}\n\n')),
    frame(4, 'upstream-to-client', 'DataRow', Buffer.from([0x44, 0x00, 0x00, 0x00, 0x0b, 0xff])),
  ]);
  // An LLM session (Messages API) as the HTTP gateway records it: the prompt in command.issued, the
  // answers as the client received them (a real node:http server's HTTP/1.1 bytes: a chunked SSE
  // stream with a tool call, then a JSON message), frames cut at odd places, and an HTTP/2 stream's
  // answer (the gateway's `HTTP/2 <status>` form on its channel) with an overloaded error event.
  const llmStream = `session-${SESSION_LLM}`;
  const streamed = await wireBytes((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.write(sse('message_start', { type: 'message_start', message: { id: 'msg_1', type: 'message', role: 'assistant', model: 'claude-standin-1', content: [], usage: { input_tokens: 25, output_tokens: 1 } } }));
    res.write(sse('content_block_start', { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } }));
    res.write(sse('ping', { type: 'ping' }));
    res.write(sse('content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'Let me ' } }));
    res.write(sse('content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'check, [REDACTED:pii].' } }));
    res.write(sse('content_block_stop', { type: 'content_block_stop', index: 0 }));
    res.write(sse('content_block_start', { type: 'content_block_start', index: 1, content_block: { type: 'tool_use', id: 'toolu_1', name: 'get_weather', input: {} } }));
    res.write(sse('content_block_delta', { type: 'content_block_delta', index: 1, delta: { type: 'input_json_delta', partial_json: '{"city":' } }));
    res.write(sse('content_block_delta', { type: 'content_block_delta', index: 1, delta: { type: 'input_json_delta', partial_json: '"Paris"}' } }));
    res.write(sse('content_block_stop', { type: 'content_block_stop', index: 1 }));
    res.write(sse('message_delta', { type: 'message_delta', delta: { stop_reason: 'tool_use' }, usage: { output_tokens: 12 } }));
    res.end(sse('message_stop', { type: 'message_stop' }));
  });
  const whole = await wireBytes((_req, res) => {
    const body = JSON.stringify({ id: 'msg_2', type: 'message', role: 'assistant', model: 'claude-standin-1', content: [{ type: 'text', text: 'It is 18°C.' }], stop_reason: 'end_turn', usage: { input_tokens: 30, output_tokens: 6 } });
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }).end(body);
  });
  const prompt = (messages: unknown[]): string => `POST /v1/messages\n${JSON.stringify({ model: 'claude-standin-1', max_tokens: 100, stream: true, system: 'You are terse.', tools: [{ name: 'get_weather', input_schema: { type: 'object' } }], messages })}`;
  const firstTurn = { role: 'user', content: 'Weather in Paris? Mail me at [REDACTED:pii]' };
  const llm: NewEvent<EventType>[] = [
    { type: 'session.opened', stream: llmStream, sequence: 0, identity: agentA, payload: { sessionId: SESSION_LLM, connection: { name: 'claude', protocol: 'anthropic' }, client: { address: '127.0.0.1:5002' } } },
    { type: 'command.issued', stream: llmStream, sequence: 1, identity: agentA, payload: { sessionId: SESSION_LLM, commandId: randomUUID(), kind: 'llm', text: prompt([firstTurn]) } },
  ];
  const llmFrame = (direction: 'client-to-upstream' | 'upstream-to-client', bytes: Buffer, channel?: number): NewEvent<EventType> => ({
    type: 'frame.recorded',
    stream: llmStream,
    sequence: llm.length,
    identity: agentA,
    payload: { sessionId: SESSION_LLM, direction, offsetMicros: llm.length * 1000, messageType: direction === 'upstream-to-client' ? 'http-response' : 'http-request-body', data: bytes.toString('base64'), byteLength: bytes.length, ...(channel !== undefined ? { channel } : {}) },
  });
  llm.push(llmFrame('client-to-upstream', Buffer.from('{"not":"decoded"}')));
  for (const piece of pieces(streamed, 37)) llm.push(llmFrame('upstream-to-client', piece));
  llm.push({
    type: 'command.issued',
    stream: llmStream,
    sequence: llm.length,
    identity: agentA,
    payload: {
      sessionId: SESSION_LLM,
      commandId: randomUUID(),
      kind: 'llm',
      text: prompt([firstTurn, { role: 'assistant', content: [{ type: 'text', text: 'Let me check, [REDACTED:pii].' }, { type: 'tool_use', id: 'toolu_1', name: 'get_weather', input: { city: 'Paris' } }] }, { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_1', content: [{ type: 'text', text: '18°C' }] }] }]),
    },
  });
  for (const piece of pieces(whole, 101)) llm.push(llmFrame('upstream-to-client', piece));
  llm.push(llmFrame('upstream-to-client', Buffer.from(`HTTP/2 200\r\ncontent-type: text/event-stream\r\n\r\n${sse('error', { type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } })}`), 3));
  await write(llm);
  await write([
    {
      type: 'approval.requested',
      stream: `approval-${APPROVAL_A}`,
      sequence: 0,
      identity: agentA,
      payload: {
        approvalId: APPROVAL_A,
        sessionId: SESSION_A,
        commandId: randomUUID(),
        command: 'DELETE FROM orders WHERE id = 102',
        language: 'sql',
        connection: { name: 'orders', protocol: 'postgres' },
        ruleId: 'hold-deletes',
        approverGroups: ['dba-approvers'],
        required: 1,
        expiresAt: '2030-01-01T00:00:00.000000Z',
        grantScope: { kind: 'once' },
      },
    },
  ]);
  await write([
    { type: 'policy.activated', stream: 'policy-orders', sequence: 0, identity: agentA, payload: { policyName: 'orders', version: 1, digest: 'a'.repeat(64), source: '/etc/custodian/policy.yaml', rules: 3 } },
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
async function read(who: string, stream: string, query = ''): Promise<Response> {
  let token = tokens.get(who);
  if (!token) tokens.set(who, (token = (await idp.issueToken({ clientId: who })).accessToken));
  return fetch(`${api}/v1/streams/${encodeURIComponent(stream)}/events${query}`, { headers: { authorization: `Bearer ${token}` } });
}

async function expectEvents(response: Response): Promise<StreamEventsResponse> {
  const text = await response.text();
  expect(response.status, text).toBe(200);
  return JSON.parse(text) as StreamEventsResponse;
}

async function expectNotFound(response: Response): Promise<void> {
  const text = await response.text();
  expect(response.status, text).toBe(404);
  expect((JSON.parse(text) as ApiErrorBody).error.code).toBe('STREAM_NOT_FOUND');
}

describe('GET /v1/streams/{stream}/events: who reads what', () => {
  it("an agent reads its own session stream, every page of it, and not another agent's", async () => {
    const own = await expectEvents(await read('agent-a', `session-${SESSION_A}`));
    expect(own.events).toHaveLength(100);
    expect(own.events.slice(0, 2).map((e) => e.event.type)).toEqual(['authentication.succeeded', 'session.opened']);
    // Later pages and backwards reads are decided on the stream's first event, not on the page's.
    const later = await expectEvents(await read('agent-a', `session-${SESSION_A}`, '?fromRevision=100&maxCount=1000'));
    expect(later.events.map((e) => e.revision)).toEqual(Array.from({ length: SESSION_A_COMMANDS + 2 - 100 }, (_, i) => 100 + i));
    const last = await expectEvents(await read('agent-a', `session-${SESSION_A}`, '?direction=backwards&maxCount=1'));
    expect(last.events.map((e) => e.revision)).toEqual([SESSION_A_COMMANDS + 1]);

    await expectNotFound(await read('agent-a', `session-${SESSION_B}`));
    await expectNotFound(await read('agent-b', `session-${SESSION_A}`));
    await expectNotFound(await read('agent-b', `session-${SESSION_A}`, '?fromRevision=100'));
    expect((await expectEvents(await read('agent-b', `session-${SESSION_B}`))).events).toHaveLength(3);
  });

  it('an auditor reads every session stream', async () => {
    expect((await expectEvents(await read('auditor-bot', `session-${SESSION_A}`, '?maxCount=1000'))).events).toHaveLength(SESSION_A_COMMANDS + 2);
    expect((await expectEvents(await read('auditor-bot', `session-${SESSION_B}`))).events).toHaveLength(3);
  });

  it('an approval stream is read by its requester, its approver groups and auditors; by nobody else', async () => {
    const stream = `approval-${APPROVAL_A}`;
    for (const who of ['agent-a', 'alice', 'auditor-bot']) {
      const body = await expectEvents(await read(who, stream));
      expect(body.events.map((e) => e.event.type), who).toEqual(['approval.requested']);
    }
    await expectNotFound(await read('agent-b', stream));
    await expectNotFound(await read('mallory', stream));
    // Approving does not make an approver the session's reader.
    await expectNotFound(await read('alice', `session-${SESSION_A}`));
  });

  it('policy, authentication and other system streams are for auditors only, even when they carry the caller', async () => {
    await expectNotFound(await read('agent-a', 'policy-orders'));
    expect((await expectEvents(await read('auditor-bot', 'policy-orders'))).events.map((e) => e.event.type)).toEqual(['policy.activated']);
    // The API recorded agent-a's token in an auth-<id> stream with agent-a's identity.
    let authStream: string | undefined;
    for await (const r of store.readAll()) if (r.event.type === 'authentication.succeeded' && r.event.stream.startsWith('auth-') && r.event.identity?.subject === 'agent-a') authStream = r.event.stream;
    expect(authStream).toBeDefined();
    await expectNotFound(await read('agent-a', authStream!));
    expect((await expectEvents(await read('auditor-bot', authStream!))).events).toHaveLength(1);
  });

  it('an unknown stream is 404 to non-auditors (as a foreign one is) and empty to auditors; bad names are 400 for everyone', async () => {
    await expectNotFound(await read('agent-a', `session-${randomUUID()}`));
    await expectNotFound(await read('agent-a', `approval-${randomUUID()}`));
    expect((await expectEvents(await read('auditor-bot', `session-${randomUUID()}`))).events).toEqual([]);
    for (const who of ['agent-a', 'auditor-bot']) {
      const refused = await read(who, '$all');
      expect(refused.status).toBe(400);
      expect(((await refused.json()) as ApiErrorBody).error.code).toBe('STREAM_REQUEST_INVALID');
    }
  });
});

describe('GET /v1/streams/{stream}/transcript: the replay projection', () => {
  async function transcript(who: string, stream: string, query = ''): Promise<Response> {
    let token = tokens.get(who);
    if (!token) tokens.set(who, (token = (await idp.issueToken({ clientId: who })).accessToken));
    return fetch(`${api}/v1/streams/${encodeURIComponent(stream)}/transcript${query}`, { headers: { authorization: `Bearer ${token}` } });
  }

  it("an MCP session's frames in order with their JSON-RPC messages decoded (JSON body, SSE events, keep-alives); binary frames keep their bytes", async () => {
    const response = await transcript('agent-a', `session-${SESSION_MCP}`);
    expect(response.status).toBe(200);
    const body = (await response.json()) as SessionTranscriptResponse;
    expect(body.nextRevision).toBeUndefined();
    expect(body.frames.map((f) => [f.revision, f.direction, f.messageType])).toEqual([
      [1, 'client-to-upstream', 'tools/call'],
      [2, 'upstream-to-client', 'sse:keep-alive'],
      [3, 'upstream-to-client', 'result'],
      [4, 'upstream-to-client', 'DataRow'],
    ]);
    expect(body.frames[0]!.messages).toEqual([{ jsonrpc: '2.0', id: 4, method: 'tools/call', params: { name: 'lookup' } }]);
    expect(body.frames[1]!.messages).toEqual([]);
    expect(body.frames[2]!.messages).toEqual([{ jsonrpc: '2.0', id: 4, result: { content: [{ type: 'text', text: 'mail [REDACTED:pii-email]' }] } }]);
    expect(body.frames[3]!.messages).toBeUndefined();
    expect(Buffer.from(body.frames[3]!.data!, 'base64')).toEqual(Buffer.from([0x44, 0x00, 0x00, 0x00, 0x0b, 0xff]));
    const page = (await (await transcript('agent-a', `session-${SESSION_MCP}`, '?maxCount=2')).json()) as SessionTranscriptResponse;
    expect(page.nextRevision).toBe(2);
    expect(page.frames.map((f) => f.revision)).toEqual([1]);
  });

  it("the same access rule as events: another agent gets 404, an auditor reads it, a non-session stream is 400", async () => {
    expect((await transcript('agent-b', `session-${SESSION_MCP}`)).status).toBe(404);
    expect((await transcript('auditor-bot', `session-${SESSION_MCP}`)).status).toBe(200);
    expect((await transcript('auditor-bot', 'policy-orders')).status).toBe(400);
  });

  it("an LLM session's conversation: prompt, model output, tool calls, tool results and usage decoded from the recorded bytes", async () => {
    const response = await transcript('agent-a', `session-${SESSION_LLM}`, '?view=conversation');
    expect(response.status).toBe(200);
    const body = (await response.json()) as SessionTranscriptResponse;
    expect(body.protocol).toBe('anthropic');
    expect(body.frames).toEqual([]);
    expect(body.conversationTruncated).toBeUndefined();
    const entries = body.conversation!.map(({ revision: _revision, time, ...rest }) => {
      expect(Date.parse(time)).not.toBeNaN();
      return rest;
    });
    expect(entries).toEqual([
      { kind: 'system', role: 'system', model: 'claude-standin-1', text: 'You are terse.' },
      { kind: 'prompt', role: 'user', model: 'claude-standin-1', text: 'Weather in Paris? Mail me at [REDACTED:pii]' },
      { kind: 'output', role: 'assistant', model: 'claude-standin-1', text: 'Let me check, [REDACTED:pii].' },
      { kind: 'tool-call', role: 'assistant', model: 'claude-standin-1', toolName: 'get_weather', toolUseId: 'toolu_1', input: { city: 'Paris' } },
      { kind: 'usage', role: 'assistant', model: 'claude-standin-1', usage: { inputTokens: 25, outputTokens: 12 }, stopReason: 'tool_use' },
      // The second request repeats the conversation: only the turn after the model's answer is new.
      { kind: 'tool-result', role: 'user', toolUseId: 'toolu_1', result: '18°C' },
      { kind: 'output', role: 'assistant', model: 'claude-standin-1', text: 'It is 18°C.' },
      { kind: 'usage', role: 'assistant', model: 'claude-standin-1', usage: { inputTokens: 30, outputTokens: 6 }, stopReason: 'end_turn' },
      { kind: 'error', text: 'overloaded_error: Overloaded' },
    ]);
    // Entries point at the events they came from, in stream order.
    const revisions = body.conversation!.map((e) => e.revision);
    expect([...revisions].sort((a, b) => a - b)).toEqual(revisions);
  });

  it("an MCP session's conversation: its tools/call requests and results; same access rule; a bad view is 400", async () => {
    const body = (await (await transcript('agent-a', `session-${SESSION_MCP}`, '?view=conversation')).json()) as SessionTranscriptResponse;
    expect(body.protocol).toBe('mcp');
    expect(body.conversation!.map(({ revision: _r, time: _t, ...rest }) => rest)).toEqual([
      { kind: 'tool-call', role: 'assistant', toolName: 'lookup', toolUseId: '4', input: {} },
      { kind: 'tool-result', role: 'user', toolName: 'lookup', toolUseId: '4', result: 'mail [REDACTED:pii-email]' },
    ]);
    expect((await transcript('agent-b', `session-${SESSION_LLM}`, '?view=conversation')).status).toBe(404);
    expect((await transcript('auditor-bot', `session-${SESSION_LLM}`, '?view=conversation')).status).toBe(200);
    expect((await transcript('agent-a', `session-${SESSION_LLM}`, '?view=replay')).status).toBe(400);
  });
});
