// Held statements through the ApprovalGate port (a test-only gate here; the approvals workflow
// implements the port in libs/decisions/approvals): granted, denied, expired, client gone; at Parse for
// prepared statements. Strict mode: when the evidence pipeline refuses, the command is refused
// with a clear error and the session stays usable.
import { finished } from 'node:stream/promises';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CustodianEvent } from '@custodian/event-contracts';
import { PipelineRefusedError, type EvidencePipeline } from '@custodian/evidence-pipeline';
import { encodeQuery, encodeSync } from '@custodian/postgres-wire';
import { RawClient, extendedMessages } from './testing/raw-client.js';
import { TestOnlyApprovalGate } from '@custodian/session-pipeline/testing';
import { psql, sessionEvents, startGatewayFixture, type GatewayFixture } from './testing/gateway-fixture.js';

const approvals = new TestOnlyApprovalGate();
let refusing = false;
/** A parameter value whose command.issued the pipeline refuses once (a pipelined command meeting an outage). */
const REFUSE_ONCE = 'refuse-this-one';
let refusedOnce = false;
let fixture: GatewayFixture;
const DBA = { subject: 'dba-1', issuer: 'https://idp.test', groups: ['dba'] };

beforeAll(async () => {
  fixture = await startGatewayFixture({
    approvals,
    approvalWaitSeconds: 2,
    gateway: { limits: { maxCopyInApprovalBytes: 4096 } },
    evidence: (inner): EvidencePipeline => ({
      accept: (events) => {
        const outage = (): Promise<never> => Promise.reject(new PipelineRefusedError('PIPELINE_STORE_UNWRITABLE', 'command refused: the event store cannot record events (test outage)'));
        if (refusing) return outage();
        if (!refusedOnce && events.some((e) => e.type === 'command.issued' && (e.payload.parameters ?? []).includes(REFUSE_ONCE))) {
          refusedOnce = true;
          return outage();
        }
        return inner.accept(events);
      },
      status: () => (refusing ? { accepting: false, refusing: { code: 'PIPELINE_STORE_UNWRITABLE', message: 'test outage' }, undelivered: 0 } : inner.status()),
      close: () => inner.close(),
    }),
  });
});
afterAll(async () => {
  await fixture?.stop();
});

function ofType<T extends CustodianEvent['type']>(events: readonly CustodianEvent[], type: T): Extract<CustodianEvent, { type: T }>[] {
  return events.filter((e): e is Extract<CustodianEvent, { type: T }> => e.type === type);
}

describe('require-approval: the client waits on the approval gate', () => {
  it('granted: the held UPDATE runs once the approver grants it', async () => {
    const token = await fixture.token('agent');
    const running = psql(fixture, token, 'UPDATE orders SET amount = 99 WHERE id = 1;\n', { env: { PGAPPNAME: 'approval-granted' } });
    const request = await approvals.nextRequest();
    // The approver sees the statement with its values, exactly as the client sent it.
    expect(request).toMatchObject({ ruleId: 'analysts-writes-need-dba', approverGroups: ['dba'], required: 1, command: 'UPDATE orders SET amount = 99 WHERE id = 1;', language: 'sql', connection: { name: 'orders-prod', protocol: 'postgres' } });
    expect(request.requester.subject).toBe('agent-7');
    // Held: not run yet.
    expect(await fixture.postgres.psql('SELECT amount FROM orders WHERE id = 1')).toBe('1.50');
    approvals.grant(request.approvalId, DBA);
    const result = await running;
    expect(result.stdout).toContain('UPDATE 1');
    expect(await fixture.postgres.psql('SELECT amount FROM orders WHERE id = 1')).toBe('99.00');
    const events = await fixture.events();
    const issued = ofType(events, 'command.issued').find((e) => e.payload.commandId === request.commandId)!;
    const decided = ofType(sessionEvents(events, request.sessionId), 'policy.decided').find((e) => e.payload.commandId === request.commandId)!;
    expect(issued.payload.text).toBe('UPDATE orders SET amount = 99 WHERE id = 1;');
    expect(decided.payload.decision).toBe('require-approval');
  });

  it('the approver sees literal values of a held UPDATE … WHERE id > 0 (simple and extended), and a denial leaves the rows as they were', async () => {
    const before = await fixture.postgres.psql('SELECT sum(amount) FROM orders');
    const client = await RawClient.login(fixture.gateway.port, await fixture.token('agent'));
    try {
      client.send(encodeQuery('UPDATE orders SET amount = 7.25 WHERE id > 0'));
      const simple = await approvals.nextRequest();
      expect(simple.command).toBe('UPDATE orders SET amount = 7.25 WHERE id > 0');
      approvals.deny(simple.approvalId, DBA, 'no');
      expect((await client.untilReady()).errors.map((e) => e.get('C'))).toEqual(['42501']);
      const extended = client.extended('UPDATE orders SET amount = $1 WHERE id > $2', ['8.5', '0']);
      const held = await approvals.nextRequest();
      expect(held.command).toBe('UPDATE orders SET amount = $1 WHERE id > $2');
      expect(JSON.stringify(held)).toContain('8.5');
      approvals.deny(held.approvalId, DBA, 'no');
      expect((await extended).errors.map((e) => e.get('C'))).toEqual(['42501']);
    } finally {
      await client.close();
    }
    expect(await fixture.postgres.psql('SELECT sum(amount) FROM orders')).toBe(before);
  });

  it('an integrity error of a table with a masked column has its DETAIL (which quotes the row) withheld; other tables keep theirs', async () => {
    const client = await RawClient.login(fixture.gateway.port, await fixture.token('agent'));
    try {
      client.send(encodeQuery('UPDATE customers SET name = NULL WHERE id = 1'));
      approvals.grant((await approvals.nextRequest()).approvalId, DBA);
      const masked = await client.untilReady();
      expect(masked.errors.map((e) => [e.get('C'), e.get('t'), e.get('D')])).toEqual([['23502', 'customers', expect.stringContaining('detail withheld by the Custodian gateway')]]);
      // scratch has no masked column: PostgreSQL's detail goes through (writes to it need no approval).
      await fixture.postgres.psql('CREATE UNIQUE INDEX IF NOT EXISTS scratch_id ON scratch (id)');
      expect((await client.simple("INSERT INTO scratch VALUES (41, 'a')")).errors).toEqual([]);
      const plain = await client.simple("INSERT INTO scratch VALUES (41, 'b')");
      expect(plain.errors.map((e) => [e.get('C'), e.get('D')])).toEqual([['23505', 'Key (id)=(41) already exists.']]);
    } finally {
      await client.close();
    }
    expect(Buffer.concat(client.received).toString('utf8')).not.toContain('paid with');
  });

  it('COPY … FROM STDIN held for approval (psql \\copy): the approver sees the row count and a masked sample after the rows arrived, before anything is written; granted → written', async () => {
    const rows = ['901\tAda Copy\tada@example.test\tcard 4111 1111 1111 1111', '902\tBo Copy\tbo@example.test\tplain', '903\tCy Copy\t\\N\tplain'];
    const running = psql(fixture, await fixture.token('agent'), `\\copy customers (id, name, email, notes) FROM STDIN\n${rows.join('\n')}\n\\.\nSELECT 'after';\n`);
    const request = await approvals.nextRequest();
    // psql's \\copy sends its own spelling of the statement.
    expect(request.command).toMatch(/^COPY\s+customers\s*\(\s*id, name, email, notes\s*\)\s+FROM STDIN/);
    expect(request.command).toContain('COPY payload held for approval: 3 lines');
    expect(request.command).toContain('Ada Copy');
    expect(request.command).not.toMatch(/4111.?1111.?1111.?1111/);
    // The rows have arrived at the gateway, nothing is written yet.
    expect(await fixture.postgres.psql('SELECT count(*) FROM customers WHERE id > 900')).toBe('0');
    approvals.grant(request.approvalId, DBA);
    const result = await running;
    expect(result.stdout).toContain('after');
    expect(await fixture.postgres.psql('SELECT count(*) FROM customers WHERE id > 900')).toBe('3');
    const issued = ofType(await fixture.events(), 'command.issued').find((e) => e.payload.commandId === request.commandId)!;
    expect(issued.payload.text).toContain('3 lines');
    expect(JSON.stringify(await fixture.events())).not.toMatch(/4111.?1111.?1111.?1111/);
    await fixture.postgres.psql('DELETE FROM customers WHERE id > 900');
  });

  it('held COPY FROM denied, or over the buffer limit: nothing written, a clear error, the session goes on; node-postgres with pg-copy-streams', async () => {
    const client = new pg.Client({ host: '127.0.0.1', port: fixture.gateway.port, user: 'agent-7', database: 'orders-prod', password: await fixture.token('agent'), ssl: false });
    await client.connect();
    try {
      const denied = client.query(copyFrom('COPY customers (id, name) FROM STDIN'));
      const deniedDone = finished(denied).then(
        () => 'finished',
        (error: unknown) => error,
      );
      denied.end('911\tDenied Row\n');
      const request = await approvals.nextRequest();
      expect(request.command).toContain('1 lines');
      expect(request.command).toContain('911\tDenied Row');
      approvals.deny(request.approvalId, DBA, 'not today');
      expect(await deniedDone).toMatchObject({ code: '42501', message: expect.stringContaining('Approval denied by dba-1') });
      // Over the limit (4 KiB in this fixture): refused while the rows arrive, no approval asked.
      const asked = approvals.requests.length;
      const big = client.query(copyFrom('COPY customers (id, name) FROM STDIN'));
      const bigDone = finished(big).then(
        () => 'finished',
        (error: unknown) => error,
      );
      for (let id = 920; id < 1020; id += 1) big.write(`${id}\t${'x'.repeat(60)}\n`);
      big.end();
      expect(await bigDone).toMatchObject({ code: '42501', message: expect.stringContaining('exceed 4096 bytes') });
      expect(approvals.requests.length).toBe(asked);
      expect((await client.query('SELECT 42 AS answer')).rows).toEqual([{ answer: 42 }]);
    } finally {
      await client.end();
    }
    expect(await fixture.postgres.psql('SELECT count(*) FROM customers WHERE id > 900')).toBe('0');
    const limited = ofType(await fixture.events(), 'policy.decided').filter((e) => e.payload.ruleId === 'custodian:copy-in-limit');
    expect(limited).toHaveLength(1);
  });

  it('a held COPY FROM through the extended protocol (its rows cannot be held) is still refused', async () => {
    const client = await RawClient.login(fixture.gateway.port, await fixture.token('agent'));
    try {
      const reply = await client.extended('COPY customers (id, name) FROM STDIN');
      expect(reply.errors.map((e) => e.get('C'))).toEqual(['42501']);
      expect(reply.errors[0]?.get('M')).toContain('an approval cannot cover rows sent after it');
    } finally {
      await client.close();
    }
  });

  it('denied: a clear error naming the approver; the session goes on', async () => {
    const token = await fixture.token('agent');
    const running = psql(fixture, token, 'UPDATE orders SET amount = 0 WHERE id = 2;\nSELECT 5;\n');
    const request = await approvals.nextRequest();
    approvals.deny(request.approvalId, DBA, 'not during the quarter close');
    const result = await running;
    expect(result.stderr).toContain('ERROR:  Approval denied by dba-1 (rule analysts-writes-need-dba): not during the quarter close');
    expect(result.stdout).toBe('5\n');
    expect(await fixture.postgres.psql('SELECT amount FROM orders WHERE id = 2')).toBe('3.00');
  });

  it('expired: after the configured wait the client gets a clear timeout error', async () => {
    const token = await fixture.token('agent');
    const result = await psql(fixture, token, 'UPDATE orders SET amount = 0 WHERE id = 3;\nSELECT 6;\n');
    expect(result.stderr).toContain('Approval was not granted within 2 s (rule analysts-writes-need-dba); the command was not run.');
    expect(result.stdout).toBe('6\n');
    expect(approvals.requests.at(-1)!.timeoutSeconds).toBe(2);
  });

  it('a prepared statement is held at each Execute, with the values bound to it, and the approval binds those values', async () => {
    const client = await RawClient.login(fixture.gateway.port, await fixture.token('agent'));
    try {
      const pending = client.extended('UPDATE orders SET amount = $1 WHERE id = $2', ['7', '4']);
      const request = await approvals.nextRequest();
      expect(request).toMatchObject({ command: 'UPDATE orders SET amount = $1 WHERE id = $2', parameters: ['7', '4'] });
      approvals.grant(request.approvalId, DBA);
      const reply = await pending;
      expect(reply.errors).toEqual([]);
      expect(await fixture.postgres.psql('SELECT amount FROM orders WHERE id = 4')).toBe('7.00');
      // The same statement with other values is another command: held again, never riding the first grant.
      const again = client.extended('UPDATE orders SET amount = $1 WHERE id = $2', ['8', '4']);
      const second = await approvals.nextRequest();
      expect(second.parameters).toEqual(['8', '4']);
      expect(second.commandDigest).not.toBe(request.commandDigest);
      approvals.deny(second.approvalId, DBA, 'no');
      expect((await again).errors[0]?.get('M')).toContain('Approval denied by dba-1');
      expect(await fixture.postgres.psql('SELECT amount FROM orders WHERE id = 4')).toBe('7.00');
    } finally {
      await client.close();
    }
  });

  it('the client going away cancels the pending request', async () => {
    const client = await RawClient.login(fixture.gateway.port, await fixture.token('agent'));
    client.send(encodeQuery('UPDATE orders SET amount = 1 WHERE id = 5'));
    const request = await approvals.nextRequest();
    client.socket.destroy();
    for (let attempt = 0; fixture.gateway.sessionCount > 0 && attempt < 100; attempt++) await new Promise((r) => setTimeout(r, 50));
    expect(fixture.gateway.sessionCount).toBe(0);
    expect(await fixture.postgres.psql('SELECT amount FROM orders WHERE id = 5')).toBe('7.50');
    expect(request.sessionId).toBeTruthy();
  });
});

describe('strict mode', () => {
  it('when the evidence pipeline refuses, the command is refused with a clear error and the session stays usable', async () => {
    const client = await RawClient.login(fixture.gateway.port, await fixture.token('agent'));
    try {
      expect((await client.simple('SELECT 1')).rows).toEqual([['1']]);
      refusing = true;
      const refused = await client.simple('SELECT count(*) FROM orders');
      expect(refused.errors[0]?.get('C')).toBe('58000');
      expect(refused.errors[0]?.get('M')).toContain('the event store cannot record events');
      expect(refused.rows).toEqual([]);
      refusing = false;
      // Recovered: the next command goes through (the refused events are retried first, so the stream keeps its order).
      expect((await client.simple('SELECT 2')).rows).toEqual([['2']]);
    } finally {
      refusing = false;
      await client.close();
    }
  });

  it('a pipelined batch (thousands of Executes before one Sync) is answered in full and every command is recorded, without one commit per Execute', async () => {
    const client = await RawClient.login(fixture.gateway.port, await fixture.token('agent'));
    const count = 3000;
    try {
      const messages = Array.from({ length: count }, (_, i) => extendedMessages('SELECT $1::int AS n', [String(i)])).flat();
      client.send(...messages, encodeSync());
      const reply = await client.untilReady(1, 120_000);
      expect(reply.errors).toEqual([]);
      expect(reply.rows.map((row) => row[0])).toEqual(Array.from({ length: count }, (_, i) => String(i)));
      const sessionId = ofType(await fixture.events(), 'session.opened').at(-1)!.payload.sessionId;
      const issued = ofType(sessionEvents(await fixture.events(), sessionId), 'command.issued');
      expect(issued.map((e) => e.payload.parameters?.[0])).toEqual(Array.from({ length: count }, (_, i) => String(i)));
      // Group commit: the store stamps each commit (recordedAt); one commit per Execute would give `count` stamps.
      const commits = new Set<string>();
      for await (const recorded of fixture.store.readAll()) if (recorded.stream === `session-${sessionId}` && recorded.event.type === 'command.issued') commits.add(recorded.recordedAt);
      expect(commits.size).toBeLessThan(count / 4);
    } finally {
      await client.close();
    }
  });

  it('evidence refused for a pipelined command: the session ends with 58000, and neither it nor a later command of the batch runs', async () => {
    const client = await RawClient.login(fixture.gateway.port, await fixture.token('agent'));
    const values = ['one', 'two', REFUSE_ONCE, 'four', 'five'];
    const messages = values.flatMap((value) => extendedMessages('SELECT $1::text AS v', [value]));
    client.send(...messages, encodeSync());
    const reply = await client.untilReady(1, 30_000);
    expect(client.closed).toBe(true);
    const fatal = reply.errors.at(-1);
    expect(fatal?.get('S')).toBe('FATAL');
    expect(fatal?.get('C')).toBe('58000');
    expect(fatal?.get('M')).toContain('the event store cannot record events');
    const returned = reply.rows.map((row) => row[0]);
    expect(returned.every((value) => value === 'one' || value === 'two')).toBe(true);
    // Not run upstream: no frame of the session carries the refused command's or a later command's bytes.
    const sessionId = ofType(await fixture.events(), 'session.opened').at(-1)!.payload.sessionId;
    const frames = ofType(sessionEvents(await fixture.events(), sessionId), 'frame.recorded').filter((e) => e.payload.direction === 'client-to-upstream');
    const sent = frames.map((e) => Buffer.from(e.payload.data, 'base64').toString('latin1')).join('');
    expect(sent).not.toContain(REFUSE_ONCE);
    expect(sent).not.toContain('five');
  });
});
