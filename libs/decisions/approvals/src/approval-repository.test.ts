// Races on a real event store: concurrent decisions on one approval stream resolve to exactly one
// outcome through optimistic concurrency. A barrier holds the racing appends until every racer
// has read the stream, so each test really races (both decide on the same revision).
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Clock, CustodianEvent, Identity } from '@custodian/event-contracts';
import type { EventStore } from '@custodian/event-store';
import { SqliteEventStore } from '@custodian/event-store-sqlite';
import type { ApprovalRequest } from '@custodian/session-pipeline';
import { TEST_POLICY, boundApprovalRequest } from './testing/index.js';
import { ApprovalCommandHandlers, ApproveApprovalCommand, DenyApprovalCommand, ExpireApprovalCommand, RequestApprovalCommand } from './approval-commands.js';
import { ApprovalError } from './approval-error.js';
import { approvalStream } from './approval.js';
import { ApprovalRepository } from './approval-repository.js';

const dir = mkdtempSync(join(tmpdir(), 'custodian-approvals-repo-'));
let store: SqliteEventStore;

beforeAll(async () => {
  store = await SqliteEventStore.open({ path: join(dir, 'events.sqlite') });
});

afterAll(async () => {
  await store?.close();
  rmSync(dir, { recursive: true, force: true });
});

const agent: Identity = { subject: 'agent-7', issuer: 'https://idp.test', groups: ['agents'], kind: 'agent' };
const approver = (subject: string): Identity => ({ subject, issuer: 'https://idp.test', groups: ['dba-approvers'], kind: 'human' });

/** The store, except that the first `parties` appends wait for each other before going through. */
function withAppendBarrier(inner: EventStore, parties: number): EventStore & { conflicts: () => number } {
  let arrived = 0;
  let release: () => void = () => undefined;
  const allArrived = new Promise<void>((resolve) => (release = resolve));
  let conflicts = 0;
  return {
    checkpoints: inner.checkpoints,
    readStream: (stream, options) => inner.readStream(stream, options),
    readAll: (options) => inner.readAll(options),
    subscribeToAll: (options) => inner.subscribeToAll(options),
    streamRevision: (stream) => inner.streamRevision(stream),
    ping: () => inner.ping(),
    close: () => inner.close(),
    append: async (stream, events, options) => {
      if (arrived < parties) {
        arrived += 1;
        if (arrived === parties) release();
        await allArrived;
      }
      try {
        return await inner.append(stream, events, options);
      } catch (error) {
        conflicts += 1;
        throw error;
      }
    },
    conflicts: () => conflicts,
  };
}

function request(overrides: Partial<ApprovalRequest> = {}): ApprovalRequest {
  return boundApprovalRequest({
    approvalId: randomUUID(),
    sessionId: randomUUID(),
    commandId: randomUUID(),
    requester: agent,
    connection: { name: 'orders-prod', protocol: 'postgres' },
    command: 'DELETE FROM orders WHERE id = $1',
    ruleId: 'hold-deletes',
    approverGroups: ['dba-approvers'],
    required: 1,
    timeoutSeconds: 60,
    grantScope: { kind: 'once' },
    language: 'sql',
    policy: TEST_POLICY,
    ...overrides,
  });
}

function handlersOn(eventStore: EventStore, service: 'api' | 'gateway' = 'api', clock?: Clock): ApprovalCommandHandlers {
  return new ApprovalCommandHandlers(new ApprovalRepository({ eventStore, source: { service, instance: `${service}-test` }, ...(clock ? { clock } : {}) }));
}

async function streamOf(approvalId: string): Promise<CustodianEvent[]> {
  const events: CustodianEvent[] = [];
  for await (const r of store.readStream(approvalStream(approvalId))) events.push(r.event);
  return events;
}

function codes(results: PromiseSettledResult<unknown>[]): string[] {
  return results.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => (r.reason instanceof ApprovalError ? r.reason.code : String(r.reason)));
}

describe('optimistic concurrency on the approval stream', () => {
  it('requesting the same approval twice is refused (no-stream)', async () => {
    const req = request();
    const handlers = handlersOn(store, 'gateway');
    await handlers.request.execute(new RequestApprovalCommand(req));
    await expect(handlers.request.execute(new RequestApprovalCommand(req))).rejects.toMatchObject({ code: 'APPROVAL_ALREADY_EXISTS' });
    expect(await streamOf(req.approvalId)).toHaveLength(1);
  });

  it('two approvers at once on a 1-of-M request: exactly one grant, the other is told it is no longer pending', async () => {
    const req = request();
    await handlersOn(store, 'gateway').request.execute(new RequestApprovalCommand(req));
    const racing = withAppendBarrier(store, 2);
    const a = handlersOn(racing);
    const b = handlersOn(racing);
    const results = await Promise.allSettled([
      a.approve.execute(new ApproveApprovalCommand(req.approvalId, approver('bob'), 'ok')),
      b.approve.execute(new ApproveApprovalCommand(req.approvalId, approver('carol'), 'ok')),
    ]);
    expect(racing.conflicts()).toBe(1);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    expect(codes(results)).toEqual(['APPROVAL_NOT_PENDING']);
    const events = await streamOf(req.approvalId);
    expect(events.map((e) => e.type)).toEqual(['approval.requested', 'approval.granted']);
  });

  it('two approvers at once on a 2-of-3 request: both count, the second to land is final', async () => {
    const req = request({ required: 2 });
    await handlersOn(store, 'gateway').request.execute(new RequestApprovalCommand(req));
    const racing = withAppendBarrier(store, 2);
    const results = await Promise.allSettled([
      handlersOn(racing).approve.execute(new ApproveApprovalCommand(req.approvalId, approver('bob'), 'ok')),
      handlersOn(racing).approve.execute(new ApproveApprovalCommand(req.approvalId, approver('carol'), 'ok')),
    ]);
    expect(racing.conflicts()).toBe(1);
    expect(results.every((r) => r.status === 'fulfilled')).toBe(true);
    const granted = (await streamOf(req.approvalId)).filter((e) => e.type === 'approval.granted');
    expect(granted.map((e) => [e.payload.approvals, e.payload.final])).toEqual([
      [1, false],
      [2, true],
    ]);
    expect(new Set(granted.map((e) => e.payload.approver.subject))).toEqual(new Set(['bob', 'carol']));
  });

  it('approve and deny at once: exactly one outcome', async () => {
    const req = request();
    await handlersOn(store, 'gateway').request.execute(new RequestApprovalCommand(req));
    const racing = withAppendBarrier(store, 2);
    const results = await Promise.allSettled([
      handlersOn(racing).approve.execute(new ApproveApprovalCommand(req.approvalId, approver('bob'), 'ok')),
      handlersOn(racing).deny.execute(new DenyApprovalCommand(req.approvalId, approver('carol'), 'no')),
    ]);
    expect(codes(results)).toEqual(['APPROVAL_NOT_PENDING']);
    const outcomes = (await streamOf(req.approvalId)).filter((e) => e.type === 'approval.granted' || e.type === 'approval.denied');
    expect(outcomes).toHaveLength(1);
  });

  it('an approval just before the deadline and the expiry just after it race: exactly one of them lands', async () => {
    const req = request({ timeoutSeconds: 5 });
    const requestedAt = BigInt(Date.now()) * 1000n;
    const at = (micros: bigint): Clock => ({ nowMicros: () => micros });
    await handlersOn(store, 'gateway', at(requestedAt)).request.execute(new RequestApprovalCommand(req));
    const deadline = requestedAt + 5_000_000n;
    const racing = withAppendBarrier(store, 2);
    const results = await Promise.allSettled([
      handlersOn(racing, 'api', at(deadline - 1n)).approve.execute(new ApproveApprovalCommand(req.approvalId, approver('bob'), 'just in time')),
      handlersOn(racing, 'gateway', at(deadline + 1n)).expire.execute(new ExpireApprovalCommand(req.approvalId)),
    ]);
    const events = await streamOf(req.approvalId);
    const outcomes = events.filter((e) => e.type === 'approval.granted' || e.type === 'approval.expired');
    expect(outcomes).toHaveLength(1);
    // The expiry never fails (it finds the approval decided); the approval fails only if the expiry won.
    expect(results[1]?.status).toBe('fulfilled');
    expect(codes(results)).toEqual(outcomes[0]?.type === 'approval.expired' ? ['APPROVAL_NOT_PENDING'] : []);
  });

  it('many approvers at once on a 1-of-M request: still exactly one grant', async () => {
    const req = request();
    await handlersOn(store, 'gateway').request.execute(new RequestApprovalCommand(req));
    const racing = withAppendBarrier(store, 6);
    const results = await Promise.allSettled(
      ['bob', 'carol', 'dave', 'erin', 'frank', 'grace'].map((who) => handlersOn(racing).approve.execute(new ApproveApprovalCommand(req.approvalId, approver(who), 'ok'))),
    );
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    expect(codes(results)).toEqual(Array(5).fill('APPROVAL_NOT_PENDING'));
    expect((await streamOf(req.approvalId)).filter((e) => e.type === 'approval.granted')).toHaveLength(1);
  });

  it('a decision on an unknown approval is APPROVAL_NOT_FOUND; a malformed id APPROVAL_ID_INVALID', async () => {
    const handlers = handlersOn(store);
    await expect(handlers.approve.execute(new ApproveApprovalCommand(randomUUID(), approver('bob'), 'ok'))).rejects.toMatchObject({ code: 'APPROVAL_NOT_FOUND' });
    await expect(handlers.approve.execute(new ApproveApprovalCommand('../../etc', approver('bob'), 'ok'))).rejects.toMatchObject({ code: 'APPROVAL_ID_INVALID' });
  });

  it('events on the stream are chained (correlation = approval id, causation = the previous event) and bound to identities', async () => {
    const req = request({ required: 2 });
    await handlersOn(store, 'gateway').request.execute(new RequestApprovalCommand(req));
    await handlersOn(store).approve.execute(new ApproveApprovalCommand(req.approvalId, approver('bob'), 'ok'));
    await handlersOn(store, 'gateway').expire.execute(new ExpireApprovalCommand(req.approvalId)).catch(() => undefined);
    await handlersOn(store).deny.execute(new DenyApprovalCommand(req.approvalId, approver('carol'), 'no'));
    const events = await streamOf(req.approvalId);
    expect(events.map((e) => e.type)).toEqual(['approval.requested', 'approval.granted', 'approval.denied']);
    expect(events.every((e) => e.correlationId === req.approvalId)).toBe(true);
    expect(events.map((e) => e.causationId)).toEqual([null, events[0]?.id, events[1]?.id]);
    expect(events.map((e) => e.identity?.subject)).toEqual(['agent-7', 'bob', 'carol']);
    expect(events.map((e) => e.source.service)).toEqual(['gateway', 'api', 'api']);
  });
});
