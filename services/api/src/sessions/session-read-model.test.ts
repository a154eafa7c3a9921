// The sessions read model applies each event once (redelivery after a crash is a no-op) and keeps
// its checkpoint beside its rows.
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { EventFactory, type CustodianEvent } from '@custodian/event-contracts';
import type { RecordedEvent } from '@custodian/event-store';
import { dataRowsInLabel } from './query-timeline.js';
import { SessionReadModel } from './session-read-model.js';

const factory = new EventFactory({ service: 'gateway', instance: 'gw' });
const identity = { subject: 'agent-7', issuer: 'https://idp.test', groups: ['analysts'], kind: 'agent' as const };

function recorded(events: CustodianEvent[]): RecordedEvent[] {
  return events.map((event, i) => ({ event, stream: event.stream, revision: event.sequence, position: { commit: BigInt(i + 1), prepare: BigInt(i + 1) }, recordedAt: event.occurredAt }));
}

describe('SessionReadModel', () => {
  it('counts commands and decisions once, whatever the redelivery', async () => {
    const sessionId = randomUUID();
    const stream = `session-${sessionId}`;
    const commandId = randomUUID();
    const specs = [
      { type: 'session.opened', payload: { sessionId, connection: { name: 'shop', protocol: 'postgres' }, client: { address: '127.0.0.1:1' } } },
      { type: 'command.issued', payload: { sessionId, commandId, kind: 'sql', text: 'DELETE FROM orders' } },
      { type: 'policy.decided', payload: { sessionId, commandId, decision: 'block', policy: { name: 'p', version: 1, digest: 'a'.repeat(64) }, ruleId: 'r', reason: 'no' } },
    ];
    const events = recorded(specs.map((spec, sequence) => factory.create({ ...spec, stream, sequence, identity } as Parameters<EventFactory['create']>[0]) as CustodianEvent));
    const model = new SessionReadModel(':memory:');
    for (const event of [...events, ...events, events[1]!]) model.apply(event);
    expect(model.get(sessionId)?.counts).toEqual({ commands: 1, allowed: 0, blocked: 1, held: 0, masked: 0 });
    expect(model.list({ limit: 10 }).map((s) => s.sessionId)).toEqual([sessionId]);
    expect(model.list({ limit: 10, visibleTo: { ...identity, subject: 'someone-else' } })).toEqual([]);
    await model.save('sub', { commit: 3n, prepare: 3n });
    expect(await model.load('sub')).toEqual({ commit: 3n, prepare: 3n });
    model.close();
  });

  it('a session without session.closed is live while events arrive, quiet after QUIET_AFTER_MS without one, ended once closed', () => {
    let now = Date.now();
    const model = new SessionReadModel(':memory:', { quietAfterMs: 60_000, now: () => now });
    const open = randomUUID();
    const closed = randomUUID();
    for (const sessionId of [open, closed]) {
      const stream = `session-${sessionId}`;
      const specs = [
        { type: 'session.opened', payload: { sessionId, connection: { name: 'bastion', protocol: 'ssh' }, client: { address: '127.0.0.1:1' } } },
        ...(sessionId === closed ? [{ type: 'session.closed', payload: { sessionId, reason: 'client-closed', durationMs: 5, frames: { clientToUpstream: 0, upstreamToClient: 0 }, bytes: { clientToUpstream: 0, upstreamToClient: 0 } } }] : []),
      ];
      for (const event of recorded(specs.map((spec, sequence) => factory.create({ ...spec, stream, sequence, identity } as Parameters<EventFactory['create']>[0]) as CustodianEvent))) model.apply(event);
    }
    expect(model.get(open)).toMatchObject({ state: 'live', live: true, closedAt: null });
    expect(model.get(closed)).toMatchObject({ state: 'ended', live: false });
    expect(model.list({ limit: 10, state: 'live' }).map((s) => s.sessionId)).toEqual([open]);
    // The gateway died without closing it: no event for longer than the window.
    now += 61_000;
    expect(model.get(open)).toMatchObject({ state: 'quiet', live: false, closedAt: null });
    expect(model.list({ limit: 10, state: 'live' })).toEqual([]);
    expect(model.list({ limit: 10, state: 'quiet' }).map((s) => s.sessionId)).toEqual([open]);
    expect(model.list({ limit: 10, state: 'ended' }).map((s) => s.sessionId)).toEqual([closed]);
    expect(model.list({ limit: 10, sessionIds: [closed] }).map((s) => s.sessionId)).toEqual([closed]);
    expect(model.list({ limit: 10, sessionIds: [] })).toEqual([]);
    model.close();
  });

  it('reads DataRow counts from frame labels', () => {
    expect(dataRowsInLabel('RowDescription,DataRow*3,CommandComplete,ReadyForQuery')).toBe(3);
    expect(dataRowsInLabel('DataRow,DataRow*2')).toBe(3);
    expect(dataRowsInLabel('CommandComplete')).toBe(0);
    expect(dataRowsInLabel(undefined)).toBe(0);
  });
});
