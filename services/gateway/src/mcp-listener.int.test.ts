// The gateway service with `gateways.mcp` enabled over the shared `gateways.*` settings, built from a
// YAML config as the hosts build it: the SDK's client calls a tool through the listener and gets a
// refusal naming the rule; the upstream (an SDK McpServer) sees only the credential from the env
// reference; the listener publishes its protected-resource metadata.
import { randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SqliteEventStore } from '@custodian/event-store-sqlite';
import { createLogger } from '@custodian/observability';
import { startNestService, type RunningNestService } from '@custodian/observability/nest';
import { parseConfig } from '@custodian/runtime-config';
import { startOidcProvider, type StartedOidcProvider } from '@custodian/test-harness';
import { GatewayModule } from './index.js';
import { mcpConnectionOf } from './mcp-listener.js';

const HELD = `held-${randomUUID()}`;
let dir: string;
let oidc: StartedOidcProvider;
let store: SqliteEventStore;
let service: RunningNestService;
let upstream: Server;
let port = 0;
const authorizations: string[] = [];
const grants: { clientId: string | undefined; method: string }[] = [];

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return typeof address === 'object' && address ? address.port : 0;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'custodian-gateway-mcp-'));
  oidc = await startOidcProvider({ clients: [{ clientId: 'agent-1', groups: ['analysts'], kind: 'agent' }] });
  const transports = new Map<string, StreamableHTTPServerTransport>();
  upstream = createHttpServer((req, res) => {
    void (async () => {
      authorizations.push(req.headers.authorization ?? '');
      const chunks: Buffer[] = [];
      for await (const chunk of req as AsyncIterable<Buffer>) chunks.push(chunk);
      const body = chunks.length ? (JSON.parse(Buffer.concat(chunks).toString()) as unknown) : undefined;
      const id = req.headers['mcp-session-id'];
      let transport = typeof id === 'string' ? transports.get(id) : undefined;
      if (!transport) {
        const created = new StreamableHTTPServerTransport({ sessionIdGenerator: () => randomUUID(), onsessioninitialized: (sid) => void transports.set(sid, created) });
        const server = new McpServer({ name: 'service-test-upstream', version: '1.0.0' });
        server.registerTool('whoami', { description: 'Says hello.', annotations: { readOnlyHint: true } }, async () => ({ content: [{ type: 'text', text: 'hello from upstream, mail ann@example.com' }] }));
        server.registerTool('drop_all', { description: 'Drops everything.' }, async () => ({ content: [{ type: 'text', text: 'dropped' }] }));
        await server.connect(created);
        transport = created;
      }
      await transport.handleRequest(req, res, body);
    })();
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  const upstreamAddress = upstream.address();
  const upstreamPort = typeof upstreamAddress === 'object' && upstreamAddress ? upstreamAddress.port : 0;
  port = await freePort();
  const filesystemEntry = join(dirname(createRequire(import.meta.url).resolve('@modelcontextprotocol/server-filesystem/package.json')), 'dist/index.js');
  mkdirSync(join(dir, 'shared'));
  writeFileSync(join(dir, 'shared', 'note.txt'), 'call bob@example.com\n');
  writeFileSync(
    join(dir, 'policy.yaml'),
    `name: service-test
rules:
  - id: no-drops
    match: { mcp: { tools: ["drop_*"] } }
    decision: block
  - id: files-reads
    match: { identity: { groups: [analysts] }, mcp: { servers: [files], tools: [read_text_file] } }
    decision: allow
  - id: read-only
    match: { identity: { groups: [analysts] }, mcp: { annotations: { readOnlyHint: true } } }
    decision: allow
masking:
  - { id: emails, detectors: [email], strategy: redact }
`,
  );
  const loaded = parseConfig(
    `
identity:
  issuers:
    - issuer: ${oidc.issuer}
      audiences: [${oidc.defaultAudience}]
dataDir: data
gateways:
  policyFile: policy.yaml
  mcp:
    enabled: true
    listen: { host: 127.0.0.1, port: ${port} }
    connections:
      - name: helpdesk
        upstream:
          url: http://127.0.0.1:${upstreamPort}/mcp
          credential: { fromEnv: HELPDESK_MCP_TOKEN }
      - name: helpdesk-cc
        upstream:
          url: http://127.0.0.1:${upstreamPort}/mcp
          clientCredentials: { issuer: ${oidc.issuer}, clientId: custodian-gateway, clientSecret: { fromEnv: GATEWAY_CLIENT_SECRET }, resource: "https://helpdesk.test" }
      - name: helpdesk-cc-post
        upstream:
          url: http://127.0.0.1:${upstreamPort}/mcp
          clientCredentials: { issuer: ${oidc.issuer}, clientId: custodian-gateway-post, authMethod: client_secret_post, clientSecret: { fromEnv: GATEWAY_POST_CLIENT_SECRET }, resource: "https://helpdesk.test" }
      - name: files
        upstream:
          command: ${process.execPath}
          args: [${filesystemEntry}, ${join(dir, 'shared')}]
          env: { NODE_ENV: production }
          credential: { fromEnv: FILES_MCP_TOKEN }
          credentialEnv: FILES_TOKEN
`,
    { file: join(dir, 'custodian.yaml'), env: {}, cwd: dir },
  );
  process.env['HELPDESK_MCP_TOKEN'] = HELD;
  process.env['FILES_MCP_TOKEN'] = `files-${randomUUID()}`;
  process.env['GATEWAY_CLIENT_SECRET'] = oidc.registerClient({ clientId: 'custodian-gateway', kind: 'service' }).clientSecret;
  process.env['GATEWAY_POST_CLIENT_SECRET'] = oidc.registerClient({ clientId: 'custodian-gateway-post', kind: 'service' }).clientSecret;
  // oidc-provider accepts either secret method: how each grant authenticated is observed here.
  oidc.provider.on('grant.success', (ctx) => {
    grants.push({ clientId: ctx.oidc.client?.clientId, method: /^Basic /i.test(ctx.headers.authorization ?? '') ? 'client_secret_basic' : typeof ctx.oidc.params?.['client_secret'] === 'string' ? 'client_secret_post' : 'other' });
  });
  store = await SqliteEventStore.open({ path: join(dir, 'events.sqlite') });
  const logger = createLogger({ service: 'gateway', level: 'silent' });
  service = await startNestService({ module: GatewayModule.register({ eventStore: store, logger, loaded }), logger, listen: { host: '127.0.0.1', port: 0 }, shutdownHooks: false });
});

afterAll(async () => {
  await service?.close();
  await store?.close();
  upstream?.closeAllConnections();
  await new Promise<void>((resolve) => (upstream ? upstream.close(() => resolve()) : resolve()));
  await oidc?.stop();
  delete process.env['HELPDESK_MCP_TOKEN'];
  delete process.env['FILES_MCP_TOKEN'];
  delete process.env['GATEWAY_CLIENT_SECRET'];
  delete process.env['GATEWAY_POST_CLIENT_SECRET'];
  rmSync(dir, { recursive: true, force: true });
});

describe('gateway service: gateways.mcp', () => {
  it('serves MCP clients as configured: allowed call masked, blocked tool hidden and refused, held credential upstream', async () => {
    const metadata = await fetch(`http://127.0.0.1:${port}/.well-known/oauth-protected-resource/mcp/helpdesk`);
    expect(await metadata.json()).toMatchObject({ resource: `http://127.0.0.1:${port}/mcp/helpdesk`, authorization_servers: [oidc.issuer] });
    const token = (await oidc.issueToken({ clientId: 'agent-1' })).accessToken;
    const transport = new StreamableHTTPClientTransport(new URL(`http://127.0.0.1:${port}/mcp/helpdesk`), { requestInit: { headers: { authorization: `Bearer ${token}` } } });
    const client = new Client({ name: 'service-test', version: '1.0.0' });
    await client.connect(transport);
    expect((await client.listTools()).tools.map((t) => t.name)).toEqual(['whoami']);
    expect((await client.callTool({ name: 'whoami', arguments: {} })).content).toEqual([{ type: 'text', text: 'hello from upstream, mail [REDACTED:emails]' }]);
    await expect(client.callTool({ name: 'drop_all', arguments: {} })).rejects.toThrow(/\(rule no-drops\)/);
    await transport.terminateSession();
    await client.close();
    expect(new Set(authorizations)).toEqual(new Set([`Bearer ${HELD}`]));
    const types: string[] = [];
    const injected: unknown[] = [];
    for await (const recorded of store.readAll()) {
      types.push(recorded.event.type);
      if (recorded.event.type === 'credential.injected') injected.push(recorded.event.payload);
    }
    expect(types).toEqual(expect.arrayContaining(['policy.activated', 'session.opened', 'credential.injected', 'command.issued', 'policy.decided', 'data.masked', 'session.closed', 'custody.attested']));
    expect(injected[0]).toMatchObject({ credentialRef: 'env:HELPDESK_MCP_TOKEN', method: 'bearer' });
  });

  it('runs a stdio MCP server configured by command (server-filesystem): masked read, credential named by reference', async () => {
    const token = (await oidc.issueToken({ clientId: 'agent-1' })).accessToken;
    const transport = new StreamableHTTPClientTransport(new URL(`http://127.0.0.1:${port}/mcp/files`), { requestInit: { headers: { authorization: `Bearer ${token}` } } });
    const client = new Client({ name: 'service-test', version: '1.0.0' });
    await client.connect(transport);
    const read = await client.callTool({ name: 'read_text_file', arguments: { path: join(dir, 'shared', 'note.txt') } });
    expect(JSON.stringify(read.content)).toContain('call [REDACTED:emails]');
    await expect(client.callTool({ name: 'write_file', arguments: { path: join(dir, 'shared', 'x.txt'), content: 'x' } })).rejects.toThrow(/default deny/);
    await transport.terminateSession();
    await client.close();
    const injected: unknown[] = [];
    for await (const recorded of store.readAll()) if (recorded.event.type === 'credential.injected') injected.push(recorded.event.payload);
    expect(injected).toContainEqual(expect.objectContaining({ credentialRef: 'env:FILES_MCP_TOKEN', method: 'api-key' }));
  });

  it('presents its own client-credentials token upstream when configured (the IdP issued it for the upstream audience)', async () => {
    const token = (await oidc.issueToken({ clientId: 'agent-1' })).accessToken;
    const before = authorizations.length;
    const transport = new StreamableHTTPClientTransport(new URL(`http://127.0.0.1:${port}/mcp/helpdesk-cc`), { requestInit: { headers: { authorization: `Bearer ${token}` } } });
    const client = new Client({ name: 'service-test', version: '1.0.0' });
    await client.connect(transport);
    expect((await client.callTool({ name: 'whoami', arguments: {} })).content).toEqual([{ type: 'text', text: 'hello from upstream, mail [REDACTED:emails]' }]);
    await transport.terminateSession();
    await client.close();
    const sent = new Set(authorizations.slice(before));
    expect(sent.size).toBe(1);
    const [header] = [...sent];
    expect(header).not.toBe(`Bearer ${token}`);
    const claims = JSON.parse(Buffer.from(header!.split('.')[1]!, 'base64url').toString()) as { sub: string; aud: string };
    expect(claims).toMatchObject({ sub: 'custodian-gateway', aud: 'https://helpdesk.test' });
  });

  it('client_secret_post when configured (authMethod): the secret goes in the token request body, and the token upstream is the IdP\'s for that client', async () => {
    const token = (await oidc.issueToken({ clientId: 'agent-1' })).accessToken;
    const before = authorizations.length;
    const transport = new StreamableHTTPClientTransport(new URL(`http://127.0.0.1:${port}/mcp/helpdesk-cc-post`), { requestInit: { headers: { authorization: `Bearer ${token}` } } });
    const client = new Client({ name: 'service-test', version: '1.0.0' });
    await client.connect(transport);
    expect((await client.callTool({ name: 'whoami', arguments: {} })).content).toEqual([{ type: 'text', text: 'hello from upstream, mail [REDACTED:emails]' }]);
    await transport.terminateSession();
    await client.close();
    const sent = [...new Set(authorizations.slice(before))];
    expect(sent.length).toBe(1);
    const claims = JSON.parse(Buffer.from(sent[0]!.split('.')[1]!, 'base64url').toString()) as { sub: string; aud: string };
    expect(claims).toMatchObject({ sub: 'custodian-gateway-post', aud: 'https://helpdesk.test' });
    expect(grants.filter((g) => g.clientId === 'custodian-gateway-post')).toEqual([{ clientId: 'custodian-gateway-post', method: 'client_secret_post' }]);
    expect(grants.filter((g) => g.clientId === 'custodian-gateway').every((g) => g.method === 'client_secret_basic')).toBe(true);
  });

  it('refuses a connection with both url and command, or a stdio credential without its variable, naming the key', () => {
    const load = (upstream: string) =>
      parseConfig(
        `
identity:
  issuers: [{ issuer: ${oidc.issuer}, audiences: [x] }]
gateways:
  mcp:
    enabled: true
    connections:
      - name: bad
        upstream: ${upstream}
`,
        { file: join(dir, 'bad.yaml'), env: {}, cwd: dir },
      );
    const both = load('{ url: "http://127.0.0.1:1/mcp", command: /bin/true }');
    expect(() => mcpConnectionOf(both.config.gateways.mcp.connections[0]!, 0, both)).toThrow(/gateways\.mcp\.connections\[0\]\.upstream: give exactly one of url .* and command/);
    const noVariable = load('{ command: /bin/true, credential: { fromEnv: X } }');
    expect(() => mcpConnectionOf(noVariable.config.gateways.mcp.connections[0]!, 0, noVariable)).toThrow(/upstream\.credentialEnv/);
    const plainHttp = load('{ url: "http://127.0.0.1:1/mcp", clientCredentials: { issuer: "http://idp.example.com", clientId: c, clientSecret: { fromEnv: X } } }');
    expect(() => mcpConnectionOf(plainHttp.config.gateways.mcp.connections[0]!, 0, plainHttp)).toThrow(/clientCredentials\.issuer: .*must be https/);
  });
});
