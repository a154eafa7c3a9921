// The gateway service with `gateways.kubernetes` enabled, built from a YAML config exactly as the
// embedded host and the standalone process build it, in front of the STAND-IN API server
// (@custodian/kubernetes-gateway/testing: real exec framing and TLS; a real API server with a
// kubelet cannot run here). @kubernetes/client-node execs with a token; readiness includes the
// listener; the cluster token and CA come from file references; a listener without TLS off
// loopback is a config error naming the section.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { Exec, KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StoreEvidencePipeline } from '@custodian/evidence-pipeline';
import { SqliteEventStore } from '@custodian/event-store-sqlite';
import { makeTestPki, startStandInApiServer, type StandInApiServer, type TestPki } from '@custodian/kubernetes-gateway/testing';
import { createLogger } from '@custodian/observability';
import { startNestService, type RunningNestService } from '@custodian/observability/nest';
import { ConfigError, parseConfig } from '@custodian/runtime-config';
import { startOidcProvider, type StartedOidcProvider } from '@custodian/test-harness';
import { startGateway } from './gateway-listeners.js';
import { GatewayModule } from './index.js';

const CLUSTER_TOKEN = `stand-in-cluster-token-${process.pid}-held-by-the-gateway`;
let dir: string;
let pki: TestPki;
let apiServer: StandInApiServer;
let oidc: StartedOidcProvider;
let store: SqliteEventStore;
let service: RunningNestService;
let port = 0;

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return typeof address === 'object' && address ? address.port : 0;
}

function configYaml(listenHost: string, withTls: boolean): string {
  return `
identity:
  issuers:
    - issuer: ${oidc.issuer}
      audiences: [${oidc.defaultAudience}]
dataDir: data
gateways:
  policyFile: policy.yaml
  kubernetes:
    enabled: true
    listen: { host: ${listenHost}, port: ${port} }
${withTls ? '    tls: { certificate: { fromFile: gateway.pem }, key: { fromFile: gateway.key } }\n' : ''}    clusters:
      - name: shop
        server: ${apiServer.url}
        namespaces: [default]
        credential: { token: { fromFile: cluster-token } }
        ca: { fromFile: cluster-ca.pem }
`;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'custodian-gateway-k8s-'));
  pki = await makeTestPki();
  [apiServer, oidc] = await Promise.all([
    startStandInApiServer({ cert: pki.serverCert, key: pki.serverKey, token: CLUSTER_TOKEN }),
    startOidcProvider({ clients: [{ clientId: 'agent-1', groups: ['operators'], kind: 'agent' }] }),
  ]);
  port = await freePort();
  writeFileSync(
    join(dir, 'policy.yaml'),
    `name: service-test
rules:
  - id: no-rm
    match: { shell: { programs: [rm] } }
    decision: block
  - id: read
    match: { identity: { groups: [operators] }, shell: { programs: [echo, cat] } }
    decision: allow
masking:
  - { id: emails, detectors: [email], strategy: redact }
`,
  );
  writeFileSync(join(dir, 'cluster-token'), `${CLUSTER_TOKEN}\n`, { mode: 0o600 });
  writeFileSync(join(dir, 'cluster-ca.pem'), pki.ca);
  // The stand-in's certificate is valid for 127.0.0.1: the gateway reuses it for its own listener.
  writeFileSync(join(dir, 'gateway.pem'), pki.serverCert);
  writeFileSync(join(dir, 'gateway.key'), pki.serverKey, { mode: 0o600 });
  const loaded = parseConfig(configYaml('127.0.0.1', true), { file: join(dir, 'custodian.yaml'), env: {}, cwd: dir });
  store = await SqliteEventStore.open({ path: join(dir, 'events.sqlite') });
  const logger = createLogger({ service: 'gateway', level: 'silent' });
  service = await startNestService({ module: GatewayModule.register({ eventStore: store, logger, loaded }), logger, listen: { host: '127.0.0.1', port: 0 }, shutdownHooks: false });
}, 60_000);

afterAll(async () => {
  await service?.close();
  await store?.close();
  await Promise.all([apiServer?.close(), oidc?.stop()]);
  rmSync(dir, { recursive: true, force: true });
});

async function exec(token: string, command: string[]): Promise<{ stdout: string; status: { status?: string; message?: string } | undefined }> {
  const config = new KubeConfig();
  config.loadFromOptions({
    clusters: [{ name: 'gw', server: `https://127.0.0.1:${port}/clusters/shop`, skipTLSVerify: false, caData: pki.ca.toString('base64') }],
    users: [{ name: 'agent', token }],
    contexts: [{ name: 'gw', cluster: 'gw', user: 'agent' }],
    currentContext: 'gw',
  });
  let stdout = '';
  let status: { status?: string; message?: string } | undefined;
  const out = new Writable({ write: (chunk: Buffer, _e, done) => ((stdout += chunk.toString('utf8')), done()) });
  const socket = await new Exec(config).exec('default', 'web-0', 'app', command, out, null, null, false, (s) => (status = s as typeof status));
  await new Promise<void>((resolve) => socket.on('close', () => resolve()));
  return { stdout, status };
}

describe('gateway service: gateways.kubernetes (stand-in API server)', () => {
  it('serves exec as configured with the cluster token read from its file, masks output, blocks by rule and reports ready', async () => {
    const ready = await fetch(`${service.url}/health/ready`);
    expect(ready.status).toBe(200);
    expect(JSON.stringify(await ready.json())).toContain('kubernetes-gateway');
    const token = (await oidc.issueToken({ clientId: 'agent-1' })).accessToken;

    const allowed = await exec(token, ['echo', 'ann@example.com', 'k8s-service-allowed']);
    expect(allowed).toMatchObject({ stdout: '[REDACTED:emails] k8s-service-allowed\n', status: { status: 'Success' } });
    expect(apiServer.execs.find((e) => e.command.includes('k8s-service-allowed'))).toMatchObject({ namespace: 'default', pod: 'web-0', authenticatedBy: 'token' });

    const blocked = await exec(token, ['rm', '-rf', '/k8s-service-blocked']);
    expect(blocked.status?.status).toBe('Failure');
    expect(blocked.status?.message).toContain('no-rm');
    expect(apiServer.execs.some((e) => e.command.includes('/k8s-service-blocked'))).toBe(false);

    const events = [];
    for await (const recorded of store.readAll()) events.push(recorded.event);
    expect(events.map((e) => e.type)).toEqual(expect.arrayContaining(['policy.activated', 'session.opened', 'credential.injected', 'command.issued', 'policy.decided', 'data.masked', 'session.closed']));
    const injected = events.flatMap((e) => (e.type === 'credential.injected' ? [e.payload] : []));
    expect(injected[0]).toMatchObject({ credentialRef: `file:${join(dir, 'cluster-token')}`, method: 'bearer' });
    expect(JSON.stringify(events)).not.toContain(CLUSTER_TOKEN);
  });

  it('refuses to start a listener without TLS off loopback: a config error naming the section', async () => {
    const loaded = parseConfig(configYaml('0.0.0.0', false), { file: join(dir, 'custodian.yaml'), env: {}, cwd: dir });
    const pipeline = new StoreEvidencePipeline({ store, instance: 'k8s-config-test' });
    const logger = createLogger({ service: 'gateway', level: 'silent' });
    const starting = startGateway({ loaded, eventStore: store, logger }, { pipeline, strict: true });
    await expect(starting).rejects.toThrow(ConfigError);
    await expect(starting).rejects.toThrow(/gateways\.kubernetes: .*without TLS/);
    await pipeline.close();
  });
});
