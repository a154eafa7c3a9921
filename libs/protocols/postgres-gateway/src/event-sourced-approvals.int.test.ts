// End to end with the approvals workflow of libs/decisions/approvals (EventSourcedApprovalGate over the same
// event store): psql's UPDATE waits, an approver's decision (as the API would execute it) lets it run.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApproveApprovalCommand, DenyApprovalCommand, EventSourcedApprovalGate } from '@custodian/approvals';
import type { CustodianEvent } from '@custodian/event-contracts';
import { psql, startGatewayFixture, type GatewayFixture } from './testing/gateway-fixture.js';

let gate: EventSourcedApprovalGate | undefined;
let fixture: GatewayFixture;

beforeAll(async () => {
  fixture = await startGatewayFixture({
    approvals: (store) => (gate = new EventSourcedApprovalGate({ eventStore: store, instance: 'pg-gateway-test', pollIntervalMs: 50 })),
  });
  await gate!.start();
});
afterAll(async () => {
  await gate?.close();
  await fixture?.stop();
});

async function nextRequested(after: number): Promise<Extract<CustodianEvent, { type: 'approval.requested' }>> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const requested = (await fixture.events()).filter((e): e is Extract<CustodianEvent, { type: 'approval.requested' }> => e.type === 'approval.requested');
    if (requested.length > after) return requested.at(-1)!;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('no approval was requested');
}

describe('held statements with the event-sourced approval gate', () => {
  const dba = { subject: 'dba-1', issuer: 'https://idp.test', groups: ['dba'], kind: 'human' as const };

  it('granted by an approver: the UPDATE runs; the approval stream records request and grant', async () => {
    const running = psql(fixture, await fixture.token('agent'), 'UPDATE orders SET amount = 42 WHERE id = 10;\n');
    const requested = await nextRequested(0);
    expect(requested.payload).toMatchObject({ ruleId: 'analysts-writes-need-dba', approverGroups: ['dba'], command: 'UPDATE orders SET amount = 42 WHERE id = 10;' });
    expect(await fixture.postgres.psql('SELECT amount FROM orders WHERE id = 10')).toBe('15.00');
    await gate!.handlers.approve.execute(new ApproveApprovalCommand(requested.payload.approvalId, dba, 'checked the ticket'));
    const result = await running;
    expect(result.stdout).toContain('UPDATE 1');
    expect(await fixture.postgres.psql('SELECT amount FROM orders WHERE id = 10')).toBe('42.00');
    const types = (await fixture.events()).filter((e) => e.stream === `approval-${requested.payload.approvalId}`).map((e) => e.type);
    expect(types).toEqual(['approval.requested', 'approval.granted']);
  });

  it('denied by an approver: a clear error, nothing runs', async () => {
    const running = psql(fixture, await fixture.token('agent'), 'UPDATE orders SET amount = 0 WHERE id = 11;\n');
    const requested = await nextRequested(1);
    await gate!.handlers.deny.execute(new DenyApprovalCommand(requested.payload.approvalId, dba, 'no changes today'));
    const result = await running;
    expect(result.stderr).toContain('Approval denied by dba-1 (rule analysts-writes-need-dba): no changes today');
    expect(await fixture.postgres.psql('SELECT amount FROM orders WHERE id = 11')).toBe('16.50');
  });
});
