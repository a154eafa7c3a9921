// HTTP/2 toward the client (opt-in, over TLS with ALPN): a second listener over the fixture's
// pipeline with `http2: true`, called with node:http2 (h2) and node:https (HTTP/1.1 fallback on
// the same port). The same policy, credential injection and masking apply; what an h2 client is
// sent is recorded as the HTTP message (status, headers, body), since HPACK frames never pass
// through JavaScript.
import { connect, type ClientHttp2Session, type IncomingHttpHeaders } from 'node:http2';
import { request as httpsRequest, type RequestOptions } from 'node:https';
import type { TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { CustodianEvent } from '@custodian/event-contracts';
import { HttpGateway } from './http-gateway.js';
import { startFixture, type Fixture } from './testing/gateway-fixture.js';

let f: Fixture;
let gateway: HttpGateway;
let origin: string;

beforeAll(async () => {
  f = await startFixture();
  gateway = new HttpGateway({
    host: '127.0.0.1',
    port: 0,
    pipeline: f.pipeline,
    tls: { cert: f.tlsMaterial.cert, key: f.tlsMaterial.key },
    http2: true,
    connections: [
      { name: 'orders', upstream: { url: f.api.url, credential: { kind: 'bearer', secret: () => f.apiCredential, credentialRef: 'env:ORDERS_API_TOKEN' } } },
      { name: 'claude', kind: 'anthropic', upstream: { url: f.standIn.url, credential: { kind: 'header', name: 'x-api-key', secret: () => f.anthropicKey, credentialRef: 'env:ANTHROPIC_API_KEY' } } },
    ],
  });
  await gateway.listen();
  origin = `https://127.0.0.1:${gateway.port}`;
}, 120_000);

afterAll(async () => {
  await gateway?.close();
  await f?.stop();
});

interface H2Response {
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
}

function h2Request(session: ClientHttp2Session, headers: Record<string, string>, body?: string): Promise<H2Response> {
  return new Promise((resolve, reject) => {
    const stream = session.request(headers);
    let responseHeaders: IncomingHttpHeaders = {};
    const chunks: Buffer[] = [];
    stream.on('response', (h) => (responseHeaders = h));
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.on('end', () => resolve({ headers: responseHeaders, body: Buffer.concat(chunks).toString('utf8') }));
    stream.on('error', reject);
    stream.end(body);
  });
}

/** A TLS client that offers only HTTP/1.1 in ALPN (ALPNProtocols is a tls.connect option https.request passes on). */
function http1Only(): RequestOptions {
  return { ca: f.tlsMaterial.ca, agent: false, ALPNProtocols: ['http/1.1'] } as RequestOptions;
}

function h2Session(): Promise<ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    const session = connect(origin, { ca: f.tlsMaterial.ca });
    session.once('connect', () => resolve(session));
    session.once('error', reject);
  });
}

describe('HTTP gateway over HTTP/2 (TLS, ALPN)', () => {
  it('serves h2: masked JSON, a policy block as a problem document, and a masked Messages stream, on one connection', async () => {
    const token = await f.token();
    const session = await h2Session();
    try {
      expect(session.alpnProtocol).toBe('h2');
      const pii = await h2Request(session, { ':method': 'GET', ':path': '/c/orders/pii', authorization: `Bearer ${token}` });
      expect(pii.headers[':status']).toBe(200);
      expect(pii.body).not.toContain(f.piiValue);
      expect(JSON.parse(pii.body)).toMatchObject({ customers: [{ contact: '[REDACTED:pii]' }] });
      const blocked = await h2Request(session, { ':method': 'GET', ':path': '/c/orders/admin/users', authorization: `Bearer ${token}` });
      expect(blocked.headers[':status']).toBe(403);
      expect(JSON.parse(blocked.body)).toMatchObject({ rule: 'block-admin' });
      const before = f.standIn.requests.length;
      const stream = await h2Request(
        session,
        { ':method': 'POST', ':path': '/c/claude/v1/messages', 'x-api-key': token, 'anthropic-version': '2023-06-01', 'content-type': 'application/json' },
        JSON.stringify({ model: 'claude-standin-1', max_tokens: 64, stream: true, messages: [{ role: 'user', content: 'pii please' }] }),
      );
      expect(stream.headers[':status']).toBe(200);
      expect(stream.headers['content-type']).toContain('text/event-stream');
      expect(stream.body).toContain('event: message_stop');
      expect(stream.body).not.toContain(f.piiValue);
      expect(stream.body).toContain('[REDACTED:pii]');
      const upstream = f.standIn.requests.slice(before);
      expect(upstream).toHaveLength(1);
      expect(upstream[0]!.headers['x-api-key']).toBe(f.anthropicKey);
      // No HTTP/2 pseudo-header reached the HTTP/1.1 upstream.
      expect(Object.keys(upstream[0]!.headers).some((name) => name.startsWith(':'))).toBe(false);
    } finally {
      session.close();
    }
  });

  it('falls back to HTTP/1.1 on the same port for clients that do not offer h2', async () => {
    const token = await f.token();
    const result = await new Promise<{ status: number; body: string; alpn: string | false | null }>((resolve, reject) => {
      const req = httpsRequest(`${origin}/c/orders/pii`, { ...http1Only(), headers: { authorization: `Bearer ${token}` } }, (res) => {
        const alpn = (res.socket as TLSSocket).alpnProtocol;
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), alpn }));
      });
      req.on('error', reject);
      req.end();
    });
    expect(result.alpn).toBe('http/1.1');
    expect(result.status).toBe(200);
    expect(result.body).not.toContain(f.piiValue);
    // The HTTP/1.1 limits hold on the fallback too: a header flood gets 431.
    const flood = await new Promise<number>((resolve, reject) => {
      const req = httpsRequest(`${origin}/c/orders/pii`, { ...http1Only(), headers: { authorization: `Bearer ${token}`, 'x-flood': 'a'.repeat(32 * 1024) } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.end();
    });
    expect(flood).toBe(431);
  });

  it('an h2 header list over the limit is refused before any request is handled', async () => {
    const token = await f.token();
    const before = f.api.log.length;
    const session = await h2Session();
    try {
      const outcome = await h2Request(session, { ':method': 'GET', ':path': '/c/orders/pii', authorization: `Bearer ${token}`, 'x-flood': 'a'.repeat(32 * 1024) }).then(
        (r) => r.headers[':status'],
        (e: unknown) => (e as { code?: string }).code,
      );
      expect(outcome).not.toBe(200);
      expect(f.api.log.length).toBe(before);
    } finally {
      session.destroy();
    }
  });

  it('serves the streams of one connection concurrently: a held stream (the upstream has not answered) does not block 24 others', async () => {
    const token = await f.token();
    const session = await h2Session();
    try {
      const order: string[] = [];
      const held = h2Request(session, { ':method': 'GET', ':path': '/c/orders/slow?ms=60000', authorization: `Bearer ${token}` }).then((r) => {
        order.push('held');
        return r;
      });
      await vi.waitFor(() => expect(f.api.log.some((l) => l.startsWith('GET /slow'))).toBe(true), { timeout: 20_000, interval: 50 });
      // While that stream waits, the same connection serves many more of the same session (JSON and streamed text).
      const others = await Promise.all([
        ...Array.from({ length: 22 }, (_, i) => h2Request(session, { ':method': 'GET', ':path': `/c/orders/pii?n=${i}`, authorization: `Bearer ${token}` })),
        h2Request(session, { ':method': 'GET', ':path': '/c/orders/pii-chunked-text', authorization: `Bearer ${token}` }),
        h2Request(session, { ':method': 'GET', ':path': '/c/orders/big-json?mib=2', authorization: `Bearer ${token}` }),
      ]);
      order.push('others');
      for (const response of others) {
        expect(response.headers[':status']).toBe(200);
        expect(response.body).not.toContain(f.piiValue);
      }
      expect(others.at(-2)!.body).toContain('[REDACTED:pii]');
      expect(JSON.parse(others.at(-1)!.body)).toMatchObject({ customers: expect.any(Array) });
      f.api.releaseSlow();
      const slow = await held;
      expect(slow.headers[':status']).toBe(200);
      expect(JSON.parse(slow.body)).toEqual({ slow: true });
      expect(order).toEqual(['others', 'held']);
    } finally {
      session.close();
    }
  }, 120_000);

  it('keeps a session per (connection, identity) on one h2 connection: another identity and another connection are served while a stream of the first is held', async () => {
    const agentToken = await f.token('agent');
    const otherAgentToken = await f.token('agent-2');
    const nonce = `s${Date.now().toString(36)}`;
    const session = await h2Session();
    const order: string[] = [];
    try {
      const held = h2Request(session, { ':method': 'GET', ':path': `/c/orders/slow?ms=60000&n=${nonce}`, authorization: `Bearer ${agentToken}` }).then((r) => {
        order.push('held');
        return r;
      });
      await vi.waitFor(() => expect(f.api.log.some((l) => l.startsWith(`GET /slow?ms=60000&n=${nonce}`))).toBe(true), { timeout: 20_000, interval: 50 });
      // While the agent's orders session has a stream in flight: a second identity on the same
      // connection name, and the same agent on a second connection (a Messages stream).
      const [other, claude, agentAgain] = await Promise.all([
        h2Request(session, { ':method': 'GET', ':path': `/c/orders/pii?n=${nonce}`, authorization: `Bearer ${otherAgentToken}` }),
        h2Request(
          session,
          { ':method': 'POST', ':path': '/c/claude/v1/messages', 'x-api-key': agentToken, 'anthropic-version': '2023-06-01', 'content-type': 'application/json' },
          JSON.stringify({ model: 'claude-standin-1', max_tokens: 64, stream: true, messages: [{ role: 'user', content: `pii please ${nonce}` }] }),
        ),
        h2Request(session, { ':method': 'GET', ':path': `/c/orders/pii?n=${nonce}-again`, authorization: `Bearer ${agentToken}` }),
      ]);
      order.push('others');
      expect(other.headers[':status']).toBe(200);
      expect(other.body).not.toContain(f.piiValue);
      expect(claude.headers[':status']).toBe(200);
      expect(claude.body).toContain('event: message_stop');
      expect(claude.body).not.toContain(f.piiValue);
      expect(agentAgain.headers[':status']).toBe(200);
      expect(agentAgain.body).not.toContain(f.piiValue);
      f.api.releaseSlow();
      expect((await held).headers[':status']).toBe(200);
      expect(order).toEqual(['others', 'held']);
    } finally {
      session.close();
    }
    // Three sessions: (orders, agent-7) with both of its requests, (orders, agent-8) and (claude, agent-7); each closed with the connection.
    const sessions = await vi.waitFor(
      async () => {
        const events = await f.events();
        const issued = events.filter((e) => e.type === 'command.issued' && JSON.stringify(e.payload).includes(nonce));
        expect(issued).toHaveLength(4);
        const streams = [...new Set(issued.map((e) => e.stream))];
        expect(streams).toHaveLength(3);
        for (const stream of streams) expect(events.some((e) => e.stream === stream && e.type === 'session.closed')).toBe(true);
        return streams.map((stream) => ({
          commands: issued.filter((e) => e.stream === stream).map((e) => JSON.stringify(e.payload)),
          opened: events.find((e) => e.stream === stream && e.type === 'authentication.succeeded')!,
          frames: events
            .filter((e): e is Extract<CustodianEvent, { type: 'frame.recorded' }> => e.stream === stream && e.type === 'frame.recorded' && e.payload.direction === 'upstream-to-client')
            .map((e) => Buffer.from(e.payload.data, 'base64').toString('utf8'))
            .join(''),
        }));
      },
      { timeout: 30_000, interval: 200 },
    );
    const agentOrders = sessions.find((s) => s.commands.length === 2)!;
    expect(agentOrders.commands.some((c) => c.includes('/slow?'))).toBe(true);
    // Each session recorded the answers of its own streams only.
    expect(JSON.stringify(agentOrders.opened)).toContain('agent-7');
    expect(agentOrders.frames).toContain('{"slow":true}');
    expect(agentOrders.frames).not.toContain('event: message_stop');
    const otherOrders = sessions.find((s) => s !== agentOrders && JSON.stringify(s.opened).includes('agent-8'))!;
    expect(otherOrders.commands).toHaveLength(1);
    expect(otherOrders.frames).toContain('HTTP/2 200');
    expect(otherOrders.frames).not.toContain('{"slow":true}');
    expect(otherOrders.frames).not.toContain('event: message_stop');
    const claudeSession = sessions.find((s) => s !== agentOrders && s !== otherOrders)!;
    expect(JSON.stringify(claudeSession.opened)).toContain('agent-7');
    expect(claudeSession.frames).toContain('event: message_stop');
    expect(claudeSession.frames).not.toContain('{"slow":true}');
  }, 120_000);

  it("records each h2 stream's bytes on its own channel (the stream id), so concurrent answers stay apart", async () => {
    const frames = await vi.waitFor(
      async () => {
        const found = (await f.events()).filter((e): e is Extract<CustodianEvent, { type: 'frame.recorded' }> => e.type === 'frame.recorded' && e.payload.direction === 'upstream-to-client' && e.payload.channel !== undefined);
        expect(found.some((e) => Buffer.from(e.payload.data, 'base64').toString('utf8').includes('{"slow":true}'))).toBe(true);
        return found;
      },
      { timeout: 20_000, interval: 200 },
    );
    expect(frames.length).toBeGreaterThan(0);
    // Stream ids restart on every connection: a channel is one within its session.
    const byChannel = new Map<string, string>();
    for (const frame of frames) {
      const key = `${frame.stream}/${frame.payload.channel!}`;
      byChannel.set(key, (byChannel.get(key) ?? '') + Buffer.from(frame.payload.data, 'base64').toString('utf8'));
    }
    // Every channel holds exactly one answer: one status line at its start, its body after.
    for (const bytes of byChannel.values()) {
      expect(bytes.slice(0, 12)).toMatch(/^HTTP\/2 \d{3}/);
      expect(bytes.match(/HTTP\/2 \d{3}/g)).toHaveLength(1);
    }
    expect([...byChannel.values()].some((bytes) => bytes.includes('{"slow":true}'))).toBe(true);
  });

  it('records what the h2 client was sent (status, headers, masked body) and never the token or the held credentials', async () => {
    const token = await f.token();
    const events = await (async () => {
      // The h2 session closed with the client connection above: its frames are in the store.
      for (let i = 0; i < 100; i++) {
        const all = await f.events();
        if (all.some((e) => e.type === 'frame.recorded' && Buffer.from((e.payload as { data: string }).data, 'base64').toString('latin1').startsWith('HTTP/2 200'))) return all;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      return f.events();
    })();
    const frames = events.filter((e) => e.type === 'frame.recorded').map((e) => Buffer.from((e.payload as { data: string }).data, 'base64').toString('latin1'));
    const h2 = frames.join('');
    expect(h2).toContain('HTTP/2 200');
    expect(h2).toContain('HTTP/2 403');
    expect(h2).toContain('[REDACTED:pii]');
    const all = JSON.stringify(events) + h2;
    expect(all.includes(f.piiValue)).toBe(false);
    expect(all.includes(token)).toBe(false);
    expect(all.includes(f.apiCredential)).toBe(false);
    expect(all.includes(f.anthropicKey)).toBe(false);
  });
});
