import { describe, expect, it } from 'vitest';
import { InMemoryHumanSessionStore } from './human-session-store.js';

const alice = { subject: 'alice', issuer: 'https://idp.example.com', groups: ['dba'], kind: 'human' as const };

describe('InMemoryHumanSessionStore', () => {
  it('creates unguessable sessions that expire', async () => {
    let now = 1_000_000;
    const store = new InMemoryHumanSessionStore({ now: () => now });
    const session = await store.create(alice, new Date(now + 60_000));
    expect(session.id).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect((await store.get(session.id))?.identity).toEqual(alice);
    now += 60_000;
    expect(await store.get(session.id)).toBeUndefined();
    expect(store.size).toBe(0);
  });

  it('caps lifetime, deletes on logout and evicts the oldest beyond the bound', async () => {
    const now = 5_000_000;
    const store = new InMemoryHumanSessionStore({ now: () => now, maxLifetimeMs: 1_000, maxSessions: 2 });
    const first = await store.create(alice, new Date(now + 3_600_000));
    expect(first.expiresAt.getTime()).toBe(now + 1_000);
    const second = await store.create(alice, new Date(now + 500));
    await store.create(alice, new Date(now + 500));
    expect(await store.get(first.id)).toBeUndefined();
    await store.delete(second.id);
    expect(await store.get(second.id)).toBeUndefined();
    expect(store.size).toBe(1);
  });
});
