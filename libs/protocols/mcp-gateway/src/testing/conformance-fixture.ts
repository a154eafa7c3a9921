// Test-only: the MCP side of the gateway conformance suite (@custodian/gateway-conformance), in
// both protocol eras. Session era: the upstream is an SDK-built McpServer (TypeScript SDK 1.x,
// streamable HTTP) and the client the same SDK's Client. Stateless era (2026-07-28): the upstream is
// a Python SDK (mcp 2.x) server that refuses `initialize`, and the client the TypeScript SDK 2.x
// Client pinned to 2026-07-28 (server/discover, per-request _meta and routing headers). Both
// upstreams log every tool call they run (the observation point for "did it reach the upstream");
// the clients' fetch keeps every response byte they received. A command is `<tool> <JSON arguments>`.
import { Client as ModernClient, StreamableHTTPClientTransport as ModernTransport } from '@modelcontextprotocol/client';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { ConformanceClient, ConformanceEnvironment, ConformanceGateway, ConformanceReply, GatewayConformanceFixture } from '@custodian/gateway-conformance';
import { BearerAuthenticator } from '@custodian/identity';
import { OidcAccessTokenVerifier } from '@custodian/identity-oidc';
import { parsePolicy } from '@custodian/policy';
import { SessionPipeline } from '@custodian/session-pipeline';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteEventStore } from '@custodian/event-store-sqlite';
import { McpGateway } from '../mcp-gateway.js';
import { teeingFetch } from './gateway-fixture.js';
import { startPythonConformanceUpstream, type PythonConformanceUpstream } from './python-sdk.js';
import { startTestUpstream, type TestUpstream } from './upstream-server.js';

const CONNECTION = 'conformance';

async function runCommand(call: (name: string, args: Record<string, unknown>) => Promise<Record<string, unknown>>, command: string): Promise<ConformanceReply> {
  const space = command.indexOf(' ');
  const name = space === -1 ? command : command.slice(0, space);
  const args = space === -1 ? {} : (JSON.parse(command.slice(space + 1)) as Record<string, unknown>);
  try {
    const result = await call(name, args);
    return { ok: result['isError'] !== true, output: JSON.stringify({ content: result['content'], structuredContent: result['structuredContent'] }) };
  } catch (error) {
    const e = error as Error & { code?: number; data?: unknown };
    return { ok: false, output: `${e.message}${e.code === undefined ? '' : ` (JSON-RPC ${e.code})`}${e.data === undefined ? '' : ` ${JSON.stringify(e.data)}`}` };
  }
}

async function connectClient(gateway: McpGateway, token: string): Promise<ConformanceClient> {
  const received: Buffer[] = [];
  const transport = new StreamableHTTPClientTransport(new URL(gateway.endpoint(CONNECTION)), { requestInit: { headers: { authorization: `Bearer ${token}` } }, fetch: teeingFetch(received) });
  const client = new Client({ name: 'gateway-conformance', version: '1.0.0' });
  await client.connect(transport);
  let gone = false;
  return {
    run: (command) => runCommand((name, args) => client.callTool({ name, arguments: args }, undefined, { timeout: 120_000 }), command),
    clientBound: () => Buffer.concat(received),
    async close() {
      if (gone) return;
      gone = true;
      await transport.terminateSession().catch(() => undefined);
      await client.close().catch(() => undefined);
    },
    disconnect() {
      gone = true;
      // Aborts every open request and stream without DELETE: the gateway sees the client vanish.
      void transport.close().catch(() => undefined);
    },
  };
}

/** A 2026-07-28 client (TypeScript SDK 2.x): no session, each request on its own; closing ends nothing on the server. */
async function connectModernClient(gateway: McpGateway, token: string): Promise<ConformanceClient> {
  const received: Buffer[] = [];
  const transport = new ModernTransport(new URL(gateway.endpoint(CONNECTION)), { requestInit: { headers: { authorization: `Bearer ${token}` } }, fetch: teeingFetch(received) });
  const client = new ModernClient({ name: 'gateway-conformance-modern', version: '1.0.0' }, { versionNegotiation: { mode: { pin: '2026-07-28' } } });
  await client.connect(transport);
  if (client.getProtocolEra() !== 'modern') throw new Error(`the client negotiated the ${client.getProtocolEra() ?? 'unknown'} era, not 2026-07-28`);
  let gone = false;
  return {
    run: (command) => runCommand((name, args) => client.callTool({ name, arguments: args }, { timeout: 120_000 }), command),
    clientBound: () => Buffer.concat(received),
    async close() {
      if (gone) return;
      gone = true;
      await client.close().catch(() => undefined);
    },
    disconnect() {
      gone = true;
      // Aborts every open request: the gateway sees the client vanish.
      void transport.close().catch(() => undefined);
    },
  };
}

export type McpConformanceEra = 'session' | 'stateless';

export function mcpConformanceFixture(era: McpConformanceEra = 'session'): GatewayConformanceFixture {
  let upstream: TestUpstream | PythonConformanceUpstream | undefined;
  let credential: string | undefined;
  // Tool pins live in an event store of their own here (the suite's store is behind its evidence pipeline).
  let pins: { store: SqliteEventStore; dir: string } | undefined;
  const pinStore = (): SqliteEventStore => {
    if (!pins) throw new Error('the pin store is not open');
    return pins.store;
  };
  const started = (): TestUpstream | PythonConformanceUpstream => {
    if (!upstream) throw new Error('the upstream MCP server is not started');
    return upstream;
  };
  return {
    protocol: 'mcp',
    ocsfClassUid: 6003,
    policy: {
      allowed: { mcp: { tools: ['echo', 'lookup_customer'] } },
      blocked: { mcp: { tools: ['delete_records'] } },
      held: { mcp: { tools: ['transfer'] } },
    },
    commands: {
      allowed: (marker) => `echo ${JSON.stringify({ message: marker })}`,
      blocked: (marker) => `delete_records ${JSON.stringify({ table: marker })}`,
      held: (marker) => `transfer ${JSON.stringify({ to: marker, amount: 1 })}`,
      pii: () => `lookup_customer ${JSON.stringify({ id: 'c-1' })}`,
    },

    async startUpstream(setup) {
      credential = setup.credential;
      upstream = era === 'stateless' ? await startPythonConformanceUpstream(setup) : await startTestUpstream({ credential: setup.credential, piiValue: setup.piiValue });
      const dir = mkdtempSync(join(tmpdir(), 'custodian-mcp-pins-'));
      pins = { dir, store: await SqliteEventStore.open({ path: join(dir, 'events.sqlite') }) };
    },

    async startGateway(environment: ConformanceEnvironment): Promise<ConformanceGateway> {
      const target = started();
      const verifier = new OidcAccessTokenVerifier({ issuers: [{ issuer: environment.issuer.issuer, audiences: [environment.issuer.audience] }] });
      const pipeline = new SessionPipeline({
        verifier,
        policy: { policy: parsePolicy(environment.policyYaml, 'conformance-policy.yaml') },
        evidence: environment.evidence,
        strict: environment.strict,
        approvals: environment.approvals,
        approvalWaitSeconds: environment.approvalWaitSeconds,
        source: environment.source,
        maskingKey: randomBytes(32),
        custodyKey: environment.custodyKey,
      });
      const gateway = new McpGateway({
        host: '127.0.0.1',
        port: 0,
        pipeline,
        authenticator: new BearerAuthenticator({ verifier, audiences: [environment.issuer.audience] }),
        authorizationServers: [environment.issuer.issuer],
        logger: environment.logger,
        keepAliveMs: 1_000,
        // A client that vanishes (no DELETE) ends its session once nothing of it is open any more.
        idleTimeoutMs: 2_000,
        connections: [{ name: CONNECTION, upstream: { url: target.url, credential: { ref: environment.credentialRef, read: () => credential ?? '' } } }],
        toolPins: { eventStore: pinStore(), source: environment.source },
      });
      await gateway.listen();
      return { connect: (token) => (era === 'stateless' ? connectModernClient(gateway, token) : connectClient(gateway, token)), stop: () => gateway.close() };
    },

    async reachedUpstream(marker) {
      // The upstream logs a call as it runs it; a short settle lets a request already on its way
      // through the gateway arrive (PostgreSQL's fixture uses a barrier statement for the same).
      await new Promise((resolve) => setTimeout(resolve, 50));
      const calls: readonly (string | { readonly arguments: string })[] = started().calls;
      return calls.some((call) => (typeof call === 'string' ? call : call.arguments).includes(marker));
    },

    async stop() {
      await upstream?.stop();
      await pins?.store.close();
      if (pins) rmSync(pins.dir, { recursive: true, force: true });
    },
  };
}
