// Test-only: the Kubernetes side of the gateway conformance suite. The upstream is the STAND-IN
// API server (TLS from a test cluster CA; it accepts only the suite's credential as bearer token
// and logs every exec's command and stdin: the observation point). A conformance "session" is
// one `exec -i … -- sh` through the gateway with @kubernetes/client-node: the gateway decides
// each stdin line as its own command (stdin-line mode). Each command is sent as one line
// `<command>; echo <sentinel>` so the client knows where its output ends; a refused line is
// answered by the gateway on stderr (`custodian: <why> (rule <id>)`; a hold is announced with
// `custodian: this line needs approval …`, which is not a refusal).
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import { Exec } from '@kubernetes/client-node';
import type WebSocket from 'ws';
import type { ConformanceClient, ConformanceEnvironment, ConformanceGateway, ConformanceReply, GatewayConformanceFixture } from '@custodian/gateway-conformance';
import { OidcAccessTokenVerifier } from '@custodian/identity-oidc';
import { parsePolicy } from '@custodian/policy';
import { SessionPipeline } from '@custodian/session-pipeline';
import { KubernetesGateway } from '../kubernetes-gateway.js';
import { kubeConfigFor } from './gateway-fixture.js';
import { startStandInApiServer, type StandInApiServer } from './stand-in-api-server.js';
import { makeTestPki, type TestPki } from './test-pki.js';

const CLUSTER = 'conformance';
const PII_FILE = 'conformance-pii.txt';
const REFUSED = /^custodian: (?!this line needs approval)/;

async function connectClient(gateway: KubernetesGateway, pki: TestPki, token: string): Promise<ConformanceClient> {
  const config = kubeConfigFor(`https://127.0.0.1:${gateway.port}/clusters/${CLUSTER}`, token, pki.ca);
  let stdout = '';
  let stderr = '';
  const received: Buffer[] = [];
  let changed: () => void = () => undefined;
  const out = new Writable({ write: (chunk: Buffer, _e, done) => ((stdout += chunk.toString('utf8')), changed(), done()) });
  const err = new Writable({ write: (chunk: Buffer, _e, done) => ((stderr += chunk.toString('utf8')), changed(), done()) });
  const stdin = new PassThrough();
  const socket = (await new Exec(config).exec('default', 'conformance-0', 'shell', ['sh'], out, err, stdin, false)) as unknown as WebSocket;
  // The bytes the gateway sent: every WebSocket message as received (channel byte first).
  socket.on('message', (data: Buffer) => received.push(Buffer.from(data)));
  let closed = false;
  const whenClosed = new Promise<void>((resolve) =>
    socket.on('close', () => {
      closed = true;
      changed();
      resolve();
    }),
  );
  let sequence = 0;
  return {
    async run(command: string): Promise<ConformanceReply> {
      if (closed) return { ok: false, output: 'the exec stream is closed' };
      const sentinel = `__cf_done_${++sequence}_${randomBytes(3).toString('hex')}__`;
      const stdoutFrom = stdout.length;
      const stderrFrom = stderr.length;
      stdin.write(`${command}; echo ${sentinel}\n`);
      return await new Promise<ConformanceReply>((resolve) => {
        const check = (): void => {
          const newOut = stdout.slice(stdoutFrom);
          const newErr = stderr.slice(stderrFrom);
          const refusal = newErr.split('\n').find((line) => REFUSED.test(line));
          if (newOut.includes(`${sentinel}\n`)) resolve({ ok: true, output: `${newOut.replace(`${sentinel}\n`, '')}${newErr}` });
          else if (refusal) resolve({ ok: false, output: newErr });
          else if (closed) resolve({ ok: false, output: `the exec stream closed: ${newErr}` });
          else return;
          changed = () => undefined;
        };
        changed = check;
        check();
      });
    },
    clientBound: () => Buffer.concat(received),
    async close() {
      if (!closed) {
        stdin.end();
        await Promise.race([whenClosed, new Promise((resolve) => setTimeout(resolve, 5_000))]);
        if (!closed) socket.terminate();
      }
    },
    disconnect() {
      socket.terminate();
    },
  };
}

export function kubernetesConformanceFixture(): GatewayConformanceFixture {
  let apiServer: StandInApiServer | undefined;
  let pki: TestPki | undefined;
  let credential: string | undefined;
  const upstream = (): StandInApiServer => {
    if (!apiServer) throw new Error('the stand-in API server is not started');
    return apiServer;
  };
  return {
    protocol: 'kubernetes',
    ocsfClassUid: 6003,
    // The `exec -i … -- sh` itself is a command (decided, recorded) before the stdin lines.
    sessionCommands: 1,
    policy: {
      allowed: { shell: { programs: ['echo', 'cat'] } },
      blocked: { shell: { programs: ['rm'] } },
      held: { shell: { programs: ['touch'] } },
    },
    commands: {
      allowed: (marker) => `echo ${marker}`,
      blocked: (marker) => `rm -f ${marker}`,
      held: (marker) => `touch ${marker}`,
      pii: () => `cat ${PII_FILE}`,
    },

    async startUpstream(setup) {
      pki = await makeTestPki();
      credential = setup.credential;
      apiServer = await startStandInApiServer({ cert: pki.serverCert, key: pki.serverKey, token: setup.credential });
      await writeFile(join(apiServer.workdir, PII_FILE), `contact: ${setup.piiValue}\n`);
    },

    async startGateway(environment: ConformanceEnvironment): Promise<ConformanceGateway> {
      const server = upstream();
      const certificates = pki!;
      const pipeline = new SessionPipeline({
        verifier: new OidcAccessTokenVerifier({ issuers: [{ issuer: environment.issuer.issuer, audiences: [environment.issuer.audience] }] }),
        policy: { policy: parsePolicy(environment.policyYaml, 'conformance-policy.yaml') },
        evidence: environment.evidence,
        strict: environment.strict,
        approvals: environment.approvals,
        approvalWaitSeconds: environment.approvalWaitSeconds,
        source: environment.source,
        maskingKey: randomBytes(32),
        custodyKey: environment.custodyKey,
      });
      const gateway = new KubernetesGateway({
        host: '127.0.0.1',
        port: 0,
        tls: { cert: certificates.serverCert, key: certificates.serverKey },
        pipeline,
        logger: environment.logger,
        clusters: [{ name: CLUSTER, server: server.url, namespaces: ['default'], credential: { kind: 'bearer', token: () => credential! }, credentialRef: environment.credentialRef, ca: certificates.ca }],
      });
      await gateway.listen();
      return { connect: (token) => connectClient(gateway, certificates, token), stop: () => gateway.close() };
    },

    async reachedUpstream(marker) {
      return upstream().execs.some((exec) => exec.command.some((arg) => arg.includes(marker)) || exec.stdin.includes(marker));
    },

    async stop() {
      await apiServer?.close();
    },
  };
}
