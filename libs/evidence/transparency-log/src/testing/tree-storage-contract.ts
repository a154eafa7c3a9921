// The behaviour every TreeStorage adapter must have, as a Vitest suite. An adapter's test file calls
// describeTreeStorageContract() with a factory (see memory-tree-storage.test.ts, sqlite-tree-storage.test.ts).
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { InvalidTreeArgumentError, TreeClosedError, TreeSizeConflictError } from '../errors.js';
import { hashLeaf, type Hash } from '../hashing.js';
import { MerkleTree, growTree } from '../merkle-tree.js';
import { verifyConsistency, verifyInclusion } from '../proof-verification.js';
import { type TreeStorage } from '../tree-storage.js';
import { referenceRoot, testLeafHashes, testLeaves } from './reference-tree.js';

export interface TreeStorageContractSubject {
  readonly storage: TreeStorage;
  /** Releases the storage and whatever the factory created (temp files). */
  cleanup(): Promise<void>;
}

/** Appends leaf hashes to raw storage the way MerkleTree does, returning the stored batch. */
async function rawAppend(storage: TreeStorage, fromSize: number, leafHashes: Hash[], frontier = new Map<number, Hash>()): Promise<Map<number, Hash>> {
  const grown = growTree(fromSize, leafHashes, frontier);
  await storage.append({ fromSize, leafHashes, nodes: grown.nodes });
  return grown.frontier;
}

export function describeTreeStorageContract(name: string, factory: () => Promise<TreeStorageContractSubject>): void {
  describe(`TreeStorage contract: ${name}`, () => {
    let subject: TreeStorageContractSubject;
    beforeEach(async () => {
      subject = await factory();
    });
    afterEach(async () => {
      await subject.cleanup();
    });

    it('starts empty and refuses to read nodes that do not exist yet', async () => {
      expect(await subject.storage.size()).toBe(0);
      expect(await subject.storage.readNodes([])).toEqual([]);
      await expect(subject.storage.readNodes([{ level: 0, index: 0 }])).rejects.toBeInstanceOf(InvalidTreeArgumentError);
    });

    it('stores leaves and exactly the interior nodes they complete, readable by (level, index)', async () => {
      const leaves = testLeafHashes(7);
      await rawAppend(subject.storage, 0, leaves);
      expect(await subject.storage.size()).toBe(7);
      const [l0, l6, n10, n12, n20] = await subject.storage.readNodes([
        { level: 0, index: 0 },
        { level: 0, index: 6 },
        { level: 1, index: 0 },
        { level: 1, index: 2 },
        { level: 2, index: 0 },
      ]);
      expect(l0).toEqual(leaves[0]);
      expect(l6).toEqual(leaves[6]);
      expect(n10).toEqual(referenceRoot(leaves.slice(0, 2)));
      expect(n12).toEqual(referenceRoot(leaves.slice(4, 6)));
      expect(n20).toEqual(referenceRoot(leaves.slice(0, 4)));
      // (1, 3) and (3, 0) would need leaf 7: not complete at size 7.
      await expect(subject.storage.readNodes([{ level: 1, index: 3 }])).rejects.toMatchObject({ code: 'TREE_INVALID_ARGUMENT' });
      await expect(subject.storage.readNodes([{ level: 3, index: 0 }])).rejects.toMatchObject({ code: 'TREE_INVALID_ARGUMENT' });
    });

    it('refuses an append at the wrong size (TREE_SIZE_CONFLICT) and writes nothing', async () => {
      const frontier = await rawAppend(subject.storage, 0, testLeafHashes(3));
      const next = testLeafHashes(2, 'next');
      const grown = growTree(3, next, frontier);
      const stale = subject.storage.append({ fromSize: 2, leafHashes: next, nodes: grown.nodes });
      await expect(stale).rejects.toBeInstanceOf(TreeSizeConflictError);
      await expect(stale).rejects.toMatchObject({ code: 'TREE_SIZE_CONFLICT', expectedSize: 2, actualSize: 3 });
      expect(await subject.storage.size()).toBe(3);
    });

    it('refuses an append whose interior nodes are missing, extra, misplaced or not 32 bytes, and writes nothing', async () => {
      const leaves = testLeafHashes(4);
      const { nodes } = growTree(0, leaves, new Map());
      expect(nodes.map((n) => [n.level, n.index])).toEqual([
        [1, 0],
        [1, 1],
        [2, 0],
      ]);
      const attempts = [
        nodes.slice(0, 2),
        [...nodes, { level: 3, index: 0, hash: nodes[2]!.hash }],
        [nodes[1]!, nodes[0]!, nodes[2]!],
        [nodes[0]!, nodes[1]!, { ...nodes[2]!, hash: Buffer.alloc(31) }],
      ];
      for (const attempt of attempts) {
        await expect(subject.storage.append({ fromSize: 0, leafHashes: leaves, nodes: attempt })).rejects.toMatchObject({ code: 'TREE_INVALID_ARGUMENT' });
      }
      await expect(subject.storage.append({ fromSize: 0, leafHashes: [Buffer.alloc(33)], nodes: [] })).rejects.toMatchObject({ code: 'TREE_INVALID_ARGUMENT' });
      await expect(subject.storage.append({ fromSize: 0, leafHashes: [], nodes: [] })).rejects.toMatchObject({ code: 'TREE_INVALID_ARGUMENT' });
      expect(await subject.storage.size()).toBe(0);
    });

    it('keeps its own copy of appended hashes', async () => {
      const leaves = testLeafHashes(2);
      const original = Buffer.from(leaves[0]!);
      await rawAppend(subject.storage, 0, leaves);
      leaves[0]!.fill(0xff);
      const [stored] = await subject.storage.readNodes([{ level: 0, index: 0 }]);
      expect(stored).toEqual(original);
    });

    it('under MerkleTree: batched and concurrent appends give the RFC 6962 root at every size, and a second opener sees the same tree', async () => {
      const tree = await MerkleTree.open(subject.storage, { maxBatchLeaves: 64 });
      const leaves = testLeaves(300);
      const leafHashes = leaves.map(hashLeaf);
      // Uneven batches, some in flight at once (grouped into one storage append).
      const batches: Buffer[][] = [];
      for (let i = 0, size = 1; i < leaves.length; i += size, size = (size * 7) % 23 + 1) batches.push(leaves.slice(i, i + size));
      const results = await Promise.all(batches.map((batch) => tree.appendLeaves(batch)));
      let expectedFirst = 0;
      for (const [i, result] of results.entries()) {
        expect(result.firstIndex).toBe(expectedFirst);
        expectedFirst += batches[i]!.length;
      }
      expect(tree.size).toBe(300);
      expect(await subject.storage.size()).toBe(300);
      expect(tree.root).toEqual(referenceRoot(leafHashes));
      for (const size of [1, 2, 3, 5, 8, 13, 64, 100, 127, 128, 129, 255, 299]) {
        expect(await tree.rootAt(size)).toEqual(referenceRoot(leafHashes.slice(0, size)));
      }
      const again = await MerkleTree.open(subject.storage);
      expect(again.size).toBe(300);
      expect(again.root).toEqual(tree.root);
      const inclusion = await again.inclusionProof(123, 250);
      verifyInclusion(leafHashes[123]!, 123, 250, inclusion.hashes, referenceRoot(leafHashes.slice(0, 250)));
      const consistency = await again.consistencyProof(77, 300);
      verifyConsistency(77, 300, consistency.hashes, referenceRoot(leafHashes.slice(0, 77)), tree.root);
    });

    it('refuses use after close', async () => {
      await subject.storage.close();
      await expect(subject.storage.size()).rejects.toBeInstanceOf(TreeClosedError);
      await expect(subject.storage.readNodes([])).rejects.toMatchObject({ code: 'TREE_CLOSED' });
    });
  });
}
