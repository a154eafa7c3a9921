import { readFileSync } from 'node:fs';
import { CHECKPOINTS_TOPIC } from '@custodian/event-bus';
import { InProcessEventBus } from '@custodian/event-bus-in-process';
import type { CustodianEvent } from '@custodian/event-contracts';
import type { EventStore, RecordedEvent, SubscribeToAllOptions } from '@custodian/event-store';
import { CompactRange, Ed25519CosignatureSigner, Ed25519NoteSigner, formatKeyId, openCheckpoint, parseNote, signNote, type SecretKeyText } from '@custodian/transparency-log';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LEAF_FORMAT_HEADER, eventLeafHash } from './canonical-leaf.js';
import { CHECKPOINT_STREAM } from './merkle-log-projection.js';
import { signerFromSkey, verifierFromVkey } from './signing-keys.js';
import { appendSpecs, buildScenario, bulkSpecs } from './testing/evidence-scenario.js';
import { TEST_ORIGIN, createEvidenceLogFixture, type EvidenceLogFixture } from './testing/evidence-log-fixture.js';
import { cosignedNote, submitCosignatures, witnessVerifiers } from './witness-cosignatures.js';

async function allEvents(store: EventStore): Promise<RecordedEvent[]> {
  const out: RecordedEvent[] = [];
  for await (const r of store.readAll()) out.push(r);
  return out;
}

async function eventually<T>(probe: () => Promise<T | undefined>, what: string, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

let f: EvidenceLogFixture;
beforeEach(async () => {
  f = await createEvidenceLogFixture();
});
afterEach(async () => {
  await f.cleanup();
});

describe('Merkle log projection', () => {
  it('appends every event in store order as the RFC 6962 leaf of its canonical envelope, and signs checkpoints that are later leaves', async () => {
    const projection = await f.openProjection();
    await appendSpecs(f.store, f.factory, buildScenario().specs);
    await projection.caughtUp();
    const first = await projection.checkpointNow();
    expect(first).toBeDefined();
    await appendSpecs(f.store, f.factory, bulkSpecs(3));
    await eventually(async () => (projection.size === first!.treeSize + 4 ? true : undefined), 'the checkpoint event and 3 more leaves');

    const events = await allEvents(f.store);
    expect(projection.size).toBe(events.length);
    // The checkpoint.signed event is itself the leaf right after the tree it signed.
    expect(events[first!.treeSize]!.event.type).toBe('checkpoint.signed');
    const range = new CompactRange();
    for (const r of events) range.append(eventLeafHash(r.event, LEAF_FORMAT_HEADER));
    expect(range.root().equals(projection.tree.root)).toBe(true);
    for (const [i, r] of events.entries()) expect((await projection.tree.leafHash(i)).equals(eventLeafHash(r.event, LEAF_FORMAT_HEADER))).toBe(true);

    const signed = openCheckpoint(first!.note, TEST_ORIGIN, [f.signer.verifier()]);
    expect(signed.checkpoint.rootHash.equals(await projection.tree.rootAt(first!.treeSize))).toBe(true);
    const checkpointEvent = events[first!.treeSize]!.event as CustodianEvent & { type: 'checkpoint.signed' };
    expect(checkpointEvent.payload).toEqual({ origin: TEST_ORIGIN, treeSize: first!.treeSize, rootHash: signed.checkpoint.rootHash.toString('base64'), note: first!.note, keyIds: [formatKeyId(f.signer.keyId)] });
    expect(checkpointEvent.stream).toBe(CHECKPOINT_STREAM);
  });

  it('signs every N events without counting its own checkpoint events', async () => {
    const projection = await f.openProjection({ policy: { everyEvents: 5, everySeconds: 3600 } });
    const state = await f.openState();
    const sizes = async (count: number): Promise<number[]> =>
      eventually(async () => {
        const cps = await state.checkpoints();
        return cps.length >= count ? cps.map((c) => c.treeSize) : undefined;
      }, `${count} checkpoint(s)`);
    try {
      await appendSpecs(f.store, f.factory, bulkSpecs(6));
      const [first] = await sizes(1);
      expect(first).toBeGreaterThanOrEqual(5);
      await appendSpecs(f.store, f.factory, bulkSpecs(5, 'more'));
      const [, second] = await sizes(2);
      // Signed once 5 more events arrived; the first checkpoint's own event (one leaf) does not count.
      expect(second! - first! - 1).toBeGreaterThanOrEqual(5);
      await projection.caughtUp();
      await new Promise((r) => setTimeout(r, 100));
      expect((await state.checkpoints()).length).toBe(2);
    } finally {
      await state.close();
    }
  });

  it('signs T seconds after the first unsigned event when fewer than N arrive', async () => {
    const projection = await f.openProjection({ policy: { everyEvents: 1000, everySeconds: 0.2 } });
    await appendSpecs(f.store, f.factory, bulkSpecs(2));
    const state = await f.openState();
    try {
      const checkpoint = await eventually(async () => (await state.lastCheckpoint()) ?? undefined, 'a timed checkpoint');
      expect(checkpoint.treeSize).toBe(2);
      // Its own event does not start another timed checkpoint.
      await projection.caughtUp();
      await new Promise((r) => setTimeout(r, 400));
      expect((await state.checkpoints()).length).toBe(1);
    } finally {
      await state.close();
    }
  });

  it('survives restarts and redelivery without duplicating or recomputing leaves', async () => {
    let projection = await f.openProjection();
    await appendSpecs(f.store, f.factory, bulkSpecs(20));
    await projection.caughtUp();
    const root = projection.tree.root;
    await projection.close();

    // Redelivery: a store that hands every event to the handler twice.
    const original = f.store;
    f.store = new Proxy(original, {
      get: (target, prop, receiver) =>
        prop === 'subscribeToAll'
          ? (options: SubscribeToAllOptions) => target.subscribeToAll({ ...options, handler: async (r) => (await options.handler(r), await options.handler(r)) })
          : (Reflect.get(target, prop, receiver) as unknown),
    });
    projection = await f.openProjection();
    await projection.caughtUp();
    expect(projection.size).toBe(20);
    expect(projection.tree.root.equals(root)).toBe(true);
    await appendSpecs(original, f.factory, bulkSpecs(5, 'more'));
    await eventually(async () => (projection.size === 25 ? true : undefined), '5 more leaves');
    await projection.caughtUp();
    expect(projection.size).toBe(25);
    await projection.close();
    f.store = original;

    // A crash after the leaves were recorded but before the tree append: open() completes the tree.
    const state = await f.openState();
    const events = await allEvents(f.store);
    expect(await state.leafCount()).toBe(25);
    await appendSpecs(f.store, f.factory, bulkSpecs(1, 'crash'));
    const [crashEvent] = (await allEvents(f.store)).slice(25);
    await state.recordLeaves([{ leafIndex: 25, position: crashEvent!.position, eventId: crashEvent!.event.id, type: crashEvent!.event.type, occurredAt: crashEvent!.event.occurredAt, subject: 'alice', connection: null, sessionId: null, leafHash: eventLeafHash(crashEvent!.event, LEAF_FORMAT_HEADER) }]);
    await state.close();
    projection = await f.openProjection();
    expect(projection.size).toBe(26);
    await projection.caughtUp();
    expect(projection.size).toBe(26);
    const range = new CompactRange();
    for (const r of [...events, crashEvent!]) range.append(eventLeafHash(r.event, LEAF_FORMAT_HEADER));
    expect(projection.tree.root.equals(range.root())).toBe(true);
  });

  it('appends a checkpoint event whose append failed at the next start, and continues the stream after it', async () => {
    const original = f.store;
    let failAppends = true;
    f.store = new Proxy(original, {
      get: (target, prop, receiver) =>
        prop === 'append'
          ? (stream: string, ...rest: unknown[]) => {
              if (failAppends && stream === CHECKPOINT_STREAM) return Promise.reject(new Error('store unavailable'));
              return (target.append as (...a: unknown[]) => Promise<unknown>).call(target, stream, ...rest);
            }
          : (Reflect.get(target, prop, receiver) as unknown),
    });
    let projection = await f.openProjection();
    await appendSpecs(original, f.factory, bulkSpecs(2));
    await projection.caughtUp();
    await expect(projection.checkpointNow()).rejects.toThrow('store unavailable');
    await projection.close();
    failAppends = false;
    f.store = original;
    projection = await f.openProjection();
    await projection.caughtUp();
    await appendSpecs(f.store, f.factory, bulkSpecs(1, 'later'));
    await eventually(async () => (projection.size === 4 ? true : undefined), 'the recovered checkpoint event and one more leaf');
    await projection.checkpointNow();
    const checkpointEvents = (await allEvents(f.store)).filter((r) => r.event.type === 'checkpoint.signed').map((r) => [r.event.sequence, (r.event.payload as { treeSize: number }).treeSize]);
    expect(checkpointEvents).toEqual([
      [0, 2],
      [1, 4],
    ]);
  });

  it('publishes each checkpoint on the checkpoints topic (key: origin, value: the checkpoint.signed payload)', async () => {
    const bus = new InProcessEventBus();
    await bus.ensureTopics([{ name: CHECKPOINTS_TOPIC, partitions: 1, replicationFactor: 1 }]);
    const publisher = bus.publisher();
    const received: { key: string | null; value: string; headers: Readonly<Record<string, string>> }[] = [];
    const consumer = bus.consume({ groupId: 'witness', topics: [CHECKPOINTS_TOPIC], handleBatch: async (batch) => void received.push(...batch.messages.map((m) => ({ key: m.key, value: m.value.toString('utf8'), headers: m.headers }))) });
    try {
      const projection = await f.openProjection({ publisher });
      await appendSpecs(f.store, f.factory, bulkSpecs(3));
      await projection.caughtUp();
      const checkpoint = await projection.checkpointNow();
      await eventually(async () => (received.length > 0 ? true : undefined), 'a published checkpoint');
      expect(received[0]!.key).toBe(TEST_ORIGIN);
      const payload = JSON.parse(received[0]!.value) as { note: string; treeSize: number };
      expect(payload.treeSize).toBe(3);
      expect(payload.note).toBe(checkpoint!.note);
      expect(received[0]!.headers['custodian-event-type']).toBe('checkpoint.signed');
      const state = await f.openState();
      expect((await state.checkpoints()).every((c) => c.published && c.appended)).toBe(true);
      await state.close();
    } finally {
      await consumer.stop();
      await bus.close();
    }
  });

  it('rotates keys with distinct key IDs; after a restart the retired key must be listed to resume', async () => {
    let projection = await f.openProjection();
    await appendSpecs(f.store, f.factory, bulkSpecs(2));
    await projection.caughtUp();
    const first = (await projection.checkpointNow())!;
    const next = Ed25519NoteSigner.generate(TEST_ORIGIN).signer;
    await projection.rotate(next);
    await expect(projection.rotate(next)).rejects.toMatchObject({ code: 'KEY_CONFLICT' });
    await appendSpecs(f.store, f.factory, bulkSpecs(2, 'after'));
    await eventually(async () => (projection.size >= 5 ? true : undefined), 'leaves after rotation');
    const second = (await projection.checkpointNow())!;
    expect(first.keyIds).toEqual([formatKeyId(f.signer.keyId)]);
    expect(second.keyIds).toEqual([formatKeyId(next.keyId)]);
    expect(second.keyIds).not.toEqual(first.keyIds);
    expect(projection.vkeys).toEqual([next.vkey, f.signer.vkey]);
    await projection.close();

    await expect(f.openProjection({ signer: Ed25519NoteSigner.generate(TEST_ORIGIN).signer })).rejects.toMatchObject({ code: 'EVIDENCE_KEY_INVALID' });
    projection = await f.openProjection({ signer: next, previousKeys: [f.signer.vkey] });
    const state = await f.openState();
    expect(await state.keys()).toEqual(expect.arrayContaining([f.signer.vkey, next.vkey]));
    await state.close();
  });

  it('never puts the signing key in events, logs or its own database', async () => {
    const generated = Ed25519NoteSigner.generate(TEST_ORIGIN);
    const skey: SecretKeyText = generated.skey;
    const signer = signerFromSkey(`  ${skey.reveal()}\n`);
    const lines: string[] = [];
    const logger = { info: (o: object, m: string) => lines.push(JSON.stringify(o) + m), warn: (o: object, m: string) => lines.push(JSON.stringify(o) + m), error: (o: object, m: string) => lines.push(JSON.stringify(o) + m) };
    const projection = await f.openProjection({ signer, logger });
    await appendSpecs(f.store, f.factory, bulkSpecs(3));
    await projection.caughtUp();
    await projection.checkpointNow();
    await projection.close();
    const seed = skey.reveal().split('+').slice(4).join('+');
    const everything = [JSON.stringify((await allEvents(f.store)).map((r) => r.event)), lines.join('\n'), JSON.stringify(projection), JSON.stringify(signer), String(skey), readFileSync(f.storePath).toString('latin1'), readFileSync(f.statePath).toString('latin1')].join('\n');
    expect(lines.some((l) => l.includes('checkpoint signed'))).toBe(true);
    expect(everything).not.toContain(seed);
    expect(everything).not.toContain('PRIVATE+KEY');
    expect(() => signerFromSkey(`PRIVATE+KEY+${TEST_ORIGIN}+00000000+${seed}`)).toThrow(expect.objectContaining({ code: 'EVIDENCE_KEY_INVALID' }));
    try {
      signerFromSkey(`PRIVATE+KEY+${TEST_ORIGIN}+00000000+${seed}`);
    } catch (error) {
      expect((error as Error).message).not.toContain(seed);
    }
    expect(verifierFromVkey(generated.vkey).keyId).toBe(generated.signer.keyId);
  });
});

describe('witness cosignatures', () => {
  it('verifies and stores cosignatures on signed checkpoints; refuses forged, unknown or foreign ones', async () => {
    const projection = await f.openProjection();
    await appendSpecs(f.store, f.factory, bulkSpecs(4));
    await projection.caughtUp();
    const checkpoint = (await projection.checkpointNow())!;
    const witness = Ed25519CosignatureSigner.generate('witness.example/w1', () => 1_772_000_000);
    const other = Ed25519CosignatureSigner.generate('witness.example/other');
    const { text, signatures } = parseNote(checkpoint.note);
    const cosigned = signNote(text, [witness.signer], signatures);
    const state = await f.openState();
    try {
      const stored = await submitCosignatures(state, witnessVerifiers([witness.vkey]), cosigned);
      expect(stored).toEqual([expect.objectContaining({ treeSize: 4, witness: 'witness.example/w1', timestamp: 1_772_000_000 })]);
      expect(await state.cosignatures(4)).toHaveLength(1);
      const merged = cosignedNote(checkpoint, await state.cosignatures());
      expect(() => openCheckpoint(merged, TEST_ORIGIN, [f.signer.verifier()])).not.toThrow();
      expect(merged.endsWith(`${stored[0]!.line}\n`)).toBe(true);

      // Unknown witness, tampered signature, and a checkpoint this log never signed.
      await expect(submitCosignatures(state, witnessVerifiers([witness.vkey]), signNote(text, [other.signer], signatures))).rejects.toMatchObject({ code: 'EVIDENCE_COSIGNATURE_REJECTED' });
      const lastLine = cosigned.trimEnd().split('\n').pop()!;
      const sig = Buffer.from(lastLine.split(' ').pop()!, 'base64');
      sig[sig.length - 1]! ^= 1;
      const tampered = cosigned.replace(lastLine, `${lastLine.slice(0, lastLine.lastIndexOf(' '))} ${sig.toString('base64')}`);
      await expect(submitCosignatures(state, witnessVerifiers([witness.vkey]), tampered)).rejects.toMatchObject({ code: 'EVIDENCE_COSIGNATURE_REJECTED' });
      const forged = signNote(text.replace(/\n\d+\n/, '\n4\n').replace(/\n[^\n]+\n$/, `\n${Buffer.alloc(32, 7).toString('base64')}\n`), [witness.signer]);
      await expect(submitCosignatures(state, witnessVerifiers([witness.vkey]), forged)).rejects.toMatchObject({ code: 'EVIDENCE_COSIGNATURE_REJECTED' });
    } finally {
      await state.close();
    }
  });
});
