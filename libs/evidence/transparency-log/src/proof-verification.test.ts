// Property tests: for random tree sizes up to 2,000 and all or sampled (index, size) and (m, n)
// pairs, generated proofs verify and every kind of tampering fails. Seeded, so failures reproduce.
import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ProofInvalidError } from './errors.js';
import { EMPTY_TREE_ROOT, hashLeaf, type Hash } from './hashing.js';
import { MemoryTreeStorage } from './memory-tree-storage.js';
import { MerkleTree } from './merkle-tree.js';
import { rootFromInclusionProof, verifyConsistency, verifyInclusion } from './proof-verification.js';
import { testLeaves } from './testing/reference-tree.js';

const MAX_SIZE = 2000;
const SEED = 0x5eed_c0de;

/** mulberry32: a tiny seeded PRNG. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function flipBit(hashes: readonly Hash[], which: number, bit: number): Hash[] {
  return hashes.map((h, i) => {
    if (i !== which) return h;
    const copy = Buffer.from(h);
    copy[Math.floor(bit / 8) % 32]! ^= 1 << bit % 8;
    return copy;
  });
}

// Tampered proofs that were accepted (collected rather than one expect() per case: there are ~100k).
const accepted: string[] = [];
let tamperChecks = 0;
let context = '';
function mustFail(fn: () => void): void {
  tamperChecks += 1;
  try {
    fn();
  } catch (error) {
    if (!(error instanceof ProofInvalidError)) throw error;
    return;
  }
  accepted.push(`${context}: ${fn.toString()}`);
}

describe('RFC 9162 proofs (property tests)', () => {
  const random = prng(SEED);
  const int = (n: number): number => Math.floor(random() * n);
  let tree: MerkleTree;
  let leafHashes: Hash[];
  const roots = new Map<number, Hash>();
  const root = (size: number): Hash => roots.get(size)!;

  // Every size 1..64 exhaustively, plus random sizes and the powers of two ± 1 up to MAX_SIZE.
  const sizes = new Set<number>();
  for (let s = 1; s <= 64; s += 1) sizes.add(s);
  for (let p = 128; p <= MAX_SIZE; p *= 2) [p - 1, p, p + 1].forEach((s) => sizes.add(s));
  while (sizes.size < 110) sizes.add(1 + int(MAX_SIZE));
  sizes.add(MAX_SIZE);

  beforeEach(() => {
    accepted.length = 0;
  });

  beforeAll(async () => {
    tree = await MerkleTree.open(new MemoryTreeStorage());
    const leaves = testLeaves(MAX_SIZE);
    leafHashes = leaves.map(hashLeaf);
    await tree.appendLeaves(leaves);
    for (let size = 0; size <= MAX_SIZE; size += 1) roots.set(size, await tree.rootAt(size));
    expect(root(0)).toEqual(EMPTY_TREE_ROOT);
  });

  it(`inclusion: proofs verify and tampered proofs fail (seed ${SEED.toString(16)})`, async () => {
    let checked = 0;
    for (const size of sizes) {
      const indices = size <= 64 ? Array.from({ length: size }, (_, i) => i) : [0, size - 1, ...Array.from({ length: 12 }, () => int(size))];
      for (const index of indices) {
        const { hashes } = await tree.inclusionProof(index, size);
        context = `inclusion index ${index} size ${size}`;
        const leaf = leafHashes[index]!;
        verifyInclusion(leaf, index, size, hashes, root(size));
        expect(rootFromInclusionProof(leaf, index, size, hashes)).toEqual(root(size));

        // A flipped bit in any proof hash, the leaf or the root.
        for (let i = 0; i < hashes.length; i += 1) mustFail(() => verifyInclusion(leaf, index, size, flipBit(hashes, i, int(256)), root(size)));
        mustFail(() => verifyInclusion(flipBit([leaf], 0, int(256))[0]!, index, size, hashes, root(size)));
        mustFail(() => verifyInclusion(leaf, index, size, hashes, flipBit([root(size)], 0, int(256))[0]!));
        // Another leaf's hash at this index; this leaf at another index.
        mustFail(() => verifyInclusion(leafHashes[(index + 1) % MAX_SIZE]!, index, size, hashes, root(size)));
        for (const other of [index + 1, index - 1, index ^ 1, int(size)]) {
          if (other === index || other < 0) continue;
          mustFail(() => verifyInclusion(leaf, other, size, hashes, root(size)));
        }
        // The same proof claimed for another tree (its size with its own root).
        for (const otherSize of [size + 1, size - 1, 2 * size]) {
          if (otherSize <= index || otherSize > MAX_SIZE || otherSize === size) continue;
          mustFail(() => verifyInclusion(leaf, index, otherSize, hashes, root(otherSize)));
        }
        // Truncated, extended, reordered.
        if (hashes.length > 0) mustFail(() => verifyInclusion(leaf, index, size, hashes.slice(0, -1), root(size)));
        mustFail(() => verifyInclusion(leaf, index, size, [...hashes, leafHashes[0]!], root(size)));
        mustFail(() => verifyInclusion(leaf, index, size, [leafHashes[0]!, ...hashes], root(size)));
        if (hashes.length > 1 && !hashes[0]!.equals(hashes[1]!)) {
          mustFail(() => verifyInclusion(leaf, index, size, [hashes[1]!, hashes[0]!, ...hashes.slice(2)], root(size)));
        }
        checked += 1;
      }
    }
    expect(checked).toBeGreaterThan(2500);
    expect(accepted).toEqual([]);
    expect(tamperChecks).toBeGreaterThan(50_000);
  });

  it('inclusion: out-of-range and malformed inputs are refused', () => {
    mustFail(() => verifyInclusion(leafHashes[0]!, 0, 0, [], EMPTY_TREE_ROOT));
    mustFail(() => verifyInclusion(leafHashes[0]!, 1, 1, [], root(1)));
    mustFail(() => verifyInclusion(leafHashes[0]!, -1, 1, [], root(1)));
    mustFail(() => verifyInclusion(leafHashes[0]!, 0, 2, [Buffer.alloc(31)], root(2)));
    mustFail(() => verifyInclusion(Buffer.alloc(33), 0, 1, [], root(1)));
    verifyInclusion(leafHashes[0]!, 0, 1, [], root(1));
    expect(accepted).toEqual([]);
  });

  it(`consistency: proofs verify and tampered proofs fail, all pairs up to 64 and sampled pairs up to ${MAX_SIZE}`, async () => {
    const pairs: [number, number][] = [];
    for (let n = 1; n <= 64; n += 1) for (let m = 0; m <= n; m += 1) pairs.push([m, n]);
    for (const n of sizes) {
      if (n <= 64) continue;
      pairs.push([1, n], [n - 1, n], [n, n]);
      for (let i = 0; i < 8; i += 1) pairs.push([1 + int(n - 1), n]);
    }
    for (const [m, n] of pairs) {
      const { hashes } = await tree.consistencyProof(m, n);
      context = `consistency ${m} → ${n}`;
      verifyConsistency(m, n, hashes, root(m), root(n));
      if (m === n || m === 0) {
        expect(hashes).toEqual([]);
        // Non-empty proofs, or wrong roots, are refused even here.
        mustFail(() => verifyConsistency(m, n, [leafHashes[0]!], root(m), root(n)));
        if (m === n && n > 1) mustFail(() => verifyConsistency(m, n, [], root(m), root(n - 1)));
        if (m === 0) mustFail(() => verifyConsistency(0, n, [], root(1), root(n)));
        continue;
      }
      for (let i = 0; i < hashes.length; i += 1) mustFail(() => verifyConsistency(m, n, flipBit(hashes, i, int(256)), root(m), root(n)));
      mustFail(() => verifyConsistency(m, n, hashes, flipBit([root(m)], 0, int(256))[0]!, root(n)));
      mustFail(() => verifyConsistency(m, n, hashes, root(m), flipBit([root(n)], 0, int(256))[0]!));
      mustFail(() => verifyConsistency(m, n, hashes.slice(0, -1), root(m), root(n)));
      mustFail(() => verifyConsistency(m, n, [...hashes, leafHashes[0]!], root(m), root(n)));
      mustFail(() => verifyConsistency(m, n, [leafHashes[0]!, ...hashes], root(m), root(n)));
      // The proof claimed between other sizes (with their own roots).
      for (const [m2, n2] of [
        [m + 1, n],
        [m - 1, n],
        [m, n + 1],
        [m, n - 1],
      ] as const) {
        if (m2 < 1 || m2 >= n2 || n2 > MAX_SIZE) continue;
        mustFail(() => verifyConsistency(m2, n2, hashes, root(m2), root(n2)));
      }
    }
    expect(pairs.length).toBeGreaterThan(2500);
    expect(accepted).toEqual([]);
  });

  it('consistency: a rewritten old leaf cannot be proven consistent with the new tree', async () => {
    const forked = await MerkleTree.open(new MemoryTreeStorage());
    const leaves = testLeaves(100);
    leaves[41] = Buffer.from('rewritten history');
    await forked.appendLeaves(leaves);
    for (const m of [42, 50, 64, 99]) {
      const honest = await tree.consistencyProof(m, 100);
      const forkedProof = await forked.consistencyProof(m, 100);
      // The fork's own proof ties its own old root, not the one a verifier saw signed earlier.
      mustFail(() => verifyConsistency(m, 100, forkedProof.hashes, root(m), forked.root));
      mustFail(() => verifyConsistency(m, 100, honest.hashes, root(m), forked.root));
    }
    expect(accepted).toEqual([]);
  });

  it('consistency: wrong orders and malformed inputs are refused', () => {
    mustFail(() => verifyConsistency(5, 4, [], root(5), root(4)));
    mustFail(() => verifyConsistency(3, 5, [], root(3), root(5)));
    mustFail(() => verifyConsistency(3, 5, [Buffer.alloc(31)], root(3), root(5)));
    expect(accepted).toEqual([]);
  });
});
