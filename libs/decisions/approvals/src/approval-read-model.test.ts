// The approvals read model as a projection: idempotent under redelivery, its checkpoint saved with
// its rows (a restarted projection resumes where it stopped), window grants that end on time.
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Identity } from '@custodian/event-contracts';
import type { RecordedEvent } from '@custodian/event-store';
import { SqliteEventStore } from '@custodian/event-store-sqlite';
import { runProjection } from '@custodian/evidence-pipeline';
import type { ApprovalRequest } from '@custodian/session-pipeline';
import { ApprovalCommandHandlers, ApproveApprovalCommand, CancelApprovalCommand, RequestApprovalCommand } from './approval-commands.js';
import { ApprovalEventDispatcher, ApprovalReadModelProjector } from './approval-events.js';
import { ApprovalReadModel, approvalReadModelPath } from './approval-read-model.js';
import { ApprovalRepository } from './approval-repository.js';

const dir = mkdtempSync(join(tmpdir(), 'custodian-approvals-read-model-'));
let store: SqliteEventStore;
let gateway: ApprovalCommandHandlers;
let api: ApprovalCommandHandlers;
const agent: Identity = { subject: 'agent-7', issuer: 'https://idp.test', groups: ['agents'], kind: 'agent' };
const bob: Identity = { subject: 'bob', issuer: 'https://idp.test', groups: ['dba-approvers'], kind: 'human' };

beforeAll(async () => {
  store = await SqliteEventStore.open({ path: join(dir, 'events.sqlite'), pollIntervalMs: 50 });
  gateway = new ApprovalCommandHandlers(new ApprovalRepository({ eventStore: store, source: { service: 'gateway', instance: 'gw-1' } }));
  api = new ApprovalCommandHandlers(new ApprovalRepository({ eventStore: store, source: { service: 'api', instance: 'api-1' } }));
});

afterAll(async () => {
  await store?.close();
  rmSync(dir, { recursive: true, force: true });
});

function request(overrides: Partial<ApprovalRequest> = {}): ApprovalRequest {
  return {
    approvalId: randomUUID(),
    sessionId: randomUUID(),
    commandId: randomUUID(),
    requester: agent,
    connection: { name: 'orders-prod', protocol: 'postgres' },
    command: 'DELETE FROM orders',
    ruleId: 'hold-deletes',
    approverGroups: ['dba-approvers'],
    required: 1,
    timeoutSeconds: 60,
    grantScope: { kind: 'window', windowSeconds: 600 },
    ...overrides,
  };
}

async function all(): Promise<RecordedEvent[]> {
  const out: RecordedEvent[] = [];
  for await (const r of store.readAll()) out.push(r);
  return out;
}

describe('ApprovalReadModel', () => {
  it('applying the log twice gives the same model (at-least-once delivery)', async () => {
    const granted = request();
    const cancelled = request({ grantScope: { kind: 'once' } });
    await gateway.request.execute(new RequestApprovalCommand(granted));
    await gateway.request.execute(new RequestApprovalCommand(cancelled));
    await api.approve.execute(new ApproveApprovalCommand(granted.approvalId, bob, 'ok'));
    await gateway.cancel.execute(new CancelApprovalCommand(cancelled.approvalId, 'client-disconnected', agent));
    const model = new ApprovalReadModel(':memory:');
    const events = await all();
    for (const r of events) model.apply(r);
    const once = { granted: model.get(granted.approvalId), cancelled: model.get(cancelled.approvalId), grant: model.activeGrant(agent, 'orders-prod', 'hold-deletes') };
    for (const r of events) model.apply(r);
    for (const r of events.slice(2)) model.apply(r);
    expect({ granted: model.get(granted.approvalId), cancelled: model.get(cancelled.approvalId), grant: model.activeGrant(agent, 'orders-prod', 'hold-deletes') }).toEqual(once);
    expect(once.granted).toMatchObject({ status: 'granted', approvals: 1, requester: agent, requestedBy: { service: 'gateway', instance: 'gw-1' } });
    expect(once.cancelled).toMatchObject({ status: 'cancelled' });
    expect(once.grant).toMatchObject({ approvalId: granted.approvalId });
    expect(model.list({ status: 'all' }).map((a) => a.approvalId)).toEqual([cancelled.approvalId, granted.approvalId]);
    // A window grant ends: after expiresAt it no longer applies, and pruning drops it.
    const end = Date.parse(once.grant?.expiresAt ?? '');
    expect(model.activeGrant(agent, 'orders-prod', 'hold-deletes', end)).toBeNull();
    expect(model.pruneGrants(end)).toBe(1);
    model.close();
  });

  it('keeps its checkpoint with its rows: a restarted projection resumes after the last event it applied', async () => {
    const path = approvalReadModelPath(dir, 'api');
    expect(path).toBe(join(dir, 'approvals-api.sqlite'));
    const run = async (): Promise<{ model: ApprovalReadModel; seen: number }> => {
      const model = new ApprovalReadModel(path);
      let seen = 0;
      const counting = { handle: () => void (seen += 1) };
      const projection = runProjection(store, new ApprovalEventDispatcher('approvals-read-model-test', [new ApprovalReadModelProjector(model), counting]), { checkpoints: model });
      await projection.caughtUp;
      await projection.stop();
      return { model, seen };
    };
    const first = await run();
    expect(first.seen).toBeGreaterThan(0);
    first.model.close();
    const next = request();
    await gateway.request.execute(new RequestApprovalCommand(next));
    const second = await run();
    expect(second.seen).toBe(1);
    expect(second.model.list().map((a) => a.approvalId)).toContain(next.approvalId);
    expect(second.model.pendingRequestedBy({ service: 'gateway', instance: 'gw-1' })).toContain(next.approvalId);
    second.model.close();
  });
});
