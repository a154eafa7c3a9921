// Test-only: the MCP side of the gateway conformance suite (@custodian/gateway-conformance). The
// upstream is an SDK-built McpServer (streamable HTTP) that logs every tool call it runs (the
// observation point for "did it reach the upstream"); the client is the SDK's Client over its
// streamable HTTP transport, with a fetch that keeps every response byte it received. A command is
// `<tool> <JSON arguments>`.
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
import { startTestUpstream, type TestUpstream } from './upstream-server.js';

const CONNECTION = 'conformance';

async function runCommand(client: Client, command: string): Promise<ConformanceReply> {
  const space = command.indexOf(' ');
  const name = space === -1 ? command : command.slice(0, space);
  const args = space === -1 ? {} : (JSON.parse(command.slice(space + 1)) as Record<string, unknown>);
  try {
    const result = await client.callTool({ name, arguments: args }, undefined, { timeout: 120_000 });
    return { ok: result.isError !== true, output: JSON.stringify({ content: result.content, structuredContent: result.structuredContent }) };
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
    run: (command) => runCommand(client, command),
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

export function mcpConformanceFixture(): GatewayConformanceFixture {
  let upstream: TestUpstream | undefined;
  let credential: string | undefined;
  // Tool pins live in an event store of their own here (the suite's store is behind its evidence pipeline).
  let pins: { store: SqliteEventStore; dir: string } | undefined;
  const pinStore = (): SqliteEventStore => {
    if (!pins) throw new Error('the pin store is not open');
    return pins.store;
  };
  const started = (): TestUpstream => {
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
      upstream = await startTestUpstream({ credential: setup.credential, piiValue: setup.piiValue });
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
      return { connect: (token) => connectClient(gateway, token), stop: () => gateway.close() };
    },

    async reachedUpstream(marker) {
      // The upstream logs a call as it runs it; a short settle lets a request already on its way
      // through the gateway arrive (PostgreSQL's fixture uses a barrier statement for the same).
      await new Promise((resolve) => setTimeout(resolve, 50));
      return started().calls.some((call) => call.arguments.includes(marker));
    },

    async stop() {
      await upstream?.stop();
      await pins?.store.close();
      if (pins) rmSync(pins.dir, { recursive: true, force: true });
    },
  };
}
