// node-postgres (pg) through the gateway — simple queries, parameterized (extended protocol),
// named prepared statements decided at Parse, binary results — plus pipelined extended batches
// and the Policy issue's bypass corpus sent over the wire, simple and extended.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CustodianEvent } from '@custodian/event-contracts';
import { decideSql } from '@custodian/policy-languages';
import { encodeBind, encodeDescribe, encodeExecute, encodeParse, encodeSync } from '@custodian/postgres-wire';
import { BYPASS_CORPUS } from '@custodian/sql-classification/corpus';
import { RawClient, extendedMessages } from './testing/raw-client.js';
import { sessionEvents, startGatewayFixture, type GatewayFixture } from './testing/gateway-fixture.js';

let fixture: GatewayFixture;
beforeAll(async () => {
  fixture = await startGatewayFixture();
});
afterAll(async () => {
  await fixture?.stop();
});

async function pgClient(applicationName: string): Promise<pg.Client> {
  const client = new pg.Client({ host: '127.0.0.1', port: fixture.gateway.port, user: 'agent-7', database: 'orders-prod', password: await fixture.token('agent'), ssl: false, application_name: applicationName });
  await client.connect();
  return client;
}

function ofType<T extends CustodianEvent['type']>(events: readonly CustodianEvent[], type: T): Extract<CustodianEvent, { type: T }>[] {
  return events.filter((e): e is Extract<CustodianEvent, { type: T }> => e.type === type);
}

async function sessionOf(application: string): Promise<CustodianEvent[]> {
  const events = await fixture.events();
  const opened = ofType(events, 'session.opened').filter((e) => e.payload.client.application === application).at(-1)!;
  return sessionEvents(events, opened.payload.sessionId);
}

describe('node-postgres', () => {
  it('simple and parameterized queries; rows masked; parameters recorded masked', async () => {
    const client = await pgClient('pg-basic');
    try {
      const simple = await client.query('SELECT id, email FROM customers ORDER BY id');
      expect(simple.rows.map((r: { email: string | null }) => r.email)).toEqual(['*****@******e.com', '***@******e.net', null]);
      const bound = await client.query('SELECT name, notes FROM customers WHERE email = $1 OR notes LIKE $2', ['bob@example.net', '%4111 1111 1111 1111%']);
      expect(bound.rows).toEqual([
        { name: 'Alice', notes: 'paid with [REDACTED:pii-detectors], contact [REDACTED:pii-detectors]' },
        { name: 'Bob', notes: 'no card on file' },
      ]);
    } finally {
      await client.end();
    }
    const events = await sessionOf('pg-basic');
    const issued = ofType(events, 'command.issued');
    expect(issued.map((e) => e.payload.text)).toEqual(['SELECT id, email FROM customers ORDER BY id', 'SELECT name, notes FROM customers WHERE email = $1 OR notes LIKE $2']);
    // Bind values are recorded after masking, never as sent.
    expect(issued[1]!.payload.parameters).toEqual(['[REDACTED:pii-detectors]', '%[REDACTED:pii-detectors]%']);
    expect(JSON.stringify(events)).not.toContain('bob@example.net');
  });

  it('a prepared statement is decided at Parse: a blocked one fails with 42501 and the client goes on', async () => {
    const client = await pgClient('pg-prepared');
    try {
      const allowed = { name: 'by-id', text: 'SELECT name FROM customers WHERE id = $1' };
      expect((await client.query({ ...allowed, values: [1] })).rows).toEqual([{ name: 'Alice' }]);
      expect((await client.query({ ...allowed, values: [2] })).rows).toEqual([{ name: 'Bob' }]);
      const blocked = client.query({ name: 'wipe', text: 'DELETE FROM orders', values: [] });
      await expect(blocked).rejects.toMatchObject({ code: '42501' });
      expect((await client.query({ ...allowed, values: [3] })).rows).toEqual([{ name: 'Carol' }]);
    } finally {
      await client.end();
    }
    expect(await fixture.postgres.psql('SELECT count(*) FROM orders')).toBe('20');
    const events = await sessionOf('pg-prepared');
    // One command per execution (with its parameters), one for the refused Parse.
    expect(ofType(events, 'command.issued').map((e) => e.payload.parameters ?? null)).toEqual([['1'], ['2'], null, ['3']]);
    expect(ofType(events, 'command.issued')[2]!.payload.text).toBe('DELETE FROM orders');
    expect(ofType(events, 'policy.decided').map((e) => e.payload.decision)).toEqual(['allow', 'allow', 'block', 'allow']);
  });

  it('binary results: a rule-covered text column is masked in binary; an int8 card number becomes NULL', async () => {
    const client = await pgClient('pg-binary');
    try {
      // `binary` asks for every result column in binary format (not in @types/pg's QueryConfig).
      const config = { text: 'SELECT email, 4111111111111111::int8 AS card, 42::int8 AS small FROM customers WHERE id = $1', values: [1], binary: true };
      const result: pg.QueryResult = await client.query(config as pg.QueryConfig);
      const row = result.rows[0] as { email: unknown; card: unknown; small: unknown };
      const email = Buffer.isBuffer(row.email) ? row.email.toString('utf8') : String(row.email);
      expect(email).toBe('*****@******e.com');
      expect(row.card).toBeNull();
      expect(String(row.small)).toBe('42');
    } finally {
      await client.end();
    }
  });
});

describe('pipelined extended-protocol batches', () => {
  it('a blocked statement mid-batch ends the batch at Sync, as PostgreSQL does: the earlier insert is rolled back', async () => {
    const client = await RawClient.login(fixture.gateway.port, await fixture.token('agent'));
    try {
      const before = await fixture.postgres.psql('SELECT count(*) FROM scratch');
      client.send(
        ...extendedMessages("INSERT INTO scratch VALUES (100, 'pipelined')"),
        ...extendedMessages('DROP TABLE scratch'),
        ...extendedMessages('SELECT 1'),
        encodeSync(),
        ...extendedMessages('SELECT 2'),
        encodeSync(),
      );
      const first = await client.untilReady();
      expect(first.errors.map((e) => e.get('C'))).toEqual(['42501']);
      expect(first.errors[0]!.get('M')).toContain('(rule block-ddl)');
      // Parse, Bind, describe, INSERT done — then the error, and nothing until ReadyForQuery.
      expect(first.types).toEqual(['1', '2', 'n', 'C', 'E', 'Z']);
      expect(first.status).toBe('I');
      const second = await client.untilReady();
      expect(second.rows).toEqual([['2']]);
      expect(await fixture.postgres.psql('SELECT count(*) FROM scratch')).toBe(before);
    } finally {
      await client.close();
    }
  });

  it('an Execute without a Describe still gets masked rows (the gateway asks for the description itself)', async () => {
    const client = await RawClient.login(fixture.gateway.port, await fixture.token('agent'));
    try {
      client.send(
        encodeParse({ statement: 'emails', query: 'SELECT email FROM customers WHERE id = $1', parameterTypes: [] }),
        encodeBind({ portal: 'p', statement: 'emails', parameterFormats: [], parameters: [Buffer.from('2')], resultFormats: [] }),
        encodeExecute('p', 0),
        encodeSync(),
      );
      const reply = await client.untilReady();
      expect(reply.types).toEqual(['1', '2', 'D', 'C', 'Z']);
      expect(reply.rows).toEqual([['***@******e.net']]);
      // Describe after the fact still works for the client.
      client.send(encodeDescribe('S', 'emails'), encodeSync());
      const described = await client.untilReady();
      expect(described.types).toEqual(['t', 'T', 'Z']);
    } finally {
      await client.close();
    }
  });
});

describe('the bypass corpus over the wire', () => {
  it('every statement the policy does not allow is refused by the gateway (42501, or 42601 when unparseable), as a simple and as an extended query', async () => {
    const policy = fixture.pipeline.policy;
    const context = { identity: { subject: 'agent-7', issuer: fixture.oidc.issuer, groups: ['analysts'], kind: 'agent' as const }, connection: 'orders-prod', protocol: 'postgres' as const };
    const client = await RawClient.login(fixture.gateway.port, await fixture.token('agent'));
    const mismatches: string[] = [];
    let refused = 0;
    try {
      for (const corpusCase of BYPASS_CORPUS) {
        // NUL bytes cannot travel in a C string; the classifier refuses them anyway.
        if (corpusCase.sql.includes('\0')) continue;
        // Lone surrogates cannot be encoded as UTF-8 (they would travel as U+FFFD, another text); invalid UTF-8 is covered in hostile-input.
        if (Buffer.from(corpusCase.sql, 'utf8').toString('utf8') !== corpusCase.sql) continue;
        const expected = await decideSql(policy, context, corpusCase.sql);
        for (const mode of ['simple', 'extended'] as const) {
          const reply = mode === 'simple' ? await client.simple(corpusCase.sql) : await client.extended(corpusCase.sql);
          // 42601 (with the parser's position) for what cannot be parsed, 42501 for the rest.
          const gatewayRefused = reply.errors.some((e) => (e.get('C') === '42501' || e.get('C') === '42601') && /\(rule |default deny|could not be parsed/.test(e.get('M') ?? ''));
          if (expected.decision !== 'allow') {
            refused += 1;
            if (!gatewayRefused) mismatches.push(`${mode} ${corpusCase.name}: expected a refusal, got ${reply.types.join('')}`);
          } else if (gatewayRefused) {
            mismatches.push(`${mode} ${corpusCase.name}: allowed by policy but refused`);
          }
          if (reply.status !== 'I') await client.simple('ROLLBACK');
        }
      }
    } finally {
      await client.close();
    }
    expect(mismatches).toEqual([]);
    expect(refused).toBeGreaterThan(300);
    // The canaries survived.
    expect(await fixture.postgres.psql('SELECT count(*) FROM orders')).toBe('20');
    expect(await fixture.postgres.psql('SELECT count(*) FROM customers')).toBe('3');
  });
});
