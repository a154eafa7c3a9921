// Issue 19 §6: PostgreSQL's statement_timeout runs from a pipeline's first message to its Sync.
// Parse and Bind must not reach the upstream before the Execute after them is decided and recorded
// (here the evidence pipeline takes 150 ms per append, in strict mode), or the wait counts against
// the client's statement_timeout and a fast statement is cancelled.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeBind, encodeExecute, encodeParse, encodeSync } from '@custodian/postgres-wire';
import { RawClient } from './testing/raw-client.js';
import { startGatewayFixture, type GatewayFixture } from './testing/gateway-fixture.js';

let fixture: GatewayFixture;
beforeAll(async () => {
  fixture = await startGatewayFixture({
    strict: true,
    evidence: (inner) => ({
      accept: async (events) => {
        await new Promise((r) => setTimeout(r, 150));
        return inner.accept(events);
      },
      status: () => inner.status(),
      close: () => inner.close(),
    }),
  });
});
afterAll(async () => {
  await fixture?.stop();
});

describe("the gateway's decision time does not count against statement_timeout", () => {
  it('Parse/Bind/Execute/Sync of a fast statement with statement_timeout=100ms succeeds while recording takes 150 ms', async () => {
    const client = await RawClient.login(fixture.gateway.port, await fixture.token('agent'), 'orders-prod', 'agent-7', { statement_timeout: '100' });
    try {
      for (let i = 0; i < 3; i++) {
        client.send(
          encodeParse({ statement: '', query: 'SELECT id FROM orders WHERE id = $1', parameterTypes: [] }),
          encodeBind({ portal: '', statement: '', parameterFormats: [], parameters: [Buffer.from(String(i + 1))], resultFormats: [] }),
          encodeExecute('', 0),
          encodeSync(),
        );
        const reply = await client.untilReady();
        expect(reply.errors.map((e) => `${e.get('C')} ${e.get('M')}`)).toEqual([]);
        expect(reply.rows).toEqual([[String(i + 1)]]);
      }
    } finally {
      await client.close();
    }
  });
});
