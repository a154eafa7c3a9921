// Issue 19 §5, identity and isolation: a session ends when its token expires (the client told
// why); a client cannot take a name that silences the gateway's refusals; the upstream session is
// named by the gateway (custodian/<session id>/<client's name>) and cannot be renamed; an identity
// mapped to an upstream role of its own logs in as that role. Upstream effects are checked through a
// separate superuser connection (pg_stat_activity).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CustodianEvent } from '@custodian/event-contracts';
import { encodeBind, encodeExecute, encodeParse, encodeQuery, encodeSync } from '@custodian/postgres-wire';
import { REFUSAL_STATEMENT } from './proxy-session.js';
import { RawClient } from './testing/raw-client.js';
import { sessionEvents, startGatewayFixture, type GatewayFixture } from './testing/gateway-fixture.js';

let fixture: GatewayFixture;
beforeAll(async () => {
  // No clock skew allowance, so a short-lived token ends its session soon.
  fixture = await startGatewayFixture({ gateway: { tokenExpirySkewMs: 0 } });
});
afterAll(async () => {
  await fixture?.stop();
});

function ofType<T extends CustodianEvent['type']>(events: readonly CustodianEvent[], type: T): Extract<CustodianEvent, { type: T }>[] {
  return events.filter((e): e is Extract<CustodianEvent, { type: T }> => e.type === type);
}

async function sessionOf(application: string): Promise<CustodianEvent[]> {
  const events = await fixture.events();
  const opened = ofType(events, 'session.opened').filter((e) => e.payload.client.application === application).at(-1)!;
  return sessionEvents(events, opened.payload.sessionId);
}

describe('upstream session naming and per-identity upstream roles', () => {
  it('pg_stat_activity shows application_name custodian/<session id>/<client name> for the session, as the role of the connection', async () => {
    const client = await RawClient.login(fixture.gateway.port, await fixture.token('agent'), 'orders-prod', 'agent-7', { application_name: 'iso-naming' });
    try {
      const pid = (await client.simple('SELECT pg_backend_pid()')).rows[0]![0]!;
      const seen = await fixture.postgres.psql(`SELECT application_name || ' ' || usename FROM pg_stat_activity WHERE pid = ${Number(pid)}`);
      const opened = ofType(await fixture.events(), 'session.opened').filter((e) => e.payload.client.application === 'iso-naming').at(-1)!;
      expect(seen).toBe(`custodian/${opened.payload.sessionId}/iso-naming gateway_svc`);
      // The client cannot rename its session (or take another session's name): refused here by the
      // test policy's utility rule; a policy allowing SET must also name the guarded flag set-application-name.
      for (const sql of ["SET application_name = 'custodian/00000000-0000-7000-8000-000000000000'", 'RESET application_name', "SET LOCAL application_name TO 'x'"]) {
        const reply = await client.simple(sql);
        expect(reply.errors.map((e) => e.get('C')), sql).toEqual(['42501']);
      }
      expect(await fixture.postgres.psql(`SELECT application_name FROM pg_stat_activity WHERE pid = ${Number(pid)}`)).toBe(`custodian/${opened.payload.sessionId}/iso-naming`);
    } finally {
      await client.close();
    }
  });

  it('an identity mapped to a role of its own (connection orders-per-identity: agent-7 → reader_svc) logs in as that role, with that role’s credential reference recorded', async () => {
    const client = await RawClient.login(fixture.gateway.port, await fixture.token('agent'), 'orders-per-identity', 'agent-7', { application_name: 'iso-role' });
    try {
      expect((await client.simple('SELECT current_user, count(*) FROM customers')).rows).toEqual([['reader_svc', '3']]);
      const pid = (await client.simple('SELECT pg_backend_pid()')).rows[0]![0]!;
      expect(await fixture.postgres.psql(`SELECT usename FROM pg_stat_activity WHERE pid = ${Number(pid)}`)).toBe('reader_svc');
      // The role's own privileges apply: reader_svc may not write, whatever the policy says.
      expect((await client.simple("INSERT INTO scratch VALUES (5, 'as reader')")).errors.map((e) => e.get('C'))).toEqual(['42501']);
    } finally {
      await client.close();
    }
    const opened = ofType(await fixture.events(), 'session.opened').filter((e) => e.payload.client.application === 'iso-role').at(-1)!;
    const injected = ofType(sessionEvents(await fixture.events(), opened.payload.sessionId), 'credential.injected');
    expect(injected.map((e) => e.payload.credentialRef)).toEqual(['env:READER_SVC_PASSWORD']);
    expect(await fixture.postgres.psql("SELECT count(*) FROM scratch WHERE id = 5")).toBe('0');
  });
});

describe('token expiry', () => {
  it('a session ends at its token’s exp with a FATAL 28000 naming the expiry, and the close is recorded', async () => {
    // Long enough to log in and query on a loaded machine; the session then ends on its own.
    const token = await fixture.token('agent', { ttlSeconds: 10 });
    const client = await RawClient.login(fixture.gateway.port, token, 'orders-prod', 'agent-7', { application_name: 'token-expiry' });
    expect((await client.simple('SELECT 1')).rows).toEqual([['1']]);
    // Nothing sent: the gateway ends the session on its own.
    const reply = await client.untilReady(1, 30_000);
    expect(client.closed).toBe(true);
    expect(reply.errors).toHaveLength(1);
    expect(reply.errors[0]!.get('S')).toBe('FATAL');
    expect(reply.errors[0]!.get('C')).toBe('28000');
    expect(reply.errors[0]!.get('M')).toMatch(/access token of this session expired at .*reconnect with a fresh token/);
    const closed = ofType(await sessionOf('token-expiry'), 'session.closed');
    expect(closed).toHaveLength(1);
    expect(JSON.stringify(closed[0]!.payload)).toContain('TOKEN_EXPIRED');
  });

  it('a session whose token is still valid goes on', async () => {
    const client = await RawClient.login(fixture.gateway.port, await fixture.token('agent', { ttlSeconds: 600 }));
    try {
      await new Promise((r) => setTimeout(r, 1500));
      expect((await client.simple('SELECT 2')).rows).toEqual([['2']]);
    } finally {
      await client.close();
    }
  });
});

describe("the gateway's refusals cannot be silenced", () => {
  it('a client that prepares a statement under the refusal name still gets every refusal, and nothing runs upstream (simple and extended)', async () => {
    const client = await RawClient.login(fixture.gateway.port, await fixture.token('agent'));
    try {
      client.send(encodeParse({ statement: REFUSAL_STATEMENT, query: 'SELECT 1', parameterTypes: [] }), encodeSync());
      expect((await client.untilReady()).errors).toEqual([]);
      // Blocked by policy (DELETE without WHERE), over the simple protocol …
      const simple = await client.simple('DELETE FROM customers');
      expect(simple.errors.map((e) => [e.get('C'), e.get('D')])).toEqual([['42501', 'policy rule: block-delete-without-where']]);
      expect(simple.types).not.toContain('C');
      // … inside a transaction (which the refusal aborts, as a permission error would) …
      expect((await client.simple('BEGIN')).status).toBe('T');
      const inTransaction = await client.simple('DELETE FROM customers');
      expect(inTransaction.errors.map((e) => e.get('C'))).toEqual(['42501']);
      expect(inTransaction.status).toBe('E');
      expect((await client.simple('ROLLBACK')).status).toBe('I');
      // … and over the extended protocol: the batch ends at its Sync.
      client.send(
        encodeParse({ statement: '', query: 'DELETE FROM customers', parameterTypes: [] }),
        encodeBind({ portal: '', statement: '', parameterFormats: [], parameters: [], resultFormats: [] }),
        encodeExecute('', 0),
        encodeSync(),
      );
      const extended = await client.untilReady();
      expect(extended.errors.map((e) => e.get('C'))).toEqual(['42501']);
      expect(extended.types).not.toContain('C');
      // The client's own statement of that name is still its own.
      client.send(
        encodeBind({ portal: '', statement: REFUSAL_STATEMENT, parameterFormats: [], parameters: [], resultFormats: [] }),
        encodeExecute('', 0),
        encodeSync(),
      );
      const own = await client.untilReady();
      expect(own.errors).toEqual([]);
      expect(own.rows).toEqual([['1']]);
    } finally {
      await client.close();
    }
    expect(await fixture.postgres.psql('SELECT count(*) FROM customers')).toBe('3');
  });
});

describe('LISTEN is decided by policy', () => {
  it('a read rule does not let an agent LISTEN (guarded flag `listen`): refused, recorded, and it never sees another session’s notification', async () => {
    const listener = await RawClient.login(fixture.gateway.port, await fixture.token('agent'), 'orders-prod', 'agent-7', { application_name: 'listen-refused' });
    try {
      const listen = await listener.simple('LISTEN orders_changed');
      expect(listen.errors.map((e) => [e.get('C'), e.get('D')])).toEqual([['42501', 'policy rule: custodian:guarded-flag']]);
      // An application on the same upstream role notifies (superuser connection).
      await fixture.postgres.psql("NOTIFY orders_changed, 'customer 1 card 4111 1111 1111 1111'");
      const after = await listener.simple('SELECT 1');
      expect(after.types).not.toContain('A');
    } finally {
      await listener.close();
    }
    const decided = ofType(await sessionOf('listen-refused'), 'policy.decided');
    expect(decided.some((e) => e.payload.decision === 'block' && e.payload.ruleId === 'custodian:guarded-flag')).toBe(true);
  });
});

describe("other sessions' statements", () => {
  it('pg_stat_activity (which shows every session of the shared upstream role, literals included) is refused unless a rule names session-activity', async () => {
    const other = await RawClient.login(fixture.gateway.port, await fixture.token('agent'));
    const reader = await RawClient.login(fixture.gateway.port, await fixture.token('agent'));
    try {
      // Another agent's statement, in flight with a literal.
      other.send(encodeQuery("SELECT pg_sleep(1), 'card 4111 1111 1111 1111'"));
      for (const sql of ['SELECT query FROM pg_stat_activity', 'SELECT * FROM pg_catalog.pg_stat_activity WHERE pid <> pg_backend_pid()']) {
        const reply = await reader.simple(sql);
        expect(reply.errors.map((e) => [e.get('C'), e.get('D')]), sql).toEqual([['42501', 'policy rule: custodian:guarded-flag']]);
      }
      expect(Buffer.concat(reader.received).toString('utf8')).not.toContain('4111');
      expect((await other.untilReady()).errors).toEqual([]);
    } finally {
      await other.close();
      await reader.close();
    }
  });
});
