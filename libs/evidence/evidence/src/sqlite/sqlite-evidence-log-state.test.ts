import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hashLeaf, MerkleTree, TreeSizeConflictError } from '@custodian/transparency-log';
import { describeTreeStorageContract } from '@custodian/transparency-log/testing';
import BetterSqlite3 from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { EvidenceLogState, LeafRecord } from '../evidence-log-state.js';
import { CONTRACT_ORIGIN, describeEvidenceLogStateContract } from '../testing/evidence-log-state-contract.js';
import { SqliteEvidenceLogState } from './sqlite-evidence-log-state.js';

const ORIGIN = 'test.example/state';

// The tree as the projection stores it (appends through the writer thread) keeps every promise of a TreeStorage.
describeTreeStorageContract('SqliteEvidenceLogState.treeStorage (writer thread)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'evidence-state-contract-'));
  const state = await SqliteEvidenceLogState.open({ path: join(dir, 'evidence.sqlite'), origin: ORIGIN });
  return {
    storage: state.treeStorage,
    cleanup: async () => {
      await state.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});

describeEvidenceLogStateContract('SqliteEvidenceLogState', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'evidence-state-contract-'));
  const path = join(dir, 'evidence.sqlite');
  const state = await SqliteEvidenceLogState.open({ path, origin: CONTRACT_ORIGIN });
  const others: EvidenceLogState[] = [];
  return {
    state,
    reopen: async (origin) => {
      const other = await SqliteEvidenceLogState.open({ path, origin });
      others.push(other);
      return other;
    },
    cleanup: async () => {
      for (const other of others) await other.close();
      await state.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});

function leaves(from: number, count: number): LeafRecord[] {
  return Array.from({ length: count }, (_, k) => {
    const i = from + k;
    return {
      leafIndex: i,
      position: { commit: BigInt(i + 1), prepare: BigInt(i + 1) },
      eventId: `0190a0b0-0000-7000-8000-${String(i).padStart(12, '0')}`,
      type: 'session.opened',
      occurredAt: '2026-12-07T10:00:00.000000Z',
      subject: 'agent-1',
      connection: 'orders',
      sessionId: `session-${i}`,
      leafHash: hashLeaf(Buffer.from(`event ${i}`)),
    };
  });
}

describe('SqliteEvidenceLogState writes (writer thread)', () => {
  let dir: string;
  let path: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'evidence-state-'));
    path = join(dir, 'evidence.sqlite');
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('commits in a thread whose connection is WAL with synchronous=FULL; a reader never starts one', async () => {
    const reader = await SqliteEvidenceLogState.open({ path, origin: ORIGIN });
    expect(await reader.leafCount()).toBe(0);
    expect(await reader.checkpoints()).toEqual([]);
    expect(reader.writerStarted).toBe(false);
    await reader.close();
    const state = await SqliteEvidenceLogState.open({ path, origin: ORIGIN });
    expect(await state.writerSettings()).toEqual({ journalMode: 'wal', synchronous: 2 });
    expect(state.writerStarted).toBe(true);
    await state.close();
  });

  it('keeps the event loop turning while a large batch of leaves commits, and reads see it once acknowledged', async () => {
    const state = await SqliteEvidenceLogState.open({ path, origin: ORIGIN });
    let turns = 0;
    let spinning = true;
    const spin = (): void => {
      turns += 1;
      if (spinning) setImmediate(spin);
    };
    setImmediate(spin);
    // Done synchronously on this thread, the write would resolve before any setImmediate callback ran.
    await state.recordLeaves(leaves(0, 5_000));
    const turnsWhileWriting = turns;
    spinning = false;
    expect(turnsWhileWriting).toBeGreaterThan(0);
    expect(await state.leafCount()).toBe(5_000);
    expect((await state.lastLeaf())?.eventId).toBe(leaves(4_999, 1)[0]!.eventId);
    await state.close();
  });

  it('refuses a leaf that is not the next one, keeping nothing of that batch', async () => {
    const state = await SqliteEvidenceLogState.open({ path, origin: ORIGIN });
    await state.recordLeaves(leaves(0, 3));
    await expect(state.recordLeaves([...leaves(3, 2), ...leaves(6, 1)])).rejects.toMatchObject({ code: 'EVIDENCE_LOG_STATE_CORRUPT', message: expect.stringContaining('must be the next one') });
    expect(await state.leafCount()).toBe(3);
    await state.close();
  });

  it('refuses a tree append from a stale size (another writer appended meanwhile) with TreeSizeConflictError', async () => {
    const state = await SqliteEvidenceLogState.open({ path, origin: ORIGIN });
    await state.treeStorage.append({ fromSize: 0, leafHashes: [hashLeaf(Buffer.from('a'))], nodes: [] });
    await expect(state.treeStorage.append({ fromSize: 0, leafHashes: [hashLeaf(Buffer.from('b'))], nodes: [] })).rejects.toBeInstanceOf(TreeSizeConflictError);
    expect(await state.treeStorage.size()).toBe(1);
    await state.close();
  });

  it('records leaves and appends them to the tree in one write: both or neither', async () => {
    const state = await SqliteEvidenceLogState.open({ path, origin: ORIGIN });
    const tree = await MerkleTree.open(state.treeStorage);
    const stale = await MerkleTree.open(state.treeStorage);
    await state.appendLeaves(leaves(0, 3), tree);
    expect(await state.leafCount()).toBe(3);
    expect(await state.treeStorage.size()).toBe(3);
    expect(tree.size).toBe(3);
    expect(await tree.leafHash(2)).toEqual(leaves(2, 1)[0]!.leafHash);
    // The stale tree believes the size is 0: the tree part fails, so the leaf records (3 and 4,
    // which alone would be accepted) are not kept either.
    await expect(state.appendLeaves(leaves(3, 2), stale)).rejects.toBeInstanceOf(TreeSizeConflictError);
    expect(await state.leafCount()).toBe(3);
    expect(await state.treeStorage.size()).toBe(3);
    // A refused leaf record fails the tree nodes of the same write.
    await expect(state.appendLeaves(leaves(4, 1), tree)).rejects.toThrow(/must be the next one/);
    expect(await state.treeStorage.size()).toBe(3);
    expect(await state.leafCount()).toBe(3);
    await tree.close();
    await stale.close();
    await state.close();
  });

  it('answers every write issued before close, and the file holds them after reopening', async () => {
    const state = await SqliteEvidenceLogState.open({ path, origin: ORIGIN });
    const writes = [state.recordLeaves(leaves(0, 100)), state.recordLeaves(leaves(100, 100)), state.recordKey('test.example/state+01234567+AAAA')];
    await state.close();
    await Promise.all(writes);
    await expect(state.recordLeaves(leaves(200, 1))).rejects.toMatchObject({ code: 'EVIDENCE_LOG_CLOSED' });
    const db = new BetterSqlite3(path, { readonly: true });
    try {
      expect(db.prepare('SELECT COUNT(*) FROM evidence_leaves').pluck().get()).toBe(200);
      expect(db.prepare('SELECT COUNT(*) FROM evidence_keys').pluck().get()).toBe(1);
    } finally {
      db.close();
    }
  });
});
