// Test-only: the Anthropic Messages API side of the gateway conformance suite. The upstream is the
// STAND-IN (the public API cannot be reached here) logging every request; the client is the real
// @anthropic-ai/sdk (streaming) behind the suite's recording relay. A command is `<model> <prompt>`.
import { randomBytes } from 'node:crypto';
import Anthropic from '@anthropic-ai/sdk';
import { Agent, fetch as undiciFetch } from 'undici';
import { startRecordingRelay, type ConformanceClient, type ConformanceEnvironment, type ConformanceGateway, type ConformanceReply, type GatewayConformanceFixture } from '@custodian/gateway-conformance';
import { OidcAccessTokenVerifier } from '@custodian/identity-oidc';
import { parsePolicy } from '@custodian/policy';
import { SessionPipeline } from '@custodian/session-pipeline';
import { HttpGateway } from '../http-gateway.js';
import { startAnthropicStandIn, type AnthropicStandIn } from './anthropic-stand-in.js';

const CONNECTION = 'claude';

async function run(sdk: Anthropic, command: string): Promise<ConformanceReply> {
  const [model, ...words] = command.split(' ');
  try {
    const message = await sdk.messages.stream({ model: model!, max_tokens: 64, messages: [{ role: 'user', content: words.join(' ') }] }).finalMessage();
    return { ok: true, output: message.content.map((block) => (block.type === 'text' ? block.text : JSON.stringify(block))).join('\n') };
  } catch (error) {
    return { ok: false, output: error instanceof Error ? error.message : String(error) };
  }
}

export function anthropicConformanceFixture(): GatewayConformanceFixture {
  let standIn: AnthropicStandIn | undefined;
  let credential = '';
  return {
    protocol: 'anthropic',
    ocsfClassUid: 6003,
    policy: {
      allowed: { llm: { models: ['claude-allowed-*'] } },
      blocked: { llm: { models: ['claude-blocked-*'] } },
      held: { llm: { models: ['claude-held-*'] } },
    },
    commands: {
      allowed: (marker) => `claude-allowed-1 say ${marker}`,
      blocked: (marker) => `claude-blocked-1 say ${marker}`,
      held: (marker) => `claude-held-1 say ${marker}`,
      pii: () => 'claude-allowed-1 pii please',
    },
    async startUpstream(setup) {
      credential = setup.credential;
      standIn = await startAnthropicStandIn({ apiKey: setup.credential, piiValue: setup.piiValue });
    },
    async startGateway(environment: ConformanceEnvironment): Promise<ConformanceGateway> {
      if (!standIn) throw new Error('the stand-in is not started');
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
        connections: [{ name: CONNECTION, kind: 'anthropic', upstream: { url: standIn.url, credential: { kind: 'header', name: 'x-api-key', secret: () => credential, credentialRef: environment.credentialRef } } }],
      });
      await gateway.listen();
      return {
        async connect(token): Promise<ConformanceClient> {
          const relay = await startRecordingRelay({ host: gateway.host, port: gateway.port });
          const base = `http://${relay.host}:${relay.port}/c/${CONNECTION}`;
          // The session opens with `GET /c/claude` (token and connection checked, upstream untouched).
          // One socket for the probe and every SDK request: one session.
          const agent = new Agent({ connections: 1 });
          const probe = await undiciFetch(base, { method: 'GET', headers: { 'x-api-key': token }, dispatcher: agent });
          if (probe.status !== 204) {
            await agent.close();
            await relay.close();
            throw new Error(`the gateway refused the session: ${probe.status}`);
          }
          const fetchThroughAgent = ((url: string, init?: Record<string, unknown>) => undiciFetch(url, { ...init, dispatcher: agent })) as unknown as typeof fetch;
          const sdk = new Anthropic({ baseURL: base, apiKey: token, maxRetries: 0, timeout: 30_000, fetch: fetchThroughAgent });
          return {
            run: (command) => run(sdk, command),
            clientBound: () => relay.clientBound(),
            async close() {
              await agent.destroy().catch(() => undefined);
              await relay.close();
            },
            disconnect() {
              relay.cut();
              void agent.destroy().catch(() => undefined);
            },
          };
        },
        stop: () => gateway.close(),
      };
    },
    reachedUpstream(marker) {
      return Promise.resolve(standIn?.requests.some((request) => request.body.includes(marker)) ?? false);
    },
    async stop() {
      await standIn?.stop();
    },
  };
}
