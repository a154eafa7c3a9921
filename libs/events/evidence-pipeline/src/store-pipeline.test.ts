import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EventFactory, type CustodianEvent, type Identity } from '@custodian/event-contracts';
import type { EventStore, RecordedEvent } from '@custodian/event-store';
import { SqliteEventStore } from '@custodian/event-store-sqlite';
import { afterEach, describe, expect, it } from 'vitest';
import { CommandEvidenceGate } from './command-gate.js';
import { PipelineRefusedError } from './errors.js';
import { runProjection } from './projection-runner.js';
import { StoreEvidencePipeline } from './store-pipeline.js';

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});
async function openStore(): Promise<SqliteEventStore> {
  const dir = mkdtempSync(join(tmpdir(), 'custodian-store-pipeline-'));
  dirs.push(dir);
  return SqliteEventStore.open({ path: join(dir, 'events.db'), pollIntervalMs: 20 });
}

const agent: Identity = { subject: 'agent-7', issuer: 'https://idp.example', groups: [], kind: 'agent' };
const factory = new EventFactory({ service: 'gateway', instance: 'gw-test' });
function issued(sessionId: string, sequence: number): CustodianEvent {
  return factory.create({ type: 'command.issued', stream: `session-${sessionId}`, sequence, identity: agent, payload: { sessionId, commandId: randomUUID(), kind: 'sql', text: 'SELECT 1' } });
}

async function all(store: EventStore): Promise<RecordedEvent[]> {
  const out: RecordedEvent[] = [];
  for await (const r of store.readAll()) out.push(r);
  return out;
}

describe('StoreEvidencePipeline (embedded)', () => {
  it('accept() resolves once the events are committed to the store, several streams at once', async () => {
    const store = await openStore();
    const pipeline = new StoreEvidencePipeline({ store, instance: 'gw-test' });
    const a = randomUUID();
    const b = randomUUID();
    await expect(pipeline.accept([issued(a, 0), issued(b, 0), issued(a, 1)])).resolves.toEqual({ events: 3, durableIn: 'store' });
    expect((await all(store)).map((r) => `${r.stream}@${r.revision}`).sort()).toEqual([`session-${a}@0`, `session-${a}@1`, `session-${b}@0`].sort());
    await pipeline.close();
    await store.close();
  });

  it('appends the events of one stream as one batch, and of several streams as one append per stream', async () => {
    const store = await openStore();
    const appended: { stream: string; events: number }[] = [];
    const counting = new Proxy(store, {
      get(target, property) {
        if (property === 'append') {
          return (stream: string, events: readonly CustodianEvent[], options: Parameters<EventStore['append']>[2]) => {
            appended.push({ stream, events: events.length });
            return target.append(stream, events, options);
          };
        }
        const value: unknown = Reflect.get(target, property, target);
        return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
      },
    });
    const pipeline = new StoreEvidencePipeline({ store: counting, instance: 'gw-test' });
    const a = randomUUID();
    const b = randomUUID();
    await pipeline.accept([issued(a, 0), issued(a, 1)]);
    expect(appended).toEqual([{ stream: `session-${a}`, events: 2 }]);
    await pipeline.accept([issued(a, 2), issued(b, 0), issued(a, 3)]);
    expect(appended.slice(1)).toEqual([
      { stream: `session-${a}`, events: 2 },
      { stream: `session-${b}`, events: 1 },
    ]);
    expect((await all(store)).map((r) => `${r.stream}@${r.revision}`)).toEqual([`session-${a}@0`, `session-${a}@1`, `session-${a}@2`, `session-${a}@3`, `session-${b}@0`]);
    await pipeline.close();
    await store.close();
  });

  it('fails closed when the store cannot write (PIPELINE_STORE_UNWRITABLE), and a gate in strict mode does not let the command through', async () => {
    const store = await openStore();
    const pipeline = new StoreEvidencePipeline({ store, instance: 'gw-test', recoveryProbeMs: 20 });
    await store.close();
    const gate = new CommandEvidenceGate(pipeline);
    const failure = await gate.beforeForward([issued(randomUUID(), 0)]).catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(PipelineRefusedError);
    expect(failure).toMatchObject({ code: 'PIPELINE_STORE_UNWRITABLE' });
    expect((failure as Error).message).toBe('command refused: the event store cannot record events (the event store is closed)');
    expect(pipeline.status()).toMatchObject({ accepting: false });
    await pipeline.close();
  });

  it('relaxed mode forwards at once, also while the pipeline refuses, and reports each refusal', async () => {
    const store = await openStore();
    const pipeline = new StoreEvidencePipeline({ store, instance: 'gw-test' });
    const late: unknown[] = [];
    const gate = new CommandEvidenceGate(pipeline, { strict: false, onLateRefusal: (e) => late.push(e) });
    await expect(gate.beforeForward([issued(randomUUID(), 0)])).resolves.toBeUndefined();
    await store.close();
    await gate.beforeForward([issued(randomUUID(), 0)]); // handed off: fails in the background
    await expect.poll(() => late.length).toBe(1);
    expect(pipeline.status().accepting).toBe(false);
    // Known to refuse: relaxed mode still serves; the refusal is reported (and counted by the pipeline).
    await expect(gate.beforeForward([issued(randomUUID(), 0)])).resolves.toBeUndefined();
    await expect.poll(() => late.length).toBe(2);
    expect(late[1]).toMatchObject({ code: 'PIPELINE_STORE_UNWRITABLE' });
    await pipeline.close();
  });
});

describe('runProjection', () => {
  it('catches up, goes live, and after a failure restarts from the checkpoint without skipping an event', async () => {
    const store = await openStore();
    const sessionId = randomUUID();
    for (let i = 0; i < 5; i++) await store.append(`session-${sessionId}`, [issued(sessionId, i)], { expectedRevision: i === 0 ? 'no-stream' : i - 1 });
    const seen: number[] = [];
    let failOnce = true;
    let flushes = 0;
    const errors: unknown[] = [];
    const running = runProjection(
      store,
      {
        name: 'test-projection',
        handle: (r) => {
          if (r.revision === 3 && failOnce) {
            failOnce = false;
            throw new Error('downstream unavailable');
          }
          seen.push(r.revision);
        },
        flush: async () => void (flushes += 1),
      },
      { checkpointEvery: 2, restartBackoffMs: 10, onError: (e) => errors.push(e) },
    );
    await running.caughtUp;
    await expect.poll(() => seen.includes(4)).toBe(true);
    await store.append(`session-${sessionId}`, [issued(sessionId, 5)], { expectedRevision: 4 });
    await expect.poll(() => seen.includes(5)).toBe(true);
    await running.stop();
    expect(running.failures()).toBe(1);
    expect((errors[0] as Error).message).toContain('downstream unavailable');
    // At-least-once: every revision handled, in order of first sight (some twice after the restart).
    expect([...new Set(seen)]).toEqual([0, 1, 2, 3, 4, 5]);
    expect(flushes).toBeGreaterThan(0);
    await store.close();
  });
});
