// The stateless protocol era (MCP 2026-07-28) through the gateway, with the official Python SDK
// (mcp 2.x) on both sides: per-request `_meta` and routing headers, `server/discover`, per-call policy,
// masking, a held call answered on a request-scoped SSE stream, an input-required result whose
// retry works (the server's signed requestState passes unmasked), header/body mismatch refused before
// the server sees it, and era detection: a stateless client toward a session-era upstream is told
// (-32022) to use 2025-11-25, and the Python client then falls back to `initialize`.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OidcAccessTokenVerifier } from '@custodian/identity-oidc';
import { ClientCredentialsToken } from './client-credentials.js';
import { HEADER_MISMATCH_RULE } from './mcp-gateway.js';
import { CONTINUATION_MISMATCH_RULE, CONTINUATION_REPLAYED_RULE } from './approved-continuations.js';
import { startMcpFixture, type McpFixture } from './testing/gateway-fixture.js';
import { PYTHON_SDK_PYTHON, PYTHON_STDIO_MODERN_ONLY_SERVER, PYTHON_STDIO_SERVER, pythonSdkAvailable, runPythonClient, startPythonUpstream, type PythonUpstream } from './testing/python-sdk.js';
import { TestOnlyApprovalGate } from '@custodian/session-pipeline/testing';

const META = { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientCapabilities': {}, 'io.modelcontextprotocol/clientInfo': { name: 'raw-fetch', version: '1' } };
const approver = { kind: 'human' as const, subject: 'fin-1', issuer: 'https://idp.example', groups: ['finance'] };

describe.skipIf(!pythonSdkAvailable())('MCP gateway, stateless era (2026-07-28) with the Python SDK on both sides', () => {
  let fx: McpFixture;
  let py: PythonUpstream;
  let modern: PythonUpstream;
  const pyCredential = `py-upstream-${randomBytes(12).toString('base64url')}`;
  const approvals = new TestOnlyApprovalGate();

  let ccSecret: string;
  beforeAll(async () => {
    py = await startPythonUpstream();
    modern = await startPythonUpstream({ modernOnly: true });
    // The fixture's IdP issues the gateway's own token for the `py-cc` connection (client_credentials).
    const cc: { token?: ClientCredentialsToken } = {};
    fx = await startMcpFixture({
      approvals,
      extraConnections: [
        { name: 'py', upstream: { url: py.url, credential: { ref: 'env:PY_MCP_TOKEN', read: () => pyCredential } } },
        { name: 'py-modern', upstream: { url: modern.url, credential: { ref: 'env:PY_MCP_TOKEN', read: () => pyCredential } } },
        { name: 'py-cc', upstream: { url: py.url, credential: { ref: 'env:CC_SECRET', read: () => cc.token!.read() } } },
        // The same SDK's server over stdio, run by the gateway (one child per session).
        { name: 'py-stdio', upstream: { command: PYTHON_SDK_PYTHON, args: [PYTHON_STDIO_SERVER], timeoutMs: 30_000 } },
        // The same server behind a stand-in that refuses initialize: a stdio server of the 2026-07-28 era only.
        { name: 'py-stdio-modern', upstream: { command: PYTHON_SDK_PYTHON, args: [PYTHON_STDIO_MODERN_ONLY_SERVER], timeoutMs: 30_000 } },
      ],
      extraRules: `
  - id: no-drops
    match: { mcp: { servers: [py], tools: [drop_table] } }
    decision: block
    message: Dropping tables is blocked.
  - id: py-cc-lookups
    match: { identity: { groups: [analysts] }, mcp: { servers: [py-cc, py-modern, py-stdio, py-stdio-modern], tools: [lookup, confirm_transfer] } }
    decision: allow
  - id: big-transfers-need-approval
    match: { identity: { groups: [analysts] }, mcp: { servers: [py], tools: [confirm_transfer], arguments: { "$.amount": { equals: 5000 } } } }
    decision: require-approval
    approval: { approverGroups: [finance], required: 1, timeoutSeconds: 20, grant: once }
  - id: small-transfers
    match: { identity: { groups: [analysts] }, mcp: { servers: [py], tools: [confirm_transfer] } }
    decision: allow
`,
    });
    ccSecret = fx.oidc.registerClient({ clientId: 'custodian-gateway', kind: 'service' }).clientSecret;
    cc.token = new ClientCredentialsToken({ issuer: fx.oidc.issuer, clientId: 'custodian-gateway', clientSecret: () => ccSecret, clientSecretRef: 'env:CC_SECRET', resource: 'https://py-upstream.test' });
  }, 90_000);
  afterAll(async () => {
    await fx?.stop();
    await py?.stop();
    await modern?.stop();
  });

  const post = (token: string, body: Record<string, unknown>, headers: Record<string, string>): Promise<Response> =>
    fetch(fx.gateway.endpoint('py'), {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2026-07-28', ...headers },
      body: JSON.stringify({ jsonrpc: '2.0', ...body }),
    });

  it('Python client (auto) speaks 2026-07-28 through the gateway: denied tool hidden and refused, PII masked, input-required retried; the client token never reaches the server', async () => {
    const token = await fx.token('agent');
    const run = await runPythonClient(fx.gateway.endpoint('py'), token, [
      ['lookup', { customer: 'c-1' }],
      ['drop_table', { table: 'users' }],
      ['confirm_transfer', { amount: 5 }],
    ]);
    expect(run.protocolVersion).toBe('2026-07-28');
    expect(run.tools).toEqual(['confirm_transfer', 'lookup']);
    const [lookup, drop, transfer] = run.calls;
    expect(lookup!.result!.content![0]!.text).toBe('customer c-1: contact [REDACTED:pii-email]');
    expect(JSON.stringify(lookup)).not.toContain('ann.smith@example.com');
    expect(drop!.error!.code).toBe(-32001);
    expect(drop!.error!.message).toContain('Dropping tables is blocked.');
    // The retry carried the server's signed requestState back unchanged, with the client's answer.
    expect(transfer!.result!.content![0]!.text).toBe('transfer 5 confirmed=True state=round-1');
    expect(run.elicitations[0]!.message).toBe('Transfer 5? Reply to [REDACTED:pii-email]');
    expect(py.authorizations.length).toBeGreaterThan(0);
    expect(new Set(py.authorizations)).toEqual(new Set([`Bearer ${pyCredential}`]));
    expect(py.authorizations.join('\n')).not.toContain(token);
    // Every request reached the server in the stateless era, with its routing headers; drop_table never did.
    expect(py.posts).toContain('server/discover 2026-07-28');
    expect(py.posts).toContain('tools/call 2026-07-28');
    expect(py.posts.filter((line) => line.startsWith('tools/call')).length).toBe(3);
    const events = await fx.events();
    const commands = events.filter((e) => e.type === 'command.issued').map((e) => (e.payload as { text: string }).text);
    expect(commands.some((text) => text.startsWith('tools/call drop_table on py'))).toBe(true);
  }, 90_000);

  it('headers that disagree with the body are refused (400, -32020) before the server sees them, and recorded', async () => {
    const token = await fx.token('agent');
    const before = py.posts.length;
    const mismatch = await post(token, { id: 7, method: 'tools/call', params: { name: 'drop_table', arguments: { table: 'users' }, _meta: META } }, { 'mcp-method': 'tools/call', 'mcp-name': 'lookup' });
    expect(mismatch.status).toBe(400);
    const body = (await mismatch.json()) as { id: number; error: { code: number; message: string } };
    expect(body).toMatchObject({ id: 7, error: { code: -32020 } });
    expect(body.error.message).toContain('Mcp-Name');
    const wrongMethod = await post(token, { id: 8, method: 'tools/call', params: { name: 'lookup', arguments: {}, _meta: META } }, { 'mcp-method': 'tools/list' });
    expect(((await wrongMethod.json()) as { error: { code: number } }).error.code).toBe(-32020);
    const noMeta = await post(token, { id: 9, method: 'tools/list', params: { _meta: { 'io.modelcontextprotocol/protocolVersion': '2026-07-28' } } }, { 'mcp-method': 'tools/list' });
    expect(noMeta.status).toBe(400);
    expect(((await noMeta.json()) as { error: { code: number } }).error.code).toBe(-32602);
    const future = await post(token, { id: 10, method: 'tools/list', params: { _meta: { ...META, 'io.modelcontextprotocol/protocolVersion': '2099-01-01' } } }, { 'mcp-method': 'tools/list', 'mcp-protocol-version': '2099-01-01' });
    expect(future.status).toBe(400);
    expect(await future.json()).toMatchObject({ id: 10, error: { code: -32022, data: { supported: ['2026-07-28'], requested: '2099-01-01' } } });
    expect(py.posts.length).toBe(before);
    const get = await fetch(fx.gateway.endpoint('py'), { headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream', 'mcp-protocol-version': '2026-07-28' } });
    expect(get.status).toBe(405);
    const events = await fx.events();
    const refused = events.filter((e) => e.type === 'command.issued' && (e.payload as { text: string }).text.includes('Mcp-Name header does not match'));
    expect(refused.length).toBe(1);
    expect(JSON.stringify(events)).toContain(HEADER_MISMATCH_RULE);
  }, 60_000);

  it('a held call answers on its own request-scoped SSE stream once granted', async () => {
    const token = await fx.token('agent');
    const pending = post(token, { id: 11, method: 'tools/call', params: { name: 'confirm_transfer', arguments: { amount: 5000 }, _meta: META } }, { 'mcp-method': 'tools/call', 'mcp-name': 'confirm_transfer' });
    const request = await approvals.nextRequest();
    expect(request.ruleId).toBe('big-transfers-need-approval');
    approvals.grant(request.approvalId, approver);
    const response = await pending;
    expect(response.headers.get('content-type')).toContain('text/event-stream');
    expect(response.headers.get('mcp-session-id')).toBeNull();
    const text = await response.text();
    // The tool answered input-required (it asks the user to confirm): relayed with its requestState.
    const events = text.split('\n').filter((line) => line.startsWith('data: ')).map((line) => JSON.parse(line.slice(6)) as { id: number; result: { resultType: string; requestState?: string } });
    expect(events.at(-1)).toMatchObject({ id: 11, result: { resultType: 'input_required' } });
    expect(events.at(-1)!.result.requestState).toMatch(/^v1\./);
  }, 60_000);

  it('the input_required retry of an approved call continues the approval (not held again); a replayed requestState or other arguments are refused', async () => {
    const token = await fx.token('agent');
    const call = (id: number, args: Record<string, unknown>, extra: Record<string, unknown> = {}) =>
      post(token, { id, method: 'tools/call', params: { name: 'confirm_transfer', arguments: args, ...extra, _meta: META } }, { 'mcp-method': 'tools/call', 'mcp-name': 'confirm_transfer' });
    const lastEvent = async (response: Response) => {
      const text = await response.text();
      const data = text.split('\n').filter((line) => line.startsWith('data: ')).map((line) => JSON.parse(line.slice(6)) as { id: number; result?: { resultType?: string; requestState?: string; content?: { text: string }[] }; error?: { message: string } });
      return data.length > 0 ? data.at(-1)! : (JSON.parse(text) as (typeof data)[number]);
    };
    const pending = call(21, { amount: 5000 });
    const held = await approvals.nextRequest();
    approvals.grant(held.approvalId, approver);
    const first = await lastEvent(await pending);
    expect(first.result?.resultType).toBe('input_required');
    const requestState = first.result!.requestState!;
    const answers = { confirm: { action: 'accept', content: { ok: true } } };

    // The requestState with other arguments (forged): refused, and the offer stays unused.
    const requestsBefore = approvals.requests.length;
    const other = await lastEvent(await call(22, { amount: 5000, memo: 'to someone else' }, { requestState, inputResponses: answers }));
    expect(other.error?.message).toContain('belongs to another approved call');

    // The retry: same tool and arguments, the relayed requestState. No second approval request.
    const retry = await lastEvent(await call(23, { amount: 5000 }, { requestState, inputResponses: answers }));
    expect(retry.result?.content?.[0]?.text).toBe('transfer 5000 confirmed=True state=round-1');
    expect(approvals.requests.length).toBe(requestsBefore);

    // The same requestState again (a replay): refused, never held nor forwarded.
    const replay = await lastEvent(await call(24, { amount: 5000 }, { requestState, inputResponses: answers }));
    expect(replay.error?.message).toContain('already used');
    expect(approvals.requests.length).toBe(requestsBefore);
    // All three decisions on record (waited for: strict mode waits for them only so long before answering).
    const decisions = async () => {
      const all = (await fx.events()).filter((e) => e.type === 'policy.decided');
      // From the held call's decision on (an earlier test held another call under the same rule).
      return all.slice(all.findIndex((e) => (e.payload as { commandId?: string }).commandId === held.commandId)).filter((e) => ['big-transfers-need-approval', CONTINUATION_REPLAYED_RULE, CONTINUATION_MISMATCH_RULE].includes((e.payload as { ruleId?: string }).ruleId ?? ''));
    };
    const deadline = Date.now() + 30_000;
    while ((await decisions()).length < 4 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
    const decided = (await decisions()).map((e) => e.payload as { decision: string; ruleId: string; reason: string });
    expect(decided.map((d) => [d.ruleId, d.decision])).toEqual([
      ['big-transfers-need-approval', 'require-approval'],
      [CONTINUATION_MISMATCH_RULE, 'block'],
      ['big-transfers-need-approval', 'allow'],
      [CONTINUATION_REPLAYED_RULE, 'block'],
    ]);
    expect(decided[2]!.reason).toContain(`continues the call approved as command ${held.commandId}`);

    // The Python SDK client drives the same exchange by itself: one approval, then its automatic retry continues it.
    const before = approvals.requests.length;
    const run = runPythonClient(fx.gateway.endpoint('py'), token, [['confirm_transfer', { amount: 5000 }]]);
    const sdkHeld = await approvals.nextRequest();
    approvals.grant(sdkHeld.approvalId, approver);
    const sdk = await run;
    expect(sdk.calls[0]!.result!.content![0]!.text).toBe('transfer 5000 confirmed=True state=round-1');
    expect(approvals.requests.length).toBe(before + 1);
  }, 90_000);

  it('a stdio server in the stateless era: the Python SDK client speaks 2026-07-28 through the gateway to a stdio child (no initialize), policy and masking apply; a session-era client still gets initialize', async () => {
    const token = await fx.token('agent');
    // The first stateless request starts the Python server (era probe, then this token's session):
    // on a loaded machine that can outlast the Python client's own discover timeout, after which it
    // falls back to initialize. So one raw request first; the client's session is then warm.
    const warm = await fetch(fx.gateway.endpoint('py-stdio'), {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'server/discover' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'server/discover', params: { _meta: META } }),
    });
    expect(await warm.text()).toContain('2026-07-28');
    const run = await runPythonClient(fx.gateway.endpoint('py-stdio'), token, [
      ['lookup', { customer: 'c-9' }],
      ['drop_table', { table: 'users' }],
    ]);
    expect(run.protocolVersion).toBe('2026-07-28');
    expect(run.calls[0]!.result!.content![0]!.text).toBe('customer c-9: contact [REDACTED:pii-email]');
    expect(run.calls[1]!.error!.code).toBe(-32001);
    const events = await fx.events();
    const issued = events.filter((e) => e.type === 'command.issued').map((e) => (e.payload as { text: string }).text);
    expect(issued).toContain('tools/call lookup on py-stdio {"customer":"c-9"}');
    // No initialize went to a child of this client's session: its frames toward the server are stateless requests.
    const sessionIds = new Set(events.filter((e) => e.type === 'session.opened' && (e.payload as { connection: { name: string } }).connection.name === 'py-stdio').map((e) => (e.payload as { sessionId: string }).sessionId));
    const labels = events.filter((e) => e.type === 'frame.recorded' && sessionIds.has((e.payload as { sessionId: string }).sessionId) && (e.payload as { direction: string }).direction === 'client-to-upstream').map((e) => (e.payload as { messageType: string }).messageType);
    expect(labels).toContain('tools/call');
    expect(labels).not.toContain('initialize');

    const { client, transport } = await fx.connect(token, 'py-stdio');
    expect(client.getServerVersion()?.name).toBe('python-stdio-upstream');
    expect(((await client.callTool({ name: 'lookup', arguments: { customer: 'c-10' } })).content as { text: string }[])[0]!.text).toBe('customer c-10: contact [REDACTED:pii-email]');
    await transport.terminateSession();
    await client.close();
  }, 90_000);

  it('era detection: a stateless client toward a session-era upstream gets -32022 naming 2025-11-25, and the Python client falls back to initialize', async () => {
    const token = await fx.token('agent');
    const probe = await fetch(fx.gateway.endpoint('tools'), {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'server/discover' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'server/discover', params: { _meta: META } }),
    });
    expect(probe.status).toBe(400);
    const refusal = (await probe.json()) as { error: { code: number; message: string; data: { supported: string[] } } };
    expect(refusal.error.code).toBe(-32022);
    expect(refusal.error.data.supported).toContain('2025-11-25');
    expect(refusal.error.message).toContain('session era only');
    const run = await runPythonClient(fx.gateway.endpoint('tools'), token, [['echo', { message: 'hi' }]]);
    expect(run.protocolVersion).toBe('2025-11-25');
    expect(run.tools.length).toBeGreaterThan(0);
  }, 60_000);

  it("the gateway's own client-credentials token goes upstream: issued by the IdP for the upstream's audience, never the client's token, reused while fresh", async () => {
    const token = await fx.token('agent');
    const before = py.authorizations.length;
    const run = await runPythonClient(fx.gateway.endpoint('py-cc'), token, [['lookup', { customer: 'c-2' }]]);
    expect(run.calls[0]!.result!.content![0]!.text).toBe('customer c-2: contact [REDACTED:pii-email]');
    const sent = py.authorizations.slice(before);
    expect(sent.length).toBeGreaterThan(2);
    expect(new Set(sent).size).toBe(1);
    expect(sent.join('\n')).not.toContain(token);
    const upstreamToken = sent[0]!.replace(/^Bearer /, '');
    const verified = await new OidcAccessTokenVerifier({ issuers: [{ issuer: fx.oidc.issuer, audiences: ['https://py-upstream.test'] }] }).verify(upstreamToken);
    expect(verified.identity.subject).toBe('custodian-gateway');
    const events = JSON.stringify(await fx.events());
    expect(events).not.toContain(upstreamToken);
    expect(events).not.toContain(ccSecret);
    expect(events).toContain('env:CC_SECRET');
  }, 60_000);

  it('a session-era client (TypeScript SDK) works against a 2026-07-28-only upstream: the gateway bridges, and says clearly what cannot be bridged', async () => {
    const token = await fx.token('agent');
    const before = modern.posts.length;
    const { client, transport } = await fx.connect(token, 'py-modern');
    expect(client.getServerVersion()?.name).toBe('python-stateless-upstream');
    expect(client.getInstructions()).toBe('A test upstream.');
    expect((await client.listTools()).tools.map((t) => t.name).sort()).toEqual(['confirm_transfer', 'drop_table', 'lookup']);
    const lookup = await client.callTool({ name: 'lookup', arguments: { customer: 'c-3' } });
    expect((lookup.content as { text: string }[])[0]!.text).toBe('customer c-3: contact [REDACTED:pii-email]');
    const input = await client.callTool({ name: 'confirm_transfer', arguments: { amount: 7 } }).catch((error: unknown) => error as Error);
    expect((input as Error).message).toContain('asks the client for input (2026-07-28 input_required)');
    await client.ping();
    await transport.terminateSession();
    await client.close();
    // Upstream, after the refused initialize, only stateless requests with their routing headers.
    const seen = modern.posts.slice(before);
    expect(seen[0]).toBe('- -');
    expect(seen.slice(1).every((line) => line.endsWith(' 2026-07-28'))).toBe(true);
    expect(seen).toContain('tools/call 2026-07-28');
    expect(new Set(modern.authorizations)).toEqual(new Set([`Bearer ${pyCredential}`]));
  }, 60_000);

  it('a session-era client (TypeScript SDK) works against a stdio server that speaks only 2026-07-28: the gateway bridges it like an HTTP one', async () => {
    const token = await fx.token('agent');
    const { client, transport } = await fx.connect(token, 'py-stdio-modern');
    expect(client.getServerVersion()?.name).toBe('python-stdio-upstream');
    expect(client.getInstructions()).toBe('A stdio test upstream.');
    expect((await client.listTools()).tools.map((t) => t.name).sort()).toEqual(['drop_table', 'lookup']);
    const lookup = await client.callTool({ name: 'lookup', arguments: { customer: 'c-4' } });
    expect((lookup.content as { text: string }[])[0]!.text).toBe('customer c-4: contact [REDACTED:pii-email]');
    const dropped = await client.callTool({ name: 'drop_table', arguments: { table: 'users' } }).catch((error: unknown) => error as Error);
    expect((dropped as Error).message).toContain('Not permitted through the gateway');
    await client.ping();
    await transport.terminateSession();
    await client.close();
  }, 90_000);
});

