import { describe, expect, it } from 'vitest';
import { CompactRange } from './compact-range.js';
import { InvalidTreeArgumentError, ProofInvalidError } from './errors.js';
import { hashLeaf, type Hash } from './hashing.js';
import { LeafSetProofVerifier, leafSetGaps, type LeafSetProof } from './leaf-set-proof.js';
import { MemoryTreeStorage } from './memory-tree-storage.js';
import { MerkleTree } from './merkle-tree.js';
import { referenceRoot, testLeafHashes } from './testing/reference-tree.js';

/** A reproducible pseudo-random generator (mulberry32), so failures can be replayed. */
function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function verify(proof: LeafSetProof, leafHashes: readonly Hash[], root: Hash): number[] {
  const verifier = new LeafSetProofVerifier(proof);
  const indices: number[] = [];
  for (const h of leafHashes) indices.push(verifier.append(h));
  verifier.finish(root);
  return indices;
}

async function treeOf(size: number): Promise<{ tree: MerkleTree; leaves: Hash[] }> {
  const leaves = testLeafHashes(size);
  const tree = await MerkleTree.open(new MemoryTreeStorage());
  if (size > 0) await tree.appendLeafHashes(leaves);
  return { tree, leaves };
}

describe('leaf-set proofs', () => {
  it('CompactRange with aligned subtrees gives the RFC 6962 root for every split of every size ≤ 40', () => {
    const leaves = testLeafHashes(40);
    for (let size = 0; size <= 40; size += 1) {
      const expected = referenceRoot(leaves.slice(0, size));
      for (let split = 0; split <= size; split += 1) {
        // Leaves one by one up to `split`, then [split, size) as its aligned subtrees.
        const range = new CompactRange();
        for (const h of leaves.slice(0, split)) range.append(h);
        let start = split;
        while (start < size) {
          let level = 0;
          while (start % 2 ** (level + 1) === 0 && start + 2 ** (level + 1) <= size) level += 1;
          range.appendSubtree(level, referenceRoot(leaves.slice(start, start + 2 ** level)));
          start += 2 ** level;
        }
        expect(range.size).toBe(size);
        expect(range.root().equals(expected), `size ${size} split ${split}`).toBe(true);
      }
    }
  });

  it('refuses an unaligned subtree', () => {
    const range = new CompactRange();
    range.append(hashLeaf(Buffer.from('a')));
    expect(() => range.appendSubtree(1, hashLeaf(Buffer.from('b')))).toThrow(InvalidTreeArgumentError);
  });

  it('proves every subset of every tree up to 9 leaves, and the indices come back in order', async () => {
    for (let size = 1; size <= 9; size += 1) {
      const { tree, leaves } = await treeOf(size);
      for (let mask = 0; mask < 2 ** size; mask += 1) {
        const indices = [...Array(size).keys()].filter((i) => (mask >> i) & 1);
        const proof = await tree.leafSetProof(indices);
        expect(verify(proof, indices.map((i) => leaves[i]!), tree.root)).toEqual(indices);
      }
    }
  });

  it('proves random subsets of larger trees against older sizes, with ~2·log2(n) hashes for a contiguous run', async () => {
    const next = random(7);
    const { tree, leaves } = await treeOf(3000);
    for (let round = 0; round < 60; round += 1) {
      const size = 1 + Math.floor(next() * 3000);
      const density = next();
      const indices = [...Array(size).keys()].filter(() => next() < density);
      const proof = await tree.leafSetProof(indices, size);
      expect(verify(proof, indices.map((i) => leaves[i]!), referenceRoot(leaves.slice(0, size)))).toEqual(indices);
    }
    const run = await tree.leafSetProof([...Array(2000).keys()].map((i) => i + 500), 3000);
    const hashes = run.gaps.reduce((n, g) => n + g.hashes.length, 0);
    expect(hashes).toBeLessThanOrEqual(2 * Math.ceil(Math.log2(3000)));
  });

  it('detects a changed, dropped, added or reordered leaf, a moved gap and a forged gap hash', async () => {
    const { tree, leaves } = await treeOf(100);
    const indices = [3, 4, 5, 40, 41, 77, 99];
    const proof = await tree.leafSetProof(indices);
    const given = indices.map((i) => leaves[i]!);
    const fails = (p: LeafSetProof, hashes: readonly Hash[]): void => {
      expect(() => verify(p, hashes, tree.root)).toThrow(ProofInvalidError);
    };
    fails(proof, given.map((h, i) => (i === 2 ? hashLeaf(Buffer.from('forged')) : h)));
    fails(proof, given.slice(1));
    fails(proof, [...given, leaves[0]!]);
    fails(proof, [given[1]!, given[0]!, ...given.slice(2)]);
    // Claiming leaf 6 instead of 5: the gap after it starts one later.
    const moved: LeafSetProof = { ...proof, gaps: proof.gaps.map((g) => (g.begin === 6 ? { ...g, begin: 7 } : g)) };
    fails(moved, [...given.slice(0, 3), leaves[6]!, ...given.slice(3)].slice(0, given.length));
    const forged: LeafSetProof = { ...proof, gaps: proof.gaps.map((g, i) => (i === 1 ? { ...g, hashes: g.hashes.map((h, j) => (j === 0 ? hashLeaf(h) : h)) } : g)) };
    fails(forged, given);
    // Verified against the root of another size.
    expect(() => verify(proof, given, referenceRoot(leaves.slice(0, 99)))).toThrow(ProofInvalidError);
  });

  it('refuses malformed proofs before hashing anything', () => {
    const h = hashLeaf(Buffer.from('x'));
    const bad: unknown[] = [
      { treeSize: -1, gaps: [] },
      { treeSize: 10, gaps: 'none' },
      { treeSize: 10, gaps: [{ begin: 4, end: 4, hashes: [] }] },
      { treeSize: 10, gaps: [{ begin: 0, end: 11, hashes: [h, h] }] },
      { treeSize: 10, gaps: [{ begin: 2, end: 4, hashes: [h] }, { begin: 3, end: 5, hashes: [h, h] }] },
      { treeSize: 10, gaps: [{ begin: 1, end: 4, hashes: [h] }] },
      { treeSize: 10, gaps: [{ begin: 0, end: 2, hashes: [Buffer.alloc(31)] }] },
    ];
    for (const proof of bad) expect(() => new LeafSetProofVerifier(proof as LeafSetProof), JSON.stringify(proof)).toThrow(ProofInvalidError);
    expect(() => leafSetGaps([2, 1], 5)).toThrow(InvalidTreeArgumentError);
    expect(() => leafSetGaps([5], 5)).toThrow(InvalidTreeArgumentError);
    expect(leafSetGaps([0, 1, 4], 7)).toEqual([{ start: 2, end: 4 }, { start: 5, end: 7 }]);
  });

  it('reads O(gaps · log n) nodes, not one path per leaf', async () => {
    const { tree } = await treeOf(4096);
    const indices = [...Array(1024).keys()].map((i) => 1000 + i);
    const proof = await tree.leafSetProof(indices);
    expect(proof.gaps.length).toBe(2);
    expect(proof.gaps.reduce((n, g) => n + g.hashes.length, 0)).toBeLessThanOrEqual(24);
  });
});
