// Malformed and hostile input (oversized lengths, truncation, messages out of order, bytes after
// SSLRequest, invalid UTF-8): an error, an event, no crash, bounded memory. Large results stream
// with bounded memory; a client gone mid-result and an upstream killed mid-query end the session.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CustodianEvent } from '@custodian/event-contracts';
import { connect } from 'node:net';
import { encodeGssEncRequest, encodePasswordMessage, encodeQuery, encodeSslRequest, encodeStartupMessage } from '@custodian/postgres-wire';
import { RawClient } from './testing/raw-client.js';
import { psql, sessionEvents, startGatewayFixture, type GatewayFixture } from './testing/gateway-fixture.js';

let fixture: GatewayFixture;
const ROWS = 250_000;
const FILLER = 1_000;

beforeAll(async () => {
  fixture = await startGatewayFixture({ maxFrameBytes: 4096, maxMessageBytes: 8 * 1024 * 1024 });
  await fixture.postgres.psql(`INSERT INTO big SELECT g, 'user' || g || '@example.com', repeat('x', ${FILLER}) FROM generate_series(1, ${ROWS}) g`);
});
afterAll(async () => {
  await fixture?.stop();
});

function ofType<T extends CustodianEvent['type']>(events: readonly CustodianEvent[], type: T): Extract<CustodianEvent, { type: T }>[] {
  return events.filter((e): e is Extract<CustodianEvent, { type: T }> => e.type === type);
}

async function closedSession(application: string, timeoutMs = 15_000): Promise<Extract<CustodianEvent, { type: 'session.closed' }>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const events = await fixture.events();
    const opened = ofType(events, 'session.opened').filter((e) => e.payload.client.application === application).at(-1);
    const closed = opened ? ofType(sessionEvents(events, opened.payload.sessionId), 'session.closed')[0] : undefined;
    if (closed) return closed;
    if (Date.now() > deadline) throw new Error(`session ${application} did not close`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function header(type: string, length: number): Buffer {
  const b = Buffer.alloc(5);
  b.write(type, 0);
  b.writeInt32BE(length, 1);
  return b;
}

/** The gateway still serves a normal session. */
async function stillServing(): Promise<void> {
  const result = await psql(fixture, await fixture.token('agent'), 'SELECT 7;\n');
  expect(result.stdout).toBe('7\n');
}

describe('startup negotiation', () => {
  it('GSSENCRequest is answered N and the client may go on with a plain startup on the same connection', async () => {
    const socket = connect(fixture.gateway.port, '127.0.0.1');
    const received: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => received.push(chunk));
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    socket.write(encodeGssEncRequest());
    for (let i = 0; i < 100 && Buffer.concat(received).length < 1; i++) await new Promise((r) => setTimeout(r, 20));
    expect(Buffer.concat(received).toString('latin1', 0, 1)).toBe('N');
    socket.write(encodeStartupMessage({ user: 'agent-7', database: 'orders-prod' }));
    // AuthenticationCleartextPassword: 'R', length 8, code 3.
    for (let i = 0; i < 100 && Buffer.concat(received).length < 10; i++) await new Promise((r) => setTimeout(r, 20));
    expect(Buffer.concat(received).subarray(1, 10).toString('hex')).toBe('520000000800000003');
    socket.destroy();
  });
});

describe('hostile input', () => {
  it('a startup length of 2 GiB: refused at the header (closed without a reply, as PostgreSQL does), recorded, nothing buffered', async () => {
    // Retained buffers, not garbage left by earlier tests or by the store's writer thread.
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    gc();
    const before = process.memoryUsage();
    const client = await RawClient.connect(fixture.gateway.port);
    const huge = Buffer.alloc(8);
    huge.writeInt32BE(0x7fffffff, 0);
    huge.writeInt32BE(196608, 4);
    client.send(huge);
    // Keep pushing: the gateway must not be accumulating it.
    const junk = Buffer.alloc(1024 * 1024, 0x41);
    // 64 MiB offered (one 1 MiB buffer written 64 times, so the client itself holds 1 MiB): a
    // gateway that accumulated it would grow by far more than the bound below, which leaves room
    // for what the rest of the process allocates meanwhile on a loaded machine.
    for (let i = 0; i < 64 && !client.closed; i++) client.socket.write(junk);
    const reply = await client.untilReady();
    expect(reply.frames).toHaveLength(0);
    expect(client.closed).toBe(true);
    gc();
    const grown = process.memoryUsage().arrayBuffers - before.arrayBuffers;
    expect(grown).toBeLessThan(16 * 1024 * 1024);
    const events = await fixture.events();
    expect(ofType(events, 'authentication.failed').some((e) => e.payload.reasonCode === 'WIRE_MESSAGE_TOO_LARGE')).toBe(true);
    await stillServing();
  });

  it('a typed message before the startup message, and bytes sent after SSLRequest ahead of the handshake, are protocol violations', async () => {
    const early = await RawClient.connect(fixture.gateway.port);
    early.send(encodeQuery('SELECT 1'));
    const first = await early.untilReady();
    // Read as a startup packet its length is absurd: closed without a reply, as PostgreSQL does.
    expect(first.frames).toHaveLength(0);
    expect(early.closed).toBe(true);
    const smuggler = await RawClient.connect(fixture.gateway.port);
    smuggler.send(encodeSslRequest(), encodeStartupMessage({ user: 'agent-7', database: 'orders-prod' }));
    const second = await smuggler.untilReady();
    expect(smuggler.closed).toBe(true);
    expect(second.errors[0]?.get('M') ?? 'closed').toMatch(/data received after SSLRequest|closed/);
    const events = await fixture.events();
    expect(ofType(events, 'authentication.failed').some((e) => e.payload.reasonCode === 'PROTOCOL_VIOLATION')).toBe(true);
    await stillServing();
  });

  it('after login: an oversized length, an unknown type, a second password message — FATAL 08P01 and session.closed with the code', async () => {
    const token = await fixture.token('agent');
    const cases: [string, Buffer, string][] = [
      ['hostile-huge', header('Q', 0x40000000), 'WIRE_MESSAGE_TOO_LARGE'],
      ['hostile-unknown', header('z', 4), 'WIRE_UNKNOWN_MESSAGE'],
      ['hostile-password', encodePasswordMessage(token), 'WIRE_UNKNOWN_MESSAGE'],
    ];
    for (const [application, bytes, code] of cases) {
      const client = await RawClient.login(fixture.gateway.port, token, 'orders-prod', 'agent-7', { application_name: application });
      client.send(bytes);
      const reply = await client.untilReady();
      expect(reply.errors[0]?.get('C'), application).toBe('08P01');
      expect(reply.errors[0]?.get('S')).toBe('FATAL');
      const closed = await closedSession(application);
      expect(closed.payload).toMatchObject({ reason: 'error', errorCode: code });
    }
    await stillServing();
  });

  it('a truncated message followed by a hang-up ends the session cleanly', async () => {
    const client = await RawClient.login(fixture.gateway.port, await fixture.token('agent'), 'orders-prod', 'agent-7', { application_name: 'hostile-truncated' });
    const query = encodeQuery('SELECT 1');
    client.send(query.subarray(0, 6));
    client.socket.destroy();
    const closed = await closedSession('hostile-truncated');
    expect(closed.payload.reason).toBe('client-closed');
    await stillServing();
  });

  it('statement bytes that are not valid UTF-8 are refused, not decided on a repaired text', async () => {
    const client = await RawClient.login(fixture.gateway.port, await fixture.token('agent'));
    try {
      const bad = Buffer.concat([Buffer.from('Q'), Buffer.alloc(4), Buffer.from('SELECT 1 /* '), Buffer.from([0xc3, 0x28]), Buffer.from(' */'), Buffer.from([0])]);
      bad.writeInt32BE(bad.length - 1, 1);
      client.send(bad);
      const reply = await client.untilReady();
      expect(reply.errors[0]?.get('C')).toBe('42501');
      expect(reply.errors[0]?.get('M')).toContain('not valid UTF-8');
      expect((await client.simple('SELECT 8')).rows).toEqual([['8']]);
    } finally {
      await client.close();
    }
  });
});

describe('streaming', () => {
  // About 30 s on a quiet machine, minutes on a loaded one: memory is asserted, never time.
  it(`streams ${ROWS.toLocaleString('en')} rows (~${Math.round((ROWS * FILLER) / 1e6)} MB), masked, with bounded gateway memory`, { timeout: 300_000 }, async () => {
    const token = await fixture.token('agent');
    // Retained memory is what a bound is about: collect garbage before each sample.
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    gc();
    const baseline = process.memoryUsage();
    let peakHeap = 0;
    let peakHeld = 0;
    let samples = 0;
    const sampler = setInterval(() => {
      peakHeld = Math.max(peakHeld, fixture.gateway.bufferedBytes);
      if (samples++ % 10 !== 0) return;
      gc();
      peakHeap = Math.max(peakHeap, process.memoryUsage().heapUsed - baseline.heapUsed);
    }, 20);
    const result = await psql(fixture, token, 'SELECT id, email, filler FROM big;\nSELECT 1;\n', { extraArgs: ['-o', '/dev/null', '-q'], env: { PGAPPNAME: 'big-result' } });
    clearInterval(sampler);
    expect(result.stderr).toBe('');
    const closed = await closedSession('big-result');
    gc();
    const after = process.memoryUsage();
    const streamed = closed.payload.bytes.upstreamToClient;
    expect(streamed).toBeGreaterThan(ROWS * FILLER);
    expect(samples).toBeGreaterThan(50);
    console.info(`streamed ${(streamed / 1e6).toFixed(1)} MB; peak retained heap growth ${(peakHeap / 1e6).toFixed(1)} MB; peak bytes held by the session ${(peakHeld / 1024).toFixed(0)} KiB`);
    // Memory bounds, not timing. What the session holds at any time (socket queues, partial
    // messages, unflushed output) stays within a few chunks; the retained heap stays flat.
    expect(peakHeld).toBeLessThan(2 * 1024 * 1024);
    expect(peakHeap).toBeLessThan(32 * 1024 * 1024);
    expect(after.arrayBuffers - baseline.arrayBuffers).toBeLessThan(8 * 1024 * 1024);
    const events = await fixture.events();
    const session = sessionEvents(events, closed.payload.sessionId);
    const masked = ofType(session, 'data.masked')[0]!;
    expect(masked.payload.maskings).toContainEqual({ field: 'public.big.email', rule: 'pii-detectors', detector: 'email', count: ROWS });
    // Frames are bounded in the evidence: at most 4 KiB of data each, marked truncated.
    const frames = ofType(session, 'frame.recorded');
    expect(frames.every((f) => Buffer.from(f.payload.data, 'base64').length <= 4096)).toBe(true);
    expect(frames.some((f) => f.payload.truncated === true)).toBe(true);
  });

  it('a client gone mid-result: the session ends and the upstream query is stopped', async () => {
    const client = await RawClient.login(fixture.gateway.port, await fixture.token('agent'), 'orders-prod', 'agent-7', { application_name: 'gone-mid-result' });
    client.send(encodeQuery('SELECT b1.id, b1.filler FROM big b1, big b2'));
    // Take a few rows, then vanish.
    for (let i = 0; i < 5; i++) await client.next();
    client.socket.destroy();
    const closed = await closedSession('gone-mid-result');
    expect(closed.payload.reason).toBe('client-closed');
    for (let attempt = 0; ; attempt++) {
      const left = await fixture.postgres.psql("SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'custodian/%/gone-mid-result%'");
      if (left === '0') break;
      if (attempt > 100) throw new Error('the upstream query is still running');
      await new Promise((r) => setTimeout(r, 100));
    }
    await stillServing();
  });

  it('an upstream killed mid-query: the client gets an error and the session closes as upstream-closed', async () => {
    const client = await RawClient.login(fixture.gateway.port, await fixture.token('agent'), 'orders-prod', 'agent-7', { application_name: 'killed-upstream' });
    client.send(encodeQuery('SELECT pg_sleep(30)'));
    for (let attempt = 0; ; attempt++) {
      const running = await fixture.postgres.psql("SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'custodian/%/killed-upstream%' AND state = 'active'");
      if (running === '1') break;
      if (attempt > 100) throw new Error('the query never started');
      await new Promise((r) => setTimeout(r, 100));
    }
    await fixture.postgres.psql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name LIKE 'custodian/%/killed-upstream%'");
    const reply = await client.untilReady();
    expect(reply.errors.some((e) => e.get('S') === 'FATAL')).toBe(true);
    expect(client.closed).toBe(true);
    const closed = await closedSession('killed-upstream');
    expect(closed.payload.reason).toBe('upstream-closed');
    await stillServing();
  });
});
