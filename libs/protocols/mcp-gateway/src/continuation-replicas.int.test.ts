// Continuations of approved calls across gateway replicas and restarts (MCP 2026-07-28). Two
// gateway instances share one event store, each with its own session pipeline and its own
// event-sourced approval gate; approvers decide as the API does (ApprovalCommandHandlers on the same
// store). The Python SDK client goes through a load-balancer stand-in that sends its input_required
// retry to the other replica: the retry continues the approval there, exactly once. A restarted
// gateway honours a requestState relayed before the restart; a replay, or the same retry sent to
// both replicas at once, continues once and is refused otherwise.
import { randomBytes } from 'node:crypto';
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApprovalCommandHandlers, ApprovalRepository, ApproveApprovalCommand, EventSourcedApprovalGate } from '@custodian/approvals';
import type { CustodianEvent, Identity } from '@custodian/event-contracts';
import { CONTINUATION_REPLAYED_RULE } from './approved-continuations.js';
import type { McpGateway } from './mcp-gateway.js';
import { startMcpFixture, type McpFixture } from './testing/gateway-fixture.js';
import { pythonSdkAvailable, runPythonClient, startPythonUpstream, type PythonUpstream } from './testing/python-sdk.js';

const META = { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientCapabilities': {}, 'io.modelcontextprotocol/clientInfo': { name: 'raw-fetch', version: '1' } };
const approver: Identity = { kind: 'human', subject: 'fin-1', issuer: 'https://idp.example', groups: ['finance'] };
type Requested = Extract<CustodianEvent, { type: 'approval.requested' }>;

/** A load balancer without stickiness (stand-in): a request carrying a requestState goes to `retries`, any other to `first`. */
async function startBalancer(first: () => McpGateway, retries: () => McpGateway): Promise<{ url: (connection: string) => string; retryBodies: string[]; routed: string[]; close(): Promise<void> }> {
  const retryBodies: string[] = [];
  const routed: string[] = [];
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const isRetry = body.includes('"requestState"');
      if (isRetry) retryBodies.push(body.toString('utf8'));
      const target = isRetry ? retries() : first();
      routed.push(`${isRetry ? 'retry' : 'first'}:${target.port}`);
      const upstream = httpRequest({ host: target.host, port: target.port, method: req.method, path: req.url, headers: { ...req.headers, host: `${target.host}:${target.port}` } }, (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      });
      upstream.on('error', () => res.destroy());
      res.on('close', () => upstream.destroy());
      upstream.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    url: (connection) => `http://127.0.0.1:${port}/mcp/${connection}`,
    retryBodies,
    routed,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

describe.skipIf(!pythonSdkAvailable())('continuations of approved MCP calls across gateway replicas and restarts (shared event store)', () => {
  let fx: McpFixture;
  let py: PythonUpstream;
  let replica: McpGateway;
  let balancer: Awaited<ReturnType<typeof startBalancer>>;
  let api: ApprovalCommandHandlers;
  const gates: EventSourcedApprovalGate[] = [];
  const pyCredential = `py-upstream-${randomBytes(12).toString('base64url')}`;

  beforeAll(async () => {
    py = await startPythonUpstream();
    fx = await startMcpFixture({
      approvals: (store, instance) => {
        const gate = new EventSourcedApprovalGate({ eventStore: store, instance, pollIntervalMs: 50 });
        gates.push(gate);
        return gate;
      },
      extraConnections: [{ name: 'py', upstream: { url: py.url, credential: { ref: 'env:PY_MCP_TOKEN', read: () => pyCredential } } }],
      extraRules: `
  - id: big-transfers-need-approval
    match: { identity: { groups: [analysts] }, mcp: { servers: [py], tools: [confirm_transfer], arguments: { "$.amount": { equals: 5000 } } } }
    decision: require-approval
    approval: { approverGroups: [finance], required: 1, timeoutSeconds: 60, grant: once }
  - id: py-lookups
    match: { identity: { groups: [analysts] }, mcp: { servers: [py], tools: [lookup, confirm_transfer] } }
    decision: allow
`,
    });
    replica = await fx.startReplica();
    for (const gate of gates) await gate.start();
    api = new ApprovalCommandHandlers(new ApprovalRepository({ eventStore: fx.store, source: { service: 'api', instance: 'api-test' } }));
    balancer = await startBalancer(() => fx.gateway, () => replica);
  }, 120_000);
  afterAll(async () => {
    await balancer?.close();
    await Promise.all(gates.map((gate) => gate.close()));
    await fx?.stop();
    await py?.stop();
  });

  /** The next approval.requested after the `seen` ones (waited for: the held call records it). */
  async function nextRequested(seen: number): Promise<Requested> {
    const deadline = Date.now() + 60_000;
    for (;;) {
      const requested = (await fx.events()).filter((e): e is Requested => e.type === 'approval.requested');
      if (requested.length > seen) return requested[seen]!;
      if (Date.now() > deadline) throw new Error('no approval was requested');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  const requestedCount = async (): Promise<number> => (await fx.events()).filter((e) => e.type === 'approval.requested').length;
  const continuationEvents = async (approvalId: string): Promise<CustodianEvent[]> =>
    (await fx.events()).filter((e) => (e.type === 'mcp-continuation.offered' || e.type === 'mcp-continuation.used') && e.payload.approvalId === approvalId);

  const post = (gateway: McpGateway, token: string, body: string): Promise<Response> =>
    fetch(gateway.endpoint('py'), {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/call', 'mcp-name': 'confirm_transfer' },
      body,
    });
  const lastMessage = async (response: Response): Promise<{ result?: { resultType?: string; requestState?: string; content?: { text: string }[] }; error?: { message: string } }> => {
    const text = await response.text();
    const data = text.split('\n').filter((line) => line.startsWith('data: ')).map((line) => JSON.parse(line.slice(6)) as Awaited<ReturnType<typeof lastMessage>>);
    return data.length > 0 ? data.at(-1)! : (JSON.parse(text) as Awaited<ReturnType<typeof lastMessage>>);
  };

  it('the Python SDK client: held on one replica, approved, its input_required retry reaches the other replica and continues the approval once; a replay to either replica is refused', async () => {
    const token = await fx.token('agent');
    const seen = await requestedCount();
    const run = runPythonClient(balancer.url('py'), token, [['confirm_transfer', { amount: 5000 }]]);
    const requested = await nextRequested(seen);
    expect(requested.source.instance).toBe('test-mcp-gateway');
    await api.approve.execute(new ApproveApprovalCommand(requested.payload.approvalId, approver, 'checked the transfer'));
    const result = await run;
    expect(result.calls[0]!.result?.content?.[0]?.text).toBe('transfer 5000 confirmed=True state=round-1');
    // One approval only: the retry on the other replica was not held again.
    expect(await requestedCount()).toBe(seen + 1);
    expect(balancer.routed.some((route) => route === `retry:${replica.port}`)).toBe(true);
    const continuation = await continuationEvents(requested.payload.approvalId);
    expect(continuation.map((e) => [e.type, e.source.instance])).toEqual([
      ['mcp-continuation.offered', 'test-mcp-gateway'],
      ['mcp-continuation.used', 'test-mcp-gateway-2'],
    ]);
    expect(continuation[0]!.payload).toMatchObject({ tool: 'confirm_transfer', ruleId: 'big-transfers-need-approval', approvedCommandId: requested.payload.commandId });

    // The client's retry replayed verbatim, to each replica: refused, nothing forwarded, no new approval.
    const retryBody = balancer.retryBodies.at(-1)!;
    for (const gateway of [replica, fx.gateway]) {
      const replay = await lastMessage(await post(gateway, token, retryBody));
      expect(replay.error?.message).toContain('already used');
      expect(replay.error?.message).toContain(CONTINUATION_REPLAYED_RULE);
    }
    expect(await requestedCount()).toBe(seen + 1);
    expect((await continuationEvents(requested.payload.approvalId)).map((e) => e.type)).toEqual(['mcp-continuation.offered', 'mcp-continuation.used']);
  }, 120_000);

  it('after a gateway restart the relayed requestState still continues the approval; the same retry sent to both replicas at once continues exactly once', async () => {
    const token = await fx.token('agent');
    const seen = await requestedCount();
    const pending = post(fx.gateway, token, JSON.stringify({ jsonrpc: '2.0', id: 31, method: 'tools/call', params: { name: 'confirm_transfer', arguments: { amount: 5000 }, _meta: META } }));
    const requested = await nextRequested(seen);
    await api.approve.execute(new ApproveApprovalCommand(requested.payload.approvalId, approver, 'checked the transfer'));
    const first = await lastMessage(await pending);
    expect(first.result?.resultType).toBe('input_required');
    const requestState = first.result!.requestState!;

    // Nothing of the first gateway's memory survives: a new gateway on the same store.
    await fx.restartGateway();
    const retry = JSON.stringify({
      jsonrpc: '2.0',
      id: 32,
      method: 'tools/call',
      params: { name: 'confirm_transfer', arguments: { amount: 5000 }, requestState, inputResponses: { confirm: { action: 'accept', content: { ok: true } } }, _meta: META },
    });
    const answers = await Promise.all([post(fx.gateway, token, retry), post(replica, token, retry)].map(async (response) => lastMessage(await response)));
    const continued = answers.filter((answer) => answer.result?.content?.[0]?.text === 'transfer 5000 confirmed=True state=round-1');
    const refused = answers.filter((answer) => answer.error?.message.includes('already used'));
    expect(continued).toHaveLength(1);
    expect(refused).toHaveLength(1);
    expect(await requestedCount()).toBe(seen + 1);
    expect((await continuationEvents(requested.payload.approvalId)).map((e) => e.type)).toEqual(['mcp-continuation.offered', 'mcp-continuation.used']);
  }, 120_000);
});
