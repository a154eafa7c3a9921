import { InvalidTreeArgumentError, TreeClosedError, TreeStorageCorruptError } from './errors.js';
import { EMPTY_TREE_ROOT, hashChildren, hashLeaf, isHash, type Hash } from './hashing.js';
import { leafSetGaps, type LeafSetProof, type LeafSetProofGap } from './leaf-set-proof.js';
import {
  assertTreeSize,
  completeSubtrees,
  consistencyProofRanges,
  frontierPositions,
  inclusionPathRanges,
  type LeafRange,
  type NodePosition,
} from './tree-shape.js';
import { type StoredNode, type TreeStorage } from './tree-storage.js';

export interface InclusionProof {
  readonly index: number;
  readonly size: number;
  /** Sibling hashes from the leaf up (RFC 9162 inclusion_path). */
  readonly hashes: readonly Hash[];
}

export interface ConsistencyProof {
  readonly size1: number;
  readonly size2: number;
  /** RFC 9162 consistency_path. */
  readonly hashes: readonly Hash[];
}

export interface AppendResult {
  /** Index of the first leaf of this call. */
  readonly firstIndex: number;
  /** Tree size once the group that carried this call was stored (≥ firstIndex + count). */
  readonly size: number;
}

export interface MerkleTreeOptions {
  /** Most leaves written in one storage append when concurrent calls are grouped. Default 4096. */
  readonly maxBatchLeaves?: number;
}

interface PendingAppend {
  readonly leafHashes: readonly Hash[];
  readonly resolve: (result: AppendResult) => void;
  readonly reject: (error: unknown) => void;
}

const key = (p: NodePosition): string => `${p.level}/${p.index}`;

/**
 * An RFC 6962 Merkle tree over a TreeStorage. One writer per storage: appends from this instance
 * are serialized and concurrent calls are grouped into one storage append (group commit). Roots
 * and proofs for any size up to the current one cost O(log n) node reads; nothing is rehashed at open.
 */
export class MerkleTree {
  private treeSize: number;
  // Complete subtrees on the right edge, by level: enough to hash the next appends and the root.
  private frontier: Map<number, Hash>;
  private readonly pending: PendingAppend[] = [];
  private draining = false;
  private closed = false;
  private readonly maxBatchLeaves: number;

  private constructor(
    private readonly storage: TreeStorage,
    size: number,
    frontier: Map<number, Hash>,
    options: MerkleTreeOptions,
  ) {
    this.treeSize = size;
    this.frontier = frontier;
    this.maxBatchLeaves = options.maxBatchLeaves ?? 4096;
    if (!Number.isSafeInteger(this.maxBatchLeaves) || this.maxBatchLeaves < 1) throw new InvalidTreeArgumentError('maxBatchLeaves must be a positive integer');
  }

  /** Opens the tree stored in `storage`, reading only its O(log n) frontier nodes. */
  static async open(storage: TreeStorage, options: MerkleTreeOptions = {}): Promise<MerkleTree> {
    const { size, frontier } = await loadFrontier(storage);
    return new MerkleTree(storage, size, frontier, options);
  }

  /** Number of leaves appended (as far as this writer knows). */
  get size(): number {
    return this.treeSize;
  }

  /** Root hash at the current size, from memory. */
  get root(): Hash {
    return rootFromFrontier(this.frontier, this.treeSize);
  }

  /** Appends leaves (raw entry bytes, hashed as RFC 6962 leaves), all in one atomic group. */
  appendLeaves(leaves: readonly Uint8Array[]): Promise<AppendResult> {
    return this.appendLeafHashes(leaves.map(hashLeaf));
  }

  /** Appends already-computed leaf hashes (SHA-256(0x00 ‖ data)), all in one atomic group. */
  appendLeafHashes(leafHashes: readonly Uint8Array[]): Promise<AppendResult> {
    if (this.closed) return Promise.reject(new TreeClosedError());
    if (leafHashes.length === 0) return Promise.reject(new InvalidTreeArgumentError('nothing to append'));
    for (const [i, hash] of leafHashes.entries()) {
      if (!isHash(hash)) return Promise.reject(new InvalidTreeArgumentError(`leaf hash ${i} is not 32 bytes`));
    }
    const copies = leafHashes.map((hash) => Buffer.from(hash));
    return new Promise<AppendResult>((resolve, reject) => {
      this.pending.push({ leafHashes: copies, resolve, reject });
      if (!this.draining) void this.drain();
    });
  }

  /** Root hash of the tree at `size` (≤ current size). */
  async rootAt(size: number): Promise<Hash> {
    this.checkSize('size', size);
    if (size === this.treeSize) return this.root;
    if (size === 0) return Buffer.from(EMPTY_TREE_ROOT);
    const [root] = await this.rangeHashes([{ start: 0, end: size }]);
    return root!;
  }

  /** The stored leaf hash at `index`. */
  async leafHash(index: number): Promise<Hash> {
    this.checkIndex(index, this.treeSize);
    const [hash] = await this.storage.readNodes([{ level: 0, index }]);
    return hash!;
  }

  /** RFC 9162 inclusion proof of leaf `index` in the tree of `size` leaves (default: current size). */
  async inclusionProof(index: number, size: number = this.treeSize): Promise<InclusionProof> {
    this.checkSize('size', size);
    this.checkIndex(index, size);
    const hashes = await this.rangeHashes(inclusionPathRanges(index, size));
    return { index, size, hashes };
  }

  /** RFC 9162 consistency proof between sizes `size1` ≤ `size2` (default: current size). Empty when size1 is 0 or equals size2. */
  async consistencyProof(size1: number, size2: number = this.treeSize): Promise<ConsistencyProof> {
    this.checkSize('size2', size2);
    assertTreeSize('size1', size1);
    if (size1 > size2) throw new InvalidTreeArgumentError(`size1 ${size1} is larger than size2 ${size2}`);
    if (size1 === 0 || size1 === size2) return { size1, size2, hashes: [] };
    const hashes = await this.rangeHashes(consistencyProofRanges(size1, size2));
    return { size1, size2, hashes };
  }

  /**
   * A LeafSetProof that the leaves at `indices` (ascending, distinct) are in the tree of `size`
   * leaves (default: current size): the stored subtree roots of every gap between them.
   */
  async leafSetProof(indices: ArrayLike<number>, size: number = this.treeSize): Promise<LeafSetProof> {
    this.checkSize('size', size);
    const ranges = leafSetGaps(indices, size);
    const gaps: LeafSetProofGap[] = [];
    // Batches keep one storage call (one read transaction) bounded for sets with many gaps.
    for (let first = 0; first < ranges.length; first += 4096) {
      const batch = ranges.slice(first, first + 4096).map((range) => ({ range, positions: completeSubtrees(range) }));
      const wanted = batch.flatMap((b) => b.positions);
      const hashes = await this.storage.readNodes(wanted);
      if (hashes.length !== wanted.length) throw new TreeStorageCorruptError(`asked storage for ${wanted.length} nodes, got ${hashes.length}`);
      let k = 0;
      for (const { range, positions } of batch) {
        gaps.push({ begin: range.start, end: range.end, hashes: hashes.slice(k, k + positions.length) });
        k += positions.length;
      }
    }
    return { treeSize: size, gaps };
  }

  /** Re-reads size and frontier from storage: after another writer appended, or after a failed append. */
  async refresh(): Promise<void> {
    if (this.closed) throw new TreeClosedError();
    const { size, frontier } = await loadFrontier(this.storage);
    this.treeSize = size;
    this.frontier = frontier;
  }

  /** Waits for queued appends, then closes the storage. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    while (this.draining || this.pending.length > 0) await new Promise((resolve) => setImmediate(resolve));
    await this.storage.close();
  }

  private async drain(): Promise<void> {
    this.draining = true;
    try {
      while (this.pending.length > 0) {
        const group: PendingAppend[] = [];
        let leaves = 0;
        while (this.pending.length > 0 && (group.length === 0 || leaves + this.pending[0]!.leafHashes.length <= this.maxBatchLeaves)) {
          const next = this.pending.shift()!;
          group.push(next);
          leaves += next.leafHashes.length;
        }
        await this.commitGroup(group);
      }
    } finally {
      this.draining = false;
    }
  }

  private async commitGroup(group: readonly PendingAppend[]): Promise<void> {
    const fromSize = this.treeSize;
    const leafHashes = group.flatMap((p) => p.leafHashes);
    try {
      const { nodes, frontier } = growTree(fromSize, leafHashes, this.frontier);
      await this.storage.append({ fromSize, leafHashes, nodes });
      this.treeSize = fromSize + leafHashes.length;
      this.frontier = frontier;
    } catch (error) {
      // The storage append is all-or-nothing, but another writer may have moved it: start over from what is stored.
      await this.refresh().catch(() => undefined);
      for (const p of group) p.reject(error);
      return;
    }
    let firstIndex = fromSize;
    for (const p of group) {
      p.resolve({ firstIndex, size: this.treeSize });
      firstIndex += p.leafHashes.length;
    }
  }

  /** MTH of each range, reading each needed complete subtree once, in a single storage call. */
  private async rangeHashes(ranges: readonly LeafRange[]): Promise<Hash[]> {
    if (this.closed) throw new TreeClosedError();
    const decomposed = ranges.map(completeSubtrees);
    const unique = new Map<string, NodePosition>();
    for (const positions of decomposed) for (const p of positions) unique.set(key(p), p);
    const wanted = [...unique.values()];
    const hashes = await this.storage.readNodes(wanted);
    if (hashes.length !== wanted.length) throw new TreeStorageCorruptError(`asked storage for ${wanted.length} nodes, got ${hashes.length}`);
    const byKey = new Map<string, Hash>();
    for (const [i, p] of wanted.entries()) byKey.set(key(p), hashes[i]!);
    return decomposed.map((positions) => {
      let acc: Hash | undefined;
      for (let i = positions.length - 1; i >= 0; i -= 1) {
        const h = byKey.get(key(positions[i]!))!;
        acc = acc ? hashChildren(h, acc) : h;
      }
      return acc!;
    });
  }

  private checkSize(name: string, size: number): void {
    assertTreeSize(name, size);
    if (size > this.treeSize) throw new InvalidTreeArgumentError(`${name} ${size} is beyond the tree size ${this.treeSize}`);
  }

  private checkIndex(index: number, size: number): void {
    assertTreeSize('index', index);
    if (index >= size) throw new InvalidTreeArgumentError(`leaf index ${index} is not below size ${size}`);
  }
}

async function loadFrontier(storage: TreeStorage): Promise<{ size: number; frontier: Map<number, Hash> }> {
  const size = await storage.size();
  const positions = frontierPositions(size);
  const hashes = await storage.readNodes(positions);
  const frontier = new Map<number, Hash>();
  for (const [i, p] of positions.entries()) {
    const hash = hashes[i];
    if (!hash || !isHash(hash)) throw new TreeStorageCorruptError(`frontier node (${p.level}, ${p.index}) is missing or malformed`);
    frontier.set(p.level, hash);
  }
  return { size, frontier };
}

/** MTH at `size` from its frontier: fold the right-edge subtrees from the smallest (rightmost) up. */
function rootFromFrontier(frontier: ReadonlyMap<number, Hash>, size: number): Hash {
  if (size === 0) return Buffer.from(EMPTY_TREE_ROOT);
  let acc: Hash | undefined;
  for (const p of frontierPositions(size)) {
    const h = frontier.get(p.level)!;
    acc = acc ? hashChildren(h, acc) : h;
  }
  return acc!;
}

/**
 * Hashes the interior nodes that appending `leafHashes` at `fromSize` completes, level by level.
 * A left child older than this append is always the old frontier node of its level.
 */
export function growTree(fromSize: number, leafHashes: readonly Hash[], frontier: ReadonlyMap<number, Hash>): { nodes: StoredNode[]; frontier: Map<number, Hash> } {
  const toSize = fromSize + leafHashes.length;
  const nodes: StoredNode[] = [];
  // New nodes per level: first index and hashes (level 0: the leaves).
  const newByLevel: { first: number; hashes: Hash[] }[] = [{ first: fromSize, hashes: [...leafHashes] }];
  for (let level = 0; ; level += 1) {
    const below = newByLevel[level]!;
    const end = below.first + below.hashes.length;
    const firstParent = Math.floor(below.first / 2);
    const endParent = Math.floor(end / 2);
    if (firstParent === endParent) break;
    const parents: Hash[] = [];
    for (let p = firstParent; p < endParent; p += 1) {
      const leftIndex = 2 * p;
      const left = leftIndex < below.first ? frontier.get(level) : below.hashes[leftIndex - below.first];
      const right = below.hashes[leftIndex + 1 - below.first];
      if (!left || !right) throw new TreeStorageCorruptError(`cannot hash node (${level + 1}, ${p}): a child is missing from the frontier`);
      const hash = hashChildren(left, right);
      parents.push(hash);
      nodes.push({ level: level + 1, index: p, hash });
    }
    newByLevel.push({ first: firstParent, hashes: parents });
  }
  const next = new Map<number, Hash>();
  for (const p of frontierPositions(toSize)) {
    const fresh = newByLevel[p.level];
    const hash = fresh && p.index >= fresh.first && p.index < fresh.first + fresh.hashes.length ? fresh.hashes[p.index - fresh.first] : frontier.get(p.level);
    if (!hash) throw new TreeStorageCorruptError(`frontier node (${p.level}, ${p.index}) is unknown`);
    next.set(p.level, hash);
  }
  return { nodes, frontier: next };
}
