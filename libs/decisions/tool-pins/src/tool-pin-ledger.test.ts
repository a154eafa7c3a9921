import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { CustodianEvent, Identity } from '@custodian/event-contracts';
import { SqliteEventStore } from '@custodian/event-store-sqlite';
import { ToolPinError, ToolPinLedger, toolPinStream } from './tool-pin-ledger.js';

const agent: Identity = { subject: 'agent-7', issuer: 'https://idp.example', groups: ['analysts'], kind: 'agent' };
const human: Identity = { subject: 'alice', issuer: 'https://idp.example', groups: ['mcp-admins'], kind: 'human' };
const A = 'a'.repeat(64);
const B = 'b'.repeat(64);
const C = 'c'.repeat(64);

let dir: string;
let store: SqliteEventStore;

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'custodian-tool-pins-'));
  store = await SqliteEventStore.open({ path: join(dir, 'events.sqlite') });
});

afterEach(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

const gatewayLedger = (): ToolPinLedger => new ToolPinLedger({ eventStore: store, source: { service: 'gateway', instance: 'gw-1' }, connection: 'github' });

async function streamEvents(): Promise<CustodianEvent[]> {
  const events: CustodianEvent[] = [];
  for await (const r of store.readStream(toolPinStream('github'))) events.push(r.event);
  return events;
}

describe('ToolPinLedger', () => {
  it('pins a first-seen definition, records a change once, and a restarted ledger rebuilds both from the log', async () => {
    const ledger = gatewayLedger();
    expect(await ledger.observe('search', A, { identity: agent })).toEqual({ status: 'first-seen', fingerprint: A });
    expect(await ledger.observe('search', A, { identity: agent })).toEqual({ status: 'pinned', fingerprint: A });
    expect(await ledger.observe('search', B, { identity: agent, description: 'now also uploads ~/.ssh' })).toEqual({ status: 'changed', previous: A, fingerprint: B, newlyDetected: true });
    expect(await ledger.observe('search', B, { identity: agent })).toMatchObject({ status: 'changed', newlyDetected: false });

    const restarted = gatewayLedger();
    await restarted.refresh();
    expect(restarted.get('search')).toMatchObject({ fingerprint: A, changed: { fingerprint: B, description: 'now also uploads ~/.ssh' } });
    // The same change seen again after the restart is not recorded twice.
    expect(await restarted.observe('search', B, { identity: agent })).toMatchObject({ status: 'changed', previous: A, newlyDetected: false });
    expect((await streamEvents()).map((e) => e.type)).toEqual(['tool-definition.pinned', 'tool-definition.changed']);
  });

  it('accepts only the waiting fingerprint, records who accepted with old and new fingerprints, and the gateway sees it on refresh', async () => {
    const gateway = gatewayLedger();
    await gateway.observe('search', A, { identity: agent });
    const api = new ToolPinLedger({ eventStore: store, source: { service: 'api', instance: 'api-1' }, connection: 'github' });
    await expect(api.accept('search', B, human, 'looked')).rejects.toMatchObject({ code: 'TOOL_PIN_NOT_CHANGED' });
    await expect(api.accept('unknown', B, human, 'looked')).rejects.toMatchObject({ code: 'TOOL_PIN_NOT_FOUND' });
    await gateway.observe('search', B, { identity: agent });
    await expect(api.accept('search', C, human, 'looked')).rejects.toMatchObject({ code: 'TOOL_PIN_FINGERPRINT_MISMATCH' });
    await expect(api.accept('search', B, human, '  ')).rejects.toBeInstanceOf(ToolPinError);
    expect(await api.accept('search', B, human, 'reviewed the new description')).toMatchObject({ fingerprint: B });
    expect(gateway.get('search')).toMatchObject({ fingerprint: A, changed: { fingerprint: B } });
    await gateway.refresh();
    expect(gateway.get('search')?.fingerprint).toBe(B);
    expect(gateway.get('search')?.changed).toBeUndefined();
    const accepted = (await streamEvents()).at(-1)!;
    expect(accepted).toMatchObject({ type: 'tool-definition.accepted', identity: { subject: 'alice' }, source: { service: 'api' }, payload: { tool: 'search', previousFingerprint: A, fingerprint: B, justification: 'reviewed the new description' } });
  });

  it('two writers on one stream never record contradicting pins (optimistic concurrency)', async () => {
    const one = gatewayLedger();
    const two = new ToolPinLedger({ eventStore: store, source: { service: 'gateway', instance: 'gw-2' }, connection: 'github' });
    const [first, second] = await Promise.all([one.observe('search', A, { identity: agent }), two.observe('search', B, { identity: agent })]);
    expect([first.status, second.status].sort()).toEqual(['changed', 'first-seen']);
    const events = await streamEvents();
    expect(events.map((e) => e.sequence)).toEqual([0, 1]);
    expect(events.map((e) => e.type)).toEqual(['tool-definition.pinned', 'tool-definition.changed']);
  });
});
