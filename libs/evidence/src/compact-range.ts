import { EMPTY_TREE_ROOT, hashChildren, type Hash } from '@custodian/transparency-log';

/**
 * The RFC 6962 root of a growing list of leaf hashes in O(log n) memory: the complete subtrees on
 * the right edge (as transparency-dev/merkle's compact range). Used to recompute a log from its events.
 */
export class CompactRange {
  #size = 0;
  // Right-edge subtree roots, largest (leftmost) first; the i-th covers 2^level leaves.
  readonly #stack: { level: number; hash: Hash }[] = [];

  get size(): number {
    return this.#size;
  }

  append(leafHash: Hash): void {
    let node = { level: 0, hash: leafHash };
    while (this.#stack.length > 0 && this.#stack[this.#stack.length - 1]!.level === node.level) {
      const left = this.#stack.pop()!;
      node = { level: node.level + 1, hash: hashChildren(left.hash, node.hash) };
    }
    this.#stack.push(node);
    this.#size += 1;
  }

  root(): Hash {
    if (this.#stack.length === 0) return Buffer.from(EMPTY_TREE_ROOT);
    let acc = this.#stack[this.#stack.length - 1]!.hash;
    for (let i = this.#stack.length - 2; i >= 0; i -= 1) acc = hashChildren(this.#stack[i]!.hash, acc);
    return acc;
  }
}
