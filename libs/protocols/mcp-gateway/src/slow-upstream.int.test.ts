// A slow upstream. The SDK server starts its SSE response at once, so the connection's `timeoutMs`
// (a deadline for the response to START) does not cut a slow tool: the call is answered when the
// tool is done, and other calls of the same session are served meanwhile (no head-of-line blocking).
// A client that gives up (closes its request) cancels the upstream call; see policy-and-masking for
// the held case.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMcpFixture, type McpFixture } from './testing/gateway-fixture.js';

describe('MCP gateway: a slow upstream', () => {
  let fx: McpFixture;
  beforeAll(async () => {
    fx = await startMcpFixture({ upstreamTimeoutMs: 1_000 });
  }, 60_000);
  afterAll(async () => {
    await fx?.stop();
  });

  it('a slow streamed call is answered when the tool is done; other calls of the session are served meanwhile', async () => {
    const { client, transport } = await fx.connect(await fx.token('agent'));
    fx.upstream.slowMs = 2_500;
    const order: string[] = [];
    const slow = client.callTool({ name: 'slow', arguments: { marker: 'late' } }).then((result) => {
      order.push('slow');
      return result;
    });
    await new Promise((resolve) => setTimeout(resolve, 200));
    const echo = await client.callTool({ name: 'echo', arguments: { message: 'meanwhile' } });
    order.push('echo');
    expect(echo.content).toEqual([{ type: 'text', text: 'echo: meanwhile' }]);
    expect((await slow).content).toEqual([{ type: 'text', text: 'slow late' }]);
    expect(order).toEqual(['echo', 'slow']);
    await transport.terminateSession();
    await client.close();
  }, 60_000);

  it('an upstream that does not start answering within timeoutMs gives HTTP 502 with a clear JSON-RPC error, and the session goes on', async () => {
    const { client, transport } = await fx.connect(await fx.token('agent'));
    // Stop the upstream from answering at all: its HTTP server keeps the connection but never responds.
    fx.upstream.stallRequests = true;
    const stalled = await client.callTool({ name: 'echo', arguments: { message: 'x' } }).then(
      () => undefined,
      (error: unknown) => error as { code?: number; message: string },
    );
    fx.upstream.stallRequests = false;
    // HTTP 502 with the JSON-RPC error -32603 in the body (the SDK client reports the status and the body).
    expect(stalled?.message).toContain('-32603');
    expect(stalled?.message).toContain('did not answer in time');
    expect((await client.callTool({ name: 'echo', arguments: { message: 'again' } })).content).toEqual([{ type: 'text', text: 'echo: again' }]);
    await transport.terminateSession();
    await client.close();
  }, 60_000);
});
