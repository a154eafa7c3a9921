// The MCP gateway: `tools/call` round trips per second and p50/p99 latency, the SDK's Client calling
// an SDK McpServer (streamable HTTP, JSON responses) directly and through the gateway, same run,
// sequential calls on one session each. Through the gateway: bearer session, policy decision
// (mcp language), tool pins, detectors over the result, every message recorded as a frame; in
// strict mode (command.issued + policy.decided durable in SQLite before forwarding, the default)
// and, as a second subject, relaxed mode (recorded, not waited for), so the durability wait shows.
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { startMcpFixture } from '@custodian/mcp-gateway/testing';
import { figure, type Benchmark, type Figure } from '../benchmark.ts';
import { nowNs, percentile } from '../measurement.ts';

const NAME = 'mcp-gateway';

interface Run {
  readonly perSecond: number;
  readonly latenciesMs: number[];
  /** This process's CPU time per measured call (client, gateway and server all run here). */
  readonly cpuMsPerCall: number;
}

/** An SDK client on `url` with a bearer token: the same construction for the direct and the gateway paths. */
async function connect(url: string, token: string): Promise<{ client: Client; transport: StreamableHTTPClientTransport }> {
  const client = new Client({ name: 'bench', version: '1.0.0' });
  const transport = new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers: { authorization: `Bearer ${token}` } } });
  await client.connect(transport);
  return { client, transport };
}

async function drive(client: Client, calls: number): Promise<Run> {
  for (let i = 0; i < Math.min(50, calls); i++) await client.callTool({ name: 'echo', arguments: { message: `warm ${i}` } });
  const latenciesMs: number[] = [];
  const cpu = process.cpuUsage();
  const begin = nowNs();
  for (let i = 0; i < calls; i++) {
    const t = nowNs();
    await client.callTool({ name: 'echo', arguments: { message: `call ${i}` } });
    latenciesMs.push(Number(nowNs() - t) / 1e6);
  }
  const seconds = Number(nowNs() - begin) / 1e9;
  const used = process.cpuUsage(cpu);
  return { perSecond: calls / seconds, latenciesMs: latenciesMs.sort((a, b) => a - b), cpuMsPerCall: (used.user + used.system) / 1000 / calls };
}

export const mcpGateway: Benchmark = {
  name: NAME,
  description: 'MCP tools/call round trips/s and p50/p99 latency: SDK client → SDK server directly vs through the gateway (policy, strict evidence, masking, frames)',
  async run({ quick, log }): Promise<Figure[]> {
    const calls = quick ? 300 : 3000;
    const fx = await startMcpFixture();
    try {
      // Both clients are built alike: the fixture's own connect() tees every response body for the
      // tests' custody checks, which cost the client ≈ 0.7 ms per call in a profile and is not the gateway's.
      const { client: direct, transport: directTransport } = await connect(fx.upstream.url, fx.upstreamCredential);
      log(`${NAME}: ${calls} calls direct`);
      const bare = await drive(direct, calls);
      await directTransport.terminateSession();
      await direct.close();
      const { client, transport } = await connect(fx.gateway.endpoint('tools'), await fx.token('agent'));
      log(`${NAME}: ${calls} calls through the gateway (strict)`);
      const gated = await drive(client, calls);
      await transport.terminateSession();
      await client.close();
      const relaxedFx = await startMcpFixture({ strict: false });
      let relaxed: Run;
      try {
        const session = await connect(relaxedFx.gateway.endpoint('tools'), await relaxedFx.token('agent'));
        log(`${NAME}: ${calls} calls through the gateway (relaxed)`);
        relaxed = await drive(session.client, calls);
        await session.transport.terminateSession();
        await session.client.close();
      } finally {
        await relaxedFx.stop();
      }
      const p = (run: Run, q: number): number => percentile(run.latenciesMs, q);
      const note = `${calls} sequential tools/call (echo) on one session; strict evidence in SQLite`;
      return [
        figure(NAME, { metric: 'tools/call round trips/s', unit: 'calls/s', better: 'higher', subject: 'through the gateway', value: gated.perSecond, baseline: { name: 'direct to the MCP server', value: bare.perSecond }, notes: note }),
        figure(NAME, { metric: 'tools/call latency p50', unit: 'ms', better: 'lower', subject: 'through the gateway', value: p(gated, 50), baseline: { name: 'direct to the MCP server', value: p(bare, 50) }, notes: `added p50 ${(p(gated, 50) - p(bare, 50)).toFixed(2)} ms` }),
        figure(NAME, { metric: 'tools/call latency p99', unit: 'ms', better: 'lower', subject: 'through the gateway', value: p(gated, 99), baseline: { name: 'direct to the MCP server', value: p(bare, 99) }, notes: `added p99 ${(p(gated, 99) - p(bare, 99)).toFixed(2)} ms` }),
        figure(NAME, { metric: 'tools/call round trips/s', unit: 'calls/s', better: 'higher', subject: 'through the gateway, relaxed mode', value: relaxed.perSecond, baseline: { name: 'direct to the MCP server', value: bare.perSecond }, notes: 'events recorded, not waited for before forwarding' }),
        figure(NAME, { metric: 'tools/call latency p50', unit: 'ms', better: 'lower', subject: 'through the gateway, relaxed mode', value: p(relaxed, 50), baseline: { name: 'direct to the MCP server', value: p(bare, 50) }, notes: `added p50 ${(p(relaxed, 50) - p(bare, 50)).toFixed(2)} ms` }),
        // CPU time is what the gateway itself controls, and it is far less disturbed than latency by other load on the machine.
        figure(NAME, { metric: 'process CPU per tools/call', unit: 'ms', better: 'lower', subject: 'through the gateway, relaxed mode', value: relaxed.cpuMsPerCall, baseline: { name: 'direct to the MCP server (client + server)', value: bare.cpuMsPerCall }, notes: `the gateway's own CPU ≈ ${(relaxed.cpuMsPerCall - bare.cpuMsPerCall).toFixed(2)} ms per call (strict: ${(gated.cpuMsPerCall - bare.cpuMsPerCall).toFixed(2)} ms)` }),
      ];
    } finally {
      await fx.stop();
    }
  },
};
