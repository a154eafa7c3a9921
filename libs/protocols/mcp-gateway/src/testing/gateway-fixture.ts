// Test-only: a real OpenID Provider, a SQLite event store behind the store evidence pipeline, the
// SDK-built MCP server upstream, and the MCP gateway in front; clients are the SDK's Client over
// its streamable HTTP transport. One per test file.
import { generateKeyPairSync, randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CustodySigningKey } from '@custodian/custody';
import { EventFactory, type CustodianEvent } from '@custodian/event-contracts';
import { StoreEvidencePipeline } from '@custodian/evidence-pipeline';
import { SqliteEventStore } from '@custodian/event-store-sqlite';
import { BearerAuthenticator } from '@custodian/identity';
import { OidcAccessTokenVerifier } from '@custodian/identity-oidc';
import { loadPolicyFile } from '@custodian/policy';
import { SessionPipeline, type ApprovalGate } from '@custodian/session-pipeline';
import { startOidcProvider, type StartedOidcProvider } from '@custodian/test-harness';
import type { McpConnection } from '../gateway-options.js';
import { McpGateway } from '../mcp-gateway.js';
import { startTestUpstream, type TestUpstream } from './upstream-server.js';

const keys = generateKeyPairSync('ed25519');
export const FIXTURE_CUSTODY_KEY: CustodySigningKey = { keyId: 'test-mcp-gateway', privateKey: keys.privateKey, publicKeyPem: keys.publicKey.export({ type: 'spki', format: 'pem' }).toString() };

export const TEST_POLICY = `
name: mcp-gateway-test
version: 1
defaults:
  decision: block
  message: Not permitted through the gateway.
rules:
  - id: no-destructive
    match: { mcp: { tools: ["delete_*"] } }
    decision: block
    message: Destructive tools are blocked.
  - id: transfers-need-approval
    match: { identity: { groups: [analysts] }, mcp: { servers: [tools], tools: [transfer] } }
    decision: require-approval
    approval: { approverGroups: [finance], required: 1, timeoutSeconds: 3, grant: once }
  - id: writes-in-reports
    match:
      identity: { groups: [analysts] }
      mcp:
        tools: [write_file]
        arguments:
          "$.path": { pattern: ["/srv/reports/*"] }
    decision: allow
  - id: no-env-dumps
    match: { mcp: { tools: ["get-env"] } }
    decision: block
    message: Environment dumps are blocked.
  - id: long-operations
    match: { identity: { groups: [analysts] }, mcp: { servers: [everything], tools: [trigger-long-running-operation] } }
    decision: allow
  - id: read-only-tools
    match: { identity: { groups: [analysts] }, mcp: { methods: [tools/call], annotations: { readOnlyHint: true } } }
    decision: allow
  - id: resources-and-prompts
    match: { identity: { groups: [analysts] }, mcp: { methods: [resources/read, prompts/get] } }
    decision: allow
masking:
  - id: pii-email
    detectors: [email]
    strategy: redact
  - id: phone-number
    jsonPaths: ["$.phoneOnFile"]
    strategy: redact
`;

export interface McpFixture {
  readonly oidc: StartedOidcProvider;
  readonly upstream: TestUpstream;
  /** The running gateway (a new one after `restartGateway()`). */
  readonly gateway: McpGateway;
  readonly store: SqliteEventStore;
  /** Closes the gateway and starts a new one on the same store (nothing kept in memory): what a restart does. */
  restartGateway(): Promise<void>;
  /**
   * Another gateway replica on the same store and IdP: its own session pipeline, evidence
   * pipeline and approval gate (`approvals` as a factory), event source `test-mcp-gateway-<n>`.
   * Closed by `stop()`.
   */
  startReplica(): Promise<McpGateway>;
  readonly upstreamCredential: string;
  readonly piiValue: string;
  /** The `tools` connection's endpoint on the running gateway. */
  readonly url: string;
  token(client: 'agent' | 'outsider', options?: { audience?: string }): Promise<string>;
  /** An SDK client connected through the gateway; `clientBound()` is every body byte it received. */
  connect(token: string, connection?: string): Promise<{ client: Client; transport: StreamableHTTPClientTransport; clientBound: () => Buffer }>;
  events(): Promise<CustodianEvent[]>;
  stop(): Promise<void>;
}

export interface McpFixtureOptions {
  /** The approval gate; a factory makes one per gateway instance (`instance` names it), e.g. an EventSourcedApprovalGate on the store. */
  readonly approvals?: ApprovalGate | ((store: SqliteEventStore, instance: string) => ApprovalGate);
  readonly maxMessageBytes?: number;
  readonly keepAliveMs?: number;
  /** More upstreams (e.g. @modelcontextprotocol/server-everything), next to `tools`. */
  readonly extraConnections?: readonly McpConnection[];
  /** Deadline for the `tools` upstream's responses to start (default the gateway's, 30 s). */
  readonly upstreamTimeoutMs?: number;
  /** More rules (YAML list items, indented by two), placed before the test policy's own. */
  readonly extraRules?: string;
  /** Strict mode (a command is forwarded once its events are durable); default true. */
  readonly strict?: boolean;
}

/** A fetch that keeps a copy of every response body byte (what the client received). */
export function teeingFetch(sink: Buffer[]): typeof fetch {
  return async (input, init) => {
    const response = await fetch(input, init);
    if (!response.body) return response;
    const [mine, theirs] = response.body.tee();
    void (async () => {
      for await (const chunk of mine) sink.push(Buffer.from(chunk));
    })().catch(() => undefined);
    return new Response(theirs, { status: response.status, statusText: response.statusText, headers: response.headers });
  };
}

export async function startMcpFixture(options: McpFixtureOptions = {}): Promise<McpFixture> {
  const dir = mkdtempSync(join(tmpdir(), 'custodian-mcp-gateway-'));
  const upstreamCredential = `upstream-${randomBytes(18).toString('base64url')}`;
  const piiValue = `maria.${randomBytes(3).toString('hex')}@example.com`;
  const upstream = await startTestUpstream({ credential: upstreamCredential, piiValue });
  const oidc = await startOidcProvider({
    clients: [
      { clientId: 'agent-7', kind: 'agent', groups: ['analysts'] },
      { clientId: 'outsider', kind: 'agent', groups: ['marketing'] },
    ],
  });
  const store = await SqliteEventStore.open({ path: join(dir, 'events.sqlite') });
  writeFileSync(join(dir, 'policy.yaml'), options.extraRules ? TEST_POLICY.replace('rules:\n', `rules:\n${options.extraRules.replace(/^\n/, '')}`) : TEST_POLICY);
  const verifier = new OidcAccessTokenVerifier({ issuers: [{ issuer: oidc.issuer, audiences: [oidc.defaultAudience, 'https://other.example/api'] }] });
  const audiences = [oidc.defaultAudience];
  const makePipeline = (instance: string): SessionPipeline => {
    const failures = new EventFactory({ service: 'gateway', instance });
    const approvals = typeof options.approvals === 'function' ? options.approvals(store, instance) : options.approvals;
    return new SessionPipeline({
      verifier,
      audiences,
      policy: { policy: loadPolicyFile(join(dir, 'policy.yaml')) },
      evidence: new StoreEvidencePipeline({ store, instance }),
      strict: options.strict ?? true,
      source: { service: 'gateway', instance },
      maskingKey: randomBytes(32),
      custodyKey: FIXTURE_CUSTODY_KEY,
      ...(approvals ? { approvals } : {}),
      authenticationFailures: {
        failed: async (payload) => {
          const stream = `auth-${randomUUID()}`;
          await store.append(stream, [failures.create({ type: 'authentication.failed', stream, sequence: 0, identity: null, payload })], { expectedRevision: 'no-stream' });
        },
      },
    });
  };
  const pipeline = makePipeline('test-mcp-gateway');
  const makeGateway = (gatewayPipeline: SessionPipeline = pipeline, instance = 'test-mcp-gateway'): McpGateway => new McpGateway({
    host: '127.0.0.1',
    port: 0,
    pipeline: gatewayPipeline,
    authenticator: new BearerAuthenticator({ verifier, audiences }),
    authorizationServers: [oidc.issuer],
    ...(options.maxMessageBytes ? { maxMessageBytes: options.maxMessageBytes } : {}),
    keepAliveMs: options.keepAliveMs ?? 200,
    connections: [
      { name: 'tools', upstream: { url: upstream.url, ...(options.upstreamTimeoutMs ? { timeoutMs: options.upstreamTimeoutMs } : {}), credential: { ref: 'env:TOOLS_MCP_TOKEN', read: () => upstreamCredential } } },
      ...(options.extraConnections ?? []),
    ],
    toolPins: { eventStore: store, source: { service: 'gateway', instance } },
  });
  const replicas: McpGateway[] = [];
  let gateway = makeGateway();
  await gateway.listen();
  return {
    oidc,
    upstream,
    get gateway() {
      return gateway;
    },
    store,
    upstreamCredential,
    piiValue,
    get url() {
      return gateway.endpoint('tools');
    },
    async restartGateway() {
      await gateway.close();
      gateway = makeGateway();
      await gateway.listen();
    },
    async startReplica() {
      const instance = `test-mcp-gateway-${replicas.length + 2}`;
      const replica = makeGateway(makePipeline(instance), instance);
      replicas.push(replica);
      await replica.listen();
      return replica;
    },
    async token(client, tokenOptions = {}) {
      const issued = await oidc.issueToken({ clientId: client === 'agent' ? 'agent-7' : 'outsider', ...(tokenOptions.audience ? { audience: tokenOptions.audience } : {}) });
      return issued.accessToken;
    },
    async connect(token, connection = 'tools') {
      const received: Buffer[] = [];
      const transport = new StreamableHTTPClientTransport(new URL(gateway.endpoint(connection)), { requestInit: { headers: { authorization: `Bearer ${token}` } }, fetch: teeingFetch(received) });
      const client = new Client({ name: 'custodian-test-client', version: '1.0.0' });
      await client.connect(transport);
      return { client, transport, clientBound: () => Buffer.concat(received) };
    },
    async events() {
      const all: CustodianEvent[] = [];
      for await (const recorded of store.readAll()) all.push(recorded.event);
      return all;
    },
    async stop() {
      await Promise.all(replicas.map((replica) => replica.close()));
      await gateway.close();
      await upstream.stop();
      await oidc.stop();
      await store.close();
    },
  };
}
