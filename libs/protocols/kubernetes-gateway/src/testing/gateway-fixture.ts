// Test-only: the STAND-IN API server (TLS from a test cluster CA, a bearer token and a client
// certificate it checks), a real OpenID Provider, a SQLite event store behind the store evidence
// pipeline, the real event-sourced approvals workflow, and the KubernetesGateway in front, with
// @kubernetes/client-node's Exec as the client (kubeconfig pointing at the gateway).
import { generateKeyPairSync, randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { PassThrough, Readable, Writable } from 'node:stream';
import { Exec, KubeConfig } from '@kubernetes/client-node';
import { EventSourcedApprovalGate } from '@custodian/approvals';
import { EventFactory, type CustodianEvent } from '@custodian/event-contracts';
import { StoreEvidencePipeline } from '@custodian/evidence-pipeline';
import { SqliteEventStore } from '@custodian/event-store-sqlite';
import { OidcAccessTokenVerifier } from '@custodian/identity-oidc';
import { parsePolicy } from '@custodian/policy';
import { SessionPipeline } from '@custodian/session-pipeline';
import { startOidcProvider, type StartedOidcProvider } from '@custodian/test-harness';
import type { CustodySigningKey } from '@custodian/custody';
import { KubernetesGateway } from '../kubernetes-gateway.js';
import type { KubernetesGatewayOptions } from '../gateway-options.js';
import { startStandInApiServer, type StandInApiServer } from './stand-in-api-server.js';
import { makeTestPki, type TestPki } from './test-pki.js';

const keys = generateKeyPairSync('ed25519');
export const FIXTURE_CUSTODY_KEY: CustodySigningKey = { keyId: 'k8s-test-gateway', privateKey: keys.privateKey, publicKeyPem: keys.publicKey.export({ type: 'spki', format: 'pem' }).toString() };

export const TEST_POLICY = `
name: kubernetes-gateway-test
version: 1
defaults:
  decision: block
  message: Not permitted through the gateway.
rules:
  - id: no-vault-pods
    match:
      kubernetes: { namespaces: ["team-*"], pods: ["vault-*"] }
    decision: block
    message: No exec into vault pods.
  - id: no-debug-containers
    match:
      kubernetes: { containers: ["debug-*"] }
    decision: block
    message: No exec into debug containers.
  - id: operators-read-web-logs
    match:
      identity: { groups: [operators] }
      kubernetes: { pods: ["web-*"] }
      http: { methods: [GET], paths: ["/api/v1/namespaces/*/pods/*/log"] }
    decision: allow
  - id: block-destructive
    match:
      shell:
        programs: [rm, shred, dd]
    decision: block
    message: Destructive commands are blocked in pods.
  - id: touch-needs-approval
    match:
      identity: { groups: [operators] }
      shell:
        programs: [touch]
    decision: require-approval
    approval:
      approverGroups: [sre]
      required: 1
      timeoutSeconds: 20
      grant: once
  - id: operators-read
    match:
      identity: { groups: [operators] }
      shell:
        programs: [echo, cat, ls, printf, sh, bash, "true", "false", head, wc, sleep, env, exit, yes]
    decision: allow
masking:
  - id: pii
    detectors: [email]
    strategy: redact
`;

export const OTHER_AUDIENCE = 'https://other-audience.example';
export const CLUSTER = 'stand-in-cluster';
export const CERT_CLUSTER = 'stand-in-cert-cluster';
export const UNTRUSTED_CLUSTER = 'stand-in-untrusted-ca';

export interface ExecResult {
  readonly stdout: string;
  readonly stderr: string;
  /** The Status the client received on channel 3 (undefined if none). */
  readonly status: { status?: string; message?: string; details?: { causes?: { reason?: string; message?: string }[] } } | undefined;
  readonly exitCode: number | undefined;
  /** What the client saw fail (a refused upgrade, a socket error). */
  readonly error?: string;
}

export interface KubernetesFixture {
  readonly pki: TestPki;
  readonly apiServer: StandInApiServer;
  readonly oidc: StartedOidcProvider;
  readonly store: SqliteEventStore;
  readonly approvals: EventSourcedApprovalGate;
  readonly gateway: KubernetesGateway;
  readonly pipeline: SessionPipeline;
  /** The held credentials: what must never reach a client, an event or a log line. */
  readonly upstreamToken: string;
  readonly logLines: string[];
  token(client?: 'operator' | 'outsider', audience?: string): Promise<string>;
  /** @kubernetes/client-node's Exec against the gateway, collecting the streams and the Status. */
  exec(token: string, namespace: string, pod: string, command: string[], options?: { cluster?: string; stdin?: string | Readable; container?: string; tty?: boolean; timeoutMs?: number }): Promise<ExecResult>;
  kubeConfig(token: string, cluster?: string): KubeConfig;
  events(): Promise<CustodianEvent[]>;
  stop(): Promise<void>;
}

export function kubeConfigFor(server: string, token: string, ca: Buffer): KubeConfig {
  const config = new KubeConfig();
  config.loadFromOptions({
    clusters: [{ name: 'custodian', server, skipTLSVerify: false, caData: ca.toString('base64') }],
    users: [{ name: 'agent', token }],
    contexts: [{ name: 'custodian', cluster: 'custodian', user: 'agent' }],
    currentContext: 'custodian',
  });
  return config;
}

/** Runs one exec with the real client and waits for the socket to close. */
export async function runExec(config: KubeConfig, namespace: string, pod: string, command: string[], options: { stdin?: string | Readable; container?: string; tty?: boolean; timeoutMs?: number } = {}): Promise<ExecResult> {
  let stdout = '';
  let stderr = '';
  const out = new Writable({ write: (chunk: Buffer, _e, done) => ((stdout += chunk.toString('utf8')), done()) });
  const err = new Writable({ write: (chunk: Buffer, _e, done) => ((stderr += chunk.toString('utf8')), done()) });
  let status: ExecResult['status'];
  const stdin = options.stdin === undefined ? null : typeof options.stdin === 'string' ? Readable.from([Buffer.from(options.stdin)]) : options.stdin;
  try {
    const socket = await new Exec(config).exec(namespace, pod, options.container ?? '', command, out, err, stdin, options.tty ?? false, (s) => (status = s as ExecResult['status']));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`exec did not end within ${options.timeoutMs ?? 30_000} ms`)), options.timeoutMs ?? 30_000);
      socket.on('close', () => {
        clearTimeout(timer);
        resolve();
      });
    });
  } catch (error) {
    return { stdout, stderr, status, exitCode: undefined, error: error instanceof Error ? error.message : inspect(error) };
  }
  const cause = status?.details?.causes?.find((c) => c.reason === 'ExitCode');
  const exitCode = status?.status === 'Success' ? 0 : cause?.message !== undefined ? Number(cause.message) : undefined;
  return { stdout, stderr, status, exitCode };
}

export async function startKubernetesFixture(options: { strict?: boolean; policy?: string; gateway?: Partial<KubernetesGatewayOptions>; env?: Record<string, string> } = {}): Promise<KubernetesFixture> {
  const dir = await mkdtemp(join(tmpdir(), 'custodian-k8s-gateway-'));
  const pki = await makeTestPki();
  const upstreamToken = `stand-in-${randomBytes(24).toString('base64url')}`;
  const apiServer = await startStandInApiServer({ cert: pki.serverCert, key: pki.serverKey, token: upstreamToken, clientCa: pki.ca, clientCommonName: 'custodian-gateway', ...(options.env ? { env: options.env } : {}) });
  const oidc = await startOidcProvider({
    clients: [
      { clientId: 'agent-k8s', kind: 'agent', groups: ['operators'] },
      { clientId: 'outsider', kind: 'agent', groups: ['marketing'] },
    ],
  });
  const store = await SqliteEventStore.open({ path: join(dir, 'events.sqlite'), pollIntervalMs: 20 });
  const evidence = new StoreEvidencePipeline({ store, instance: 'k8s-test-gateway' });
  const approvals = new EventSourcedApprovalGate({ eventStore: store, instance: 'k8s-test-gateway', pollIntervalMs: 50 });
  await approvals.start();
  const failures = new EventFactory({ service: 'gateway', instance: 'k8s-test-gateway' });
  const logLines: string[] = [];
  const line = (level: string) => (fields: object, message: string) => void logLines.push(`${level} ${message} ${inspect(fields, { depth: 6, breakLength: Infinity })}`);
  const pipeline = new SessionPipeline({
    verifier: new OidcAccessTokenVerifier({ issuers: [{ issuer: oidc.issuer, audiences: [oidc.defaultAudience, OTHER_AUDIENCE] }] }),
    audiences: [oidc.defaultAudience],
    policy: { policy: parsePolicy(options.policy ?? TEST_POLICY, 'policy.yaml') },
    evidence,
    strict: options.strict ?? true,
    approvals,
    approvalWaitSeconds: 20,
    source: { service: 'gateway', instance: 'k8s-test-gateway' },
    maskingKey: randomBytes(32),
    custodyKey: FIXTURE_CUSTODY_KEY,
    authenticationFailures: {
      failed: async (payload) => {
        const stream = `auth-${randomUUID()}`;
        await store.append(stream, [failures.create({ type: 'authentication.failed', stream, sequence: 0, identity: null, payload })], { expectedRevision: 'no-stream' });
      },
    },
  });
  const gateway = new KubernetesGateway({
    host: '127.0.0.1',
    port: 0,
    // The gateway's own certificate, from the same test CA (the client's kubeconfig trusts it).
    tls: { cert: pki.serverCert, key: pki.serverKey },
    pipeline,
    logger: { info: line('info'), warn: line('warn'), error: line('error') },
    clusters: [
      { name: CLUSTER, server: apiServer.url, namespaces: ['default', 'team-*'], credential: { kind: 'bearer', token: () => upstreamToken }, credentialRef: 'env:STAND_IN_CLUSTER_TOKEN', ca: pki.ca },
      {
        name: CERT_CLUSTER,
        server: apiServer.url,
        namespaces: ['*'],
        credential: { kind: 'client-certificate', certificate: () => pki.clientCert, key: () => pki.clientKey },
        credentialRef: 'file:/etc/custodian/stand-in-client.key',
        ca: pki.ca,
      },
      { name: UNTRUSTED_CLUSTER, server: apiServer.url, namespaces: ['*'], credential: { kind: 'bearer', token: () => upstreamToken }, credentialRef: 'env:STAND_IN_CLUSTER_TOKEN', ca: pki.otherCa },
    ],
    ...options.gateway,
  });
  await gateway.listen();
  const server = (cluster: string): string => `https://127.0.0.1:${gateway.port}/clusters/${cluster}`;
  const tokens = new Map<string, string>();
  const fixture: KubernetesFixture = {
    pki,
    apiServer,
    oidc,
    store,
    approvals,
    gateway,
    pipeline,
    upstreamToken,
    logLines,
    async token(client = 'operator', audience) {
      const key = `${client}|${audience ?? ''}`;
      const cached = tokens.get(key);
      if (cached) return cached;
      const issued = await oidc.issueToken({ clientId: client === 'operator' ? 'agent-k8s' : 'outsider', ...(audience ? { audience } : {}) });
      tokens.set(key, issued.accessToken);
      return issued.accessToken;
    },
    kubeConfig: (token, cluster = CLUSTER) => kubeConfigFor(server(cluster), token, pki.ca),
    exec: (token, namespace, pod, command, execOptions = {}) => runExec(kubeConfigFor(server(execOptions.cluster ?? CLUSTER), token, pki.ca), namespace, pod, command, execOptions),
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
      await Promise.all([apiServer.close(), oidc.stop()]);
      await rm(dir, { recursive: true, force: true });
    },
  };
  return fixture;
}

/** A stdin stream that stays open until `end()` (for held commands and half-close tests). */
export function openStdin(): PassThrough {
  return new PassThrough();
}
