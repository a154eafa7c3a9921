// The HTTP gateway and its Anthropic Messages API adapter, same run: each figure direct to the
// upstream vs through the gateway (OIDC token, policy decision, recording, masking on), in strict
// mode (each request waits until its command and decision are durable in SQLite) and relaxed mode
// (events written behind the request). Upstreams: the Messages API STAND-IN (a local server
// replaying SSE in the real wire format; the public API cannot be reached here) and the local JSON
// API from @custodian/http-gateway/testing, both in this process like the gateway and the client.
//
// - time to first byte of a streamed Messages response (p50/p99, sequential requests on a keep-alive socket);
// - streamed text deltas per second of a 2,000-delta Messages stream, masking on;
// - small JSON GETs per second, 8 concurrent keep-alive clients;
// - a ~6 MiB JSON document masked by path and detectors (MiB/s of upstream bytes).
import { randomBytes } from 'node:crypto';
import { Agent, request, type IncomingMessage } from 'node:http';
import { join } from 'node:path';
import { StoreEvidencePipeline } from '@custodian/evidence-pipeline';
import { SqliteEventStore } from '@custodian/event-store-sqlite';
import { HttpGateway } from '@custodian/http-gateway';
import { startAnthropicStandIn, startJsonApiUpstream } from '@custodian/http-gateway/testing';
import { OidcAccessTokenVerifier } from '@custodian/identity-oidc';
import { parsePolicy } from '@custodian/policy';
import { SessionPipeline } from '@custodian/session-pipeline';
import { startOidcProvider, type StartedOidcProvider } from '@custodian/test-harness';
import { BenchmarkError, figure, type Benchmark, type Figure } from '../benchmark.ts';
import { MIB, median, nowNs, percentile } from '../measurement.ts';

const NAME = 'http-gateway';
const API_CREDENTIAL = randomBytes(18).toString('base64url');
const ANTHROPIC_KEY = `sk-ant-api03-${randomBytes(24).toString('base64url')}`;
/** Stream deltas in the stand-in's `long` scenario. */
const LONG_STREAM_DELTAS = 2000;
/** ~6.8 MiB of JSON: 60,000 customers (the gateway masks JSON by path up to maxJsonResponseBytes, 16 MiB here); a third in quick runs. */
const LARGE_JSON_CUSTOMERS = 60_000;
const QUICK_JSON_CUSTOMERS = 20_000;

const BENCH_POLICY = `
name: bench-http
rules:
  - id: bench-read
    match: { identity: { groups: [bench] }, http: { methods: [GET] } }
    decision: allow
  - id: bench-models
    match: { identity: { groups: [bench] }, llm: { models: ["claude-standin-*"] } }
    decision: allow
masking:
  - { id: bench-ssn, jsonPaths: ["$.customers[*].ssn"], strategy: partial, keepLast: 4 }
  - { id: bench-detectors, detectors: [email, card], strategy: redact }
`;

interface Target {
  readonly label: string;
  /** Base URL of the Messages API (`…/v1/messages` is appended). */
  readonly messages: string;
  /** Base URL of the JSON API. */
  readonly api: string;
  readonly headers: Record<string, string>;
  readonly agent: Agent;
}

interface Timed {
  readonly firstByteMs: number;
  readonly totalMs: number;
  readonly bytes: number;
  /** The body, when asked for (to check that the gateway masked it). */
  readonly body?: string;
}

/** One request; resolves with time to the first body byte, total time and body bytes. */
function timedRequest(target: Target, url: string, method: 'GET' | 'POST', body?: string, keep = false): Promise<Timed> {
  const start = nowNs();
  return new Promise((resolve, reject) => {
    const req = request(url, { method, agent: target.agent, headers: { ...target.headers, ...(body === undefined ? {} : { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) }) } }, (res: IncomingMessage) => {
      let first = 0;
      let bytes = 0;
      const kept: Buffer[] = [];
      res.on('data', (chunk: Buffer) => {
        if (first === 0) first = Number(nowNs() - start) / 1e6;
        bytes += chunk.length;
        if (keep) kept.push(chunk);
      });
      res.on('end', () => {
        if (res.statusCode !== 200) return reject(new BenchmarkError('BENCH_MEASUREMENT_FAILED', `${target.label} ${method} ${url}: HTTP ${res.statusCode}`));
        resolve({ firstByteMs: first, totalMs: Number(nowNs() - start) / 1e6, bytes, ...(keep ? { body: Buffer.concat(kept).toString('utf8') } : {}) });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

const messagesBody = (prompt: string): string => JSON.stringify({ model: 'claude-standin-1', max_tokens: 4096, stream: true, messages: [{ role: 'user', content: prompt }] });

async function startGateway(workDir: string, strict: boolean, oidc: StartedOidcProvider, upstreams: { anthropic: string; api: string }): Promise<{ gateway: HttpGateway; stop(): Promise<void> }> {
  const label = strict ? 'gateway' : 'gateway-relaxed';
  const store = await SqliteEventStore.open({ path: join(workDir, `${label}-events.sqlite`) });
  const evidence = new StoreEvidencePipeline({ store, instance: label });
  const pipeline = new SessionPipeline({
    verifier: new OidcAccessTokenVerifier({ issuers: [{ issuer: oidc.issuer, audiences: [oidc.defaultAudience], maxTokenLifetimeSeconds: 3600 }] }),
    policy: { policy: parsePolicy(BENCH_POLICY, 'bench-policy.yaml') },
    evidence,
    strict,
    source: { service: 'gateway', instance: label },
    maskingKey: randomBytes(32),
  });
  const gateway = new HttpGateway({
    host: '127.0.0.1',
    port: 0,
    pipeline,
    connections: [
      { name: 'claude', kind: 'anthropic', upstream: { url: upstreams.anthropic, credential: { kind: 'header', name: 'x-api-key', secret: () => ANTHROPIC_KEY, credentialRef: 'env:ANTHROPIC_API_KEY' } } },
      { name: 'api', maxJsonResponseBytes: 16 * MIB, upstream: { url: upstreams.api, credential: { kind: 'bearer', secret: () => API_CREDENTIAL, credentialRef: 'env:API_TOKEN' } } },
    ],
  });
  await gateway.listen();
  return {
    gateway,
    async stop() {
      await gateway.close();
      await evidence.close();
      await store.close();
    },
  };
}

export const httpGateway: Benchmark = {
  name: NAME,
  description:
    'HTTP gateway and Messages API adapter vs the same upstreams direct (stand-in Messages API, local JSON API), strict and relaxed recording: streamed time to first byte p50/p99, streamed deltas/s with masking, JSON requests/s, masked JSON MiB/s',
  async run({ quick, workDir, log }): Promise<Figure[]> {
    const standIn = await startAnthropicStandIn({ apiKey: ANTHROPIC_KEY, piiValue: 'bench@example.com' });
    const api = await startJsonApiUpstream({ credential: API_CREDENTIAL, piiValue: 'bench@example.com' });
    const oidc = await startOidcProvider({ clients: [{ clientId: 'bench-agent', kind: 'agent', groups: ['bench'], accessTokenTtlSeconds: 900 }] });
    const strict = await startGateway(workDir, true, oidc, { anthropic: standIn.url, api: api.url });
    const relaxed = await startGateway(workDir, false, oidc, { anthropic: standIn.url, api: api.url });
    const agents: Agent[] = [];
    const agent = (): Agent => {
      // Idle sockets are dropped before the test servers' 5 s keep-alive timeout closes them under a request.
      const made = new Agent({ keepAlive: true, maxSockets: 16, timeout: 4000 });
      agents.push(made);
      return made;
    };
    const customers = quick ? QUICK_JSON_CUSTOMERS : LARGE_JSON_CUSTOMERS;
    try {
      const token = (await oidc.issueToken({ clientId: 'bench-agent' })).accessToken;
      const through = (label: string, port: number): Target => ({
        label,
        messages: `http://127.0.0.1:${port}/c/claude`,
        api: `http://127.0.0.1:${port}/c/api`,
        headers: { 'x-api-key': token, authorization: `Bearer ${token}`, 'anthropic-version': '2023-06-01' },
        agent: agent(),
      });
      const direct: Target = { label: 'direct', messages: standIn.url, api: api.url, headers: { 'x-api-key': ANTHROPIC_KEY, authorization: `Bearer ${API_CREDENTIAL}`, 'anthropic-version': '2023-06-01' }, agent: agent() };
      const targets = [direct, through('gateway', strict.gateway.port), through('gateway-relaxed', relaxed.gateway.port)];
      const subjectOf = (t: Target): string => (t.label === 'gateway' ? 'Custodian gateway (strict recording)' : 'Custodian gateway (relaxed recording)');

      // Warm-up: JIT, sessions opened, detectors compiled; and a check that the gateway masks what is measured.
      for (const t of targets) {
        for (let i = 0; i < 5; i++) await timedRequest(t, `${t.messages}/v1/messages`, 'POST', messagesBody('warm up'));
        for (let i = 0; i < 5; i++) await timedRequest(t, `${t.api}/items`, 'GET');
        const document = (await timedRequest(t, `${t.api}/customers?count=${customers}`, 'GET', undefined, true)).body ?? '';
        const stream = (await timedRequest(t, `${t.messages}/v1/messages`, 'POST', messagesBody('pii please'), true)).body ?? '';
        const masked = !document.includes('@example.com') && document.includes('"ssn":"***-**-') && !stream.includes('bench@example.com');
        if (t !== direct && !masked) throw new BenchmarkError('BENCH_MEASUREMENT_FAILED', `${t.label}: the responses came back unmasked`);
      }

      // 1. Time to first byte of a streamed reply, in blocks of 10 rotating the targets.
      const ttfbRequests = quick ? 30 : 600;
      log(`time to first byte: ${ttfbRequests} streamed requests per target`);
      const ttfb = new Map<string, number[]>(targets.map((t) => [t.label, []]));
      for (let block = 0; block < ttfbRequests / 10; block++) {
        for (const t of targets) for (let i = 0; i < 10; i++) ttfb.get(t.label)!.push((await timedRequest(t, `${t.messages}/v1/messages`, 'POST', messagesBody('hello there'))).firstByteMs);
      }
      for (const samples of ttfb.values()) samples.sort((a, b) => a - b);

      // 2. Streamed deltas per second, masking on (whole 2,000-delta stream), median of rounds.
      const streamRounds = quick ? 2 : 7;
      log(`streamed deltas: ${streamRounds} rounds of a ${LONG_STREAM_DELTAS}-delta stream per target`);
      const deltaRates = new Map<string, number[]>(targets.map((t) => [t.label, []]));
      for (let round = 0; round < streamRounds; round++) {
        for (const t of targets) {
          const timed = await timedRequest(t, `${t.messages}/v1/messages`, 'POST', messagesBody('long answer please'));
          deltaRates.get(t.label)!.push(LONG_STREAM_DELTAS / (timed.totalMs / 1000));
        }
      }

      // 3. Small JSON GETs per second, 8 concurrent clients, fixed time slices interleaved.
      const concurrency = 8;
      const sliceMs = quick ? 1000 : 3000;
      const sliceRounds = quick ? 1 : 3;
      log(`JSON requests/s: ${concurrency} clients, ${sliceRounds} × ${sliceMs} ms per target`);
      const rps = new Map<string, number[]>(targets.map((t) => [t.label, []]));
      for (let round = 0; round < sliceRounds; round++) {
        for (const t of targets) {
          let done = 0;
          const end = Date.now() + sliceMs;
          const start = nowNs();
          await Promise.all(
            Array.from({ length: concurrency }, async () => {
              while (Date.now() < end) {
                await timedRequest(t, `${t.api}/items`, 'GET');
                done++;
              }
            }),
          );
          rps.get(t.label)!.push(done / (Number(nowNs() - start) / 1e9));
        }
      }

      // 4. A large JSON document masked by path ($.customers[*].ssn) and detectors (every contact is an e-mail).
      const jsonRounds = quick ? 1 : 5;
      log(`masked JSON: ${jsonRounds} rounds of ${customers} customers per target`);
      const mibps = new Map<string, number[]>(targets.map((t) => [t.label, []]));
      let upstreamBytes = 0;
      for (let round = 0; round < jsonRounds; round++) {
        for (const t of targets) {
          const timed = await timedRequest(t, `${t.api}/customers?count=${customers}`, 'GET');
          if (t === direct) upstreamBytes = timed.bytes;
          mibps.get(t.label)!.push(upstreamBytes / MIB / (timed.totalMs / 1000));
        }
      }

      const figures: Figure[] = [];
      const d = (map: Map<string, number[]>): number => median(map.get('direct')!);
      for (const t of targets.slice(1)) {
        const subject = subjectOf(t);
        for (const p of [50, 99]) {
          figures.push(
            figure(NAME, {
              metric: `streamed Messages reply: time to first byte p${p}`,
              unit: 'ms',
              better: 'lower',
              subject,
              value: percentile(ttfb.get(t.label)!, p),
              baseline: { name: 'stand-in Messages API direct', value: percentile(ttfb.get('direct')!, p) },
              notes: `${ttfbRequests} sequential requests on one keep-alive socket; added: ${(percentile(ttfb.get(t.label)!, p) - percentile(ttfb.get('direct')!, p)).toFixed(2)} ms`,
            }),
          );
        }
        figures.push(
          figure(NAME, {
            metric: `streamed Messages reply: text deltas/s, masking on`,
            unit: 'deltas/s',
            better: 'higher',
            subject,
            value: median(deltaRates.get(t.label)!),
            baseline: { name: 'stand-in Messages API direct', value: d(deltaRates) },
            notes: `${LONG_STREAM_DELTAS}-delta stream, median of ${streamRounds}; e-mail/card detectors with hold-back on every delta`,
          }),
        );
        figures.push(
          figure(NAME, {
            metric: `small JSON GETs/s, ${concurrency} clients`,
            unit: 'requests/s',
            better: 'higher',
            subject,
            value: median(rps.get(t.label)!),
            baseline: { name: 'local JSON API direct', value: d(rps) },
            notes: 'each request decided by the http policy, recorded, response masked',
          }),
        );
        figures.push(
          figure(NAME, {
            metric: `masked JSON document (${(upstreamBytes / MIB).toFixed(1)} MiB)`,
            unit: 'MiB/s',
            better: 'higher',
            subject,
            value: median(mibps.get(t.label)!),
            baseline: { name: 'local JSON API direct', value: d(mibps) },
            notes: `${customers} customers; JSON path rule + e-mail detector on every record; median of ${jsonRounds}`,
          }),
        );
      }
      return figures;
    } finally {
      for (const made of agents) made.destroy();
      await strict.stop();
      await relaxed.stop();
      await Promise.all([standIn.stop(), api.stop(), oidc.stop()]);
    }
  },
};
