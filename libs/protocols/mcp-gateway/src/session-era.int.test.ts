// The MCP gateway in the session era (2025-06-18 / 2025-11-25) with the SDK's Client and an
// SDK-built McpServer upstream: OAuth resource-server behaviour, sessions, credential custody.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { McpFixture } from './testing/gateway-fixture.js';
import { startMcpFixture } from './testing/gateway-fixture.js';

describe('MCP gateway: session era, authentication and custody', () => {
  let fx: McpFixture;
  beforeAll(async () => {
    fx = await startMcpFixture();
  }, 60_000);
  afterAll(async () => {
    await fx?.stop();
  });

  it('publishes RFC 9728 protected-resource metadata and answers 401 with resource_metadata', async () => {
    const metadata = await fetch(`${fx.gateway.publicUrl}/.well-known/oauth-protected-resource/mcp/tools`);
    expect(metadata.status).toBe(200);
    expect(await metadata.json()).toEqual({
      resource: fx.url,
      authorization_servers: [fx.oidc.issuer],
      bearer_methods_supported: ['header'],
      resource_name: 'Custodian MCP gateway: tools',
    });
    const init = { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } };
    const anonymous = await fetch(fx.url, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' }, body: JSON.stringify(init) });
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get('www-authenticate')).toBe(`Bearer realm="custodian", resource_metadata="${fx.gateway.publicUrl}/.well-known/oauth-protected-resource/mcp/tools"`);
  });

  it('refuses a token for another audience (401 invalid_token, authentication.failed recorded)', async () => {
    const token = await fx.token('agent', { audience: 'https://other.example/api' });
    const init = { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } };
    const response = await fetch(fx.url, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' }, body: JSON.stringify(init) });
    expect(response.status).toBe(401);
    expect(response.headers.get('www-authenticate')).toContain('error="invalid_token"');
    expect(response.headers.get('www-authenticate')).toContain('resource_metadata=');
    const failed = (await fx.events()).filter((e) => e.type === 'authentication.failed');
    expect(failed.map((e) => (e.payload as { reasonCode: string }).reasonCode)).toContain('TOKEN_AUDIENCE_INVALID');
    expect(fx.upstream.authorizations.some((a) => a.includes(token))).toBe(false);
  });

  it('an identity with no rule for the connection is refused (403)', async () => {
    const token = await fx.token('outsider');
    await expect(fx.connect(token)).rejects.toThrow(/403|may not use connection/);
  });

  it('opens a session through the SDK client, calls a tool, and the upstream only ever sees the gateway credential', async () => {
    const token = await fx.token('agent');
    const { client, transport } = await fx.connect(token);
    expect(transport.sessionId).toMatch(/^[A-Za-z0-9_-]{32}$/);
    const result = await client.callTool({ name: 'echo', arguments: { message: 'hello' } });
    expect(result.content).toEqual([{ type: 'text', text: 'echo: hello' }]);
    await client.ping();
    await transport.terminateSession();
    await client.close();
    expect(fx.upstream.authorizations.length).toBeGreaterThan(2);
    expect(new Set(fx.upstream.authorizations)).toEqual(new Set([`Bearer ${fx.upstreamCredential}`]));
    const events = await fx.events();
    const injected = events.filter((e) => e.type === 'credential.injected');
    expect(injected.at(-1)?.payload).toMatchObject({ credentialRef: 'env:TOOLS_MCP_TOKEN', method: 'bearer' });
    const attested = events.filter((e) => e.type === 'custody.attested');
    expect(attested.length).toBeGreaterThan(0);
    const serialized = JSON.stringify(events);
    expect(serialized).not.toContain(fx.upstreamCredential);
    expect(serialized).not.toContain(token);
  });

  it('missing Mcp-Session-Id → 400, unknown → 404, wrong MCP-Protocol-Version → 400', async () => {
    const token = await fx.token('agent');
    const { transport } = await fx.connect(token);
    const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' };
    const body = JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'ping' });
    expect((await fetch(fx.url, { method: 'POST', headers, body })).status).toBe(400);
    expect((await fetch(fx.url, { method: 'POST', headers: { ...headers, 'mcp-session-id': 'nope' }, body })).status).toBe(404);
    expect((await fetch(fx.url, { method: 'POST', headers: { ...headers, 'mcp-session-id': transport.sessionId!, 'mcp-protocol-version': '2024-01-01' }, body })).status).toBe(400);
    const ok = await fetch(fx.url, { method: 'POST', headers: { ...headers, 'mcp-session-id': transport.sessionId! }, body });
    expect(ok.status).toBe(200);
    expect(await ok.text()).toContain('"result":{}');
    // Another identity's token cannot use the session.
    const other = await fetch(fx.url, { method: 'POST', headers: { ...headers, authorization: `Bearer ${await fx.token('outsider')}`, 'mcp-session-id': transport.sessionId! }, body });
    expect(other.status).toBe(403);
    // A bad token on a live session: 401, and the refusal is on record.
    const failuresBefore = (await fx.events()).filter((e) => e.type === 'authentication.failed').length;
    const forged = await fetch(fx.url, { method: 'POST', headers: { ...headers, authorization: 'Bearer not.a.token', 'mcp-session-id': transport.sessionId! }, body });
    expect(forged.status).toBe(401);
    expect(forged.headers.get('www-authenticate')).toContain('error="invalid_token"');
    expect((await fx.events()).filter((e) => e.type === 'authentication.failed').length).toBe(failuresBefore + 1);
    await transport.terminateSession();
  });

  it('malformed, batched and oversized JSON-RPC are refused with JSON-RPC errors and never forwarded', async () => {
    const token = await fx.token('agent');
    const { transport } = await fx.connect(token);
    const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-session-id': transport.sessionId! };
    const before = fx.upstream.calls.length;
    const notJson = await fetch(fx.url, { method: 'POST', headers, body: '{"jsonrpc":"2.0",' });
    expect(notJson.status).toBe(400);
    expect(await notJson.json()).toMatchObject({ error: { code: -32700 } });
    const batch = await fetch(fx.url, { method: 'POST', headers, body: JSON.stringify([{ jsonrpc: '2.0', id: 1, method: 'ping' }]) });
    expect(batch.status).toBe(400);
    expect(await batch.json()).toMatchObject({ error: { code: -32600, message: expect.stringMatching(/batches/) } });
    const huge = await fetch(fx.url, { method: 'POST', headers, body: JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'echo', arguments: { message: 'x'.repeat(5 * 1024 * 1024) } } }) });
    expect(huge.status).toBe(413);
    expect(fx.upstream.calls.length).toBe(before);
    await transport.terminateSession();
  });
});
