// JSON-path masking rules through the real gateway: a policy whose only masking rules are
// `jsonPaths` masks json and jsonb result values (text and binary format) for node-postgres, keeps
// every other key, and records paths and rule ids (never values) in data.masked.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CustodianEvent } from '@custodian/event-contracts';
import { TEST_POLICY, sessionEvents, startGatewayFixture, type GatewayFixture } from './testing/gateway-fixture.js';

// The test policy's rules, with masking by JSON path only: no column rules, no detectors.
const POLICY = `${TEST_POLICY.slice(0, TEST_POLICY.indexOf('masking:'))}masking:
  - id: pii-ssn
    jsonPaths: ["$.ssn", "$..password"]
    strategy: redact
  - id: card-last4
    jsonPaths: ["$.cards[*]"]
    strategy: partial
    keepLast: 4
`;

const SSN = '219-45-6789';
const PASSWORD = 'hunter2-secret';
const DOC = { ssn: SSN, name: 'Maria', cards: ['4111 1111 1111 1111'], auth: { password: PASSWORD } };
const MASKED = { ssn: '[REDACTED:pii-ssn]', name: 'Maria', cards: ['**** **** **** 1111'], auth: { password: '[REDACTED:pii-ssn]' } };

let fixture: GatewayFixture;
beforeAll(async () => {
  fixture = await startGatewayFixture({ policy: POLICY });
  const doc = JSON.stringify(DOC).replace(/'/g, "''");
  await fixture.postgres.psql(`
    CREATE TABLE people (id int PRIMARY KEY, doc jsonb, raw json, note text);
    INSERT INTO people VALUES
      (1, '${doc}', '${doc}', 'plain note'),
      (2, '{"other": {"ssn": "keep-me"}, "password": "p2-secret"}', NULL, NULL);
    GRANT ALL ON people TO gateway_svc;
  `);
});
afterAll(async () => {
  await fixture?.stop();
});

async function pgClient(applicationName: string): Promise<pg.Client> {
  const client = new pg.Client({ host: '127.0.0.1', port: fixture.gateway.port, user: 'agent-7', database: 'orders-prod', password: await fixture.token('agent'), ssl: false, application_name: applicationName });
  await client.connect();
  return client;
}

async function sessionOf(application: string): Promise<CustodianEvent[]> {
  const events = await fixture.events();
  const opened = events.filter((e): e is Extract<CustodianEvent, { type: 'session.opened' }> => e.type === 'session.opened' && e.payload.client.application === application).at(-1)!;
  return sessionEvents(events, opened.payload.sessionId);
}

describe('jsonPaths masking rules in the PostgreSQL gateway', () => {
  it('masks json and jsonb values by path (text format); other keys, other columns and other documents pass', async () => {
    const client = await pgClient('json-text');
    try {
      const { rows } = await client.query('SELECT id, doc, raw, note FROM people ORDER BY id');
      expect(rows).toEqual([
        { id: 1, doc: MASKED, raw: MASKED, note: 'plain note' },
        // `$.ssn` is the top-level key only; `$..password` is any depth.
        { id: 2, doc: { other: { ssn: 'keep-me' }, password: '[REDACTED:pii-ssn]' }, raw: null, note: null },
      ]);
      // The document as returned is what the paths see: a sub-document's keys are at its root.
      const auth = await client.query("SELECT doc -> 'auth' AS auth FROM people WHERE id = 1");
      expect(auth.rows).toEqual([{ auth: { password: '[REDACTED:pii-ssn]' } }]);
    } finally {
      await client.end();
    }
    const events = await sessionOf('json-text');
    const masked = events.filter((e): e is Extract<CustodianEvent, { type: 'data.masked' }> => e.type === 'data.masked');
    expect(masked.length).toBeGreaterThan(0);
    const maskings = masked.flatMap((e) => e.payload.maskings);
    expect(maskings).toContainEqual({ field: 'doc$.ssn', rule: 'pii-ssn', count: 1 });
    expect(maskings).toContainEqual({ field: 'doc$.auth.password', rule: 'pii-ssn', count: 1 });
    expect(maskings).toContainEqual({ field: 'doc$.password', rule: 'pii-ssn', count: 1 });
    expect(maskings).toContainEqual({ field: 'raw$.cards[*]', rule: 'card-last4', count: 1 });
    // Neither the values nor anything recorded of the result (frames after masking) hold them.
    const recorded = JSON.stringify(events);
    for (const secret of [SSN, PASSWORD, 'p2-secret', '4111 1111 1111 1111']) expect(recorded).not.toContain(secret);
  });

  it('masks jsonb in binary format (version byte + text), for json too', async () => {
    const client = await pgClient('json-binary');
    try {
      // `binary` asks for every result column in binary format (not in @types/pg's QueryConfig).
      const config = { text: 'SELECT doc, raw FROM people WHERE id = $1', values: [1], binary: true };
      const result: pg.QueryResult = await client.query(config as pg.QueryConfig);
      const row = result.rows[0] as { doc: unknown; raw: unknown };
      const doc = Buffer.isBuffer(row.doc) ? row.doc : Buffer.from(String(row.doc));
      expect(doc[0]).toBe(1);
      expect(JSON.parse(doc.toString('utf8', 1))).toEqual(MASKED);
      // json's binary form is its text; node-postgres hands it over as a string.
      const raw = Buffer.isBuffer(row.raw) ? row.raw.toString('utf8') : String(row.raw);
      expect(JSON.parse(raw)).toEqual(MASKED);
    } finally {
      await client.end();
    }
    expect(JSON.stringify(await sessionOf('json-binary'))).not.toContain(SSN);
  });
});
