// Issue 19 §6, protocol fidelity: what real drivers do that PostgreSQL accepts must work through
// the gateway too (typed Parse, 65,535 parameters, startup settings, the upstream's own FATAL,
// syntax errors with their position, the real backend pid), and what the gateway refuses it
// refuses the way PostgreSQL would (a FATAL naming the startup parameter, silence for a malformed
// startup packet). The upstream role can write; effects are checked through the superuser.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CustodianEvent } from '@custodian/event-contracts';
import { encodeBind, encodeDescribe, encodeExecute, encodeParse, encodeStartupMessage, encodeSync } from '@custodian/postgres-wire';
import { RawClient } from './testing/raw-client.js';
import { psql, startGatewayFixture, type GatewayFixture } from './testing/gateway-fixture.js';

let fixture: GatewayFixture;
beforeAll(async () => {
  fixture = await startGatewayFixture({ gateway: { catalogIdleMs: 200 } });
});
afterAll(async () => {
  await fixture?.stop();
});

function ofType<T extends CustodianEvent['type']>(events: readonly CustodianEvent[], type: T): Extract<CustodianEvent, { type: T }>[] {
  return events.filter((e): e is Extract<CustodianEvent, { type: T }> => e.type === type);
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Sends a startup message with the given parameters and the token; returns what came back. */
async function startupWith(parameters: Record<string, string>): Promise<{ errors: Map<string, string>[]; closed: boolean }> {
  const client = await RawClient.connect(fixture.gateway.port);
  client.send(encodeStartupMessage({ user: 'agent-7', database: 'orders-prod', ...parameters }));
  const reply = await client.untilReady();
  return { errors: [...reply.errors], closed: client.closed };
}

describe('Parse and Bind as drivers send them', () => {
  it('a Parse that declares binary parameter type OIDs (timestamptz, jsonb, float8, uuid, numeric, int4[]) is not refused as invalid UTF-8', async () => {
    const client = await RawClient.login(fixture.gateway.port, await fixture.token('agent'));
    try {
      // 1184 = 0x04A0: its low byte alone is not valid UTF-8, which the old whole-message check tripped on.
      const types = [1184, 3802, 701, 2950, 1700, 1007];
      const values = ['2024-01-02 03:04:05+00', '{"a":1}', '1.5', '00000000-0000-0000-0000-000000000001', '12.25', '{1,2}'];
      client.send(
        encodeParse({ statement: 'typed', query: 'SELECT $1::timestamptz IS NOT NULL, $2::jsonb ->> \'a\', $3::float8 * 2, $4::uuid, $5::numeric, array_length($6::int4[], 1)', parameterTypes: types }),
        encodeBind({ portal: '', statement: 'typed', parameterFormats: [], parameters: values.map((v) => Buffer.from(v)), resultFormats: [] }),
        encodeDescribe('P', ''),
        encodeExecute('', 0),
        encodeSync(),
      );
      const reply = await client.untilReady();
      expect(reply.errors.map((e) => e.get('M'))).toEqual([]);
      expect(reply.rows).toEqual([['t', '1', '3', '00000000-0000-0000-0000-000000000001', '12.25', '2']]);
    } finally {
      await client.close();
    }
  });

  it('40,000 parameters (more than a signed 16-bit count) are read as PostgreSQL reads them', async () => {
    const client = await RawClient.login(fixture.gateway.port, await fixture.token('agent'));
    try {
      const count = 40_000;
      const parameters = Array.from({ length: count }, (_, i) => Buffer.from(String(i + 1)));
      client.send(
        encodeParse({ statement: '', query: `SELECT $${count}::int4 + $1::int4`, parameterTypes: Array.from({ length: count }, () => 23) }),
        encodeBind({ portal: '', statement: '', parameterFormats: [], parameters, resultFormats: [] }),
        encodeDescribe('P', ''),
        encodeExecute('', 0),
        encodeSync(),
      );
      const reply = await client.untilReady();
      expect(reply.errors.map((e) => e.get('M'))).toEqual([]);
      expect(reply.rows).toEqual([[String(count + 1)]]);
      expect(client.closed).toBe(false);
    } finally {
      await client.close();
    }
  });
});

describe('startup parameters', () => {
  it('allowed settings (timeouts, DateStyle, TimeZone, application_name, extra_float_digits, client_min_messages) reach the upstream session', async () => {
    const client = new pg.Client({
      host: '127.0.0.1',
      port: fixture.gateway.port,
      user: 'agent-7',
      database: 'orders-prod',
      password: await fixture.token('agent'),
      ssl: false,
      application_name: 'fidelity-settings',
      statement_timeout: 4321,
      idle_in_transaction_session_timeout: 65_000,
    });
    await client.connect();
    try {
      const { rows } = await client.query(
        "SELECT current_setting('statement_timeout') AS st, current_setting('idle_in_transaction_session_timeout') AS iit, current_setting('application_name') AS app",
      );
      expect(rows[0]).toMatchObject({ st: '4321ms', iit: '65s' });
      // The gateway names the upstream session (custodian/<session id>), the client's name after it as far as 63 bytes allow.
      expect(rows[0].app).toMatch(/^custodian\/[0-9a-f-]{36}\/fidelity-setting$/);
    } finally {
      await client.end();
    }
    const raw = await RawClient.login(fixture.gateway.port, await fixture.token('agent'), 'orders-prod', 'agent-7', { DateStyle: 'SQL, DMY', TimeZone: 'Asia/Tokyo', extra_float_digits: '0', client_min_messages: 'warning' });
    try {
      const reply = await raw.simple("SELECT current_setting('DateStyle'), current_setting('TimeZone'), current_setting('extra_float_digits'), current_setting('client_min_messages')");
      expect(reply.rows).toEqual([['SQL, DMY', 'Asia/Tokyo', '0', 'warning']]);
    } finally {
      await raw.close();
    }
  });

  it('options, search_path, custom settings and a non-UTF8 client_encoding are refused with a FATAL naming the parameter, and recorded', async () => {
    const cases: [Record<string, string>, string][] = [
      [{ options: '-c default_transaction_read_only=off' }, '"options"'],
      [{ search_path: 'evil, public' }, '"search_path"'],
      [{ 'custom.setting': 'x' }, '"custom.setting"'],
      [{ client_encoding: 'LATIN1' }, '"client_encoding"'],
    ];
    for (const [parameters, named] of cases) {
      const reply = await startupWith(parameters);
      expect(reply.errors, named).toHaveLength(1);
      expect(reply.errors[0]!.get('S')).toBe('FATAL');
      expect(reply.errors[0]!.get('C')).toBe('42501');
      expect(reply.errors[0]!.get('M')).toContain(named);
      expect(reply.closed).toBe(true);
    }
    const events = await fixture.events();
    expect(ofType(events, 'authentication.failed').filter((e) => e.payload.reasonCode === 'STARTUP_PARAMETER_REFUSED').length).toBeGreaterThanOrEqual(cases.length);
    // client_encoding=UTF8 (what JDBC and node-postgres send) is accepted.
    const utf8 = await RawClient.login(fixture.gateway.port, await fixture.token('agent'), 'orders-prod', 'agent-7', { client_encoding: 'UTF8' });
    expect((await utf8.simple('SELECT 1')).rows).toEqual([['1']]);
    await utf8.close();
  });

  it('a malformed startup packet is closed without a reply, as PostgreSQL does, and recorded', async () => {
    for (const packet of [Buffer.from([0, 0, 0, 3, 0, 3, 0, 0]), Buffer.concat([Buffer.from([0, 0, 0, 14, 0, 3, 0, 0]), Buffer.from('user\0x')])]) {
      const client = await RawClient.connect(fixture.gateway.port);
      client.send(packet);
      await client.untilReady();
      expect(client.closed).toBe(true);
      expect(Buffer.concat(client.received).length).toBe(0);
    }
    const events = await fixture.events();
    expect(ofType(events, 'authentication.failed').some((e) => e.payload.reasonCode === 'WIRE_INVALID_LENGTH')).toBe(true);
  });
});

describe('errors as PostgreSQL gives them', () => {
  it("after the upstream's own FATAL (pg_terminate_backend) the client gets that one error and the connection closes", async () => {
    const client = await RawClient.login(fixture.gateway.port, await fixture.token('agent'), 'orders-prod', 'agent-7', { application_name: 'fidelity-terminate' });
    const terminated = await fixture.postgres.psql("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name LIKE 'custodian/%/fidelity-termina%'");
    expect(terminated).toBe('1');
    const reply = await client.untilReady();
    expect(client.closed).toBe(true);
    expect(reply.errors.map((e) => [e.get('S'), e.get('C')])).toEqual([['FATAL', '57P01']]);
  });

  it('an unparseable statement is still refused, with SQLSTATE 42601 and the position PostgreSQL would give (simple and extended)', async () => {
    const client = await RawClient.login(fixture.gateway.port, await fixture.token('agent'));
    try {
      const simple = await client.simple('SELECT 1 FROM FROM customers');
      expect(simple.errors.map((e) => [e.get('C'), e.get('P')])).toEqual([['42601', '15']]);
      // Positions count characters (not UTF-16 units), from 1.
      client.send(encodeParse({ statement: '', query: "SELECT '😀' FROM FROM customers", parameterTypes: [] }), encodeSync());
      const extended = await client.untilReady();
      expect(extended.errors.map((e) => [e.get('C'), e.get('P')])).toEqual([['42601', '17']]);
      expect((await client.simple('SELECT 2')).rows).toEqual([['2']]);
    } finally {
      await client.close();
    }
  });
});

describe('process ids and the catalog connection', () => {
  it('the backend key data carries the real backend pid: pg_backend_pid() agrees, and cancel still goes through the gateway', async () => {
    const client = new pg.Client({ host: '127.0.0.1', port: fixture.gateway.port, user: 'agent-7', database: 'orders-prod', password: await fixture.token('agent'), ssl: false, application_name: 'fidelity-pid' });
    await client.connect();
    try {
      const { rows } = await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
      const told = (client as unknown as { processID: number }).processID;
      expect(rows[0]!.pid).toBe(told);
      const upstream = await fixture.postgres.psql("SELECT pid FROM pg_stat_activity WHERE application_name LIKE 'custodian/%/fidelity-pid%'");
      expect(Number(upstream)).toBe(told);
    } finally {
      await client.end();
    }
  });

  it('the catalog connection is closed when idle (it does not block DROP DATABASE) and reopened when needed', async () => {
    const catalogConnections = async (): Promise<number> => Number(await fixture.postgres.psql("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'custodian-gateway-catalog'"));
    const first = await psql(fixture, await fixture.token('agent'), 'SELECT email FROM customers WHERE id = 1;\n');
    expect(first.stdout).toBe('*****@******e.com\n');
    await until('the idle catalog connection to close', async () => (await catalogConnections()) === 0);
    // A table the catalog has not looked up yet: it reconnects for it.
    const again = await psql(fixture, await fixture.token('agent'), 'SELECT id FROM orders WHERE id = 1;\n');
    expect(again.stdout).toBe('1\n');
  });
});
