import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { CustodianEvent, Identity } from '@custodian/event-contracts';
import { SqliteEventStore } from '@custodian/event-store-sqlite';
import { ApprovedContinuations, CONTINUATION_MISMATCH_RULE, CONTINUATION_REPLAYED_RULE, continuationStream, type ApprovedCall } from './approved-continuations.js';

const alice: Identity = { subject: 'agent-7', issuer: 'https://idp.example', groups: ['analysts'], kind: 'agent' };
const bob: Identity = { ...alice, subject: 'agent-8' };
const SESSION_A = '0190c8e2-0000-7000-8000-00000000000a';
const SESSION_B = '0190c8e2-0000-7000-8000-00000000000b';
const policy = { name: 'p', version: 3, digest: 'e'.repeat(64) };
const call: ApprovedCall = { tool: 'confirm_transfer', argumentsDigest: 'a'.repeat(64), ruleId: 'big', policy, approvalId: '0190c8e2-0000-7000-8000-0000000000a1', approvedCommandId: '0190c8e2-0000-7000-8000-0000000000c1' };
const retry = { tool: call.tool, argumentsDigest: call.argumentsDigest, ruleId: call.ruleId, policy };

let dir: string;
let store: SqliteEventStore;
beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'custodian-mcp-continuations-'));
  store = await SqliteEventStore.open({ path: join(dir, 'events.sqlite') });
});
afterEach(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

// Two replicas: separate instances (nothing shared but the store).
const replica = (instance: string, now: () => number = Date.now): ApprovedContinuations => new ApprovedContinuations({ eventStore: store, source: { service: 'gateway', instance }, now });
const on = (identity: Identity, sessionId: string, connection = 'py') => ({ identity, sessionId, connection });

async function streamOf(connection: string, state: string): Promise<CustodianEvent[]> {
  const events: CustodianEvent[] = [];
  for await (const r of store.readStream(continuationStream(connection, state))) events.push(r.event);
  return events;
}

describe('ApprovedContinuations (event-sourced)', () => {
  it('an offer made on one replica is continued once on another; the replay is refused', async () => {
    await replica('gw-1').offer(on(alice, SESSION_A), 'state-1', call.approvedCommandId, call);
    const other = replica('gw-2');
    expect(await other.claim(on(alice, SESSION_B), 'state-1', retry)).toEqual({ kind: 'continued', call });
    expect(await other.claim(on(alice, SESSION_B), 'state-1', retry)).toMatchObject({ kind: 'refused', ruleId: CONTINUATION_REPLAYED_RULE });
    expect(await replica('gw-1').claim(on(alice, SESSION_A), 'state-1', retry)).toMatchObject({ kind: 'refused', ruleId: CONTINUATION_REPLAYED_RULE });
    const events = await streamOf('py', 'state-1');
    expect(events.map((e) => [e.type, e.source.instance])).toEqual([
      ['mcp-continuation.offered', 'gw-1'],
      ['mcp-continuation.used', 'gw-2'],
    ]);
    // The requestState itself is never recorded (it may carry server data).
    expect(JSON.stringify(events)).not.toContain('state-1');
    expect(events[1]).toMatchObject({ causationId: events[0]!.id, payload: { sessionId: SESSION_B, approvalId: call.approvalId, approvedCommandId: call.approvedCommandId } });
  });

  it('two replicas racing with the same requestState: exactly one continues', async () => {
    await replica('gw-1').offer(on(alice, SESSION_A), 'state-race', call.approvedCommandId, call);
    const claims = await Promise.all(['gw-1', 'gw-2', 'gw-3', 'gw-4'].map((instance) => replica(instance).claim(on(alice, SESSION_B), 'state-race', retry)));
    expect(claims.filter((c) => c.kind === 'continued')).toHaveLength(1);
    expect(claims.filter((c) => c.kind === 'refused' && c.ruleId === CONTINUATION_REPLAYED_RULE)).toHaveLength(3);
    expect((await streamOf('py', 'state-race')).map((e) => e.type)).toEqual(['mcp-continuation.offered', 'mcp-continuation.used']);
  });

  it('another identity, connection, tool or arguments is refused as forged and does not use the offer up', async () => {
    const gw = replica('gw-1');
    await gw.offer(on(alice, SESSION_A), 'state-2', call.approvedCommandId, call);
    expect(await gw.claim(on(bob, SESSION_B), 'state-2', retry)).toMatchObject({ kind: 'refused', ruleId: CONTINUATION_MISMATCH_RULE });
    // On another connection the same requestState is another stream: nothing was offered there.
    expect(await gw.claim(on(alice, SESSION_B, 'other'), 'state-2', retry)).toMatchObject({ kind: 'none' });
    expect(await gw.claim(on(alice, SESSION_B), 'state-2', { ...retry, tool: 'other' })).toMatchObject({ kind: 'refused', ruleId: CONTINUATION_MISMATCH_RULE });
    expect(await gw.claim(on(alice, SESSION_B), 'state-2', { ...retry, argumentsDigest: 'b'.repeat(64) })).toMatchObject({ kind: 'refused', ruleId: CONTINUATION_MISMATCH_RULE, reason: expect.stringContaining('other arguments') });
    expect(await gw.claim(on(alice, SESSION_B), 'state-2', retry)).toMatchObject({ kind: 'continued' });
  });

  it('an unknown requestState, an expired offer, or another rule or policy version is decided afresh', async () => {
    let now = Date.parse('2026-12-07T18:00:00Z');
    const gw = replica('gw-1', () => now);
    expect(await gw.claim(on(alice, SESSION_A), 'never-offered', retry)).toMatchObject({ kind: 'none' });
    await gw.offer(on(alice, SESSION_A), 'state-3', call.approvedCommandId, call);
    expect(await gw.claim(on(alice, SESSION_A), 'state-3', { ...retry, ruleId: 'other-rule' })).toMatchObject({ kind: 'none' });
    expect(await gw.claim(on(alice, SESSION_A), 'state-3', { ...retry, policy: { ...policy, version: 4, digest: 'f'.repeat(64) } })).toMatchObject({ kind: 'none' });
    now += 10 * 60_000 + 1;
    expect(await gw.claim(on(alice, SESSION_A), 'state-3', retry)).toMatchObject({ kind: 'none', reason: expect.stringContaining('expired') });
    // None of those used the offer.
    expect((await streamOf('py', 'state-3')).map((e) => e.type)).toEqual(['mcp-continuation.offered']);
  });

  it('a requestState the server hands out again is offered again: the live offer continues once more', async () => {
    const gw = replica('gw-1');
    await gw.offer(on(alice, SESSION_A), 'round-1', call.approvedCommandId, call);
    expect(await gw.claim(on(alice, SESSION_A), 'round-1', retry)).toMatchObject({ kind: 'continued' });
    const second: ApprovedCall = { ...call, approvalId: '0190c8e2-0000-7000-8000-0000000000a2', approvedCommandId: '0190c8e2-0000-7000-8000-0000000000c2' };
    await replica('gw-2').offer(on(alice, SESSION_B), 'round-1', second.approvedCommandId, second);
    expect(await gw.claim(on(alice, SESSION_B), 'round-1', retry)).toEqual({ kind: 'continued', call: second });
    expect(await gw.claim(on(alice, SESSION_B), 'round-1', retry)).toMatchObject({ kind: 'refused', ruleId: CONTINUATION_REPLAYED_RULE });
    expect((await streamOf('py', 'round-1')).map((e) => e.type)).toEqual(['mcp-continuation.offered', 'mcp-continuation.used', 'mcp-continuation.offered', 'mcp-continuation.used']);
  });
});
