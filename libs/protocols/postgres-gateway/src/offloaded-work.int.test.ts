// Issue 19 §3, event-loop starvation: statements and values longer than `inlineWorkBytes` are
// classified and scanned in worker threads, decided and masked exactly as short ones are; when the
// workers cannot do the work within their limits the statement is refused (recorded, clear error)
// and a value is replaced, never passed unscanned. No timing assertions (the bystander latency is
// the postgres-under-attack benchmark's): what is checked is the answer, the events and the counts.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CustodianEvent } from '@custodian/event-contracts';
import { PostgresGateway } from './postgres-gateway.js';
import { RawClient } from './testing/raw-client.js';
import { psql, sessionEvents, startGatewayFixture, type GatewayFixture } from './testing/gateway-fixture.js';

let fixture: GatewayFixture;
/** A second gateway on the same pipeline and database whose workers get 1 ms per task: the offloaded work below is refused. */
let starved: PostgresGateway;

beforeAll(async () => {
  fixture = await startGatewayFixture({ gateway: { limits: { inlineWorkBytes: 1024 } } });
  starved = new PostgresGateway({
    host: '127.0.0.1',
    port: 0,
    requireTls: 'never',
    pipeline: fixture.pipeline,
    limits: { inlineWorkBytes: 1024 },
    offload: { threads: 1, taskTimeoutMs: 1 },
    connections: [
      {
        name: 'orders-prod',
        upstream: {
          host: fixture.postgres.host,
          port: fixture.postgres.port,
          database: fixture.postgres.database,
          user: 'gateway_svc',
          password: () => fixture.upstreamSecrets[0],
          credentialRef: 'env:GATEWAY_SVC_PASSWORD',
          tls: { mode: 'disable' },
        },
      },
    ],
  });
  await starved.listen();
});
afterAll(async () => {
  await starved?.close();
  await fixture?.stop();
});

function ofType<T extends CustodianEvent['type']>(events: readonly CustodianEvent[], type: T): Extract<CustodianEvent, { type: T }>[] {
  return events.filter((e): e is Extract<CustodianEvent, { type: T }> => e.type === type);
}

/** A read of `customers` padded with an IN list to about `bytes` bytes (classified in a worker past 1 KiB). */
function longRead(bytes: number, extra = ''): string {
  const values = Array.from({ length: Math.ceil(bytes / 10) }, (_, i) => `'v${String(i).padStart(6, '0')}'`).join(',');
  return `SELECT id FROM customers WHERE name NOT IN (${values})${extra} ORDER BY id`;
}

async function sessionOf(application: string): Promise<CustodianEvent[]> {
  const events = await fixture.events();
  const opened = ofType(events, 'session.opened').find((e) => e.payload.client.application === application);
  if (!opened) throw new Error(`no session ${application}`);
  return sessionEvents(events, opened.payload.sessionId);
}

describe('large statements and values are worked on in worker threads', () => {
  it('a long statement is classified off the event loop and decided by the policy like a short one; its recorded text is masked', async () => {
    const client = await RawClient.login(fixture.gateway.port, await fixture.token('agent'), 'orders-prod', 'agent-7', { application_name: 'offload-statements' });
    const before = fixture.gateway.offloadStats.completed;
    try {
      const allowed = await client.simple(longRead(8_000, " AND 'alice@example.com' <> ''"));
      expect(allowed.errors).toEqual([]);
      expect(allowed.rows).toEqual([['1'], ['2'], ['3']]);
      // Extended protocol: the Parse is decided off the event loop too.
      const extended = await client.extended(longRead(8_000));
      expect(extended.rows).toEqual([['1'], ['2'], ['3']]);
      // A write behind a long IN list is still a write: this identity's writes to customers are held, none configured to approve here.
      const write = await client.simple(`DELETE FROM customers WHERE name IN (${Array.from({ length: 800 }, (_, i) => `'n${i}'`).join(',')})`);
      expect(write.errors.map((e) => e.get('C'))).toEqual(['42501']);
      // Unparseable long text: 42601 with the parser's position, as inline.
      const broken = await client.simple(`${longRead(4_000)} WHERE WHERE`);
      expect(broken.errors.map((e) => e.get('C'))).toEqual(['42601']);
      expect(Number(broken.errors[0]!.get('P'))).toBeGreaterThan(4_000);
    } finally {
      await client.close();
    }
    expect(fixture.gateway.offloadStats.completed - before).toBeGreaterThanOrEqual(4);
    const issued = ofType(await sessionOf('offload-statements'), 'command.issued');
    expect(issued).toHaveLength(4);
    expect(issued[0]!.payload.text).toContain("'v000001'");
    expect(issued[0]!.payload.text).toContain('[REDACTED:pii-detectors]');
    expect(JSON.stringify(issued)).not.toContain('alice@example.com');
  });

  it('long result values and long Bind parameters are masked by the detectors off the event loop', async () => {
    const client = new pg.Client({ host: '127.0.0.1', port: fixture.gateway.port, user: 'agent-7', database: 'orders-prod', password: await fixture.token('agent'), ssl: false, application_name: 'offload-values' });
    await client.connect();
    const before = fixture.gateway.offloadStats.completed;
    try {
      const padding = 'lorem ipsum '.repeat(400);
      const text = await client.query<{ v: string; j: unknown }>(`SELECT $1::text || ' mail carol@example.com' AS v, json_build_object('note', $1::text || ' card 4111 1111 1111 1111') AS j`, [padding]);
      expect(text.rows[0]!.v).toBe(`${padding} mail [REDACTED:pii-detectors]`);
      expect(JSON.stringify(text.rows[0]!.j)).toContain('[REDACTED:pii-detectors]');
      expect(JSON.stringify(text.rows[0]!.j)).not.toContain('4111');
      // The parameter itself carries an address: it reaches PostgreSQL as sent, and the record masked.
      const echoed = await client.query<{ v: number }>('SELECT length($1::text) AS v', [`${padding} dave@example.com`]);
      expect(echoed.rows[0]!.v).toBe(padding.length + ' dave@example.com'.length);
    } finally {
      await client.end();
    }
    expect(fixture.gateway.offloadStats.completed - before).toBeGreaterThanOrEqual(3);
    const events = await sessionOf('offload-values');
    const issued = ofType(events, 'command.issued');
    expect(JSON.stringify(issued)).toContain('[REDACTED:pii-detectors]');
    expect(JSON.stringify(events)).not.toContain('dave@example.com');
    expect(JSON.stringify(events)).not.toContain('carol@example.com');
    const masked = ofType(events, 'data.masked').flatMap((e) => e.payload.maskings);
    expect(masked.some((m) => m.detector === 'email')).toBe(true);
    expect(masked.some((m) => m.detector === 'card')).toBe(true);
  });

  it('an upstream error quoting a long value has the value scanned off the event loop before the client sees it', async () => {
    const client = await RawClient.login(fixture.gateway.port, await fixture.token('agent'), 'orders-prod', 'agent-7', { application_name: 'offload-error' });
    try {
      const reply = await client.simple(`SELECT '${'lorem ipsum '.repeat(300)} grace@example.com'::int`);
      expect(reply.errors.map((e) => e.get('C'))).toEqual(['22P02']);
      expect(reply.errors[0]!.get('M')).toContain('[REDACTED:pii-detectors]');
      expect(reply.errors[0]!.get('M')).not.toContain('grace@example.com');
      expect((await client.simple('SELECT 4')).rows).toEqual([['4']]);
    } finally {
      await client.close();
    }
    expect(JSON.stringify(await sessionOf('offload-error'))).not.toContain('grace@example.com');
  });

  it('COPY data longer than inlineWorkBytes is masked in slices, both ways, as a short message is', async () => {
    const token = await fixture.token('agent');
    const out = await psql(fixture, token, "COPY (SELECT repeat('lorem ipsum ', 2000) || ' mail frank@example.com') TO STDOUT;\n", { env: { PGAPPNAME: 'offload-copy-out' }, extraArgs: ['-q'] });
    expect(out.stderr).toBe('');
    expect(out.stdout.trimEnd()).toBe(`${'lorem ipsum '.repeat(2000)} mail [REDACTED:pii-detectors]`);
    // A tag of this run: the count reads only this run's rows.
    const tag = `run${Date.now().toString(36)}`;
    const rows = `${Array.from({ length: 300 }, (_, i) => `${i}\t${tag} padding padding card 4111-1111-1111-1111`).join('\n')}\n`;
    const into = await psql(fixture, token, `COPY scratch FROM STDIN;\n${rows}\\.\nSELECT count(*) FROM scratch WHERE payload LIKE '${tag} %4111-1111-1111-1111';\n`, { env: { PGAPPNAME: 'offload-copy-in' }, extraArgs: ['-q'] });
    expect(into.stderr).toBe('');
    // Forwarded as sent; recorded masked.
    expect(into.stdout.trim()).toBe('300');
    const events = await sessionOf('offload-copy-in');
    expect(JSON.stringify(events)).not.toContain('4111-1111-1111-1111');
    expect(JSON.stringify(await sessionOf('offload-copy-out'))).not.toContain('frank@example.com');
  });

  it('when the workers cannot do the work in time: the statement is refused with a clear error and recorded, a value is replaced, short work goes on', async () => {
    const client = await RawClient.login(starved.port, await fixture.token('agent'), 'orders-prod', 'agent-7', { application_name: 'offload-starved' });
    try {
      // Work that takes well over 1 ms even on a quiet machine (the budget starts once the worker has loaded).
      const refused = await client.simple(longRead(16_000));
      expect(refused.errors.map((e) => e.get('C'))).toEqual(['42501']);
      expect(refused.errors[0]!.get('M')).toContain('could not classify it within its limits');
      const value = await client.simple("SELECT repeat('hello world 1234 5678 foo@bar x ', 200) || ' erin@example.com' AS v, 'short bob@example.net' AS s");
      expect(value.errors).toEqual([]);
      expect(value.rows).toEqual([['[REDACTED:custodian:value-limit]', 'short [REDACTED:pii-detectors]']]);
      expect((await client.simple('SELECT 3')).rows).toEqual([['3']]);
    } finally {
      await client.close();
    }
    expect(starved.offloadStats.refused.OFFLOAD_TIMEOUT).toBeGreaterThanOrEqual(2);
    const events = await sessionOf('offload-starved');
    const decided = ofType(events, 'policy.decided').find((e) => e.payload.ruleId === 'custodian:statement-work-limit');
    expect(decided?.payload.decision).toBe('block');
    expect(JSON.stringify(events)).not.toContain('erin@example.com');
    expect(ofType(events, 'data.masked').flatMap((e) => e.payload.maskings).some((m) => m.rule === 'custodian:value-limit')).toBe(true);
  });
});
