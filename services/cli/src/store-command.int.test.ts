// `custodian store copy` from the embedded SQLite store into a real PostgreSQL event store.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ContractEvents } from '@custodian/event-store/testing';
import { PostgresEventStore } from '@custodian/event-store-postgres';
import { SqliteEventStore } from '@custodian/event-store-sqlite';
import { startPostgres, type StartedPostgres } from '@custodian/test-harness';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, type CliIo } from './index.js';

const dir = mkdtempSync(join(tmpdir(), 'custodian-store-copy-'));
let server: StartedPostgres;

beforeAll(async () => {
  server = await startPostgres();
}, 60_000);

afterAll(async () => {
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
});

function io(env: Record<string, string>) {
  const out: string[] = [];
  const err: string[] = [];
  const value: CliIo = { stdout: (t) => void out.push(t), stderr: (t) => void err.push(t), env, cwd: dir, waitForStop: () => new Promise(() => undefined) };
  return { io: value, stdout: () => out.join(''), stderr: () => err.join('') };
}

describe('custodian store copy', () => {
  it('copies the SQLite store into PostgreSQL in order, verifies the leaves, is idempotent, and reports a destination that differs', async () => {
    const dataDir = join(dir, 'data');
    mkdirSync(dataDir, { recursive: true });
    const source = join(dir, 'source.yaml');
    const destination = join(dir, 'destination.yaml');
    writeFileSync(source, `dataDir: ${dataDir}\n`);
    writeFileSync(destination, `dataDir: ${dataDir}\neventStore:\n  kind: postgres\n  connectionString: { fromEnv: TEST_STORE_URL }\n  schema: copied\n`);
    const env = { TEST_STORE_URL: server.connectionString() };
    // Secret references are resolved from the process environment where the store is opened.
    process.env.TEST_STORE_URL = env.TEST_STORE_URL;

    // 40 sessions whose events interleave in the global order, one long enough to span batches.
    const sqlite = await SqliteEventStore.open({ path: join(dataDir, 'events.sqlite') });
    const events = new ContractEvents();
    const sessions = Array.from({ length: 40 }, () => events.newSession());
    for (const { sessionId, stream } of sessions) await sqlite.append(stream, [events.opened(stream, sessionId)], { expectedRevision: 'no-stream' });
    for (let round = 1; round <= 3; round++) {
      for (const { sessionId, stream } of sessions) await sqlite.append(stream, events.commands(stream, sessionId, round, 1), { expectedRevision: round - 1 });
    }
    await sqlite.append(sessions[0]!.stream, events.commands(sessions[0]!.stream, sessions[0]!.sessionId, 4, 1200), { expectedRevision: 3 });
    await sqlite.close();
    const total = 40 * 4 + 1200;

    const first = io(env);
    expect(await runCli(['store', 'copy', '--config', source, '--to-config', destination], first.io), first.stderr()).toBe(0);
    expect(first.stderr()).toContain(`copied ${total} events (0 already in the destination)`);
    const [fromLine, toLine] = first.stdout().trim().split('\n');
    expect(fromLine).toMatch(new RegExp(`^source: +${total} events, leaf digest sha256:[0-9a-f]{64}$`));
    expect(toLine!.split('sha256:')[1]).toBe(fromLine!.split('sha256:')[1]);

    // The copy is in the source's global order.
    const copy = await PostgresEventStore.open({ connectionString: server.connectionString(), schema: 'copied' });
    const sqliteAgain = await SqliteEventStore.open({ path: join(dataDir, 'events.sqlite') });
    const ids = async (store: { readAll(): AsyncIterable<{ event: { id: string } }> }) => {
      const out: string[] = [];
      for await (const r of store.readAll()) out.push(r.event.id);
      return out;
    };
    expect(await ids(copy)).toEqual(await ids(sqliteAgain));
    await sqliteAgain.close();

    const again = io(env);
    expect(await runCli(['store', 'copy', '--config', source, '--to-config', destination], again.io), again.stderr()).toBe(0);
    expect(again.stderr()).toContain(`copied 0 events (${total} already in the destination)`);

    // A destination holding something else is reported, not called verified.
    const extra = events.newSession();
    await copy.append(extra.stream, [events.opened(extra.stream, extra.sessionId)], { expectedRevision: 'no-stream' });
    await copy.close();
    const differs = io(env);
    expect(await runCli(['store', 'copy', '--config', source, '--to-config', destination], differs.io)).toBe(1);
    expect(differs.stderr()).toContain('the stores differ');
  }, 120_000);

  it('answers --help and refuses a missing destination', async () => {
    const help = io({});
    expect(await runCli(['store', 'copy', '--help'], help.io)).toBe(0);
    expect(help.stdout()).toContain('Usage: custodian store copy');
    const missing = io({});
    expect(await runCli(['store', 'copy'], missing.io)).toBe(2);
    expect(missing.stderr()).toContain('needs --to-config');
  });
});
