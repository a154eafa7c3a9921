// Test-only: the HTTP gateway in front of a real local JSON API (plain and TLS with a test CA)
// and the Anthropic stand-in, with a real OpenID Provider, a SQLite event store behind the store
// evidence pipeline and the real approvals workflow. One per test file.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpsServer, type Server } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EventSourcedApprovalGate } from '@custodian/approvals';
import type { CustodySigningKey } from '@custodian/custody';
import type { CustodianEvent } from '@custodian/event-contracts';
import { StoreEvidencePipeline } from '@custodian/evidence-pipeline';
import { SqliteEventStore } from '@custodian/event-store-sqlite';
import { OidcAccessTokenVerifier } from '@custodian/identity-oidc';
import { parsePolicy } from '@custodian/policy';
import { SessionPipeline } from '@custodian/session-pipeline';
import { runCommand, startOidcProvider, type StartedOidcProvider } from '@custodian/test-harness';
import { HttpGateway } from '../http-gateway.js';
import type { HttpConnection } from '../gateway-options.js';
import { startAnthropicStandIn, type AnthropicStandIn } from './anthropic-stand-in.js';
import { startJsonApiUpstream, type JsonApiUpstream } from './json-api-upstream.js';

const keys = generateKeyPairSync('ed25519');
export const FIXTURE_CUSTODY_KEY: CustodySigningKey = { keyId: 'http-test-gateway', privateKey: keys.privateKey, publicKeyPem: keys.publicKey.export({ type: 'spki', format: 'pem' }).toString() };

export const TEST_POLICY = `
name: http-gateway-test
version: 1
defaults:
  decision: block
  message: Not permitted through the gateway.
rules:
  - id: block-admin
    match:
      http: { paths: ["/admin/**"] }
    decision: block
    message: Admin endpoints are blocked.
  - id: orders-post-needs-approval
    match:
      identity: { groups: [agents] }
      http: { methods: [POST], paths: ["/orders"] }
    decision: require-approval
    approval: { approverGroups: [ops], required: 1, timeoutSeconds: 30, grant: once }
  - id: agents-read
    match:
      identity: { groups: [agents] }
      http: { methods: [GET, HEAD] }
    decision: allow
  - id: agents-put-drafts
    match:
      identity: { groups: [agents] }
      http: { methods: [PUT], paths: ["/drafts/*"], body: { "$.status": { equals: draft } } }
    decision: allow
  - id: claude-block-big
    match:
      llm: { models: ["claude-blocked-*"] }
    decision: block
    message: This model is not allowed.
  - id: claude-mask-prompt
    match:
      identity: { groups: [agents] }
      llm: { models: ["claude-standin-masked-*"], detectors: [email, secret] }
    decision: allow
    maskPrompt: true
  - id: claude-secrets-held
    match:
      identity: { groups: [agents] }
      llm: { detectors: [secret, private-key, jwt] }
    decision: block
    message: Secrets must not be sent to the model.
  - id: claude-allowed
    match:
      identity: { groups: [agents] }
      llm: { models: ["claude-standin-*"] }
    decision: allow
masking:
  - id: customer-ssn
    jsonPaths: ["$.customers[*].ssn"]
    strategy: partial
    keepLast: 4
  - id: nested-token
    jsonPaths: ["$.customers[*].nested.token"]
    strategy: redact
  - id: pii
    detectors: [email]
    strategy: redact
`;

export interface Fixture {
  readonly gateway: HttpGateway;
  readonly base: string;
  readonly api: JsonApiUpstream;
  readonly tlsApiUrl: string;
  readonly standIn: AnthropicStandIn;
  readonly oidc: StartedOidcProvider;
  readonly store: SqliteEventStore;
  readonly approvals: EventSourcedApprovalGate;
  readonly apiCredential: string;
  readonly anthropicKey: string;
  readonly piiValue: string;
  readonly logLines: string[];
  /** The pipeline the gateway runs on (for tests that start another listener over it). */
  readonly pipeline: SessionPipeline;
  /** The test CA and a server certificate from it for 127.0.0.1 / localhost (PEM). */
  readonly tlsMaterial: { readonly ca: string; readonly cert: string; readonly key: string };
  /** An access token of agent-7 (`agent`), a second agent (`agent-2`: agent-8) or the approver ops-1. */
  token(client?: 'agent' | 'agent-2' | 'approver'): Promise<string>;
  events(): Promise<CustodianEvent[]>;
  stop(): Promise<void>;
}

async function testCa(dir: string): Promise<{ ca: string; cert: string; key: string }> {
  const openssl = (args: string[]) => runCommand('openssl', args, { cwd: dir, timeoutMs: 60_000 });
  await openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=custodian-http-test-ca']);
  await openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=localhost']);
  writeFileSync(join(dir, 'san.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  await openssl(['x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.crt', '-days', '2', '-extfile', 'san.ext']);
  return { ca: readFileSync(join(dir, 'ca.crt'), 'utf8'), cert: readFileSync(join(dir, 'server.crt'), 'utf8'), key: readFileSync(join(dir, 'server.key'), 'utf8') };
}

export async function startFixture(options: { strict?: boolean; extraConnections?: (f: { apiUrl: string; apiCredential: string }) => HttpConnection[] } = {}): Promise<Fixture> {
  const dir = mkdtempSync(join(tmpdir(), 'custodian-http-gateway-'));
  const apiCredential = randomBytes(18).toString('base64url');
  const anthropicKey = `sk-ant-api03-${randomBytes(24).toString('base64url')}`;
  const piiValue = `jane.${randomBytes(3).toString('hex')}@example.com`;
  const api = await startJsonApiUpstream({ credential: apiCredential, piiValue });
  const standIn = await startAnthropicStandIn({ apiKey: anthropicKey, piiValue });
  const tls = await testCa(dir);
  // The same API behind TLS (a server certificate from the test CA).
  const tlsServer: Server = createHttpsServer({ cert: tls.cert, key: tls.key }, (req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ tls: true, auth: req.headers.authorization === `Bearer ${apiCredential}` }));
  });
  await new Promise<void>((resolve) => tlsServer.listen(0, '127.0.0.1', () => resolve()));
  const tlsPort = (tlsServer.address() as { port: number }).port;
  const oidc = await startOidcProvider({ clients: [{ clientId: 'agent-7', kind: 'agent', groups: ['agents'] }, { clientId: 'agent-8', kind: 'agent', groups: ['agents'] }, { clientId: 'ops-1', kind: 'human', groups: ['ops'] }] });
  const store = await SqliteEventStore.open({ path: join(dir, 'events.sqlite'), pollIntervalMs: 20 });
  const evidence = new StoreEvidencePipeline({ store, instance: 'http-test-gateway' });
  const approvals = new EventSourcedApprovalGate({ eventStore: store, instance: 'http-test-gateway', pollIntervalMs: 50 });
  await approvals.start();
  const pipeline = new SessionPipeline({
    verifier: new OidcAccessTokenVerifier({ issuers: [{ issuer: oidc.issuer, audiences: [oidc.defaultAudience] }] }),
    policy: { policy: parsePolicy(TEST_POLICY, 'policy.yaml') },
    evidence,
    strict: options.strict ?? true,
    approvals,
    approvalWaitSeconds: 30,
    source: { service: 'gateway', instance: 'http-test-gateway' },
    maskingKey: randomBytes(32),
    custodyKey: FIXTURE_CUSTODY_KEY,
  });
  const logLines: string[] = [];
  const line = (level: string) => (fields: object, message: string) => void logLines.push(`${level} ${message} ${JSON.stringify(fields)}`);
  const bearer = (secret: string, ref: string) => ({ kind: 'bearer' as const, secret: () => secret, credentialRef: ref });
  const gateway = new HttpGateway({
    host: '127.0.0.1',
    port: 0,
    pipeline,
    logger: { info: line('info'), warn: line('warn'), error: line('error') },
    connections: [
      { name: 'orders', upstream: { url: api.url, credential: bearer(apiCredential, 'env:ORDERS_API_TOKEN') } },
      { name: 'orders-small', maxRequestBodyBytes: 64, maxJsonResponseBytes: 64, upstream: { url: api.url, credential: bearer(apiCredential, 'env:ORDERS_API_TOKEN') } },
      { name: 'orders-large', maxJsonResponseBytes: 16 * 1024 * 1024, upstream: { url: api.url, credential: bearer(apiCredential, 'env:ORDERS_API_TOKEN') } },
      { name: 'orders-pass-binary', unmaskableResponses: 'pass', upstream: { url: api.url, credential: bearer(apiCredential, 'env:ORDERS_API_TOKEN') } },
      { name: 'orders-tls', upstream: { url: `https://127.0.0.1:${tlsPort}`, ca: tls.ca, credential: bearer(apiCredential, 'env:ORDERS_API_TOKEN') } },
      { name: 'orders-untrusted-tls', upstream: { url: `https://127.0.0.1:${tlsPort}`, credential: bearer(apiCredential, 'env:ORDERS_API_TOKEN') } },
      { name: 'claude', kind: 'anthropic', upstream: { url: standIn.url, credential: { kind: 'header', name: 'x-api-key', secret: () => anthropicKey, credentialRef: 'env:ANTHROPIC_API_KEY' } } },
      { name: 'claude-no-thinking', kind: 'anthropic', thinking: 'refuse', upstream: { url: standIn.url, credential: { kind: 'header', name: 'x-api-key', secret: () => anthropicKey, credentialRef: 'env:ANTHROPIC_API_KEY' } } },
      { name: 'claude-masked', kind: 'anthropic', maskPrompt: true, upstream: { url: standIn.url, credential: { kind: 'header', name: 'x-api-key', secret: () => anthropicKey, credentialRef: 'env:ANTHROPIC_API_KEY' } } },
      ...(options.extraConnections?.({ apiUrl: api.url, apiCredential }) ?? []),
    ],
  });
  await gateway.listen();
  const tokens = new Map<string, string>();
  return {
    gateway,
    base: `http://127.0.0.1:${gateway.port}`,
    api,
    tlsApiUrl: `https://127.0.0.1:${tlsPort}`,
    standIn,
    oidc,
    store,
    approvals,
    apiCredential,
    anthropicKey,
    piiValue,
    logLines,
    pipeline,
    tlsMaterial: tls,
    async token(client = 'agent') {
      const cached = tokens.get(client);
      if (cached) return cached;
      const issued = await oidc.issueToken({ clientId: client === 'agent' ? 'agent-7' : client === 'agent-2' ? 'agent-8' : 'ops-1' });
      tokens.set(client, issued.accessToken);
      return issued.accessToken;
    },
    async events() {
      const out: CustodianEvent[] = [];
      for await (const recorded of store.readAll()) out.push(recorded.event);
      return out;
    },
    async stop() {
      await gateway.close();
      await approvals.close();
      await evidence.close();
      await store.close();
      await Promise.all([api.stop(), standIn.stop(), oidc.stop(), new Promise<void>((resolve) => tlsServer.close(() => resolve()))]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
