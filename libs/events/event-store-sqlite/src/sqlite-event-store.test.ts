import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CustodianEvent } from '@custodian/event-contracts';
import { comparePositions, type RecordedEvent } from '@custodian/event-store';
import { ContractEvents, describeEventStoreContract } from '@custodian/event-store/testing';
import BetterSqlite3 from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { SqliteEventStore } from './sqlite-event-store.js';

const PAGE_SIZE = 50;
const dirs: string[] = [];

function tempDbPath(): string {
  const dir = mkdtempSync(join(tmpdir(), 'custodian-event-store-'));
  dirs.push(dir);
  return join(dir, 'events.db');
}

afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** Writes a row as an older build would have, through a separate raw connection. */
function insertRaw(path: string, event: Readonly<Record<string, unknown>>): void {
  const db = new BetterSqlite3(path);
  try {
    db.prepare(
      `INSERT INTO events (id, stream, revision, type, schema_version, occurred_at, recorded_at, json)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
    ).run(event['id'], event['stream'], event['sequence'], event['type'], event['schemaVersion'], event['occurredAt'], '2026-01-01T00:00:00.000000Z', JSON.stringify(event));
  } finally {
    db.close();
  }
}

describeEventStoreContract(
  'SQLite',
  async () => {
    const path = tempDbPath();
    const store = await SqliteEventStore.open({ path, pageSize: PAGE_SIZE, pollIntervalMs: 50 });
    return {
      store,
      cleanup: () => store.close(),
      writeStoredEventUnchecked: async (event) => insertRaw(path, event),
    };
  },
  { pageSize: PAGE_SIZE },
);

async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of iterable) out.push(item);
  return out;
}

async function waitUntil(predicate: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe('SqliteEventStore', () => {
  const events = new ContractEvents();

  async function storeWithOneSession(path = tempDbPath()) {
    const store = await SqliteEventStore.open({ path, pollIntervalMs: 50 });
    const { sessionId, stream } = events.newSession();
    const batch: CustodianEvent[] = [events.opened(stream, sessionId), ...events.commands(stream, sessionId, 1, 2)];
    await store.append(stream, batch, { expectedRevision: 'no-stream' });
    return { store, path, stream, sessionId, batch };
  }

  it('opens in WAL mode with synchronous=FULL, foreign keys and a busy timeout', async () => {
    const store = await SqliteEventStore.open({ path: tempDbPath(), busyTimeoutMs: 3_000 });
    try {
      expect(store.readSettings()).toEqual({ journalMode: 'wal', synchronous: 'FULL', foreignKeys: true, busyTimeoutMs: 3_000 });
      await expect(store.ping()).resolves.toBeUndefined();
    } finally {
      await store.close();
    }
  });

  it('enforces append-only in the database: raw UPDATE, DELETE and REPLACE through another connection fail', async () => {
    const { store, path, stream, batch } = await storeWithOneSession();
    const raw = new BetterSqlite3(path);
    try {
      expect(() => raw.prepare("UPDATE events SET json = '{}' WHERE stream = ?").run(stream)).toThrow(/append-only: UPDATE refused/);
      expect(() => raw.prepare('DELETE FROM events WHERE stream = ?').run(stream)).toThrow(/append-only: DELETE refused/);
      expect(() => raw.prepare('DELETE FROM events').run()).toThrow(/append-only/);
      // REPLACE deletes without firing DELETE triggers when recursive_triggers is off (the default).
      expect(() =>
        raw
          .prepare(
            `INSERT OR REPLACE INTO events (position, id, stream, revision, type, schema_version, occurred_at, recorded_at, json)
             SELECT position, id, stream, revision, type, schema_version, occurred_at, recorded_at, '{}' FROM events WHERE revision = 0 AND stream = ?`,
          )
          .run(stream),
      ).toThrow(/append-only/);
      // A gap in a stream is refused by the database too.
      expect(() =>
        raw
          .prepare(`INSERT INTO events (id, stream, revision, type, schema_version, occurred_at, recorded_at, json) VALUES (?, ?, 7, 'x', 1, 'x', 'x', '{}')`)
          .run('gap-id', stream),
      ).toThrow(/must follow the last one/);
    } finally {
      raw.close();
    }
    expect((await collect(store.readStream(stream))).map((r) => r.event)).toEqual(batch);
    await store.close();
  });

  it('records its schema version and does not re-apply migrations on reopen', async () => {
    const path = tempDbPath();
    await (await SqliteEventStore.open({ path })).close();
    await (await SqliteEventStore.open({ path })).close();
    const raw = new BetterSqlite3(path, { readonly: true });
    try {
      expect(raw.prepare('SELECT version FROM schema_migrations').all()).toEqual([{ version: 1 }]);
    } finally {
      raw.close();
    }
  });

  it('keeps events and checkpoints across close and reopen', async () => {
    const { store, path, stream, sessionId, batch } = await storeWithOneSession();
    const sub = store.subscribeToAll({ subscriptionId: 'projector', from: 'start', checkpointEvery: 1000, handler: () => undefined });
    await sub.caughtUp;
    await store.close();

    const reopened = await SqliteEventStore.open({ path });
    try {
      expect((await collect(reopened.readStream(stream))).map((r) => r.event)).toEqual(batch);
      expect(await reopened.streamRevision(stream)).toBe(2);
      expect(await reopened.checkpoints.load('projector')).toEqual({ commit: 3n, prepare: 3n });
      const next = await reopened.append(stream, events.commands(stream, sessionId, 3, 1), { expectedRevision: 2 });
      expect(next.position).toEqual({ commit: 4n, prepare: 4n });
    } finally {
      await reopened.close();
    }
  });

  it('delivers appends made through another connection to a live subscription (poll)', async () => {
    const { store: writer, path, stream, sessionId } = await storeWithOneSession();
    const reader = await SqliteEventStore.open({ path, pollIntervalMs: 25 });
    const seen: RecordedEvent[] = [];
    const sub = reader.subscribeToAll({ subscriptionId: 'other-process', from: 'start', handler: (r) => void seen.push(r) });
    try {
      await sub.caughtUp;
      expect(seen).toHaveLength(3);
      const more = events.commands(stream, sessionId, 3, 2);
      // A raw connection, as another process writes: no store instance here signals its commit.
      for (const event of more) insertRaw(path, event as unknown as Record<string, unknown>);
      await waitUntil(() => seen.length === 5, 5_000);
      expect(seen.slice(3).map((r) => r.event)).toEqual(more);
    } finally {
      await reader.close();
      await writer.close();
    }
  });

  it('wakes the live subscriptions of another instance on the same file in this process at its commit, not at its poll (cross-thread-commits.ts)', async () => {
    const { store: writer, path, stream, sessionId } = await storeWithOneSession();
    // Spelled differently, the same file; polling once an hour: only the commit signal can deliver in time.
    const reader = await SqliteEventStore.open({ path: join(path, '..', '.', 'events.db'), pollIntervalMs: 3_600_000 });
    const seen: RecordedEvent[] = [];
    const sub = reader.subscribeToAll({ subscriptionId: 'other-thread', from: 'start', handler: (r) => void seen.push(r) });
    try {
      await sub.caughtUp;
      expect(seen).toHaveLength(3);
      const more = events.commands(stream, sessionId, 3, 2);
      await writer.append(stream, more, { expectedRevision: 2 });
      await waitUntil(() => seen.length === 5, 30_000);
      expect(seen.slice(3).map((r) => r.event)).toEqual(more);
    } finally {
      await reader.close();
      await writer.close();
    }
  });

  it('two instances on one file append concurrently: each expected revision is decided inside the write transaction, positions stay dense', async () => {
    const path = tempDbPath();
    const [a, b] = await Promise.all([SqliteEventStore.open({ path }), SqliteEventStore.open({ path })]);
    try {
      const contested = events.newSession();
      const own = Array.from({ length: 20 }, () => events.newSession());
      const outcomes = await Promise.allSettled([
        a.append(contested.stream, [events.opened(contested.stream, contested.sessionId)], { expectedRevision: 'no-stream' }),
        b.append(contested.stream, [events.opened(contested.stream, contested.sessionId)], { expectedRevision: 'no-stream' }),
        ...own.map((s, i) => (i % 2 === 0 ? a : b).append(s.stream, [events.opened(s.stream, s.sessionId)], { expectedRevision: 'no-stream' })),
      ]);
      const [first, second, ...rest] = outcomes;
      // Two different first events for one stream, both expecting no stream: exactly one is stored.
      expect([first!.status, second!.status].sort()).toEqual(['fulfilled', 'rejected']);
      expect([first, second].find((o) => o!.status === 'rejected')).toMatchObject({ reason: { code: 'EVENT_STORE_WRONG_EXPECTED_REVISION' } });
      expect(rest.every((o) => o.status === 'fulfilled')).toBe(true);
      const positions: bigint[] = [];
      for await (const recorded of a.readAll()) positions.push(recorded.position.commit);
      expect(positions).toEqual(Array.from({ length: 21 }, (_, i) => BigInt(i + 1)));
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it('group-commits appends of the same tick; a refused one fails alone', async () => {
    const store = await SqliteEventStore.open({ path: tempDbPath() });
    try {
      const sessions = Array.from({ length: 5 }, () => events.newSession());
      const outcomes = await Promise.allSettled(
        sessions.map((s, i) => store.append(s.stream, [events.opened(s.stream, s.sessionId)], { expectedRevision: i === 2 ? 'stream-exists' : 'no-stream' })),
      );
      expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'fulfilled', 'fulfilled']);
      expect(outcomes[2]).toMatchObject({ reason: { code: 'EVENT_STORE_WRONG_EXPECTED_REVISION' } });
      const positions = outcomes.flatMap((o) => (o.status === 'fulfilled' ? [o.value.position] : []));
      // The savepoint of the refused append was rolled back; positions stay dense in commit order.
      expect(positions.map((p) => p.commit)).toEqual([1n, 2n, 3n, 4n]);
      expect(await store.streamRevision(sessions[2]!.stream)).toBe('no-stream');
      const all = await collect(store.readAll());
      expect(all.map((r) => r.stream)).toEqual([0, 1, 3, 4].map((i) => sessions[i]!.stream));
      for (let i = 1; i < all.length; i++) expect(comparePositions(all[i - 1]!.position, all[i]!.position)).toBeLessThan(0);
    } finally {
      await store.close();
    }
  });

  it('reports a stored row that contradicts its envelope as corrupt instead of returning it', async () => {
    const path = tempDbPath();
    const store = await SqliteEventStore.open({ path });
    const { sessionId, stream } = events.newSession();
    const opened = events.opened(stream, sessionId);
    const raw = new BetterSqlite3(path);
    try {
      raw
        .prepare(`INSERT INTO events (id, stream, revision, type, schema_version, occurred_at, recorded_at, json) VALUES (?, ?, 0, ?, 2, ?, ?, ?)`)
        .run(opened.id, 'session-elsewhere', opened.type, opened.occurredAt, opened.occurredAt, JSON.stringify(opened));
    } finally {
      raw.close();
    }
    await expect(collect(store.readAll())).rejects.toMatchObject({ code: 'EVENT_STORE_CORRUPT' });
    await store.close();
  });

  it('parses a row once for all its readers (frozen), and again when its text changed underneath', async () => {
    const { store, path, stream } = await storeWithOneSession();
    try {
      const first = await collect(store.readAll());
      const second = await collect(store.readStream(stream));
      expect(second.map((r) => r.event)).toEqual(first.map((r) => r.event));
      expect(second[0]!.event).toBe(first[0]!.event);
      expect(Object.isFrozen(first[0]!.event)).toBe(true);
      expect(Object.isFrozen(first[0]!.event.payload)).toBe(true);
      // Tampered with (triggers dropped, as an attacker with the file could): the new text is read and validated, not the cached event.
      const raw = new BetterSqlite3(path);
      try {
        raw.exec('DROP TRIGGER events_refuse_update');
        raw.prepare('UPDATE events SET json = ? WHERE stream = ? AND revision = 0').run(JSON.stringify({ ...first[0]!.event, type: 'no.such.type' }), stream);
      } finally {
        raw.close();
      }
      await expect(collect(store.readAll())).rejects.toMatchObject({ code: 'EVENT_STORE_CORRUPT' });
    } finally {
      await store.close();
    }
  });
  it('keeps the most recently parsed rows for readers, evicting the oldest first', async () => {
    const store = await SqliteEventStore.open({ path: tempDbPath() });
    try {
      const { sessionId, stream } = events.newSession();
      // More rows than are kept (4096): the first ones read are evicted, the last ones are not.
      const total = 4_200;
      await store.append(stream, [events.opened(stream, sessionId)], { expectedRevision: 'no-stream' });
      for (let from = 1; from < total; from += 200) await store.append(stream, events.commands(stream, sessionId, from, Math.min(200, total - from)), { expectedRevision: from - 1 });
      const first = await collect(store.readAll());
      expect(first).toHaveLength(total);
      // The last 4096 are handed out again as they were (reading kept rows keeps nothing new)…
      const newest = await collect(store.readStream(stream, { direction: 'backwards', maxCount: 4_096 }));
      newest.reverse().forEach((r, i) => expect(r.event).toBe(first[total - 4_096 + i]!.event));
      // …the oldest were evicted: parsed and validated again, equal but not the same objects.
      const oldest = await collect(store.readStream(stream, { maxCount: total - 4_096 }));
      oldest.forEach((r, i) => {
        expect(r.event).not.toBe(first[i]!.event);
        expect(r.event).toEqual(first[i]!.event);
      });
    } finally {
      await store.close();
    }
  });

  it('commits checkpoints with the appends of the same group; a refused checkpoint fails alone', async () => {
    const path = tempDbPath();
    const store = await SqliteEventStore.open({ path });
    const raw = new BetterSqlite3(path);
    try {
      // A trigger only this test has: saving this one checkpoint fails inside the group transaction.
      raw.exec(`CREATE TRIGGER test_poison_checkpoint BEFORE INSERT ON checkpoints WHEN NEW.subscription_id = 'poisoned' BEGIN SELECT RAISE(ABORT, 'poisoned checkpoint'); END`);
      const a = events.newSession();
      const b = events.newSession();
      const position = { commit: 7n, prepare: 7n };
      const outcomes = await Promise.allSettled([
        store.append(a.stream, [events.opened(a.stream, a.sessionId)], { expectedRevision: 'no-stream' }),
        store.checkpoints.save('projector', { commit: 1n, prepare: 1n }),
        store.checkpoints.save('poisoned', position),
        store.checkpoints.save('projector', position),
        store.append(b.stream, [events.opened(b.stream, b.sessionId)], { expectedRevision: 'no-stream' }),
      ]);
      expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'fulfilled', 'fulfilled']);
      expect(outcomes[2]).toMatchObject({ reason: { code: 'EVENT_STORE_UNAVAILABLE', message: expect.stringContaining('poisoned checkpoint') } });
      // Acknowledged means committed: another connection sees them. The later save of the same subscription wins.
      expect(raw.prepare('SELECT subscription_id, position FROM checkpoints ORDER BY subscription_id').all()).toEqual([{ subscription_id: 'projector', position: 'C7/P7' }]);
      expect(await store.checkpoints.load('projector')).toEqual(position);
      expect((await collect(store.readAll())).map((r) => r.stream)).toEqual([a.stream, b.stream]);
    } finally {
      raw.close();
      await store.close();
    }
  });

  it('hands readers in this process the factory events it appended, and parses anything else', async () => {
    const store = await SqliteEventStore.open({ path: tempDbPath() });
    // Appends are kept for readers only while a live subscription may read them.
    const live = store.subscribeToAll({ subscriptionId: 'test-live', from: 'start', checkpointEvery: 1_000_000, handler: () => undefined });
    try {
      const made = events.newSession();
      const factoryEvent = events.opened(made.stream, made.sessionId);
      const other = events.newSession();
      // A plain copy: valid, but not made (and frozen) by an EventFactory of this process.
      const copied = JSON.parse(JSON.stringify(events.opened(other.stream, other.sessionId))) as CustodianEvent;
      await Promise.all([store.append(made.stream, [factoryEvent], { expectedRevision: 'no-stream' }), store.append(other.stream, [copied], { expectedRevision: 'no-stream' })]);
      const all = await collect(store.readAll());
      expect(all[0]!.event).toBe(factoryEvent);
      expect(all[1]!.event).not.toBe(copied);
      expect(all[1]!.event).toEqual(copied);
      expect(Object.isFrozen(all[1]!.event)).toBe(true);
    } finally {
      await live.stop();
      await store.close();
    }
  });

  it('decides a group with retries, refusals and a failing insert as append-by-append would', async () => {
    const path = tempDbPath();
    const store = await SqliteEventStore.open({ path });
    const raw = new BetterSqlite3(path);
    try {
      const a = events.newSession();
      const b = events.newSession();
      const c = events.newSession();
      const poisoned = events.newSession();
      // A trigger only this test has: the insert itself fails (the checks before it pass).
      raw.exec(`CREATE TRIGGER test_poison BEFORE INSERT ON events WHEN NEW.stream = '${poisoned.stream}' BEGIN SELECT RAISE(ABORT, 'poisoned stream'); END`);
      const aOpened = events.opened(a.stream, a.sessionId);
      const aMore = events.commands(a.stream, a.sessionId, 1, 2);
      const outcomes = await Promise.allSettled([
        store.append(a.stream, [aOpened], { expectedRevision: 'no-stream' }),
        // The same event again in the same group: an idempotent retry of what the group just wrote.
        store.append(a.stream, [aOpened], { expectedRevision: 'no-stream' }),
        // Continues the stream written earlier in the same group.
        store.append(a.stream, aMore, { expectedRevision: 0 }),
        store.append(b.stream, [events.opened(b.stream, b.sessionId)], { expectedRevision: 'stream-exists' }),
        store.append(poisoned.stream, [events.opened(poisoned.stream, poisoned.sessionId)], { expectedRevision: 'no-stream' }),
        store.append(c.stream, [events.opened(c.stream, c.sessionId)], { expectedRevision: 'no-stream' }),
      ]);
      expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'fulfilled', 'fulfilled', 'rejected', 'rejected', 'fulfilled']);
      expect(outcomes[1]).toMatchObject({ value: { deduplicated: true, position: { commit: 1n } } });
      expect(outcomes[2]).toMatchObject({ value: { firstRevision: 1, nextExpectedRevision: 2, position: { commit: 3n } } });
      expect(outcomes[3]).toMatchObject({ reason: { code: 'EVENT_STORE_WRONG_EXPECTED_REVISION' } });
      expect(outcomes[4]).toMatchObject({ reason: { message: 'poisoned stream' } });
      expect(outcomes[5]).toMatchObject({ value: { position: { commit: 4n } } });
      const all = await collect(store.readAll());
      expect(all.map((r) => `${r.stream}@${r.revision}`)).toEqual([`${a.stream}@0`, `${a.stream}@1`, `${a.stream}@2`, `${c.stream}@0`]);

      // A later group: a retry whose expectation is stale now (its first try committed), and a
      // new-looking append reusing an id stored in another stream (its revisions fit: only the
      // insert finds the id), beside appends that succeed.
      const d = events.newSession();
      const reusedId = { ...events.opened(d.stream, d.sessionId), id: aOpened.id } as CustodianEvent;
      const later = await Promise.allSettled([
        store.append(a.stream, aMore, { expectedRevision: 0 }),
        store.append(d.stream, [reusedId], { expectedRevision: 'no-stream' }),
        store.append(c.stream, events.commands(c.stream, c.sessionId, 1, 1), { expectedRevision: 0 }),
      ]);
      expect(later.map((o) => o.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
      expect(later[0]).toMatchObject({ value: { deduplicated: true, nextExpectedRevision: 2, position: { commit: 3n } } });
      expect(later[1]).toMatchObject({ reason: { code: 'EVENT_STORE_IDEMPOTENCY_CONFLICT', message: expect.stringContaining(`already stored at ${a.stream}@0`) } });
      expect(later[2]).toMatchObject({ value: { position: { commit: 5n } } });
      expect(await store.streamRevision(d.stream)).toBe('no-stream');
    } finally {
      raw.close();
      await store.close();
    }
  });
});
