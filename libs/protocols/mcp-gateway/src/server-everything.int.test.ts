// The MCP gateway in front of @modelcontextprotocol/server-everything (npm), run as its own process
// in streamable HTTP mode: the reference server's tools, a blocked one hidden, SSE progress streamed
// through, structured content validated by the SDK client after masking.
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { McpError } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMcpFixture, type McpFixture } from './testing/gateway-fixture.js';

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return typeof address === 'object' && address ? address.port : 0;
}

async function startEverything(): Promise<{ url: string; child: ChildProcess }> {
  const require = createRequire(import.meta.url);
  const entry = join(dirname(require.resolve('@modelcontextprotocol/server-everything/package.json')), 'dist/index.js');
  const port = await freePort();
  const child = spawn(process.execPath, [entry, 'streamableHttp'], { env: { ...process.env, PORT: String(port) }, stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server-everything did not start: ${log}`)), 20_000);
    const onData = (chunk: Buffer): void => {
      log += chunk.toString();
      if (log.includes(`listening on port ${port}`)) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', (code) => reject(new Error(`server-everything exited (${code}): ${log}`)));
  });
  return { url: `http://127.0.0.1:${port}/mcp`, child };
}

describe('MCP gateway in front of @modelcontextprotocol/server-everything (streamable HTTP)', () => {
  let fx: McpFixture;
  let everything: { url: string; child: ChildProcess };
  beforeAll(async () => {
    everything = await startEverything();
    fx = await startMcpFixture({ extraConnections: [{ name: 'everything', upstream: { url: everything.url, credential: { ref: 'env:EVERYTHING_TOKEN', read: () => 'everything-held-credential' } } }] });
  }, 60_000);
  afterAll(async () => {
    await fx?.stop();
    everything?.child.kill('SIGTERM');
  });

  it('lists the reference tools without the blocked get-env, runs echo with PII masked, refuses get-env naming the rule', async () => {
    const { client, transport, clientBound } = await fx.connect(await fx.token('agent'), 'everything');
    const { tools } = await client.listTools();
    const names = tools.map((t) => t.name);
    expect(names).toContain('echo');
    expect(names).toContain('get-structured-content');
    expect(names).not.toContain('get-env');
    const echoed = await client.callTool({ name: 'echo', arguments: { message: `mail ${fx.piiValue} please` } });
    expect(echoed.content).toEqual([{ type: 'text', text: 'Echo: mail [REDACTED:pii-email] please' }]);
    const refused = await client.callTool({ name: 'get-env', arguments: {} }).catch((error: unknown) => error as McpError);
    expect(refused.message).toContain('Environment dumps are blocked. (rule no-env-dumps)');
    const structured = await client.callTool({ name: 'get-structured-content', arguments: { location: 'Chicago' } });
    expect(structured.structuredContent).toMatchObject({ temperature: expect.any(Number), conditions: expect.any(String) });
    await transport.terminateSession();
    expect(clientBound().toString()).not.toContain(fx.piiValue);
    const issued = (await fx.events()).filter((e) => e.type === 'command.issued').map((e) => (e.payload as { text: string }).text);
    expect(issued).toContain('tools/call echo on everything {"message":"mail [REDACTED:pii-email] please"}');
  });

  it('progress notifications of a long-running tool stream through the gateway as SSE, each recorded', async () => {
    const { client, transport } = await fx.connect(await fx.token('agent'), 'everything');
    const progress: number[] = [];
    const result = await client.callTool({ name: 'trigger-long-running-operation', arguments: { duration: 1, steps: 3 } }, undefined, { onprogress: (p) => progress.push(p.progress) });
    expect(progress).toEqual([1, 2, 3]);
    expect(JSON.stringify(result.content)).toContain('Long running operation completed');
    await transport.terminateSession();
    const frames = (await fx.events()).filter((e) => e.type === 'frame.recorded' && (e.payload as { messageType: string }).messageType === 'notifications/progress');
    expect(frames.length).toBeGreaterThanOrEqual(3);
  });
});
