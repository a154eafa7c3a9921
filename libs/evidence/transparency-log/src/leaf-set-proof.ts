// Proof that a set of leaves — any subset, in index order — is in a tree, in one piece instead of
// one inclusion proof per leaf. Every leaf NOT in the set is covered by a gap given as its compact
// range: the roots of the aligned complete subtrees that make up [begin, end), left to right. A
// verifier appends the set's leaf hashes and the gaps' subtrees in order to a CompactRange and
// compares the root. That is transparency-dev/merkle's compact.Range merge (NewRange + AppendRange),
// so Go can check the same proof. Size: for a contiguous run of k leaves about 2·log2(n) hashes
// instead of k·log2(n); for a scattered set at most about 2·log2(n) per gap.
import { CompactRange } from './compact-range.js';
import { InvalidTreeArgumentError, ProofInvalidError } from './errors.js';
import { hashesEqual, isHash, type Hash } from './hashing.js';
import { completeSubtrees, type LeafRange } from './tree-shape.js';

export interface LeafSetProofGap {
  readonly begin: number;
  readonly end: number;
  /** Roots of completeSubtrees({ start: begin, end }), left to right. */
  readonly hashes: readonly Hash[];
}

export interface LeafSetProof {
  readonly treeSize: number;
  /** Ascending, non-overlapping, within [0, treeSize). The set is every leaf no gap covers. */
  readonly gaps: readonly LeafSetProofGap[];
}

/** The ranges of [0, size) not in `indices` (ascending, distinct, below size). */
export function leafSetGaps(indices: ArrayLike<number>, size: number): LeafRange[] {
  const gaps: LeafRange[] = [];
  let next = 0;
  for (let i = 0; i < indices.length; i += 1) {
    const index = indices[i]!;
    if (!Number.isSafeInteger(index) || index < next || index >= size) throw new InvalidTreeArgumentError(`leaf index ${String(index)} is not ascending and below the tree size ${size}`);
    if (index > next) gaps.push({ start: next, end: index });
    next = index + 1;
  }
  if (next < size) gaps.push({ start: next, end: size });
  return gaps;
}

/**
 * Streaming verification of a LeafSetProof: ask `nextIndex()` for the position of the next leaf
 * of the set, `append()` its leaf hash, and `finish()` against the signed root. Memory is O(log n)
 * besides the proof itself; nothing is trusted until `finish` returns.
 */
export class LeafSetProofVerifier {
  readonly treeSize: number;
  /** How many leaves the set holds: treeSize minus every gap. */
  readonly leafCount: number;
  readonly #gaps: readonly LeafSetProofGap[];
  #gap = 0;
  readonly #range = new CompactRange();

  constructor(proof: LeafSetProof) {
    const { treeSize, gaps } = proof;
    if (!Number.isSafeInteger(treeSize) || treeSize < 0) throw new ProofInvalidError(`tree size ${String(treeSize)} is not a non-negative safe integer`);
    if (!Array.isArray(gaps)) throw new ProofInvalidError('gaps must be a list');
    let covered = 0;
    let previousEnd = 0;
    for (const [i, gap] of gaps.entries()) {
      const { begin, end, hashes } = gap as Partial<LeafSetProofGap>;
      if (!Number.isSafeInteger(begin) || !Number.isSafeInteger(end) || begin! < previousEnd || end! <= begin! || end! > treeSize) {
        throw new ProofInvalidError(`gap ${i} [${String(begin)}, ${String(end)}) is not ascending, non-empty and within the tree of ${treeSize}`);
      }
      const expected = completeSubtrees({ start: begin!, end: end! }).length;
      if (!Array.isArray(hashes) || hashes.length !== expected || !hashes.every(isHash)) throw new ProofInvalidError(`gap ${i} [${begin}, ${end}) needs ${expected} hashes of 32 bytes`);
      covered += end! - begin!;
      previousEnd = end!;
    }
    this.treeSize = treeSize;
    this.leafCount = treeSize - covered;
    this.#gaps = gaps;
  }

  /** Index of the next leaf of the set, or undefined once every leaf was appended. */
  nextIndex(): number | undefined {
    this.#skipGaps();
    return this.#range.size < this.treeSize ? this.#range.size : undefined;
  }

  /** Appends the next leaf of the set; returns its index. */
  append(leafHash: Hash): number {
    const index = this.nextIndex();
    if (index === undefined) throw new ProofInvalidError(`more leaves than the ${this.leafCount} the proof leaves room for`);
    if (!isHash(leafHash)) throw new ProofInvalidError('leaf hash is not 32 bytes');
    this.#range.append(leafHash);
    return index;
  }

  /** Throws ProofInvalidError unless every leaf was appended and the tree's root is `root`. */
  finish(root: Uint8Array): void {
    this.#skipGaps();
    if (this.#range.size !== this.treeSize) throw new ProofInvalidError(`${this.#range.size - this.#coveredSoFar()} of ${this.leafCount} leaves were given`);
    if (!hashesEqual(this.#range.root(), root)) throw new ProofInvalidError(`the leaves and gaps lead to another root than the tree of size ${this.treeSize}`);
  }

  #skipGaps(): void {
    for (let gap = this.#gaps[this.#gap]; gap && gap.begin === this.#range.size; gap = this.#gaps[++this.#gap]) {
      const positions = completeSubtrees({ start: gap.begin, end: gap.end });
      for (const [i, p] of positions.entries()) this.#range.appendSubtree(p.level, gap.hashes[i]!);
    }
  }

  #coveredSoFar(): number {
    let covered = 0;
    for (let i = 0; i < this.#gap; i += 1) covered += this.#gaps[i]!.end - this.#gaps[i]!.begin;
    return covered;
  }
}
