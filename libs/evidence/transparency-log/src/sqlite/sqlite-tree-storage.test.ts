import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { hashLeaf } from '../hashing.js';
import { MerkleTree } from '../merkle-tree.js';
import { describeTreeStorageContract } from '../testing/tree-storage-contract.js';
import { referenceRoot, testLeaves } from '../testing/reference-tree.js';
import { SqliteTreeStorage } from './sqlite-tree-storage.js';

describeTreeStorageContract('SqliteTreeStorage', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tlog-sqlite-contract-'));
  const storage = await SqliteTreeStorage.open({ path: join(dir, 'tree.db') });
  return {
    storage,
    cleanup: async () => {
      await storage.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});

describe('SqliteTreeStorage (file specifics)', () => {
  let dir: string;
  let path: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'tlog-sqlite-'));
    path = join(dir, 'tree.db');
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('uses WAL with synchronous=FULL', async () => {
    const storage = await SqliteTreeStorage.open({ path });
    expect(storage.settings()).toEqual({ journalMode: 'wal', synchronous: 'FULL' });
    await storage.close();
  });

  it('survives a restart: the reopened tree has the same size, root and proofs without rehashing leaves', async () => {
    const leaves = testLeaves(1000);
    const first = await MerkleTree.open(await SqliteTreeStorage.open({ path }));
    for (let i = 0; i < leaves.length; i += 137) await first.appendLeaves(leaves.slice(i, i + 137));
    const root = first.root;
    await first.close();

    const storage = await SqliteTreeStorage.open({ path });
    let nodesRead = 0;
    const counting = Object.assign(Object.create(storage) as SqliteTreeStorage, {
      readNodes: async (positions: Parameters<SqliteTreeStorage['readNodes']>[0]) => {
        nodesRead += positions.length;
        return storage.readNodes(positions);
      },
    });
    const reopened = await MerkleTree.open(counting);
    expect(reopened.size).toBe(1000);
    expect(reopened.root).toEqual(root);
    expect(root).toEqual(referenceRoot(leaves.map(hashLeaf)));
    // 1000 = 0b1111101000: six frontier nodes, not a thousand leaves.
    expect(nodesRead).toBe(6);
    await reopened.appendLeaves([Buffer.from('after restart')]);
    expect(reopened.root).toEqual(referenceRoot([...leaves, Buffer.from('after restart')].map(hashLeaf)));
    await reopened.close();
  });

  it('the database itself refuses UPDATE, DELETE, INSERT OR REPLACE, gaps and orphan interior nodes', async () => {
    const tree = await MerkleTree.open(await SqliteTreeStorage.open({ path }));
    await tree.appendLeaves(testLeaves(4));
    await tree.close();
    const db = new BetterSqlite3(path);
    try {
      const hash = Buffer.alloc(32, 7);
      expect(() => db.prepare('UPDATE tlog_nodes SET hash = ? WHERE level = 0 AND idx = 0').run(hash)).toThrow(/append-only/);
      expect(() => db.prepare('DELETE FROM tlog_nodes WHERE level = 0 AND idx = 3').run()).toThrow(/append-only/);
      expect(() => db.prepare('INSERT OR REPLACE INTO tlog_nodes (level, idx, hash) VALUES (0, 1, ?)').run(hash)).toThrow(/append-only/);
      expect(() => db.prepare('INSERT INTO tlog_nodes (level, idx, hash) VALUES (0, 9, ?)').run(hash)).toThrow(/next one/);
      expect(() => db.prepare('INSERT INTO tlog_nodes (level, idx, hash) VALUES (1, 2, ?)').run(hash)).toThrow(/both children/);
      expect(() => db.prepare('INSERT INTO tlog_nodes (level, idx, hash) VALUES (0, 4, ?)').run(Buffer.alloc(31))).toThrow(/CHECK/);
      expect(db.prepare('SELECT COUNT(*) AS n FROM tlog_nodes').get()).toEqual({ n: 7 });
    } finally {
      db.close();
    }
  });

  it('two writers on one file: the stale one gets TREE_SIZE_CONFLICT and catches up on refresh', async () => {
    const a = await MerkleTree.open(await SqliteTreeStorage.open({ path }));
    const b = await MerkleTree.open(await SqliteTreeStorage.open({ path }));
    await a.appendLeaves(testLeaves(3, 'a'));
    await expect(b.appendLeaves(testLeaves(1, 'b'))).rejects.toMatchObject({ code: 'TREE_SIZE_CONFLICT' });
    // A failed append reloads the stored state, so the next one lands after a's leaves.
    expect(b.size).toBe(3);
    await b.appendLeaves(testLeaves(1, 'b'));
    await a.refresh();
    expect(a.root).toEqual(referenceRoot([...testLeaves(3, 'a'), ...testLeaves(1, 'b')].map(hashLeaf)));
    await a.close();
    await b.close();
  });
});
