// The gate a gateway holds commands on, over a real (SQLite) event store, with approvers deciding
// through the same command handlers the API uses.
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CustodianEvent, Identity } from '@custodian/event-contracts';
import { SqliteEventStore } from '@custodian/event-store-sqlite';
import type { ApprovalRequest } from '@custodian/session-pipeline';
import { TEST_POLICY, boundApprovalRequest } from './testing/index.js';
import { ApprovalCommandHandlers, ApproveApprovalCommand, DenyApprovalCommand, RequestApprovalCommand } from './approval-commands.js';
import { approvalStream } from './approval.js';
import { ApprovalRepository } from './approval-repository.js';
import { EventSourcedApprovalGate } from './event-sourced-approval-gate.js';

const dir = mkdtempSync(join(tmpdir(), 'custodian-approval-gate-'));
let store: SqliteEventStore;
let api: ApprovalCommandHandlers;
const gates: EventSourcedApprovalGate[] = [];

const agent: Identity = { subject: 'agent-7', issuer: 'https://idp.test', groups: ['agents'], kind: 'agent' };
const bob: Identity = { subject: 'bob', issuer: 'https://idp.test', groups: ['dba-approvers'], kind: 'human' };
const carol: Identity = { subject: 'carol', issuer: 'https://idp.test', groups: ['dba-approvers'], kind: 'human' };

beforeAll(async () => {
  store = await SqliteEventStore.open({ path: join(dir, 'events.sqlite'), pollIntervalMs: 50 });
  api = new ApprovalCommandHandlers(new ApprovalRepository({ eventStore: store, source: { service: 'api', instance: 'api-test' } }));
});

afterAll(async () => {
  for (const gate of gates) await gate.close();
  await store?.close();
  rmSync(dir, { recursive: true, force: true });
});

async function startGate(instance: string, readModelPath = ':memory:'): Promise<{ gate: EventSourcedApprovalGate; cancelled: string[] }> {
  const gate = new EventSourcedApprovalGate({ eventStore: store, instance, readModelPath, pollIntervalMs: 50 });
  gates.push(gate);
  const cancelled = await gate.start();
  return { gate, cancelled };
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
    timeoutSeconds: 30,
    grantScope: { kind: 'once' },
    language: 'sql',
    policy: TEST_POLICY,
    ...overrides,
  });
}

async function streamOf(approvalId: string): Promise<CustodianEvent[]> {
  const events: CustodianEvent[] = [];
  for await (const r of store.readStream(approvalStream(approvalId))) events.push(r.event);
  return events;
}

/** Resolves once the approval was requested (the gate appended approval.requested). */
async function requested(approvalId: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if ((await store.streamRevision(approvalStream(approvalId))) !== 'no-stream') return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`approval ${approvalId} was never requested`);
}

describe('EventSourcedApprovalGate', () => {
  it('holds until an approver grants, then resolves granted with the approvers', async () => {
    const { gate } = await startGate('gw-grant');
    const req = request();
    const outcome = gate.request(req, new AbortController().signal);
    await requested(req.approvalId);
    await api.approve.execute(new ApproveApprovalCommand(req.approvalId, bob, 'ticket OPS-42'));
    const result = await outcome;
    expect(result).toMatchObject({ outcome: 'granted', approvers: [{ subject: 'bob' }] });
    // The outcome names the digest the approver approved: the one the gateway asked about.
    expect(req.commandDigest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(result.outcome === 'granted' && result.commandDigest).toBe(req.commandDigest);
    const events = await streamOf(req.approvalId);
    expect(events[1]).toMatchObject({ type: 'approval.granted', payload: { commandDigest: req.commandDigest } });
    expect(events[1]?.type === 'approval.granted' && events[1].payload.grant?.covers).toBeUndefined();
    expect(events[0]).toMatchObject({ type: 'approval.requested', identity: agent, source: { service: 'gateway', instance: 'gw-grant' }, payload: { command: req.command } });
    expect(result.outcome === 'granted' && result.grantId).toBe(events[1]?.type === 'approval.granted' && events[1].payload.grant?.grantId);
    // A `once` grant never covers a later command.
    expect(await gate.activeGrant(agent, 'orders-prod', 'hold-deletes', TEST_POLICY)).toBeNull();
  });

  it('a decision wakes the waiting request as soon as the live projection reads it, not at the next poll', async () => {
    // Polling once an hour: only the projection's wake-up can resolve it within the test's time.
    const gate = new EventSourcedApprovalGate({ eventStore: store, instance: 'gw-wake', pollIntervalMs: 3_600_000 });
    gates.push(gate);
    await gate.start();
    const req = request();
    const outcome = gate.request(req, new AbortController().signal);
    await requested(req.approvalId);
    await api.approve.execute(new ApproveApprovalCommand(req.approvalId, bob, 'ticket OPS-43'));
    await expect(outcome).resolves.toMatchObject({ outcome: 'granted', approvers: [{ subject: 'bob' }] });
  });

  it('2-of-3: one approval is not enough; the second resolves it', async () => {
    const { gate } = await startGate('gw-two');
    const req = request({ required: 2 });
    let settled = false;
    const outcome = gate.request(req, new AbortController().signal).finally(() => (settled = true));
    await requested(req.approvalId);
    await api.approve.execute(new ApproveApprovalCommand(req.approvalId, bob, 'ok'));
    // The gate has read the first approval (its stream revision moved) and still waits.
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(settled).toBe(false);
    await api.approve.execute(new ApproveApprovalCommand(req.approvalId, carol, 'ok too'));
    expect(await outcome).toMatchObject({ outcome: 'granted', approvers: [{ subject: 'bob' }, { subject: 'carol' }] });
  });

  it('resolves denied with the approver and the justification', async () => {
    const { gate } = await startGate('gw-deny');
    const req = request();
    const outcome = gate.request(req, new AbortController().signal);
    await requested(req.approvalId);
    await api.deny.execute(new DenyApprovalCommand(req.approvalId, bob, 'not during the freeze'));
    expect(await outcome).toEqual({ outcome: 'denied', approver: { subject: 'bob', issuer: 'https://idp.test', groups: ['dba-approvers'] }, justification: 'not during the freeze' });
  });

  it('records approval.expired at the deadline and resolves expired; a late approval is refused', async () => {
    const { gate } = await startGate('gw-expire');
    const req = request({ timeoutSeconds: 1 });
    const result = await gate.request(req, new AbortController().signal);
    expect(result).toEqual({ outcome: 'expired' });
    const events = await streamOf(req.approvalId);
    expect(events.map((e) => e.type)).toEqual(['approval.requested', 'approval.expired']);
    expect(events[1]?.identity).toMatchObject({ subject: 'custodian-gateway/gw-expire', kind: 'service' });
    await expect(api.approve.execute(new ApproveApprovalCommand(req.approvalId, bob, 'late'))).rejects.toMatchObject({ code: 'APPROVAL_NOT_PENDING' });
  });

  it('the client going away cancels the approval (client-disconnected, bound to the requester); approving it afterwards is refused', async () => {
    const { gate } = await startGate('gw-abort');
    const req = request();
    const client = new AbortController();
    const outcome = gate.request(req, client.signal);
    await requested(req.approvalId);
    client.abort();
    expect(await outcome).toEqual({ outcome: 'cancelled', reason: 'client-disconnected' });
    const events = await streamOf(req.approvalId);
    expect(events.at(-1)).toMatchObject({ type: 'approval.cancelled', identity: agent, payload: { reason: 'client-disconnected' } });
    await expect(api.approve.execute(new ApproveApprovalCommand(req.approvalId, bob, 'ok'))).rejects.toMatchObject({ code: 'APPROVAL_NOT_PENDING' });
  });

  it('shutting down cancels every waiting request (gateway-restarted) and refuses new ones', async () => {
    const { gate } = await startGate('gw-close');
    const req = request();
    const outcome = gate.request(req, new AbortController().signal);
    await requested(req.approvalId);
    await gate.close();
    expect(await outcome).toEqual({ outcome: 'cancelled', reason: 'gateway-restarted' });
    await expect(gate.request(request(), new AbortController().signal)).rejects.toMatchObject({ code: 'APPROVAL_GATE_CLOSED' });
  });

  it('a restarted gateway cancels the approvals it left pending (gateway-restarted), and only its own', async () => {
    // What a killed gateway leaves behind: requests recorded by instance gw-crash, nobody waiting.
    const crashed = new ApprovalCommandHandlers(new ApprovalRepository({ eventStore: store, source: { service: 'gateway', instance: 'gw-crash' } }));
    const other = new ApprovalCommandHandlers(new ApprovalRepository({ eventStore: store, source: { service: 'gateway', instance: 'gw-other' } }));
    const mine = request();
    const decided = request();
    const theirs = request();
    await crashed.request.execute(new RequestApprovalCommand(mine));
    await crashed.request.execute(new RequestApprovalCommand(decided));
    await api.deny.execute(new DenyApprovalCommand(decided.approvalId, bob, 'no'));
    await other.request.execute(new RequestApprovalCommand(theirs));

    const { cancelled } = await startGate('gw-crash', join(dir, 'gw-crash.sqlite'));
    expect(cancelled).toEqual([mine.approvalId]);
    expect((await streamOf(mine.approvalId)).at(-1)).toMatchObject({ type: 'approval.cancelled', payload: { reason: 'gateway-restarted' }, identity: { kind: 'service' } });
    expect((await streamOf(decided.approvalId)).at(-1)?.type).toBe('approval.denied');
    expect((await streamOf(theirs.approvalId)).map((e) => e.type)).toEqual(['approval.requested']);
    // An approver arriving late cannot revive it: the held command never runs.
    await expect(api.approve.execute(new ApproveApprovalCommand(mine.approvalId, bob, 'ok'))).rejects.toMatchObject({ code: 'APPROVAL_NOT_PENDING' });
  });

  it('a window grant covers this identity on this connection under this rule until it ends, on every gateway', async () => {
    const { gate } = await startGate('gw-window');
    const { gate: elsewhere } = await startGate('gw-window-2');
    const req = request({ grantScope: { kind: 'window', windowSeconds: 600 } });
    const outcome = gate.request(req, new AbortController().signal);
    await requested(req.approvalId);
    await api.approve.execute(new ApproveApprovalCommand(req.approvalId, bob, 'migration window'));
    const result = await outcome;
    expect(result.outcome).toBe('granted');
    const grant = await gate.activeGrant(agent, 'orders-prod', 'hold-deletes', TEST_POLICY);
    expect(grant).toMatchObject({ approvalId: req.approvalId, grantId: result.outcome === 'granted' ? result.grantId : 'none' });
    expect(await gate.activeGrant({ ...agent, subject: 'agent-8' }, 'orders-prod', 'hold-deletes', TEST_POLICY)).toBeNull();
    expect(await gate.activeGrant(agent, 'billing-prod', 'hold-deletes', TEST_POLICY)).toBeNull();
    expect(await gate.activeGrant(agent, 'orders-prod', 'hold-drops', TEST_POLICY)).toBeNull();
    expect(await gate.activeGrant({ ...agent, issuer: 'https://other-idp.test' }, 'orders-prod', 'hold-deletes', TEST_POLICY)).toBeNull();
    // The grant names what it covers; a new policy version (or another document under the same version) ends it.
    const covers = { identity: { issuer: agent.issuer, subject: agent.subject }, connection: { name: 'orders-prod', protocol: 'postgres' }, ruleId: 'hold-deletes', policy: TEST_POLICY };
    expect(grant?.covers).toEqual(covers);
    expect((await streamOf(req.approvalId))[1]?.payload).toMatchObject({ commandDigest: req.commandDigest, grant: { covers } });
    expect(await gate.activeGrant(agent, 'orders-prod', 'hold-deletes', { ...TEST_POLICY, version: TEST_POLICY.version + 1, digest: 'b'.repeat(64) })).toBeNull();
    expect(await gate.activeGrant(agent, 'orders-prod', 'hold-deletes', { ...TEST_POLICY, digest: 'b'.repeat(64) })).toBeNull();
    expect(await gate.activeGrant(agent, 'orders-prod', 'hold-deletes', { ...TEST_POLICY, name: 'billing' })).toBeNull();
    // Another gateway learns it from the projection.
    for (let i = 0; i < 250 && (await elsewhere.activeGrant(agent, 'orders-prod', 'hold-deletes', TEST_POLICY)) === null; i++) await new Promise((r) => setTimeout(r, 20));
    expect(await elsewhere.activeGrant(agent, 'orders-prod', 'hold-deletes', TEST_POLICY)).toMatchObject({ approvalId: req.approvalId });
    // It lasts windowSeconds from the approval; at its end, require-approval applies again.
    const ends = Date.parse(grant?.expiresAt ?? '');
    expect((await streamOf(req.approvalId))[1]?.payload).toMatchObject({ grant: { scope: { kind: 'window', windowSeconds: 600 }, expiresAt: grant?.expiresAt } });
    for (const g of [gate, elsewhere]) {
      expect(g.readModel.activeGrant(agent, 'orders-prod', 'hold-deletes', TEST_POLICY, ends - 1)).not.toBeNull();
      expect(g.readModel.activeGrant(agent, 'orders-prod', 'hold-deletes', TEST_POLICY, ends)).toBeNull();
    }
  });

  it('rejects when the request cannot be recorded (the caller fails closed)', async () => {
    const closedStore = await SqliteEventStore.open({ path: join(dir, 'closed.sqlite') });
    const gate = new EventSourcedApprovalGate({ eventStore: closedStore, instance: 'gw-down' });
    gates.push(gate);
    await closedStore.close();
    await expect(gate.request(request(), new AbortController().signal)).rejects.toMatchObject({ code: 'EVENT_STORE_CLOSED' });
    await expect(gate.request(request({ approverGroups: [] }), new AbortController().signal)).rejects.toMatchObject({ code: 'APPROVAL_REQUEST_INVALID' });
  });
});
