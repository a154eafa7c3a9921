import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { EMPTY_TREE_ROOT, hashChildren, hashLeaf } from './hashing.js';
import { MemoryTreeStorage } from './memory-tree-storage.js';
import { MerkleTree } from './merkle-tree.js';
import { referenceRoot, testLeaves } from './testing/reference-tree.js';
import { consistencyProofRanges, inclusionPathRanges, newlyCompletedNodes } from './tree-shape.js';
import { type NodePosition } from './tree-shape.js';

// The RFC 6962 reference test vectors (as shipped with Certificate Transparency and
// github.com/transparency-dev/merkle testonly): eight leaf inputs and the root at each size.
const RFC6962_LEAVES = ['', '00', '10', '2021', '3031', '40414243', '5051525354555657', '606162636465666768696a6b6c6d6e6f'].map((h) => Buffer.from(h, 'hex'));
const RFC6962_ROOTS = [
  'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
  '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
  'fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125',
  'aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77',
  'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
  '4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4',
  '76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef',
  'ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c',
  '5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328',
];

/** A storage wrapper that counts node reads, to check that proofs cost O(log n). */
class CountingStorage extends MemoryTreeStorage {
  reads = 0;
  override async readNodes(positions: readonly NodePosition[]) {
    this.reads += positions.length;
    return super.readNodes(positions);
  }
}

describe('MerkleTree', () => {
  it('matches the RFC 6962 reference roots for sizes 0..8, one leaf at a time and all at once', async () => {
    const oneByOne = await MerkleTree.open(new MemoryTreeStorage());
    expect(oneByOne.root.toString('hex')).toBe(RFC6962_ROOTS[0]);
    expect(EMPTY_TREE_ROOT.toString('hex')).toBe(RFC6962_ROOTS[0]);
    for (const [i, leaf] of RFC6962_LEAVES.entries()) {
      await oneByOne.appendLeaves([leaf]);
      expect(oneByOne.root.toString('hex')).toBe(RFC6962_ROOTS[i + 1]);
    }
    const atOnce = await MerkleTree.open(new MemoryTreeStorage());
    await atOnce.appendLeaves(RFC6962_LEAVES);
    for (let size = 0; size <= 8; size += 1) expect((await atOnce.rootAt(size)).toString('hex')).toBe(RFC6962_ROOTS[size]);
  });

  it('hashes leaves and nodes with the RFC 6962 domain-separation prefixes', () => {
    const data = Buffer.from('custodian');
    expect(hashLeaf(data)).toEqual(Buffer.from(require_sha256(Buffer.concat([Buffer.of(0), data])), 'hex'));
    const l = hashLeaf(Buffer.from('l'));
    const r = hashLeaf(Buffer.from('r'));
    expect(hashChildren(l, r)).toEqual(Buffer.from(require_sha256(Buffer.concat([Buffer.of(1), l, r])), 'hex'));
  });

  it('gives the reference root at sampled sizes up to 2,000 after uneven batches', async () => {
    const tree = await MerkleTree.open(new MemoryTreeStorage());
    const leaves = testLeaves(2000);
    for (let i = 0, size = 1; i < leaves.length; i += size, size = (size * 31) % 97 + 1) await tree.appendLeaves(leaves.slice(i, i + size));
    const hashes = leaves.map(hashLeaf);
    for (const size of [1, 2, 3, 4, 5, 6, 7, 8, 9, 15, 16, 17, 31, 33, 63, 64, 65, 511, 512, 513, 1000, 1023, 1024, 1025, 1999, 2000]) {
      expect(await tree.rootAt(size)).toEqual(referenceRoot(hashes.slice(0, size)));
    }
  });

  it('reads O(log n) stored nodes per proof and root, whatever the size', async () => {
    const storage = new CountingStorage();
    const tree = await MerkleTree.open(storage);
    await tree.appendLeaves(testLeaves(2000));
    const logN = Math.ceil(Math.log2(2000));
    for (const [index, size] of [
      [0, 2000],
      [1999, 2000],
      [1000, 1999],
      [777, 1025],
    ] as const) {
      storage.reads = 0;
      await tree.inclusionProof(index, size);
      expect(storage.reads).toBeLessThanOrEqual(2 * logN);
      storage.reads = 0;
      await tree.consistencyProof(index + 1, size);
      expect(storage.reads).toBeLessThanOrEqual(2 * logN);
      storage.reads = 0;
      await tree.rootAt(size - 1);
      expect(storage.reads).toBeLessThanOrEqual(logN);
    }
  });

  it('refuses bad arguments with TREE_INVALID_ARGUMENT', async () => {
    const tree = await MerkleTree.open(new MemoryTreeStorage());
    await tree.appendLeaves(testLeaves(5));
    await expect(tree.appendLeaves([])).rejects.toMatchObject({ code: 'TREE_INVALID_ARGUMENT' });
    await expect(tree.appendLeafHashes([Buffer.alloc(31)])).rejects.toMatchObject({ code: 'TREE_INVALID_ARGUMENT' });
    await expect(tree.inclusionProof(5, 5)).rejects.toMatchObject({ code: 'TREE_INVALID_ARGUMENT' });
    await expect(tree.inclusionProof(0, 6)).rejects.toMatchObject({ code: 'TREE_INVALID_ARGUMENT' });
    await expect(tree.inclusionProof(-1, 5)).rejects.toMatchObject({ code: 'TREE_INVALID_ARGUMENT' });
    await expect(tree.consistencyProof(4, 3)).rejects.toMatchObject({ code: 'TREE_INVALID_ARGUMENT' });
    await expect(tree.rootAt(1.5)).rejects.toMatchObject({ code: 'TREE_INVALID_ARGUMENT' });
    await tree.close();
    await expect(tree.appendLeaves(testLeaves(1))).rejects.toMatchObject({ code: 'TREE_CLOSED' });
  });

  it('plans RFC 9162 proof ranges (PATH and SUBPROOF) as in the RFC 9162 §2.1.5 example tree of 7 leaves', () => {
    // RFC 9162 §2.1.5: k = (g = (a, b), h = (c, d)), l = (i = (e, f), j = d6).
    // PATH(0) = [b, h, l].
    expect(inclusionPathRanges(0, 7)).toEqual([
      { start: 1, end: 2 },
      { start: 2, end: 4 },
      { start: 4, end: 7 },
    ]);
    // PATH(3) = [c, g, l].
    expect(inclusionPathRanges(3, 7)).toEqual([
      { start: 2, end: 3 },
      { start: 0, end: 2 },
      { start: 4, end: 7 },
    ]);
    // PATH(4) = [f, j, k].
    expect(inclusionPathRanges(4, 7)).toEqual([
      { start: 5, end: 6 },
      { start: 6, end: 7 },
      { start: 0, end: 4 },
    ]);
    // RFC: PROOF(3, D[7]) = [c, d, g, l]; PROOF(4, D[7]) = [l]; PROOF(6, D[7]) = [i, j, k].
    expect(consistencyProofRanges(3, 7)).toEqual([
      { start: 2, end: 3 },
      { start: 3, end: 4 },
      { start: 0, end: 2 },
      { start: 4, end: 7 },
    ]);
    expect(consistencyProofRanges(4, 7)).toEqual([{ start: 4, end: 7 }]);
    expect(consistencyProofRanges(6, 7)).toEqual([
      { start: 4, end: 6 },
      { start: 6, end: 7 },
      { start: 0, end: 4 },
    ]);
  });

  it('lists the interior nodes an append completes', () => {
    expect(newlyCompletedNodes(0, 1)).toEqual([]);
    expect(newlyCompletedNodes(3, 4)).toEqual([
      { level: 1, index: 1 },
      { level: 2, index: 0 },
    ]);
    expect(newlyCompletedNodes(5, 9)).toEqual([
      { level: 1, index: 2 },
      { level: 1, index: 3 },
      { level: 2, index: 1 },
      { level: 3, index: 0 },
    ]);
  });
});

function require_sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}
