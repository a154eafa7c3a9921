// The gateway service with `gateways.http` enabled, built from a YAML config as the hosts build it:
// an HTTP connection (bearer credential from an env reference) and an Anthropic connection
// (x-api-key from a file reference) to the STAND-IN Messages API; readiness includes the listener;
// HTTPS + HTTP/2 from file references; http2 without tls is a config error.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:http2';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { SqliteEventStore } from '@custodian/event-store-sqlite';
import { createLogger } from '@custodian/observability';
import { startNestService, type RunningNestService } from '@custodian/observability/nest';
import { parseConfig } from '@custodian/runtime-config';
import { runCommand, startOidcProvider, type StartedOidcProvider } from '@custodian/test-harness';
import { startAnthropicStandIn, startJsonApiUpstream, type AnthropicStandIn, type JsonApiUpstream } from '@custodian/http-gateway/testing';
import { GatewayModule } from './index.js';

let dir: string;
let oidc: StartedOidcProvider;
let store: SqliteEventStore;
let service: RunningNestService;
let api: JsonApiUpstream;
let standIn: AnthropicStandIn;
let port = 0;
const API_TOKEN = 'api-token-held-by-the-gateway-1234';
const ANTHROPIC_KEY = 'sk-ant-api03-held-by-the-gateway-5678';

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return typeof address === 'object' && address ? address.port : 0;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'custodian-gateway-http-'));
  oidc = await startOidcProvider({ clients: [{ clientId: 'agent-1', groups: ['agents'], kind: 'agent' }] });
  api = await startJsonApiUpstream({ credential: API_TOKEN, piiValue: 'ann@example.com' });
  standIn = await startAnthropicStandIn({ apiKey: ANTHROPIC_KEY, piiValue: 'ann@example.com' });
  port = await freePort();
  writeFileSync(join(dir, 'anthropic.key'), ANTHROPIC_KEY);
  writeFileSync(
    join(dir, 'policy.yaml'),
    `name: service-test
rules:
  - id: read
    match: { identity: { groups: [agents] }, http: { methods: [GET] } }
    decision: allow
  - id: models
    match: { identity: { groups: [agents] }, llm: { models: ["claude-standin-*"] } }
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
  http:
    enabled: true
    listen: { host: 127.0.0.1, port: ${port} }
    connections:
      - name: people-api
        upstream:
          url: ${api.url}
          credential: { kind: bearer, secret: { fromEnv: PEOPLE_API_TOKEN } }
      - name: claude
        kind: anthropic
        upstream:
          url: ${standIn.url}
          credential: { kind: header, name: x-api-key, secret: { fromFile: anthropic.key } }
`,
    { file: join(dir, 'custodian.yaml'), env: {}, cwd: dir },
  );
  process.env['PEOPLE_API_TOKEN'] = API_TOKEN;
  store = await SqliteEventStore.open({ path: join(dir, 'events.sqlite') });
  const logger = createLogger({ service: 'gateway', level: 'silent' });
  service = await startNestService({ module: GatewayModule.register({ eventStore: store, logger, loaded }), logger, listen: { host: '127.0.0.1', port: 0 }, shutdownHooks: false });
});

afterAll(async () => {
  await service?.close();
  await store?.close();
  await Promise.all([oidc?.stop(), api?.stop(), standIn?.stop()]);
  delete process.env['PEOPLE_API_TOKEN'];
  rmSync(dir, { recursive: true, force: true });
});

describe('gateway service: gateways.http', () => {
  it('serves an HTTP API and the Messages API as configured and reports ready', async () => {
    expect((await fetch(`${service.url}/health/ready`)).status).toBe(200);
    const token = (await oidc.issueToken({ clientId: 'agent-1' })).accessToken;
    const pii = await fetch(`http://127.0.0.1:${port}/c/people-api/pii`, { headers: { authorization: `Bearer ${token}` } });
    expect(pii.status).toBe(200);
    expect(JSON.parse(await pii.text())).toMatchObject({ customers: [{ contact: '[REDACTED:emails]' }] });
    const blocked = await fetch(`http://127.0.0.1:${port}/c/people-api/pii`, { method: 'DELETE', headers: { authorization: `Bearer ${token}` } });
    expect(blocked.status).toBe(403);
    const message = await fetch(`http://127.0.0.1:${port}/c/claude/v1/messages`, {
      method: 'POST',
      headers: { 'x-api-key': token, 'anthropic-version': '2023-06-01', 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'claude-standin-1', max_tokens: 10, messages: [{ role: 'user', content: 'hello' }] }),
    });
    expect(message.status).toBe(200);
    expect(standIn.requests.at(-1)?.headers['x-api-key']).toBe(ANTHROPIC_KEY);
    // The Messages API session is still open on the keep-alive socket: its events reach the store as the recorder flushes.
    await vi.waitFor(
      async () => {
        const injected: unknown[] = [];
        for await (const recorded of store.readAll()) if (recorded.event.type === 'credential.injected') injected.push(recorded.event.payload);
        expect(injected).toEqual(
          expect.arrayContaining([
            expect.objectContaining({ credentialRef: 'env:PEOPLE_API_TOKEN', method: 'bearer' }),
            expect.objectContaining({ credentialRef: `file:${join(dir, 'anthropic.key')}`, method: 'api-key' }),
          ]),
        );
      },
      { timeout: 10_000, interval: 100 },
    );
  });

  it('refuses http2 without tls: a config error naming the key, not a listener silently without HTTP/2', async () => {
    const loaded = parseConfig(
      `
identity:
  issuers:
    - issuer: ${oidc.issuer}
      audiences: [${oidc.defaultAudience}]
dataDir: data-h2
gateways:
  policyFile: policy.yaml
  http:
    enabled: true
    http2: true
    listen: { host: 127.0.0.1, port: 0 }
`,
      { file: join(dir, 'custodian-h2.yaml'), env: {}, cwd: dir },
    );
    const h2Store = await SqliteEventStore.open({ path: join(dir, 'events-h2.sqlite') });
    const logger = createLogger({ service: 'gateway', level: 'silent' });
    try {
      const started = startNestService({ module: GatewayModule.register({ eventStore: h2Store, logger, loaded }), logger, listen: { host: '127.0.0.1', port: 0 }, shutdownHooks: false });
      await expect(started).rejects.toMatchObject({ code: 'CONFIG_INVALID', message: expect.stringContaining('gateways.http.http2') });
    } finally {
      await h2Store.close();
    }
  });

  it('serves HTTPS with HTTP/2 from a certificate and key given by file reference', async () => {
    const openssl = (args: string[]) => runCommand('openssl', args, { cwd: dir, timeoutMs: 60_000 });
    await openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'gw.key', '-out', 'gw.crt', '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1']);
    const tlsPort = await freePort();
    const loaded = parseConfig(
      `
identity:
  issuers:
    - issuer: ${oidc.issuer}
      audiences: [${oidc.defaultAudience}]
dataDir: data-tls
gateways:
  policyFile: policy.yaml
  http:
    enabled: true
    http2: true
    tls: { certificate: { fromFile: gw.crt }, key: { fromFile: gw.key } }
    listen: { host: 127.0.0.1, port: ${tlsPort} }
    connections:
      - name: people-api
        upstream:
          url: ${api.url}
          credential: { kind: bearer, secret: { fromEnv: PEOPLE_API_TOKEN } }
`,
      { file: join(dir, 'custodian-tls.yaml'), env: {}, cwd: dir },
    );
    const tlsStore = await SqliteEventStore.open({ path: join(dir, 'events-tls.sqlite') });
    const logger = createLogger({ service: 'gateway', level: 'silent' });
    const tlsService = await startNestService({ module: GatewayModule.register({ eventStore: tlsStore, logger, loaded }), logger, listen: { host: '127.0.0.1', port: 0 }, shutdownHooks: false });
    const session = connect(`https://127.0.0.1:${tlsPort}`, { ca: readFileSync(join(dir, 'gw.crt')) });
    try {
      const token = (await oidc.issueToken({ clientId: 'agent-1' })).accessToken;
      const answer = await new Promise<{ status: unknown; body: string }>((resolve, reject) => {
        const stream = session.request({ ':method': 'GET', ':path': '/c/people-api/pii', authorization: `Bearer ${token}` });
        let status: unknown;
        const chunks: Buffer[] = [];
        stream.on('response', (headers) => (status = headers[':status']));
        stream.on('data', (chunk: Buffer) => chunks.push(chunk));
        stream.on('end', () => resolve({ status, body: Buffer.concat(chunks).toString('utf8') }));
        stream.on('error', reject);
        stream.end();
      });
      expect(session.alpnProtocol).toBe('h2');
      expect(answer.status).toBe(200);
      expect(JSON.parse(answer.body)).toMatchObject({ customers: [{ contact: '[REDACTED:emails]' }] });
    } finally {
      session.close();
      await tlsService.close();
      await tlsStore.close();
    }
  });
});
