// The behaviour every EvidenceLogState adapter must have, as a Vitest suite. An adapter's test file
// calls describeEvidenceLogStateContract() with a factory (sqlite-evidence-log-state.test.ts,
// libs/evidence/evidence-log-postgres). The tree the state holds is checked with the TreeStorage
// contract (describeTreeStorageContract on `state.treeStorage`) in the same files.
import { hashLeaf, MerkleTree, TreeSizeConflictError } from '@custodian/transparency-log';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { EvidenceLogState, LeafRecord, StoredCheckpoint } from '../evidence-log-state.js';

export interface EvidenceLogStateContractSubject {
  readonly state: EvidenceLogState;
  /** Opens another handle on the same log (another process would), for `origin`. */
  reopen(origin: string): Promise<EvidenceLogState>;
  /** Releases what the factory created (handles it opened, temp files, schemas). */
  cleanup(): Promise<void>;
}

export const CONTRACT_ORIGIN = 'contract.test/evidence';

/** `count` leaf records from index `from`: every third without identity or connection, sessions of two leaves. */
export function contractLeaves(from: number, count: number): LeafRecord[] {
  return Array.from({ length: count }, (_, k) => {
    const i = from + k;
    const bare = i % 3 === 2;
    return {
      leafIndex: i,
      position: { commit: BigInt(1000 + i), prepare: BigInt(1000 + i) },
      eventId: `0190a0b0-0000-7000-8000-${String(i).padStart(12, '0')}`,
      type: i % 2 === 0 ? 'session.opened' : 'command.issued',
      occurredAt: `2026-12-07T10:00:${String(i % 60).padStart(2, '0')}.${String(i).padStart(6, '0')}Z`,
      subject: bare ? null : `agent-${i % 2}`,
      // Only the first leaf of a session names its connection (as session.opened does).
      connection: i % 2 === 0 && !bare ? `conn-${i % 4 === 0 ? 'a' : 'b'}` : null,
      sessionId: bare ? null : `session-${Math.floor(i / 2)}`,
      leafHash: hashLeaf(Buffer.from(`contract leaf ${i}`)),
    };
  });
}

function checkpoint(treeSize: number, flags: { appended?: boolean; published?: boolean } = {}): StoredCheckpoint {
  return {
    treeSize,
    rootHash: hashLeaf(Buffer.from(`root ${treeSize}`)),
    note: `${CONTRACT_ORIGIN}\n${treeSize}\nroot\n\n— ${CONTRACT_ORIGIN} sig\n`,
    keyIds: ['01234567', '89abcdef'],
    signedAt: `2026-12-07T10:01:${String(treeSize % 60).padStart(2, '0')}.000000Z`,
    eventJson: JSON.stringify({ type: 'checkpoint.signed', treeSize }),
    appended: flags.appended ?? false,
    published: flags.published ?? false,
  };
}

const indexes = (leaves: readonly LeafRecord[]): number[] => leaves.map((l) => l.leafIndex);

export function describeEvidenceLogStateContract(name: string, factory: () => Promise<EvidenceLogStateContractSubject>): void {
  describe(`EvidenceLogState contract: ${name}`, () => {
    let subject: EvidenceLogStateContractSubject;
    let state: EvidenceLogState;
    beforeEach(async () => {
      subject = await factory();
      state = subject.state;
    });
    afterEach(async () => {
      await subject.cleanup();
    });

    it('starts empty, with its origin', async () => {
      expect(state.origin).toBe(CONTRACT_ORIGIN);
      expect(await state.leafCount()).toBe(0);
      expect(await state.lastLeaf()).toBeUndefined();
      expect(await state.leaves(0, 10)).toEqual([]);
      expect(await state.findLeaves({})).toEqual([]);
      expect(await state.checkpoints()).toEqual([]);
      expect(await state.lastCheckpoint()).toBeUndefined();
      expect(await state.cosignatures()).toEqual([]);
      expect(await state.keys()).toEqual([]);
      expect(await state.leafFormatSwitch()).toBeUndefined();
      expect(await state.treeStorage.size()).toBe(0);
    });

    it('records leaves and reads every field back as written', async () => {
      const written = contractLeaves(0, 7);
      await state.recordLeaves(written.slice(0, 4));
      await state.recordLeaves(written.slice(4));
      await state.recordLeaves([]);
      expect(await state.leafCount()).toBe(7);
      expect(await state.leaves(0, 7)).toEqual(written);
      expect(await state.leaves(2, 5)).toEqual(written.slice(2, 5));
      expect(await state.leaves(5, 100)).toEqual(written.slice(5));
      expect(await state.lastLeaf()).toEqual(written[6]);
      const [first] = await state.leaves(0, 1);
      expect(typeof first!.position.commit).toBe('bigint');
      expect(first!.leafHash).toBeInstanceOf(Uint8Array);
    });

    it('refuses a leaf that is not the next one (gap or rewrite), keeping nothing of that batch', async () => {
      await state.recordLeaves(contractLeaves(0, 3));
      await expect(state.recordLeaves([...contractLeaves(3, 2), ...contractLeaves(6, 1)])).rejects.toMatchObject({ code: 'EVIDENCE_LOG_STATE_CORRUPT' });
      await expect(state.recordLeaves(contractLeaves(2, 1))).rejects.toMatchObject({ code: 'EVIDENCE_LOG_STATE_CORRUPT' });
      // The same event twice is refused too, even at the next index.
      await expect(state.recordLeaves([{ ...contractLeaves(3, 1)[0]!, eventId: contractLeaves(0, 1)[0]!.eventId }])).rejects.toMatchObject({ code: 'EVIDENCE_LOG_STATE_CORRUPT' });
      expect(await state.leafCount()).toBe(3);
      expect(await state.leaves(0, 10)).toEqual(contractLeaves(0, 3));
    });

    it('appendLeaves records leaves and grows the tree in one write: both or neither', async () => {
      expect(state.appendLeaves).toBeTypeOf('function');
      const tree = await MerkleTree.open(state.treeStorage);
      const stale = await MerkleTree.open(state.treeStorage);
      await state.appendLeaves!(contractLeaves(0, 3), tree);
      expect(await state.leafCount()).toBe(3);
      expect(await state.treeStorage.size()).toBe(3);
      expect(tree.size).toBe(3);
      expect(await tree.leafHash(2)).toEqual(contractLeaves(2, 1)[0]!.leafHash);
      // The stale tree believes the size is 0: its part fails, so the leaf records are not kept.
      await expect(state.appendLeaves!(contractLeaves(3, 2), stale)).rejects.toBeInstanceOf(TreeSizeConflictError);
      expect(await state.leafCount()).toBe(3);
      expect(await state.treeStorage.size()).toBe(3);
      // A refused leaf record (index 4 after 2) fails the tree nodes of the same write.
      await expect(state.appendLeaves!(contractLeaves(4, 1), tree)).rejects.toThrow();
      expect(await state.treeStorage.size()).toBe(3);
      expect(await state.leafCount()).toBe(3);
      await state.appendLeaves!(contractLeaves(3, 5), tree);
      expect(await state.leafCount()).toBe(8);
      expect(tree.size).toBe(8);
      const reopened = await MerkleTree.open(state.treeStorage);
      expect(reopened.root).toEqual(tree.root);
    });

    it('finds leaves by time, subject, connection (the whole session), type and index, ascending or newest first', async () => {
      const all = contractLeaves(0, 12);
      await state.recordLeaves(all);
      expect(indexes(await state.findLeaves({}))).toEqual(indexes(all));
      const from = all[3]!.occurredAt;
      const to = all[8]!.occurredAt;
      expect(indexes(await state.findLeaves({ from, to }))).toEqual([3, 4, 5, 6, 7]);
      expect(indexes(await state.findLeaves({ subject: 'agent-1' }))).toEqual(indexes(all.filter((l) => l.subject === 'agent-1')));
      // conn-a is named by leaves 0 and 4; their sessions come whole (session-0: leaves 0 and 1; session-2: leaf 4).
      expect(indexes(await state.findLeaves({ connection: 'conn-a' }))).toEqual([0, 1, 4]);
      expect(indexes(await state.findLeaves({ connection: 'conn-b' }))).toEqual([6, 7, 10]);
      expect(indexes(await state.findLeaves({ types: ['command.issued'] }))).toEqual([1, 3, 5, 7, 9, 11]);
      expect(await state.findLeaves({ types: [] })).toEqual([]);
      expect(indexes(await state.findLeaves({ belowIndex: 4 }))).toEqual([0, 1, 2, 3]);
      expect(indexes(await state.findLeaves({ fromIndex: 9 }))).toEqual([9, 10, 11]);
      expect(indexes(await state.findLeaves({ limit: 2 }))).toEqual([0, 1]);
      expect(indexes(await state.findLeaves({ descending: true, limit: 3 }))).toEqual([11, 10, 9]);
      expect(indexes(await state.findLeaves({ types: ['session.opened'], fromIndex: 2, belowIndex: 9, descending: true }))).toEqual([8, 6, 4, 2]);
      expect(await state.findLeaves({ subject: 'nobody' })).toEqual([]);
      expect((await state.findLeaves({ fromIndex: 5, limit: 1 }))[0]).toEqual(all[5]);
    });

    it('records the switch to leaf format 2 once', async () => {
      await state.recordLeafFormatSwitch(5);
      expect(await state.leafFormatSwitch()).toBe(5);
      await state.recordLeafFormatSwitch(5);
      await expect(state.recordLeafFormatSwitch(9)).rejects.toMatchObject({ code: 'EVIDENCE_LOG_STATE_CORRUPT' });
      expect(await state.leafFormatSwitch()).toBe(5);
    });

    it('keeps checkpoints append-only: saved once, ascending, only their delivery flags change', async () => {
      await state.saveCheckpoint(checkpoint(3));
      await state.saveCheckpoint(checkpoint(7, { appended: true }));
      await state.saveCheckpoint(checkpoint(10, { appended: true, published: true }));
      expect(await state.checkpoints()).toEqual([checkpoint(3), checkpoint(7, { appended: true }), checkpoint(10, { appended: true, published: true })]);
      expect(await state.lastCheckpoint()).toEqual(checkpoint(10, { appended: true, published: true }));
      await expect(state.saveCheckpoint({ ...checkpoint(7), note: 'another note' })).rejects.toMatchObject({ code: 'EVIDENCE_LOG_STATE_CORRUPT' });
      expect((await state.checkpoints()).map((c) => c.note)).toEqual([checkpoint(3).note, checkpoint(7).note, checkpoint(10).note]);
      expect((await state.undeliveredCheckpoints({ unpublished: false })).map((c) => c.treeSize)).toEqual([3]);
      expect((await state.undeliveredCheckpoints({ unpublished: true })).map((c) => c.treeSize)).toEqual([3, 7]);
      await state.markCheckpoint(3, { appended: true });
      expect(await state.undeliveredCheckpoints({ unpublished: false })).toEqual([]);
      expect((await state.undeliveredCheckpoints({ unpublished: true })).map((c) => c.treeSize)).toEqual([3, 7]);
      await state.markCheckpoint(3, { published: true });
      await state.markCheckpoint(7, { appended: true, published: true });
      await state.markCheckpoint(7, {});
      expect(await state.undeliveredCheckpoints({ unpublished: true })).toEqual([]);
      expect((await state.checkpoints())[0]).toEqual(checkpoint(3, { appended: true, published: true }));
    });

    it('keeps one cosignature per tree size, witness and key (the latest), listed by tree size and witness', async () => {
      const line = (witness: string, timestamp: number) => `— ${witness} ${Buffer.from(`${witness}${timestamp}`).toString('base64')}`;
      await state.addCosignature({ treeSize: 7, witness: 'w-b', keyId: 'bbbbbbbb', timestamp: 100, line: line('w-b', 100) });
      await state.addCosignature({ treeSize: 7, witness: 'w-a', keyId: 'aaaaaaaa', timestamp: 100, line: line('w-a', 100) });
      await state.addCosignature({ treeSize: 3, witness: 'w-a', keyId: 'aaaaaaaa', timestamp: 90, line: line('w-a', 90) });
      await state.addCosignature({ treeSize: 7, witness: 'w-a', keyId: 'aaaaaaaa', timestamp: 101, line: line('w-a', 101) });
      expect(await state.cosignatures(7)).toEqual([
        { treeSize: 7, witness: 'w-a', keyId: 'aaaaaaaa', timestamp: 101, line: line('w-a', 101) },
        { treeSize: 7, witness: 'w-b', keyId: 'bbbbbbbb', timestamp: 100, line: line('w-b', 100) },
      ]);
      expect((await state.cosignatures()).map((c) => `${c.treeSize}/${c.witness}`)).toEqual(['3/w-a', '7/w-a', '7/w-b']);
      expect(await state.cosignatures(4)).toEqual([]);
    });

    it('records each key once', async () => {
      await state.recordKey(`${CONTRACT_ORIGIN}+01234567+AAAA`);
      await state.recordKey(`${CONTRACT_ORIGIN}+89abcdef+BBBB`);
      await state.recordKey(`${CONTRACT_ORIGIN}+01234567+AAAA`);
      expect([...(await state.keys())].sort()).toEqual([`${CONTRACT_ORIGIN}+01234567+AAAA`, `${CONTRACT_ORIGIN}+89abcdef+BBBB`]);
    });

    it('another handle on the same log sees every write; a handle for another origin is refused', async () => {
      await state.recordLeaves(contractLeaves(0, 2));
      await state.saveCheckpoint(checkpoint(2));
      await state.recordKey(`${CONTRACT_ORIGIN}+01234567+AAAA`);
      await state.recordLeafFormatSwitch(0);
      const other = await subject.reopen(CONTRACT_ORIGIN);
      try {
        expect(other.origin).toBe(CONTRACT_ORIGIN);
        expect(await other.leaves(0, 2)).toEqual(contractLeaves(0, 2));
        expect(await other.checkpoints()).toEqual([checkpoint(2)]);
        expect(await other.keys()).toEqual([`${CONTRACT_ORIGIN}+01234567+AAAA`]);
        expect(await other.leafFormatSwitch()).toBe(0);
        // Writes through it are seen here too.
        await other.recordLeaves(contractLeaves(2, 1));
        expect(await state.leafCount()).toBe(3);
      } finally {
        await other.close();
      }
      await expect(subject.reopen('another.test/evidence')).rejects.toMatchObject({ code: 'EVIDENCE_LOG_STATE_CORRUPT' });
    });

    it('answers writes issued before close, then refuses use with EVIDENCE_LOG_CLOSED', async () => {
      const writes = [state.recordLeaves(contractLeaves(0, 50)), state.recordLeaves(contractLeaves(50, 50)), state.recordKey(`${CONTRACT_ORIGIN}+01234567+AAAA`)];
      await state.close();
      await Promise.all(writes);
      await state.close();
      await expect(state.recordLeaves(contractLeaves(100, 1))).rejects.toMatchObject({ code: 'EVIDENCE_LOG_CLOSED' });
      await expect(state.leafCount()).rejects.toMatchObject({ code: 'EVIDENCE_LOG_CLOSED' });
      const other = await subject.reopen(CONTRACT_ORIGIN);
      try {
        expect(await other.leafCount()).toBe(100);
        expect(await other.keys()).toHaveLength(1);
      } finally {
        await other.close();
      }
    });
  });
}
