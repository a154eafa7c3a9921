// Test-only: the HTTP side of the gateway conformance suite. A real local JSON API (node:http)
// that logs every request, the HttpGateway on the suite's pipeline, and node:http as the client
// (one keep-alive socket per session) behind the suite's recording relay.
import { randomBytes } from 'node:crypto';
import { Agent, request } from 'node:http';
import { startRecordingRelay, type ConformanceClient, type ConformanceEnvironment, type ConformanceGateway, type ConformanceReply, type GatewayConformanceFixture } from '@custodian/gateway-conformance';
import { OidcAccessTokenVerifier } from '@custodian/identity-oidc';
import { parsePolicy } from '@custodian/policy';
import { SessionPipeline } from '@custodian/session-pipeline';
import { HttpGateway } from '../http-gateway.js';
import { startJsonApiUpstream, type JsonApiUpstream } from './json-api-upstream.js';

const CONNECTION = 'conformance';

/** A command is `METHOD /path [body]`; the client sends it to /c/conformance/path. */
function send(agent: Agent, relay: { host: string; port: number }, token: string, command: string): Promise<ConformanceReply> {
  const [method, path, ...rest] = command.split(' ');
  const body = rest.join(' ');
  return new Promise((resolve) => {
    const req = request(
      { agent, host: relay.host, port: relay.port, method, path: `/c/${CONNECTION}${path ?? ''}`, headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => resolve({ ok: (res.statusCode ?? 500) < 300, output: `${res.statusCode} ${Buffer.concat(chunks).toString('utf8')}` }));
        res.on('error', (error) => resolve({ ok: false, output: error.message }));
      },
    );
    req.on('error', (error) => resolve({ ok: false, output: error.message }));
    req.end(body || undefined);
  });
}

export function httpConformanceFixture(): GatewayConformanceFixture {
  let upstream: JsonApiUpstream | undefined;
  let credential = '';
  return {
    protocol: 'http',
    ocsfClassUid: 4002,
    policy: {
      allowed: { http: { methods: ['GET'], paths: ['/allowed/*', '/pii'] } },
      blocked: { http: { methods: ['DELETE'] } },
      held: { http: { methods: ['POST'], paths: ['/held/*'] } },
    },
    commands: {
      allowed: (marker) => `GET /allowed/${marker}`,
      blocked: (marker) => `DELETE /allowed/${marker}`,
      held: (marker) => `POST /held/${marker} {"marker":"${marker}"}`,
      pii: () => 'GET /pii',
    },
    async startUpstream(setup) {
      credential = setup.credential;
      upstream = await startJsonApiUpstream({ credential: setup.credential, piiValue: setup.piiValue });
    },
    async startGateway(environment: ConformanceEnvironment): Promise<ConformanceGateway> {
      if (!upstream) throw new Error('the upstream is not started');
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
      const gateway = new HttpGateway({
        host: '127.0.0.1',
        port: 0,
        pipeline,
        logger: environment.logger,
        connections: [{ name: CONNECTION, upstream: { url: upstream.url, credential: { kind: 'bearer', secret: () => credential, credentialRef: environment.credentialRef } } }],
      });
      await gateway.listen();
      return {
        async connect(token): Promise<ConformanceClient> {
          const relay = await startRecordingRelay({ host: gateway.host, port: gateway.port });
          const agent = new Agent({ keepAlive: true, maxSockets: 1 });
          // The session opens with the first authenticated request on the socket.
          const first = await send(agent, relay, token, 'HEAD');
          if (!first.ok) {
            agent.destroy();
            await relay.close();
            throw new Error(`the gateway refused the session: ${first.output}`);
          }
          return {
            run: (command) => send(agent, relay, token, command),
            clientBound: () => relay.clientBound(),
            async close() {
              agent.destroy();
              await relay.close();
            },
            disconnect() {
              relay.cut();
              agent.destroy();
            },
          };
        },
        stop: () => gateway.close(),
      };
    },
    reachedUpstream(marker) {
      return Promise.resolve(upstream?.log.some((line) => line.includes(marker)) ?? false);
    },
    async stop() {
      await upstream?.stop();
    },
  };
}
