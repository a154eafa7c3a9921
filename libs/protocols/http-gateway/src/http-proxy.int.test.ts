// The HTTP reverse proxy against a real local JSON API: token checks, credential injection (the
// client's token never forwarded), method/path/body policy, held POST approved and denied,
// response masking (nested JSON by path and detector, gzip, chunked text), unmaskable content,
// upstream TLS verification, and hostile input (CL/TE smuggling, header floods, huge and
// malformed bodies).
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApproveApprovalCommand, DenyApprovalCommand } from '@custodian/approvals';
import type { CustodianEvent } from '@custodian/event-contracts';
import { MaskingPolicy } from '@custodian/masking';
import { HttpGateway } from './http-gateway.js';
import { startFixture, type Fixture } from './testing/gateway-fixture.js';

let f: Fixture;
/**
 * Size of the streamed text response (MiB). 128 in the test lane (text masking runs at a few MiB/s
 * on this shared two-core machine, so 500 MB takes minutes); `CUSTODIAN_HTTP_BIG_MIB=512` for the
 * issue's 500 MB run.
 */
const BIG_MIB = Number(process.env['CUSTODIAN_HTTP_BIG_MIB'] ?? '128');
/** Size of the streamed JSON response (MiB): 32 in the test lane, `CUSTODIAN_HTTP_BIG_JSON_MIB=500` for the run. */
const BIG_JSON_MIB = Number(process.env['CUSTODIAN_HTTP_BIG_JSON_MIB'] ?? '32');

/** Peak retained heap and buffers (read after a GC every 10th sample) and peak RSS (logged only) while a test streams. */
function sampleMemory(): { stop(): void; summary(): string; readonly peakHeap: number; readonly peakBuffers: number; readonly samples: number } {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  gc();
  const baseline = process.memoryUsage();
  const state = { peakRss: baseline.rss, peakHeap: 0, peakBuffers: 0, samples: 0 };
  const sampler = setInterval(() => {
    state.peakRss = Math.max(state.peakRss, process.memoryUsage().rss);
    if (state.samples++ % 4 !== 0) return;
    gc();
    const now = process.memoryUsage();
    state.peakHeap = Math.max(state.peakHeap, now.heapUsed - baseline.heapUsed);
    state.peakBuffers = Math.max(state.peakBuffers, now.arrayBuffers - baseline.arrayBuffers);
  }, 50);
  return {
    stop: () => clearInterval(sampler),
    summary: () => `peak retained heap growth ${(state.peakHeap / 1e6).toFixed(1)} MB, buffers ${(state.peakBuffers / 1e6).toFixed(1)} MB, RSS ${((state.peakRss - baseline.rss) / 1e6).toFixed(0)} MB (logged only)`,
    get peakHeap() {
      return state.peakHeap;
    },
    get peakBuffers() {
      return state.peakBuffers;
    },
    get samples() {
      return state.samples;
    },
  };
}

beforeAll(async () => {
  f = await startFixture();
}, 120_000);

afterAll(async () => {
  await f?.stop();
});

async function call(path: string, init: RequestInit & { token?: string | null } = {}): Promise<{ status: number; text: string; headers: Headers }> {
  const token = init.token === undefined ? await f.token() : init.token;
  const headers = new Headers(init.headers);
  if (token !== null) headers.set('authorization', `Bearer ${token}`);
  const res = await fetch(`${f.base}${path}`, { ...init, headers });
  return { status: res.status, text: await res.text(), headers: res.headers };
}

/** Sends raw bytes and returns everything the gateway answered until it closed (or 2 s passed). */
function raw(bytes: string | Buffer): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(f.gateway.port, '127.0.0.1');
    const chunks: Buffer[] = [];
    socket.on('data', (chunk) => chunks.push(chunk));
    const done = (): void => resolve(Buffer.concat(chunks).toString('latin1'));
    socket.on('close', done);
    socket.on('error', done);
    setTimeout(() => socket.destroy(), 2_000);
    socket.write(bytes);
  });
}

async function waitFor<T>(what: string, find: (events: CustodianEvent[]) => T | undefined): Promise<T> {
  // Generous: after a 32 MiB stream its frames are recorded before `data.masked`, which under load took longer than 10 s.
  const deadline = Date.now() + 90_000;
  for (;;) {
    const found = find(await f.events());
    if (found !== undefined) return found;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('HTTP gateway: authentication and credential injection', () => {
  it('refuses a request without a token (401 with a challenge) and one with a bad token', async () => {
    const none = await call('/c/orders/items', { token: null });
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toMatch(/^Bearer realm="custodian"/);
    expect(none.headers.get('content-type')).toBe('application/problem+json');
    const bad = await call('/c/orders/items', { token: 'not-a-jwt' });
    expect(bad.status).toBe(401);
    expect(JSON.parse(bad.text)).toMatchObject({ status: 401, title: 'Authentication failed' });
  });

  it('an unknown connection is refused like a forbidden one (403), a path outside /c/ is 404', async () => {
    expect((await call('/c/nope/items')).status).toBe(403);
    expect((await call('/items')).status).toBe(404);
  });

  it('injects the held credential and never forwards the client token', async () => {
    const before = f.api.authorizations.length;
    const res = await call('/c/orders/items?x=1');
    expect(res.status).toBe(200);
    expect(JSON.parse(res.text)).toMatchObject({ ok: true, method: 'GET', path: '/items' });
    const seen = f.api.authorizations.slice(before);
    expect(seen).toEqual([`Bearer ${f.apiCredential}`]);
    expect(f.api.log.at(-1)).toBe('GET /items?x=1 ');
  });

  it('verifies the upstream certificate against the configured CA; an untrusted one is refused (502)', async () => {
    const trusted = await call('/c/orders-tls/ping');
    expect(trusted.status).toBe(200);
    expect(JSON.parse(trusted.text)).toEqual({ tls: true, auth: true });
    const untrusted = await call('/c/orders-untrusted-tls/ping');
    expect(untrusted.status).toBe(502);
    expect(JSON.parse(untrusted.text)).toMatchObject({ title: 'Upstream unavailable', detail: 'the upstream certificate could not be verified' });
  });
});

describe('HTTP gateway: policy', () => {
  it('blocks by path with a problem document naming the rule; never reaches the upstream', async () => {
    const res = await call('/c/orders/admin/users', { method: 'GET' });
    expect(res.status).toBe(403);
    expect(res.headers.get('content-type')).toBe('application/problem+json');
    expect(JSON.parse(res.text)).toMatchObject({ status: 403, rule: 'block-admin', detail: expect.stringContaining('Admin endpoints are blocked.') });
    expect(f.api.log.some((l) => l.includes('/admin/users'))).toBe(false);
  });

  it('decides on the JSON body: a draft PUT passes, any other status is default-denied, malformed JSON is denied', async () => {
    const ok = await call('/c/orders/drafts/7', { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ status: 'draft', nested: { a: [1, 2] } }) });
    expect(ok.status).toBe(200);
    const published = await call('/c/orders/drafts/8', { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ status: 'published' }) });
    expect(published.status).toBe(403);
    const malformed = await call('/c/orders/drafts/9', { method: 'PUT', headers: { 'content-type': 'application/json' }, body: '{"status": "draft",' });
    expect(malformed.status).toBe(403);
    expect(f.api.log.some((l) => l.includes('/drafts/8') || l.includes('/drafts/9'))).toBe(false);
  });

  it('a body larger than the inspected size is too-large for the policy (default deny) and not forwarded', async () => {
    const big = JSON.stringify({ status: 'draft', filler: 'x'.repeat(200) });
    const res = await call('/c/orders-small/drafts/1', { method: 'PUT', headers: { 'content-type': 'application/json' }, body: big });
    expect(res.status).toBe(403);
    expect(f.api.log.some((l) => l.includes('/drafts/1 '))).toBe(false);
  });

  it('a held POST waits for approval and is forwarded once granted', async () => {
    const pending = call('/c/orders/orders', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ item: 'granted-widget' }) });
    const requested = await waitFor('approval.requested', (events) => events.find((e): e is Extract<CustodianEvent, { type: 'approval.requested' }> => e.type === 'approval.requested' && JSON.stringify(e.payload).includes('granted-widget')));
    expect(f.api.log.some((l) => l.includes('granted-widget'))).toBe(false);
    const approver = { subject: 'ops-1', issuer: f.oidc.issuer, groups: ['ops'], kind: 'human' as const };
    await f.approvals.handlers.approve.execute(new ApproveApprovalCommand(requested.payload.approvalId, approver, 'ok'));
    const res = await pending;
    expect(res.status).toBe(200);
    expect(f.api.log.some((l) => l.includes('granted-widget'))).toBe(true);
  });

  it('a held POST denied gets 403 naming the rule and the reason; not forwarded', async () => {
    const pending = call('/c/orders/orders', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ item: 'denied-widget' }) });
    const requested = await waitFor('approval.requested', (events) => events.find((e): e is Extract<CustodianEvent, { type: 'approval.requested' }> => e.type === 'approval.requested' && JSON.stringify(e.payload).includes('denied-widget')));
    const approver = { subject: 'ops-1', issuer: f.oidc.issuer, groups: ['ops'], kind: 'human' as const };
    await f.approvals.handlers.deny.execute(new DenyApprovalCommand(requested.payload.approvalId, approver, 'not today'));
    const res = await pending;
    expect(res.status).toBe(403);
    const problem = JSON.parse(res.text) as { rule: string; detail: string };
    expect(problem.rule).toBe('orders-post-needs-approval');
    expect(problem.detail).toContain('not today');
    expect(f.api.log.some((l) => l.includes('denied-widget'))).toBe(false);
  });
});

describe('HTTP gateway: response masking', () => {
  it('masks nested JSON by detector and keeps the document otherwise byte for byte; Content-Length recomputed', async () => {
    const res = await call('/c/orders/pii');
    expect(res.status).toBe(200);
    expect(res.text).not.toContain(f.piiValue);
    expect(JSON.parse(res.text)).toEqual({ customers: [{ id: 1, contact: '[REDACTED:pii]', nested: { notes: ['write to [REDACTED:pii]'] } }] });
    expect(res.headers.get('content-length')).toBe(String(Buffer.byteLength(res.text)));
  });

  it('decodes a gzip response to mask it and answers uncompressed', async () => {
    const res = await call('/c/orders/pii-gzip', { headers: { 'accept-encoding': 'gzip' } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-encoding')).toBeNull();
    expect(JSON.parse(res.text)).toEqual({ contact: '[REDACTED:pii]' });
  });

  it('masks chunked text whose address is split across writes', async () => {
    const res = await call('/c/orders/pii-chunked-text');
    expect(res.text).toBe('contact: [REDACTED:pii] end');
  });

  it('refuses content it cannot mask (502 naming the rule) unless the connection passes it', async () => {
    const refused = await call('/c/orders/binary');
    expect(refused.status).toBe(502);
    expect(JSON.parse(refused.text)).toMatchObject({ rule: 'custodian:unmaskable-response' });
    expect(refused.text).not.toContain(f.piiValue);
    const passed = await call('/c/orders-pass-binary/binary');
    expect(passed.status).toBe(200);
    expect(passed.text).toBe(f.piiValue);
  });

  // Retained memory is what a bound is about: the sampler collects garbage before it reads the heap.
  // RSS is logged, not asserted: since the SQLite store commits in a writer thread, the allocator
  // keeps freed memory of both threads mapped (RSS grew ~300 MB for 256 MiB while the retained heap
  // stayed near 50 MB), so RSS no longer says whether anything holds the body.
  it(`streams a ${BIG_MIB} MiB text response masked, with bounded memory (the gateway never holds the body)`, async () => {
    const token = await f.token();
    const memory = sampleMemory();
    let bytes = 0;
    let tail = '';
    let leaked = false;
    let redactions = 0;
    try {
      const res = await fetch(`${f.base}/c/orders/big-text?mib=${BIG_MIB}`, { headers: { authorization: `Bearer ${token}` } });
      expect(res.status).toBe(200);
      const decoder = new TextDecoder();
      for await (const chunk of res.body!) {
        bytes += chunk.length;
        // The last 100 characters carried over: an address split across reads is still seen.
        const text = tail + decoder.decode(chunk, { stream: true });
        if (text.includes(f.piiValue)) leaked = true;
        redactions += (text.slice(tail.length > 0 ? Math.max(0, tail.length - 20) : 0).match(/\[REDACTED:pii\]/g) ?? []).length;
        tail = text.slice(-100);
      }
    } finally {
      memory.stop();
    }
    expect(leaked).toBe(false);
    expect(bytes).toBeGreaterThan(BIG_MIB * 1024 * 1024 * 0.9);
    expect(redactions).toBeGreaterThan(0);
    console.info(`${BIG_MIB} MiB text streamed: ${memory.summary()}`);
    // Upstream, gateway, recorder and client share this process: a buffered body would show here.
    expect(memory.samples).toBeGreaterThan(5);
    expect(memory.peakHeap).toBeLessThan(96 * 1024 * 1024);
    // Buffers in flight (sockets both ways, the recorder's backlog, the store's writer) measured
    // 43 MB at 64 MiB and 38 MB at 192 MiB: bounded, not growing with the body, which is larger.
    expect(memory.peakBuffers).toBeLessThan(64 * 1024 * 1024);
  }, 600_000);

  it(`streams a ${BIG_JSON_MIB} MiB JSON array masked by path and detectors, with bounded memory (no whole-body buffering)`, async () => {
    const token = await f.token();
    const memory = sampleMemory();
    // The client checks the output is one valid JSON document with the same tokenizer, no rules.
    const validator = MaskingPolicy.create({ detection: { enabled: [] } }).createJsonStreamMasker();
    let bytes = 0;
    let tail = '';
    let leaked = false;
    let contentLength: string | null = 'unset';
    try {
      const res = await fetch(`${f.base}/c/orders/big-json?mib=${BIG_JSON_MIB}`, { headers: { authorization: `Bearer ${token}` } });
      expect(res.status).toBe(200);
      contentLength = res.headers.get('content-length');
      const decoder = new TextDecoder();
      for await (const chunk of res.body!) {
        bytes += chunk.length;
        validator.push(chunk);
        const text = tail + decoder.decode(chunk, { stream: true });
        if (text.includes(f.piiValue) || /"tok-\d+"/.test(text)) leaked = true;
        tail = text.slice(-400);
      }
      validator.end();
    } finally {
      memory.stop();
    }
    expect(contentLength).toBeNull();
    expect(leaked).toBe(false);
    expect(bytes).toBeGreaterThan(BIG_JSON_MIB * 1024 * 1024 * 0.7);
    // The last element: the nested path rules and the detector applied, other values kept.
    expect(tail).toMatch(/"name":"Customer \d+","contact":"\[REDACTED:pii\]","ssn":"\*\*\*-\*\*-\d{4}","nested":\{"notes":\["write to \[REDACTED:pii\]"\],"token":"\[REDACTED:nested-token\]"\}\}\]\}$/);
    console.info(`${BIG_JSON_MIB} MiB JSON streamed (${(bytes / 1e6).toFixed(0)} MB out): ${memory.summary()}`);
    expect(memory.samples).toBeGreaterThan(5);
    expect(memory.peakHeap).toBeLessThan(96 * 1024 * 1024);
    expect(memory.peakBuffers).toBeLessThan(32 * 1024 * 1024);
    const masked = await waitFor('data.masked of the streamed JSON', (events) => events.find((e) => e.type === 'data.masked' && JSON.stringify(e.payload).includes('nested-token')));
    expect(JSON.stringify(masked.payload)).toContain('$.customers[*].ssn');
  }, 1_800_000);

  it('streams a JSON response larger than the connection masks whole: chunked, re-serialised, masked the same', async () => {
    const res = await call('/c/orders-small/pii');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-length')).toBeNull();
    expect(res.text).not.toContain(f.piiValue);
    expect(JSON.parse(res.text)).toEqual({ customers: [{ id: 1, contact: '[REDACTED:pii]', nested: { notes: ['write to [REDACTED:pii]'] } }] });
  });

  it('a streamed response that turns out not to be JSON: 502 before any byte went out, else cut off (the rest never sent)', async () => {
    const refused = await call('/c/orders-small/not-json');
    expect(refused.status).toBe(502);
    expect(JSON.parse(refused.text)).toMatchObject({ type: 'urn:custodian:problem:response-not-json', rule: 'custodian:json-limit' });
    expect(refused.text).not.toContain(f.piiValue);
    const res = await fetch(`${f.base}/c/orders-small/not-json?after=4096`, { headers: { authorization: `Bearer ${await f.token()}` } });
    expect(res.status).toBe(200);
    await expect(res.text()).rejects.toThrow();
    await waitFor('the cut-off logged', () => (f.logLines.some((l) => l.includes('streamed JSON response cut off') && l.includes('MASKING_JSON_INVALID')) ? true : undefined));
  });

  it('masks a JSON document up to the connection limit even above the masker default (6.8 MiB, 60,000 records)', async () => {
    const res = await call('/c/orders-large/customers?count=60000');
    expect(res.status).toBe(200);
    const document = JSON.parse(res.text) as { customers: { contact: string; ssn: string }[] };
    expect(document.customers).toHaveLength(60_000);
    expect(res.text).not.toContain('@example.com');
    expect(document.customers[59_999]).toMatchObject({ contact: '[REDACTED:pii]', ssn: '***-**-9999' });
  });

  it('refuses JSON nested deeper than path masking follows (502 naming the rule), never a 200 with a replaced body', async () => {
    const res = await call('/c/orders/deep');
    expect(res.status).toBe(502);
    expect(JSON.parse(res.text)).toMatchObject({ rule: 'custodian:json-limit' });
    expect(res.text).not.toContain(f.piiValue);
  });
});

describe('HTTP gateway: hostile input', () => {
  it('refuses Content-Length together with Transfer-Encoding (request smuggling) before anything is forwarded', async () => {
    const token = await f.token();
    const before = f.api.log.length;
    const answer = await raw(
      `POST /c/orders/drafts/1 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /c/orders/admin HTTP/1.1\r\nHost: x\r\n\r\n`,
    );
    expect(answer).toMatch(/^HTTP\/1\.1 400 /);
    expect(f.api.log.length).toBe(before);
  });

  it('closes a slowloris connection (a head trickling in byte by byte) with 408 once the head deadline passes', async () => {
    const slow = new HttpGateway({ host: '127.0.0.1', port: 0, pipeline: f.pipeline, headersTimeoutMs: 1_000, connections: [] });
    await slow.listen();
    try {
      const answer = await new Promise<string>((resolve) => {
        const socket = connect(slow.port, '127.0.0.1');
        const chunks: Buffer[] = [];
        const head = `GET /c/orders/pii HTTP/1.1\r\nHost: x\r\n${'X-Slow: y\r\n'.repeat(200)}`;
        let sent = 0;
        const trickle = setInterval(() => {
          if (!socket.writable || sent >= head.length) return;
          socket.write(head[sent++]!);
        }, 50);
        socket.on('data', (chunk) => chunks.push(chunk));
        const done = (): void => {
          clearInterval(trickle);
          resolve(Buffer.concat(chunks).toString('latin1'));
        };
        socket.on('close', done);
        socket.on('error', done);
        // Bounded: the head alone would take 130 s to trickle in.
        setTimeout(() => socket.destroy(), 20_000);
      });
      expect(answer).toMatch(/^HTTP\/1\.1 408 /);
    } finally {
      await slow.close();
    }
  }, 30_000);

  it('refuses a header flood with 431', async () => {
    const flood = await raw(`GET /c/orders/items HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`);
    expect(flood).toMatch(/^HTTP\/1\.1 431 /);
  });

  it('refuses obs-fold / invalid header syntax with 400', async () => {
    const answer = await raw('GET /c/orders/items HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n');
    expect(answer).toMatch(/^HTTP\/1\.1 400 /);
  });

  it('a huge request body is never buffered whole: the policy sees too-large and denies', async () => {
    const res = await call('/c/orders/drafts/2', { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ status: 'draft', filler: 'y'.repeat(3 * 1024 * 1024) }) });
    expect(res.status).toBe(403);
  });

  it('records every client-bound byte and never the client token or the upstream credential in events or logs', async () => {
    const token = await f.token();
    await call('/c/orders/pii');
    const events = JSON.stringify(await f.events());
    const all = await f.events();
    // The connection configured to pass unmaskable content passes it (that is its policy): its sessions aside.
    const passing = new Set(all.filter((e) => e.type === 'session.opened' && (e.payload as { connection: { name: string } }).connection.name === 'orders-pass-binary').map((e) => e.stream));
    const frames = all.filter((e) => e.type === 'frame.recorded' && !passing.has(e.stream)).map((e) => Buffer.from((e.payload as { data: string }).data, 'base64').toString('latin1')).join('\n');
    for (const secret of [token, f.apiCredential, Buffer.from(f.apiCredential).toString('base64')]) {
      expect(events.includes(secret)).toBe(false);
      expect(frames.includes(secret)).toBe(false);
      expect(f.logLines.join('\n').includes(secret)).toBe(false);
    }
    expect(frames).toContain('[client token]');
    expect(frames).not.toContain(f.piiValue);
  });
});
