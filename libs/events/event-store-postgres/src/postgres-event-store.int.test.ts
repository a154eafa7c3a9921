// The PostgreSQL event store against a real PostgreSQL server: the shared contract suite, then
// what only a shared database adds (append-only in the database, privileges, two processes on
// one store, commit order under a late-committing writer, the NOTIFY listener's loss).
import { randomBytes } from 'node:crypto';
import { comparePositions, EventStoreUnavailableError, type RecordedEvent } from '@custodian/event-store';
import { ContractEvents, describeEventStoreContract } from '@custodian/event-store/testing';
import { startPostgres, type StartedPostgres } from '@custodian/test-harness';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PostgresEventStore, type PostgresEventStoreOptions } from './postgres-event-store.js';
import { SCHEMA_VERSION, storeSchema } from './schema.js';

const PAGE_SIZE = 50;
let server: StartedPostgres;
const opened: PostgresEventStore[] = [];

beforeAll(async () => {
  server = await startPostgres();
}, 60_000);

afterAll(async () => {
  for (const store of opened.splice(0)) await store.close();
  await server?.stop();
});

const freshSchema = (): string => `s_${randomBytes(6).toString('hex')}`;

async function open(options: Partial<PostgresEventStoreOptions> & { schema: string }): Promise<PostgresEventStore> {
  const store = await PostgresEventStore.open({ connectionString: server.connectionString(), pageSize: PAGE_SIZE, ...options });
  opened.push(store);
  return store;
}

async function sql<R extends pg.QueryResultRow = Record<string, unknown>>(text: string, values: unknown[] = [], connectionString = server.connectionString()): Promise<R[]> {
  const client = new pg.Client({ connectionString });
  await client.connect();
  try {
    return (await client.query<R>(text, values)).rows;
  } finally {
    await client.end();
  }
}

async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of iterable) out.push(item);
  return out;
}

async function waitUntil(predicate: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describeEventStoreContract(
  'PostgreSQL',
  async () => {
    const schema = freshSchema();
    const store = await PostgresEventStore.open({ connectionString: server.connectionString(), schema, pageSize: PAGE_SIZE, pollIntervalMs: 200 });
    const s = storeSchema(schema);
    return {
      store,
      cleanup: () => store.close(),
      // As an older build would have written it: a plain INSERT (the database still orders it).
      writeStoredEventUnchecked: async (event) => {
        await sql(
          `INSERT INTO ${s.events} (id, stream, revision, type, schema_version, occurred_at, recorded_at, json) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
          [event['id'], event['stream'], event['sequence'], event['type'], event['schemaVersion'], event['occurredAt'], '2026-01-01T00:00:00.000000Z', JSON.stringify(event)],
        );
      },
    };
  },
  { pageSize: PAGE_SIZE },
);

describe('PostgreSQL event store: what the database itself enforces', () => {
  it('refuses UPDATE, DELETE and TRUNCATE of events, even by the owner', async () => {
    const schema = freshSchema();
    const store = await open({ schema });
    const events = new ContractEvents();
    const { sessionId, stream } = events.newSession();
    await store.append(stream, [events.opened(stream, sessionId)], { expectedRevision: 'no-stream' });
    const s = storeSchema(schema);
    for (const statement of [`UPDATE ${s.events} SET json = '{}'`, `DELETE FROM ${s.events}`, `TRUNCATE ${s.events}`]) {
      await expect(sql(statement), statement).rejects.toThrow(/append-only/);
    }
    expect(await collect(store.readStream(stream))).toHaveLength(1);
  });

  it('refuses a direct INSERT that skips or reuses a stream revision', async () => {
    const schema = freshSchema();
    const store = await open({ schema });
    const events = new ContractEvents();
    const { sessionId, stream } = events.newSession();
    await store.append(stream, [events.opened(stream, sessionId)], { expectedRevision: 'no-stream' });
    const s = storeSchema(schema);
    const insert = (revision: number) =>
      sql(`INSERT INTO ${s.events} (id, stream, revision, type, schema_version, occurred_at, recorded_at, json) VALUES ($1, $2, $3, 'x', 1, 'x', 'x', '{}')`, [
        `forged-${revision}`,
        stream,
        revision,
      ]);
    await expect(insert(0)).rejects.toThrow(/does not follow/);
    await expect(insert(5)).rejects.toThrow(/does not follow/);
  });

  it('a writer role gets SELECT and INSERT only: it appends and reads, and cannot UPDATE or migrate', async () => {
    const schema = freshSchema();
    const role = `writer_${randomBytes(4).toString('hex')}`;
    const password = randomBytes(12).toString('hex');
    await sql(`CREATE ROLE ${role} LOGIN PASSWORD '${password}'`);
    await open({ schema, writerRole: role });
    const writerUrl = server.connectionString(undefined, { user: role, password });
    const writer = await open({ schema, connectionString: writerUrl, migrate: false });
    const events = new ContractEvents();
    const { sessionId, stream } = events.newSession();
    await writer.append(stream, [events.opened(stream, sessionId), ...events.commands(stream, sessionId, 1, 2)], { expectedRevision: 'no-stream' });
    expect((await collect(writer.readStream(stream))).map((r) => r.revision)).toEqual([0, 1, 2]);
    await writer.checkpoints.save('writer-sub', { commit: 3n, prepare: 3n });
    expect(await writer.checkpoints.load('writer-sub')).toEqual({ commit: 3n, prepare: 3n });
    const s = storeSchema(schema);
    await expect(sql(`UPDATE ${s.events} SET json = '{}'`, [], writerUrl)).rejects.toMatchObject({ code: '42501' });
    await expect(sql(`DELETE FROM ${s.events}`, [], writerUrl)).rejects.toMatchObject({ code: '42501' });
    // A role without DDL rights cannot create a store; it is told so, without the password.
    const error = await PostgresEventStore.open({ connectionString: writerUrl, schema: freshSchema() }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(EventStoreUnavailableError);
    expect(String((error as Error).message)).not.toContain(password);
  });

  it('migrate: false refuses a schema that does not exist or is newer than this build', async () => {
    await expect(PostgresEventStore.open({ connectionString: server.connectionString(), schema: freshSchema(), migrate: false })).rejects.toThrow(/does not exist/);
    const schema = freshSchema();
    await open({ schema });
    const s = storeSchema(schema);
    await sql(`INSERT INTO ${s.migrations} (version, description, applied_at) VALUES ($1, 'from the future', 'x')`, [SCHEMA_VERSION + 1]);
    await expect(PostgresEventStore.open({ connectionString: server.connectionString(), schema })).rejects.toThrow(/newer than this build/);
  });

  it('an unreachable server is unavailable, with no password in the message', async () => {
    const url = `postgres://custodian:very-secret-pw@127.0.0.1:1/custodian_test`;
    const error = await PostgresEventStore.open({ connectionString: url, schema: freshSchema(), connectTimeoutMs: 1_000 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(EventStoreUnavailableError);
    expect((error as EventStoreUnavailableError).code).toBe('EVENT_STORE_UNAVAILABLE');
    expect(String((error as Error).message)).not.toContain('very-secret-pw');
  });
});

describe('PostgreSQL event store: several processes on one store', () => {
  it('two stores append concurrently; positions follow commit order and each sees the other live (NOTIFY, not polling)', async () => {
    const schema = freshSchema();
    // A poll interval far longer than the test: only NOTIFY can deliver in time.
    const a = await open({ schema, pollIntervalMs: 600_000 });
    const b = await open({ schema, pollIntervalMs: 600_000 });
    expect(a.listening && b.listening).toBe(true);
    const seen: RecordedEvent[] = [];
    const sub = b.subscribeToAll({ subscriptionId: 'b-live', from: 'start', handler: (r) => void seen.push(r) });
    await sub.caughtUp;
    const events = new ContractEvents();
    const sessions = Array.from({ length: 6 }, () => events.newSession());
    await Promise.all(
      sessions.map(({ sessionId, stream }, i) => {
        const store = i % 2 === 0 ? a : b;
        return (async () => {
          await store.append(stream, [events.opened(stream, sessionId)], { expectedRevision: 'no-stream' });
          for (let k = 1; k <= 10; k++) await store.append(stream, events.commands(stream, sessionId, k, 1), { expectedRevision: k - 1 });
        })();
      }),
    );
    await waitUntil(() => seen.length === 66, 10_000, 'live delivery of 66 events');
    for (let i = 1; i < seen.length; i++) expect(comparePositions(seen[i - 1]!.position, seen[i]!.position)).toBeLessThan(0);
    const all = await collect(a.readAll());
    expect(all.map((r) => r.event.id)).toEqual(seen.map((r) => r.event.id));
    await sub.stop();
  });

  it('a writer that commits late never lets a reader skip its event (the position is handed out under the lock)', async () => {
    const schema = freshSchema();
    const store = await open({ schema });
    const s = storeSchema(schema);
    const events = new ContractEvents();
    const early = events.newSession();
    const late = events.newSession();
    const lateEvent = events.opened(late.stream, late.sessionId);
    // Another process opens a transaction and inserts, but does not commit yet.
    const slow = new pg.Client({ connectionString: server.connectionString() });
    await slow.connect();
    try {
      await slow.query('BEGIN');
      await slow.query(`INSERT INTO ${s.events} (id, stream, revision, type, schema_version, occurred_at, recorded_at, json) VALUES ($1, $2, 0, $3, $4, $5, 'x', $6)`, [
        lateEvent.id,
        late.stream,
        lateEvent.type,
        lateEvent.schemaVersion,
        lateEvent.occurredAt,
        JSON.stringify(lateEvent),
      ]);
      let appended = false;
      const append = store.append(early.stream, [events.opened(early.stream, early.sessionId)], { expectedRevision: 'no-stream' }).then((r) => {
        appended = true;
        return r;
      });
      await new Promise((resolve) => setTimeout(resolve, 300));
      // The store's append waits for the open transaction rather than taking a position before it.
      expect(appended).toBe(false);
      expect(await collect(store.readAll())).toEqual([]);
      await slow.query('COMMIT');
      const result = await append;
      const all = await collect(store.readAll());
      expect(all.map((r) => r.stream)).toEqual([late.stream, early.stream]);
      expect(comparePositions(all[0]!.position, result.position)).toBeLessThan(0);
    } finally {
      await slow.end();
    }
  });

  it('live subscriptions keep delivering when the listener connection is killed, and the listener comes back', async () => {
    const schema = freshSchema();
    const store = await open({ schema, pollIntervalMs: 100 });
    const other = await open({ schema, pollIntervalMs: 100 });
    const seen: string[] = [];
    const sub = store.subscribeToAll({ subscriptionId: 'survives', from: 'start', handler: (r) => void seen.push(r.event.id) });
    await sub.caughtUp;
    await sql(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'custodian-event-store-listener' AND pid <> pg_backend_pid()`);
    await waitUntil(() => !store.listening, 5_000, 'the listener to notice');
    const events = new ContractEvents();
    const { sessionId, stream } = events.newSession();
    const appended = events.opened(stream, sessionId);
    await other.append(stream, [appended], { expectedRevision: 'no-stream' });
    await waitUntil(() => seen.includes(appended.id), 5_000, 'delivery while the listener is down');
    await waitUntil(() => store.listening, 5_000, 'the listener to reconnect');
    await sub.stop();
  });
});
