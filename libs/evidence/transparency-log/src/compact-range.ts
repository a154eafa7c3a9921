import { InvalidTreeArgumentError } from './errors.js';
import { EMPTY_TREE_ROOT, hashChildren, isHash, type Hash } from './hashing.js';

/**
 * The RFC 6962 root of a growing prefix [0, size) of a tree in O(log n) memory: the complete
 * subtrees on its right edge, as transparency-dev/merkle's compact range. Leaves are appended one
 * by one, or whole aligned subtrees at once (the hashes of a gap a range proof skips over).
 */
export class CompactRange {
  #size = 0;
  // Right-edge subtree roots, largest (leftmost) first; the i-th covers 2^level leaves.
  readonly #stack: { level: number; hash: Hash }[] = [];

  get size(): number {
    return this.#size;
  }

  append(leafHash: Hash): void {
    this.#push(0, leafHash);
  }

  /**
   * Appends the complete subtree of 2^level leaves starting at the current size, given its root.
   * The current size must be a multiple of 2^level (the subtree is aligned), as every node of a
   * range's decomposition (`completeSubtrees`) is when appended left to right.
   */
  appendSubtree(level: number, hash: Uint8Array): void {
    if (!Number.isSafeInteger(level) || level < 0 || level > 52) throw new InvalidTreeArgumentError(`subtree level ${String(level)} is out of range`);
    if (!isHash(hash)) throw new InvalidTreeArgumentError('subtree hash is not 32 bytes');
    if (this.#size % 2 ** level !== 0) throw new InvalidTreeArgumentError(`a subtree of 2^${level} leaves cannot start at leaf ${this.#size}: not aligned`);
    this.#push(level, Buffer.from(hash));
  }

  root(): Hash {
    if (this.#stack.length === 0) return Buffer.from(EMPTY_TREE_ROOT);
    let acc = this.#stack[this.#stack.length - 1]!.hash;
    for (let i = this.#stack.length - 2; i >= 0; i -= 1) acc = hashChildren(this.#stack[i]!.hash, acc);
    return acc;
  }

  #push(level: number, hash: Hash): void {
    // Alignment keeps every stack level ≥ the new node's, so only equal levels combine.
    let node = { level, hash };
    while (this.#stack.length > 0 && this.#stack[this.#stack.length - 1]!.level === node.level) {
      const left = this.#stack.pop()!;
      node = { level: node.level + 1, hash: hashChildren(left.hash, node.hash) };
    }
    this.#stack.push(node);
    this.#size += 2 ** level;
  }
}
