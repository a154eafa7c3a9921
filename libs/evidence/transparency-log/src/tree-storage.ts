import { InvalidTreeArgumentError, TreeSizeConflictError } from './errors.js';
import { HASH_SIZE, isHash, type Hash } from './hashing.js';
import { assertTreeSize, isCompleteAt, newlyCompletedNodes, type NodePosition } from './tree-shape.js';

export interface StoredNode extends NodePosition {
  readonly hash: Hash;
}

/** One atomic append: the leaf hashes at [fromSize, fromSize + leafHashes.length) and every interior node they complete. */
export interface TreeAppend {
  readonly fromSize: number;
  readonly leafHashes: readonly Hash[];
  /** Exactly `newlyCompletedNodes(fromSize, fromSize + leafHashes.length)`, each with its hash. */
  readonly nodes: readonly StoredNode[];
}

/**
 * Where a Merkle tree's node hashes live. Append-only: a node is written once, when both its
 * children exist, and never changed, so any root or proof for any past size is O(log n) reads.
 * Adapters: MemoryTreeStorage, SqliteTreeStorage (`@custodian/transparency-log/sqlite`);
 * `@custodian/transparency-log/testing` has the contract suite both pass.
 */
export interface TreeStorage {
  /** Number of leaves stored. */
  size(): Promise<number>;
  /**
   * Stores the append all-or-nothing. `TreeSizeConflictError` when the stored size is not
   * `fromSize`; `InvalidTreeArgumentError` when the nodes are not exactly the newly completed ones.
   */
  append(batch: TreeAppend): Promise<void>;
  /**
   * Hashes at the given positions, in order. `InvalidTreeArgumentError` for a position not complete
   * at the stored size; `TreeStorageCorruptError` for a complete position that is missing.
   */
  readNodes(positions: readonly NodePosition[]): Promise<Hash[]>;
  close(): Promise<void>;
}

/**
 * The checks every adapter makes before writing, so that no adapter can be made to store a tree
 * with holes: the size matches, every hash is 32 bytes, and the nodes are exactly those completed.
 */
export function checkTreeAppend(batch: TreeAppend, storedSize: number): void {
  assertTreeSize('fromSize', batch.fromSize);
  if (batch.fromSize !== storedSize) throw new TreeSizeConflictError(batch.fromSize, storedSize);
  if (batch.leafHashes.length === 0) throw new InvalidTreeArgumentError('an append needs at least one leaf');
  const toSize = batch.fromSize + batch.leafHashes.length;
  assertTreeSize('resulting size', toSize);
  for (const [i, hash] of batch.leafHashes.entries()) {
    if (!isHash(hash)) throw new InvalidTreeArgumentError(`leaf hash ${batch.fromSize + i} is not ${HASH_SIZE} bytes`);
  }
  const expected = newlyCompletedNodes(batch.fromSize, toSize);
  if (expected.length !== batch.nodes.length) {
    throw new InvalidTreeArgumentError(`growing ${batch.fromSize} → ${toSize} completes ${expected.length} nodes, the append carries ${batch.nodes.length}`);
  }
  for (const [i, want] of expected.entries()) {
    const node = batch.nodes[i]!;
    if (node.level !== want.level || node.index !== want.index) {
      throw new InvalidTreeArgumentError(`node ${i} of the append is (${node.level}, ${node.index}), expected (${want.level}, ${want.index})`);
    }
    if (!isHash(node.hash)) throw new InvalidTreeArgumentError(`node (${node.level}, ${node.index}) hash is not ${HASH_SIZE} bytes`);
  }
}

/** Throws unless `position` is a complete node of a tree of `size` leaves. */
export function checkReadablePosition(position: NodePosition, size: number): void {
  const { level, index } = position;
  if (!Number.isSafeInteger(level) || level < 0 || level > 63 || !Number.isSafeInteger(index) || index < 0) {
    throw new InvalidTreeArgumentError(`not a node position: (${String(level)}, ${String(index)})`);
  }
  if (!isCompleteAt(position, size)) throw new InvalidTreeArgumentError(`node (${level}, ${index}) is not complete at tree size ${size}`);
}
