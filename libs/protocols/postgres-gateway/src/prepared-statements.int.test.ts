// SQL-level prepared statements (`PREPARE name AS …` / `EXECUTE name`) are the adapter's state, not
// the pipeline's: the gateway follows them per session so that EXECUTE is decided as what it runs,
// and forgets them exactly when PostgreSQL does (DEALLOCATE name, DEALLOCATE ALL, DISCARD ALL).
// Forgetting matters: an EXECUTE of a name the gateway no longer knows must be refused by the
// gateway (the built-in guard on unknown prepared statements), never decided as a stale statement.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RawClient } from './testing/raw-client.js';
import { TEST_POLICY, startGatewayFixture, type GatewayFixture } from './testing/gateway-fixture.js';

// The test policy, plus: analysts may DEALLOCATE and DISCARD (utility statements the base policy blocks).
const POLICY = TEST_POLICY.replace(
  'rules:\n',
  `rules:
  - id: analysts-forget-prepared
    match:
      identity: { groups: [analysts] }
      sql:
        commands: [DEALLOCATE, DISCARD]
    decision: allow
`,
);

let fixture: GatewayFixture;

beforeAll(async () => {
  fixture = await startGatewayFixture({ policy: POLICY });
});
afterAll(async () => {
  await fixture?.stop();
});

function refusedByGateway(reply: Awaited<ReturnType<RawClient['simple']>>): string | undefined {
  const error = reply.errors[0];
  return error?.get('C') === '42501' ? error.get('M') : undefined;
}

describe('SQL prepared statements through the gateway', () => {
  it('EXECUTE is decided as the statement it runs, and a blocked PREPARE is never remembered', async () => {
    const client = await RawClient.login(fixture.gateway.port, await fixture.token('agent'));
    try {
      expect(refusedByGateway(await client.simple('PREPARE wipe AS DELETE FROM orders WHERE id = 1'))).toBeDefined();
      // Never prepared: the gateway refuses the EXECUTE itself (unknown prepared statement), upstream never sees it.
      expect(refusedByGateway(await client.simple('EXECUTE wipe'))).toBeDefined();
      expect((await client.simple('PREPARE counted AS SELECT count(*) FROM orders')).errors).toEqual([]);
      expect((await client.simple('EXECUTE counted')).rows).toEqual([['20']]);
    } finally {
      await client.close();
    }
  });

  it('DEALLOCATE and DISCARD ALL make the gateway forget, as PostgreSQL does', async () => {
    const client = await RawClient.login(fixture.gateway.port, await fixture.token('agent'));
    try {
      expect((await client.simple('PREPARE one AS SELECT 1')).errors).toEqual([]);
      expect((await client.simple('EXECUTE one')).rows).toEqual([['1']]);
      expect((await client.simple('DEALLOCATE one')).errors).toEqual([]);
      // Forgotten: EXECUTE of an unknown name is a utility statement of unknown effect, refused by the gateway
      // (had the gateway kept `one`, it would have been decided as SELECT 1 and allowed).
      expect(refusedByGateway(await client.simple('EXECUTE one'))).toBeDefined();

      expect((await client.simple('PREPARE two AS SELECT 2')).errors).toEqual([]);
      expect((await client.simple('PREPARE three AS SELECT 3')).errors).toEqual([]);
      expect((await client.simple('DISCARD ALL')).errors).toEqual([]);
      for (const name of ['two', 'three']) expect(refusedByGateway(await client.simple(`EXECUTE ${name}`))).toBeDefined();

      // The same name prepared again is the new statement.
      expect((await client.simple('PREPARE one AS SELECT 11')).errors).toEqual([]);
      expect((await client.simple('EXECUTE one')).rows).toEqual([['11']]);
    } finally {
      await client.close();
    }
  });
});
