// Measures appends/s of the SQLite store (synchronous=FULL: every commit is an fsync), one awaited
// append at a time versus many in flight (group commit). Prints figures; asserts no timing.
// Run: CUSTODIAN_MEASURE=1 [CUSTODIAN_MEASURE_DIR=/var/tmp] scripts/node24 npx vitest run libs/event-store-sqlite/src/append-throughput.measure.test.ts
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CustodianEvent } from '@custodian/event-contracts';
import { ContractEvents } from '@custodian/event-store/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SqliteEventStore } from './sqlite-event-store.js';

const enabled = process.env['CUSTODIAN_MEASURE'] === '1';
if (!enabled) console.warn('[event-store-sqlite] append throughput measurement skipped: set CUSTODIAN_MEASURE=1 to run it');

const APPENDS = 1_000;

describe.skipIf(!enabled)('SQLite append throughput (measurement)', () => {
  let dir: string;
  let store: SqliteEventStore;
  const events = new ContractEvents();

  beforeAll(async () => {
    // CUSTODIAN_MEASURE_DIR picks the file system (a tmpfs /tmp makes fsync free).
    dir = mkdtempSync(join(process.env['CUSTODIAN_MEASURE_DIR'] ?? tmpdir(), 'custodian-event-store-measure-'));
    store = await SqliteEventStore.open({ path: join(dir, 'events.db') });
  });

  afterAll(async () => {
    await store?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  function batches(count: number): { stream: string; events: CustodianEvent[] }[] {
    return Array.from({ length: count }, () => {
      const { stream, sessionId } = events.newSession();
      return { stream, events: [events.opened(stream, sessionId)] };
    });
  }

  async function countAll(): Promise<number> {
    let n = 0;
    for await (const _ of store.readAll()) n += 1;
    return n;
  }

  it(`${APPENDS} single-event appends, sequential vs concurrent`, async () => {
    const sequential = batches(APPENDS);
    let start = process.hrtime.bigint();
    for (const b of sequential) await store.append(b.stream, b.events, { expectedRevision: 'no-stream' });
    const sequentialMs = Number(process.hrtime.bigint() - start) / 1e6;

    const concurrent = batches(APPENDS);
    start = process.hrtime.bigint();
    await Promise.all(concurrent.map((b) => store.append(b.stream, b.events, { expectedRevision: 'no-stream' })));
    const concurrentMs = Number(process.hrtime.bigint() - start) / 1e6;

    const batched10 = batches(APPENDS);
    start = process.hrtime.bigint();
    for (let i = 0; i < batched10.length; i += 10) {
      await Promise.all(batched10.slice(i, i + 10).map((b) => store.append(b.stream, b.events, { expectedRevision: 'no-stream' })));
    }
    const tenInFlightMs = Number(process.hrtime.bigint() - start) / 1e6;

    const rate = (ms: number) => Math.round((APPENDS / ms) * 1000);
    console.log(
      [
        `SQLite appends/s (synchronous=FULL, ${APPENDS} single-event appends, event validation included):`,
        `  sequential (1 in flight):   ${rate(sequentialMs)} /s (${sequentialMs.toFixed(0)} ms)`,
        `  10 in flight (group commit): ${rate(tenInFlightMs)} /s (${tenInFlightMs.toFixed(0)} ms)`,
        `  ${APPENDS} in flight (group commit): ${rate(concurrentMs)} /s (${concurrentMs.toFixed(0)} ms)`,
      ].join('\n'),
    );
    expect(await countAll()).toBe(APPENDS * 3);
  });
});
