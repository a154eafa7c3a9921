// Issue 19 §2, writes behind reads. For an identity whose rules allow only reads, the gateway
// resolves every function, operator, attribute-notation name and relation of a statement through
// the upstream catalog (all candidates on the pinned search_path, never trusted by name) and refuses
// a statement that could run a VOLATILE or unknown routine: a view whose column calls a writing
// function, attribute notation, a user-defined operator, an overload of a trusted name, EXPLAIN
// ANALYZE and cursors over such a view. Behind that, the upstream session is read-only
// (default_transaction_read_only=on, set by the gateway at login), so what a stale verdict lets
// through still fails in PostgreSQL. The upstream role can write; effects are checked through a
// separate superuser connection. Every session's search_path is pinned (system catalog first).
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RawClient } from './testing/raw-client.js';
import { TEST_POLICY, psql, startGatewayFixture, type GatewayFixture } from './testing/gateway-fixture.js';

/**
 * The test policy plus a reader: group marketing (client `outsider`) may read public.* and use
 * transactions, nothing else; it may call user-defined functions in reads (flag
 * unrecognised-function), which is where resolving them through the catalog matters.
 */
const POLICY = TEST_POLICY.replace(
  '  - id: block-ddl\n',
  `  - id: dba-ddl
    match:
      identity: { groups: [dba] }
      sql:
        kinds: [ddl]
    decision: allow
  - id: block-ddl
`,
).replace(
  '\nmasking:',
  `
  - id: marketing-user-functions
    match:
      identity: { groups: [marketing] }
      sql:
        kinds: [read]
        flags: [unrecognised-function]
        objects: ["public.*", "pg_catalog.*"]
    decision: allow
  - id: marketing-read
    match:
      identity: { groups: [marketing] }
      sql:
        kinds: [read, transaction]
        objects: ["public.*", "pg_catalog.*"]
    decision: allow
masking:`,
);

/** Writing code hidden behind reads, made by the owner (superuser) as an attacker with DDL elsewhere could. */
const HIDDEN_WRITES = `
CREATE TABLE touched (at timestamptz DEFAULT now(), what text);
GRANT ALL ON touched TO gateway_svc;
CREATE FUNCTION touch(what text) RETURNS int LANGUAGE sql VOLATILE AS $$ INSERT INTO public.touched (what) VALUES (what) RETURNING 1 $$;
CREATE VIEW customer_touches AS SELECT id, touch('view') AS t FROM customers;
CREATE FUNCTION touch_row(c customers) RETURNS int LANGUAGE sql VOLATILE AS $$ SELECT public.touch('attribute') $$;
CREATE FUNCTION touch_op(a int, b int) RETURNS int LANGUAGE sql VOLATILE AS $$ SELECT public.touch('operator') + a + b $$;
CREATE OPERATOR ## (LEFTARG = int, RIGHTARG = int, FUNCTION = touch_op);
CREATE FUNCTION public.lower(i integer) RETURNS int LANGUAGE sql VOLATILE AS $$ SELECT public.touch('overload') $$;
GRANT SELECT ON customer_touches TO gateway_svc;
CREATE DOMAIN touchy_int AS int CHECK (public.touch('domain') = 1);
CREATE TYPE wrapped AS (v int);
CREATE FUNCTION wrap_it(i int) RETURNS wrapped LANGUAGE sql VOLATILE AS $$ SELECT ROW(public.touch('cast') + i)::wrapped $$;
CREATE CAST (int AS wrapped) WITH FUNCTION wrap_it(int);
`;

let fixture: GatewayFixture;
beforeAll(async () => {
  // Routine verdicts stay cached for the whole file unless DDL through the gateway drops them.
  fixture = await startGatewayFixture({ policy: POLICY, gateway: { routineTtlMs: 600_000 } });
  await fixture.postgres.psql(HIDDEN_WRITES);
});
afterAll(async () => {
  await fixture?.stop();
});

async function touched(): Promise<string> {
  return fixture.postgres.psql('SELECT count(*) FROM touched');
}

const HIDDEN: readonly [string, string][] = [
  ['a view whose column calls a writing function', 'SELECT * FROM customer_touches'],
  ['attribute notation', 'SELECT c.touch_row FROM customers c'],
  ['a user-defined operator', 'SELECT id ## 1 FROM customers'],
  ['an overload of a trusted name', 'SELECT lower(id) FROM customers'],
  ['EXPLAIN ANALYZE of such a view', 'EXPLAIN (ANALYZE) SELECT * FROM customer_touches'],
  ['a cursor over such a view (WITH HOLD: run at once)', 'DECLARE w CURSOR WITH HOLD FOR SELECT * FROM customer_touches'],
  ['a cast to a domain whose CHECK calls a writing function', 'SELECT id::touchy_int FROM customers'],
  ['a user-defined cast with a writing function', 'SELECT id::wrapped FROM customers'],
];

describe('a read-only identity: routines resolved through the catalog, a read-only upstream session behind', () => {
  it('the session reports default_transaction_read_only=on and the pinned search_path', async () => {
    const client = await RawClient.login(fixture.gateway.port, await fixture.token('outsider'), 'orders-prod', 'outsider');
    try {
      expect((await client.simple('SHOW default_transaction_read_only')).rows).toEqual([['on']]);
      expect((await client.simple('SHOW search_path')).rows).toEqual([['public, pg_temp']]);
      expect((await client.simple('SELECT count(*) FROM customers')).rows).toEqual([['3']]);
    } finally {
      await client.close();
    }
  });

  for (const [what, sql] of HIDDEN) {
    it(`a write hidden behind a read is refused by classification (42501, custodian:volatile-routine), simple protocol: ${what}`, async () => {
      const client = await RawClient.login(fixture.gateway.port, await fixture.token('outsider'), 'orders-prod', 'outsider');
      try {
        const reply = await client.simple(sql);
        expect(reply.errors.map((e) => e.get('C'))).toEqual(['42501']);
        expect(reply.errors[0]?.get('D')).toBe('policy rule: custodian:volatile-routine');
        expect(reply.errors[0]?.get('M')).toMatch(/public\.(touch|touch_row|touch_op|lower)\b.*VOLATILE|VOLATILE public\.(touch|touch_op|wrap_it)\b/);
      } finally {
        await client.close();
      }
      expect(await touched()).toBe('0');
    });
  }

  it('the same through node-postgres (extended protocol) and psql', async () => {
    const client = new pg.Client({ host: '127.0.0.1', port: fixture.gateway.port, user: 'outsider', database: 'orders-prod', password: await fixture.token('outsider'), ssl: false });
    await client.connect();
    try {
      for (const [, sql] of HIDDEN.slice(0, 4)) {
        await expect(client.query({ text: `${sql} WHERE $1::int = 1`, values: [1] })).rejects.toMatchObject({ code: '42501', detail: 'policy rule: custodian:volatile-routine' });
      }
    } finally {
      await client.end();
    }
    const viaPsql = await psql(fixture, await fixture.token('outsider'), 'SELECT * FROM customer_touches;\n', { user: 'outsider' });
    expect(viaPsql.stderr).toContain('VOLATILE public.touch');
    expect(await touched()).toBe('0');
  });

  it('the client cannot make its session read-write: BEGIN READ WRITE, SET TRANSACTION, SET/RESET/set_config, SET SESSION CHARACTERISTICS are refused', async () => {
    const client = await RawClient.login(fixture.gateway.port, await fixture.token('outsider'), 'orders-prod', 'outsider');
    try {
      for (const sql of [
        'BEGIN READ WRITE',
        'START TRANSACTION ISOLATION LEVEL SERIALIZABLE, READ WRITE',
        'SET default_transaction_read_only = off',
        'RESET default_transaction_read_only',
        "SELECT set_config('default_transaction_read_only', 'off', false)",
        'SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE',
        'RESET ALL',
      ]) {
        const reply = await client.simple(sql);
        expect(reply.errors.map((e) => e.get('C')), sql).toEqual(['42501']);
      }
      expect((await client.simple('BEGIN')).status).toBe('T');
      expect((await client.simple('SET TRANSACTION READ WRITE')).errors.map((e) => e.get('C'))).toEqual(['42501']);
      expect((await client.simple('ROLLBACK')).status).toBe('I');
      expect((await client.simple('SELECT * FROM customer_touches')).errors.map((e) => e.get('C'))).toEqual(['42501']);
    } finally {
      await client.close();
    }
    expect(await touched()).toBe('0');
  });
});

describe('catalog resolution: what stays allowed, unknown routines, and the cache', () => {
  it('built-in functions, operators, stable user functions and plain qualified columns stay allowed', async () => {
    await fixture.postgres.psql(`CREATE FUNCTION public.double_it(i int) RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT i * 2';`);
    const client = await RawClient.login(fixture.gateway.port, await fixture.token('outsider'), 'orders-prod', 'outsider');
    try {
      const reply = await client.simple("SELECT c.id, upper(c.name), double_it(c.id), random() < 2 FROM customers c WHERE c.name LIKE '%' AND c.id BETWEEN 1 AND 1");
      expect(reply.errors).toEqual([]);
      expect(reply.rows).toEqual([['1', expect.any(String), '2', 't']]);
    } finally {
      await client.close();
    }
  });

  it('a function no schema on the search path has is refused as unknown; a schema-qualified volatile one as volatile', async () => {
    await fixture.postgres.psql(`CREATE SCHEMA elsewhere; GRANT USAGE ON SCHEMA elsewhere TO gateway_svc; CREATE FUNCTION elsewhere.bump() RETURNS int LANGUAGE sql VOLATILE AS $$ SELECT public.touch('elsewhere') $$;`);
    const client = await RawClient.login(fixture.gateway.port, await fixture.token('outsider'), 'orders-prod', 'outsider');
    try {
      const unknown = await client.simple('SELECT bump() FROM customers');
      expect(unknown.errors.map((e) => e.get('C'))).toEqual(['42501']);
      expect(unknown.errors[0]?.get('M')).toContain('no function of that name in pg_catalog, public');
      const qualified = await client.simple('SELECT elsewhere.bump() FROM customers');
      expect(qualified.errors[0]?.get('M')).toContain('elsewhere.bump is VOLATILE');
    } finally {
      await client.close();
    }
    expect(await touched()).toBe('0');
  });

  it('a verdict cached before a change made around the gateway is caught by the read-only upstream session (25006); DDL through the gateway drops the cache', async () => {
    await fixture.postgres.psql(`CREATE FUNCTION public.later_fn(i int) RETURNS int LANGUAGE sql STABLE AS 'SELECT i';`);
    const reader = await RawClient.login(fixture.gateway.port, await fixture.token('outsider'), 'orders-prod', 'outsider');
    try {
      expect((await reader.simple('SELECT later_fn(1) FROM customers WHERE id = 1')).rows).toEqual([['1']]);
      await fixture.postgres.psql(`CREATE OR REPLACE FUNCTION public.later_fn(i int) RETURNS int LANGUAGE sql VOLATILE AS $$ SELECT public.touch('later') + i $$;`);
      // The verdict "STABLE" is still cached: the classification lets it pass, PostgreSQL refuses the write.
      expect((await reader.simple('SELECT later_fn(1) FROM customers WHERE id = 1')).errors.map((e) => e.get('C'))).toEqual(['25006']);
      const dba = await RawClient.login(fixture.gateway.port, await fixture.token('approver'), 'orders-prod', 'dba-1');
      try {
        expect((await dba.simple('CREATE TABLE public.dba_made (i int)')).errors).toEqual([]);
      } finally {
        await dba.close();
      }
      const after = await reader.simple('SELECT later_fn(1) FROM customers WHERE id = 1');
      expect(after.errors.map((e) => e.get('C'))).toEqual(['42501']);
      expect(after.errors[0]?.get('M')).toContain('public.later_fn is VOLATILE');
    } finally {
      await reader.close();
    }
    expect(await touched()).toBe('0');
  });
});

describe('an identity that may write keeps a read-write session', () => {
  it('agent-7 (allowed writes to public.scratch) is not read-only, and its search_path is pinned too', async () => {
    const client = await RawClient.login(fixture.gateway.port, await fixture.token('agent'));
    try {
      expect((await client.simple('SHOW default_transaction_read_only')).rows).toEqual([['off']]);
      expect((await client.simple('SHOW search_path')).rows).toEqual([['public, pg_temp']]);
      expect((await client.simple("INSERT INTO scratch VALUES (1, 'allowed')")).errors).toEqual([]);
    } finally {
      await client.close();
    }
    expect(await fixture.postgres.psql('SELECT count(*) FROM scratch')).toBe('1');
  });
});
