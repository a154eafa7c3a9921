// Issue 19 §3, "one agent can stop everyone": every per-session and per-identity resource has a
// cap, refused past it with a clear error, and the gateway goes on serving everyone else. Limits
// are set low here so the tests reach them; the defaults are in DEFAULT_SESSION_LIMITS. No timing
// assertions: what is checked is the answer (error, close) and that a bystander is still served.
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CustodianEvent } from '@custodian/event-contracts';
import { encodeBind, encodeClose, encodeDescribe, encodeExecute, encodeParse, encodeQuery, encodeSync } from '@custodian/postgres-wire';
import { RawClient } from './testing/raw-client.js';
import { psql, sessionEvents, startGatewayFixture, type GatewayFixture } from './testing/gateway-fixture.js';

let fixture: GatewayFixture;
const LIMITS = {
  maxStatementBytes: 4096,
  maxScannedValueBytes: 4096,
  maxPreparedStatements: 5,
  maxPortals: 5,
  maxPendingResponses: 500,
  maxSessionsPerIdentity: 3,
  maxSessionsPerConnection: 50,
  idleSessionTimeoutMs: 3000,
  maxUnauthenticated: 100,
  maxUnauthenticatedPerAddress: 4,
};
beforeAll(async () => {
  fixture = await startGatewayFixture({ gateway: { limits: LIMITS, startupTimeoutMs: 1500 } });
});
afterAll(async () => {
  await fixture?.stop();
});

function ofType<T extends CustodianEvent['type']>(events: readonly CustodianEvent[], type: T): Extract<CustodianEvent, { type: T }>[] {
  return events.filter((e): e is Extract<CustodianEvent, { type: T }> => e.type === type);
}

async function login(application: string): Promise<RawClient> {
  return RawClient.login(fixture.gateway.port, await fixture.token('agent'), 'orders-prod', 'agent-7', { application_name: application });
}

async function stillServing(): Promise<void> {
  const result = await psql(fixture, await fixture.token('agent'), 'SELECT 7;\n');
  expect(result.stdout).toBe('7\n');
}

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('per-session state is capped', () => {
  it('named prepared statements past the cap are refused (recorded), the session goes on, and Close frees a slot', async () => {
    const client = await login('limits-statements');
    try {
      const parses = Array.from({ length: 6 }, (_, i) => encodeParse({ statement: `s${i}`, query: 'SELECT 1', parameterTypes: [] }));
      client.send(...parses, encodeSync());
      const reply = await client.untilReady();
      expect(reply.types.filter((t) => t === '1')).toHaveLength(5);
      expect(reply.errors.map((e) => e.get('C'))).toEqual(['42501']);
      expect(reply.errors[0]!.get('M')).toContain('5 prepared statements');
      client.send(encodeClose('S', 's0'), encodeParse({ statement: 's9', query: 'SELECT 9', parameterTypes: [] }), encodeSync());
      expect((await client.untilReady()).errors).toEqual([]);
    } finally {
      await client.close();
    }
    const events = await fixture.events();
    expect(ofType(events, 'policy.decided').some((e) => e.payload.ruleId === 'custodian:prepared-statement-limit')).toBe(true);
  });

  it('named portals past the cap are refused; portals PostgreSQL dropped at transaction end no longer count', async () => {
    const client = await login('limits-portals');
    try {
      const bind = (portal: string): Buffer => encodeBind({ portal, statement: 'p', parameterFormats: [], parameters: [], resultFormats: [] });
      client.send(encodeParse({ statement: 'p', query: 'SELECT 1', parameterTypes: [] }), ...Array.from({ length: 6 }, (_, i) => bind(`c${i}`)), encodeSync());
      const first = await client.untilReady();
      expect(first.errors.map((e) => e.get('C'))).toEqual(['42501']);
      expect(first.errors[0]!.get('M')).toContain('5 open portals');
      expect(first.status).toBe('I');
      // The implicit transaction ended at Sync: PostgreSQL dropped c0…c4, so five new ones fit.
      client.send(...Array.from({ length: 5 }, (_, i) => bind(`d${i}`)), encodeSync());
      expect((await client.untilReady()).errors).toEqual([]);
    } finally {
      await client.close();
    }
  });

  it('a pipeline that never syncs ends at the pending-response cap with 54000, and everyone else is served', async () => {
    const client = await login('limits-pending');
    const parses = Array.from({ length: 2000 }, () => encodeParse({ statement: '', query: 'SELECT 1', parameterTypes: [] }));
    client.send(...parses);
    const reply = await client.untilReady();
    expect(client.closed).toBe(true);
    expect(reply.errors.map((e) => [e.get('S'), e.get('C')])).toEqual([['FATAL', '54000']]);
    expect(reply.errors[0]!.get('M')).toContain('Sync');
    await stillServing();
  });

  it('a statement over the size limit is refused before classification, recorded without its text; the session goes on', async () => {
    const client = await login('limits-statement-size');
    try {
      const big = `SELECT '${'x'.repeat(5000)}'`;
      const refused = await client.simple(big);
      expect(refused.errors.map((e) => e.get('C'))).toEqual(['42501']);
      expect(refused.errors[0]!.get('M')).toContain('up to 4096 bytes');
      client.send(encodeParse({ statement: '', query: big, parameterTypes: [] }), encodeSync());
      expect((await client.untilReady()).errors.map((e) => e.get('C'))).toEqual(['42501']);
      expect((await client.simple('SELECT 3')).rows).toEqual([['3']]);
    } finally {
      await client.close();
    }
    const events = await fixture.events();
    const opened = ofType(events, 'session.opened').find((e) => e.payload.client.application === 'limits-statement-size')!;
    const issued = ofType(sessionEvents(events, opened.payload.sessionId), 'command.issued');
    expect(issued[0]!.payload.text).toMatch(/^\[statement of \d+ bytes/);
    expect(JSON.stringify(issued)).not.toContain('x'.repeat(100));
  });

  it('a result value over the scan limit is replaced (fail closed) and reported; shorter values are scanned as before', async () => {
    const client = await login('limits-value-size');
    try {
      const reply = await client.simple("SELECT repeat('-----BEGIN RSA PRIVATE KEY----- ', 200) AS big, 'short' AS small, length(repeat('a', 10000)) AS n");
      expect(reply.rows).toEqual([['[REDACTED:custodian:value-limit]', 'short', '10000']]);
      const extended = await client.extended("SELECT repeat('a', 5000), 'mail bob@example.net'");
      expect(extended.rows).toEqual([['[REDACTED:custodian:value-limit]', 'mail [REDACTED:pii-detectors]']]);
    } finally {
      await client.close();
    }
    await until('the findings to be recorded', async () => {
      const events = await fixture.events();
      return ofType(events, 'data.masked').some((e) => JSON.stringify(e.payload).includes('custodian:value-limit'));
    });
  });
});

describe('sessions per identity, idle sessions, connections not yet authenticated', () => {
  it('an identity past its session cap is refused with 53300 naming the limit; a closed session frees the slot', async () => {
    const open = [await login('cap-1'), await login('cap-2'), await login('cap-3')];
    try {
      await expect(login('cap-4')).rejects.toThrow(/too many sessions for identity .*the limit is 3/);
      await open.pop()!.close();
      await until('the freed slot', async () => {
        try {
          const again = await login('cap-5');
          open.push(again);
          return true;
        } catch {
          return false;
        }
      });
    } finally {
      for (const client of open) await client.close();
    }
    const events = await fixture.events();
    expect(ofType(events, 'session.closed').some((e) => e.payload.errorCode === 'SESSION_LIMIT_EXCEEDED')).toBe(true);
  });

  it('a session without traffic is ended by the idle timeout with 57P05', async () => {
    const client = await login('limits-idle');
    expect((await client.simple('SELECT 1')).rows).toEqual([['1']]);
    const reply = await client.untilReady(1, 30_000);
    expect(client.closed).toBe(true);
    expect(reply.errors.map((e) => [e.get('S'), e.get('C')])).toEqual([['FATAL', '57P05']]);
  });

  it('connections that do not authenticate are capped per address and closed after the startup timeout; logins go on afterwards', async () => {
    const idle: Socket[] = [];
    for (let i = 0; i < LIMITS.maxUnauthenticatedPerAddress; i++) {
      const socket = connect(fixture.gateway.port, '127.0.0.1');
      socket.on('error', () => undefined);
      await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
      idle.push(socket);
    }
    const refused = await RawClient.connect(fixture.gateway.port);
    const reply = await refused.untilReady();
    expect(refused.closed).toBe(true);
    expect(reply.errors.map((e) => e.get('C'))).toEqual(['53300']);
    // The silent ones are closed by the startup timeout, without a word from the client.
    await until('the silent connections to be closed', () => idle.every((socket) => socket.destroyed || socket.readableEnded));
    for (const socket of idle) socket.destroy();
    await stillServing();
  });
});

describe('simple-protocol sessions are unaffected by the extended-protocol caps', () => {
  it('many simple queries and unnamed statements never count against the caps', async () => {
    const client = await login('limits-simple');
    try {
      for (let round = 0; round < 3; round++) {
        client.send(...Array.from({ length: 20 }, () => encodeQuery('SELECT 1')));
        expect((await client.untilReady(20)).errors).toEqual([]);
        client.send(
          ...Array.from({ length: 20 }, () => [encodeParse({ statement: '', query: 'SELECT 2', parameterTypes: [] }), encodeBind({ portal: '', statement: '', parameterFormats: [], parameters: [], resultFormats: [] }), encodeDescribe('P', ''), encodeExecute('', 0)]).flat(),
          encodeSync(),
        );
        const reply = await client.untilReady();
        expect(reply.errors).toEqual([]);
        expect(reply.rows).toHaveLength(20);
      }
    } finally {
      await client.close();
    }
  });
});
