// Issue 19 §1 (stale portal plan, binary results) and §4 (an Execute of a statement the gateway did
// not Parse): an agent allowed only reads, an upstream role that can write. Rows must be masked
// under what PostgreSQL says the portal is right now; binary values that can hold text are
// scanned; every Execute is decided and recorded.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CustodianEvent } from '@custodian/event-contracts';
import { encodeBind, encodeDescribe, encodeExecute, encodeParse, encodeSync } from '@custodian/postgres-wire';
import { RawClient } from './testing/raw-client.js';
import { sessionEvents, startGatewayFixture, type GatewayFixture } from './testing/gateway-fixture.js';

let fixture: GatewayFixture;
beforeAll(async () => {
  fixture = await startGatewayFixture();
});
afterAll(async () => {
  await fixture?.stop();
});

const SECRETS = ['alice@example.com', '4111 1111 1111 1111', 'alice.backup@example.org', 'bob@example.net'];

function ofType<T extends CustodianEvent['type']>(events: readonly CustodianEvent[], type: T): Extract<CustodianEvent, { type: T }>[] {
  return events.filter((e): e is Extract<CustodianEvent, { type: T }> => e.type === type);
}

async function sessionOf(application: string): Promise<CustodianEvent[]> {
  const events = await fixture.events();
  const opened = ofType(events, 'session.opened').filter((e) => e.payload.client.application === application).at(-1)!;
  return sessionEvents(events, opened.payload.sessionId);
}

function expectNoSecret(client: RawClient): void {
  const everything = Buffer.concat(client.received).toString('utf8');
  for (const secret of SECRETS) expect(everything).not.toContain(secret);
}

describe('stale portal plans', () => {
  it('a portal dropped at Sync and re-created by DECLARE … WITH HOLD is masked under its new description', async () => {
    const client = await RawClient.login(fixture.gateway.port, await fixture.token('agent'), 'orders-prod', 'agent-7', { application_name: 'bypass-hold' });
    try {
      client.send(
        encodeParse({ statement: 's', query: 'SELECT 1', parameterTypes: [] }),
        encodeBind({ portal: 'c', statement: 's', parameterFormats: [], parameters: [], resultFormats: [] }),
        encodeDescribe('P', 'c'),
        encodeExecute('c', 0),
        encodeSync(),
      );
      expect((await client.untilReady()).rows).toEqual([['1']]);
      const declared = await client.simple('DECLARE c CURSOR WITH HOLD FOR SELECT email, notes FROM customers ORDER BY id');
      expect(declared.errors.map((e) => e.get('M'))).toEqual([]);
      client.send(encodeExecute('c', 0), encodeSync());
      const rows = await client.untilReady();
      expect(rows.errors).toEqual([]);
      expect(rows.rows).toHaveLength(3);
      expect(rows.rows[0]![0]).toBe('*****@******e.com');
      expectNoSecret(client);
    } finally {
      await client.close();
    }
    // Nothing raw reached the event store either.
    expect(JSON.stringify(await sessionOf('bypass-hold'))).not.toContain('alice@example.com');
  });

  it('inside a transaction: CLOSE and DECLARE of a bound portal name, then Execute of it, masked; suspended portals re-described', async () => {
    const client = await RawClient.login(fixture.gateway.port, await fixture.token('agent'));
    try {
      expect((await client.simple('BEGIN')).status).toBe('T');
      client.send(
        encodeParse({ statement: 'one', query: 'SELECT 1', parameterTypes: [] }),
        encodeBind({ portal: 'k', statement: 'one', parameterFormats: [], parameters: [], resultFormats: [] }),
        encodeDescribe('P', 'k'),
        encodeSync(),
      );
      expect((await client.untilReady()).errors).toEqual([]);
      expect((await client.simple('CLOSE k; DECLARE k CURSOR FOR SELECT email, notes FROM customers ORDER BY id')).errors).toEqual([]);
      client.send(encodeExecute('k', 1), encodeSync());
      const first = await client.untilReady();
      expect(first.rows).toEqual([['*****@******e.com', expect.stringContaining('[REDACTED:pii-detectors]')]]);
      // Continue the suspended cursor after another statement in between.
      expect((await client.simple('SELECT 2')).rows).toEqual([['2']]);
      client.send(encodeExecute('k', 0), encodeSync());
      const rest = await client.untilReady();
      expect(rest.rows).toHaveLength(2);
      expectNoSecret(client);
      await client.simple('ROLLBACK');
    } finally {
      await client.close();
    }
  });
});

/** node-postgres honours `binary` per query; its type declarations know it only per client. */
function binaryQuery(text: string, values: unknown[]): pg.QueryConfig {
  return { text, values, binary: true } as pg.QueryConfig;
}

describe('binary results', () => {
  it('arrays, records and bytea requested in binary format (node-postgres binary: true) never carry a detected value', async () => {
    const client = new pg.Client({ host: '127.0.0.1', port: fixture.gateway.port, user: 'agent-7', database: 'orders-prod', password: await fixture.token('agent'), ssl: false, application_name: 'bypass-binary' });
    await client.connect();
    try {
      const result = await client.query(binaryQuery('SELECT ARRAY[notes] AS a, notes::bytea AS b, ROW(id, notes) AS r, ARRAY[1, 2, 3] AS ints FROM customers WHERE id = $1', [1]));
      const row = result.rows[0] as Record<string, unknown>;
      expect(row['a']).toBeNull();
      expect(row['b']).toBeNull();
      expect(row['r']).toBeNull();
      // An array of integers cannot hold a detected value: it passes unchanged.
      expect(row['ints']).not.toBeNull();
      const text = await client.query('SELECT notes::bytea AS b, ARRAY[notes] AS a FROM customers WHERE id = 1');
      expect(text.rows[0].b).toBeNull();
      expect(String(text.rows[0].a)).not.toContain('4111');
      // (node-postgres uses the extended protocol, and so binary results, only for a query with values.)
      const clean = await client.query(binaryQuery("SELECT 'no card'::bytea AS b, ARRAY['plain'] AS a WHERE $1::int = 1", [1]));
      expect(Buffer.from(clean.rows[0].b as Buffer).toString('utf8')).toBe('no card');
    } finally {
      await client.end();
    }
    const masked = ofType(await sessionOf('bypass-binary'), 'data.masked');
    expect(masked.length).toBeGreaterThan(0);
  });
});

describe('an Execute of a statement made by SQL PREPARE', () => {
  it('is decided and recorded as EXECUTE of it, with its values', async () => {
    const client = await RawClient.login(fixture.gateway.port, await fixture.token('agent'), 'orders-prod', 'agent-7', { application_name: 'bypass-prepare' });
    try {
      expect((await client.simple('PREPARE by_id(int) AS SELECT name FROM customers WHERE id = $1')).errors).toEqual([]);
      client.send(encodeBind({ portal: '', statement: 'by_id', parameterFormats: [], parameters: [Buffer.from('2')], resultFormats: [] }), encodeExecute('', 0), encodeSync());
      const reply = await client.untilReady();
      expect(reply.errors).toEqual([]);
      expect(reply.rows).toEqual([['Bob']]);
    } finally {
      await client.close();
    }
    const events = await sessionOf('bypass-prepare');
    const issued = ofType(events, 'command.issued');
    expect(issued.map((e) => e.payload.text)).toContain('EXECUTE "by_id"');
    expect(issued.find((e) => e.payload.text === 'EXECUTE "by_id"')!.payload.parameters).toEqual(['2']);
    expect(ofType(events, 'policy.decided')).toHaveLength(issued.length);
  });
});

describe('planner statistics of masked columns', () => {
  it('pg_stats and pg_stats_ext (qualified or not, simple or extended) are refused while the policy masks columns; the values never reach the client', async () => {
    await fixture.postgres.psql('ANALYZE customers');
    // The statistics do quote the masked column's values: what the refusal is for.
    expect(await fixture.postgres.psql("SELECT concat(most_common_vals::text, histogram_bounds::text) FROM pg_stats WHERE tablename = 'customers' AND attname = 'email'")).toContain('alice@example.com');
    const client = await RawClient.login(fixture.gateway.port, await fixture.token('agent'));
    try {
      for (const sql of [
        "SELECT most_common_vals::text FROM pg_stats WHERE tablename = 'customers'",
        "SELECT histogram_bounds FROM pg_catalog.pg_stats WHERE attname = 'email'",
        'SELECT * FROM pg_stats_ext',
        "SELECT 1 WHERE EXISTS (SELECT 1 FROM pg_stats WHERE most_common_vals::text LIKE '%alice%')",
      ]) {
        const simple = await client.simple(sql);
        expect(simple.errors.map((e) => [e.get('C'), e.get('D')]), sql).toEqual([['42501', 'policy rule: custodian:column-statistics']]);
        const extended = await client.extended(sql);
        expect(extended.errors.map((e) => e.get('C')), sql).toEqual(['42501']);
      }
      // Other catalog reads go on.
      expect((await client.simple("SELECT count(*) FROM pg_catalog.pg_class WHERE relname = 'customers'")).rows).toEqual([['1']]);
    } finally {
      await client.close();
    }
    expectNoSecret(client);
  });
});

describe('column rules through views and inheritance', () => {
  it('a rule on customers.email covers a view that reads it (renamed, derived, view of a view) and a table that inherits from customers', async () => {
    await fixture.postgres.psql(`
      CREATE VIEW customer_contacts AS SELECT id, email AS contact, upper(email) AS shout FROM customers;
      CREATE VIEW contacts_again AS SELECT contact AS c2, shout FROM customer_contacts;
      CREATE VIEW whole_rows AS SELECT c AS whole FROM customers c;
      CREATE TABLE customers_archive () INHERITS (customers);
      INSERT INTO customers_archive VALUES (9, 'Dan', 'dan.archived@example.com', NULL);
      GRANT SELECT ON customer_contacts, contacts_again, whole_rows, customers_archive TO gateway_svc;
    `);
    const client = await RawClient.login(fixture.gateway.port, await fixture.token('agent'));
    try {
      const view = await client.simple('SELECT contact, shout FROM customer_contacts WHERE id = 1');
      expect(view.errors).toEqual([]);
      // The column rule's partial mask (not the detectors' redaction): the rule followed the view.
      expect(view.rows).toEqual([['*****@******e.com', expect.stringMatching(/^\*+@\*+E\.COM$/)]]);
      const nested = await client.extended('SELECT c2, shout FROM contacts_again WHERE c2 IS NOT NULL AND $1::int = 1 ORDER BY c2', ['1']);
      expect(nested.rows[0]![0]).toMatch(/^\*+@\*+e\.com$/);
      expect(nested.rows[0]![1]).toMatch(/^\*+@\*+E\.COM$/);
      const whole = await client.simple('SELECT whole FROM whole_rows ORDER BY 1 LIMIT 1');
      expect(whole.rows[0]![0]).not.toContain('example');
      const archive = await client.simple('SELECT email FROM customers_archive');
      expect(archive.rows).toEqual([[expect.stringMatching(/^[*.]+@\*+e\.com$/)]]);
    } finally {
      await client.close();
    }
    expect(Buffer.concat(client.received).toString('utf8')).not.toMatch(/ALICE@EXAMPLE|dan\.archived|alice@example/);
  });
});

describe('values derived from a masked column', () => {
  it('expressions, casts, aggregates, set operations, subqueries and whole rows over customers.email are refused (simple and extended); plain selects and filters go on', async () => {
    const client = await RawClient.login(fixture.gateway.port, await fixture.token('agent'), 'orders-prod', 'agent-7', { application_name: 'derivation' });
    try {
      for (const sql of [
        'SELECT upper(email) FROM customers',
        'SELECT reverse(email) FROM customers',
        "SELECT email || '' FROM customers",
        "SELECT concat(name, email) FROM customers",
        "SELECT format('%s', email) FROM customers",
        "SELECT replace(email, '@', ' at ') FROM customers",
        "SELECT translate(email, 'a', 'b') FROM customers",
        "SELECT encode(email::bytea, 'hex') FROM customers",
        'SELECT email::bytea FROM customers',
        "SELECT string_to_array(email, '@') FROM customers",
        "SELECT string_agg(email, ',') FROM customers",
        'SELECT array_agg(email) FROM customers',
        'SELECT json_agg(email) FROM customers',
        'SELECT row_to_json(c) FROM customers c',
        'SELECT c FROM customers c',
        'SELECT CASE WHEN id = 1 THEN email END FROM customers',
        'SELECT COALESCE(email, name) FROM customers',
        'SELECT name FROM customers UNION SELECT email FROM customers',
        'SELECT (SELECT email FROM customers WHERE id = 1)',
        'SELECT id FROM customers WHERE email::int = 1',
        'SELECT upper(contact) FROM customer_contacts',
        'SELECT email || name FROM customers_archive',
      ]) {
        const simple = await client.simple(sql);
        expect(simple.errors.map((e) => [e.get('C'), e.get('D')]), sql).toEqual([['42501', 'policy rule: custodian:masked-column-derivation']]);
        const extended = await client.extended(sql);
        expect(extended.errors.map((e) => e.get('C')), sql).toEqual(['42501']);
      }
      // Plain selects are masked by the rule; filters on the column work; columns no rule covers derive freely.
      expect((await client.simple('SELECT email FROM customers WHERE id = 1')).rows).toEqual([['*****@******e.com']]);
      expect((await client.extended('SELECT id FROM customers WHERE email = $1', ['alice@example.com'])).rows).toEqual([['1']]);
      expect((await client.simple("SELECT upper(name), count(*) FROM customers WHERE email IS NOT NULL GROUP BY name ORDER BY 1")).rows).toEqual([['ALICE', '1'], ['BOB', '1'], ['DAN', '1']]);
    } finally {
      await client.close();
    }
    expectNoSecret(client);
    const decided = ofType(await sessionOf('derivation'), 'policy.decided');
    expect(decided.filter((e) => e.payload.ruleId === 'custodian:masked-column-derivation').length).toBeGreaterThanOrEqual(44);
  });
});
