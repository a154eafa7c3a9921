// The approvals read model as a projection: idempotent under redelivery, its checkpoint saved with
// its rows (a restarted projection resumes where it stopped), window grants that end on time.
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import BetterSqlite3 from 'better-sqlite3';
import { EventFactory, SystemClock, type Identity } from '@custodian/event-contracts';
import type { RecordedEvent } from '@custodian/event-store';
import { SqliteEventStore } from '@custodian/event-store-sqlite';
import { runProjection } from '@custodian/evidence-pipeline';
import type { ApprovalRequest } from '@custodian/session-pipeline';
import { TEST_POLICY, boundApprovalRequest } from './testing/index.js';
import { ApprovalCommandHandlers, ApproveApprovalCommand, CancelApprovalCommand, RequestApprovalCommand } from './approval-commands.js';
import { ApprovalEventDispatcher, ApprovalReadModelProjector } from './approval-events.js';
import { ApprovalReadModel, approvalReadModelPath } from './approval-read-model.js';
import { ApprovalRepository } from './approval-repository.js';
import { Approval, approvalStream } from './approval.js';

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
  return boundApprovalRequest({
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
    language: 'sql',
    policy: TEST_POLICY,
    ...overrides,
  });
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
    const once = { granted: model.get(granted.approvalId), cancelled: model.get(cancelled.approvalId), grant: model.activeGrant(agent, 'orders-prod', 'hold-deletes', TEST_POLICY) };
    for (const r of events) model.apply(r);
    for (const r of events.slice(2)) model.apply(r);
    expect({ granted: model.get(granted.approvalId), cancelled: model.get(cancelled.approvalId), grant: model.activeGrant(agent, 'orders-prod', 'hold-deletes', TEST_POLICY) }).toEqual(once);
    expect(once.granted).toMatchObject({ status: 'granted', approvals: 1, requester: agent, requestedBy: { service: 'gateway', instance: 'gw-1' } });
    expect(once.cancelled).toMatchObject({ status: 'cancelled' });
    expect(once.grant).toMatchObject({ approvalId: granted.approvalId });
    expect(model.list({ status: 'all' }).map((a) => a.approvalId)).toEqual([cancelled.approvalId, granted.approvalId]);
    // A window grant ends: after expiresAt it no longer applies, and pruning drops it.
    const end = Date.parse(once.grant?.expiresAt ?? '');
    expect(model.activeGrant(agent, 'orders-prod', 'hold-deletes', TEST_POLICY, end)).toBeNull();
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
    // Derived from the log, so no fsync per commit on the event loop (see the constructor).
    expect(first.model.settings()).toEqual({ journalMode: 'wal', synchronous: 'NORMAL' });
    first.model.close();
    const next = request();
    await gateway.request.execute(new RequestApprovalCommand(next));
    const second = await run();
    expect(second.seen).toBe(1);
    expect(second.model.list().map((a) => a.approvalId)).toContain(next.approvalId);
    expect(second.model.pendingRequestedBy({ service: 'gateway', instance: 'gw-1' })).toContain(next.approvalId);
    second.model.close();
  });

  it('reads approval.requested v1 (recorded before requests were bound) upcast to v2: it projects, and its grant covers nothing', async () => {
    const approvalId = randomUUID();
    const sessionId = randomUUID();
    const commandId = randomUUID();
    const v1Payload = {
      approvalId,
      sessionId,
      commandId,
      command: 'UPDATE orders SET status = $1 WHERE id = $2',
      connection: { name: 'orders-prod', protocol: 'postgres' },
      ruleId: 'hold-updates-v1',
      approverGroups: ['dba-approvers'],
      required: 1,
      expiresAt: '2999-01-01T00:00:00.000000Z',
      grantScope: { kind: 'window', windowSeconds: 600 },
    };
    // Stored as an older build wrote it (producers only write the latest version, so straight into the table).
    const template = new EventFactory({ service: 'gateway', instance: 'gw-old' }, new SystemClock()).create({
      type: 'approval.cancelled',
      stream: approvalStream(approvalId),
      sequence: 0,
      identity: agent,
      payload: { approvalId, reason: 'client-disconnected' },
    });
    const stored = { ...template, type: 'approval.requested', schemaVersion: 1, payload: v1Payload };
    const db = new BetterSqlite3(join(dir, 'events.sqlite'));
    try {
      db.prepare(`INSERT INTO events (id, stream, revision, type, schema_version, occurred_at, recorded_at, json) VALUES (?, ?, 0, 'approval.requested', 1, ?, ?, ?)`).run(
        stored.id,
        stored.stream,
        stored.occurredAt,
        stored.occurredAt,
        JSON.stringify(stored),
      );
    } finally {
      db.close();
    }
    const read = [];
    for await (const r of store.readStream(approvalStream(approvalId))) read.push(r);
    expect(read[0]?.event).toMatchObject({ type: 'approval.requested', schemaVersion: 2, payload: { ...v1Payload, language: 'sql' } });
    expect(read[0]?.event.type === 'approval.requested' && read[0].event.payload.commandDigest).toBeUndefined();

    // Approvers can still decide it; the grant names no digest and no coverage, so no gateway acts on it.
    const { approval } = await api.approve.execute(new ApproveApprovalCommand(approvalId, bob, 'old request'));
    expect(approval.toOutcome()).toMatchObject({ outcome: 'granted', commandDigest: '' });
    const model = new ApprovalReadModel(':memory:');
    for (const r of await all()) model.apply(r);
    expect(model.get(approvalId)).toMatchObject({ status: 'granted', language: 'sql', command: v1Payload.command });
    expect(model.get(approvalId)?.commandDigest).toBeUndefined();
    expect(model.activeGrant(agent, 'orders-prod', 'hold-updates-v1', TEST_POLICY)).toBeNull();
    const replayed = Approval.replay(read.map((r) => r.event));
    expect(replayed.request.language).toBe('sql');
    model.close();
  });

  it('rebuilds a read model file written by an older version of its tables from the log', async () => {
    const path = join(dir, 'approvals-old.sqlite');
    const old = new BetterSqlite3(path);
    old.exec(`CREATE TABLE approvals (approval_id TEXT PRIMARY KEY, command TEXT NOT NULL); CREATE TABLE grants (grant_id TEXT PRIMARY KEY);
              CREATE TABLE checkpoints (subscription_id TEXT PRIMARY KEY, position TEXT NOT NULL); INSERT INTO checkpoints VALUES ('approvals-read-model-test', 'C99/P99');`);
    old.close();
    const model = new ApprovalReadModel(path);
    expect(await model.load('approvals-read-model-test')).toBeUndefined();
    const projection = runProjection(store, new ApprovalEventDispatcher('approvals-read-model-test', [new ApprovalReadModelProjector(model)]), { checkpoints: model });
    await projection.caughtUp;
    await projection.stop();
    expect(model.list({ status: 'all' }).length).toBeGreaterThan(0);
    model.close();
  });
});
