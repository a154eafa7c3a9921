import { TreeClosedError, TreeStorageCorruptError } from './errors.js';
import { type Hash } from './hashing.js';
import { checkReadablePosition, checkTreeAppend, type TreeAppend, type TreeStorage } from './tree-storage.js';
import { type NodePosition } from './tree-shape.js';

/** Tree storage in process memory: for tests and for trees rebuilt at start (nothing survives the process). */
export class MemoryTreeStorage implements TreeStorage {
  // levels[L][i] is the node at (L, i); every level fills left to right without gaps.
  private readonly levels: Hash[][] = [];
  private closed = false;

  async size(): Promise<number> {
    this.assertOpen();
    return this.levels[0]?.length ?? 0;
  }

  async append(batch: TreeAppend): Promise<void> {
    this.assertOpen();
    checkTreeAppend(batch, this.levels[0]?.length ?? 0);
    // Copies: a caller reusing its buffers must not be able to change stored history.
    const leaves = (this.levels[0] ??= []);
    for (const hash of batch.leafHashes) leaves.push(Buffer.from(hash));
    for (const node of batch.nodes) {
      const level = (this.levels[node.level] ??= []);
      if (level.length !== node.index) throw new TreeStorageCorruptError(`level ${node.level} has ${level.length} nodes, cannot add index ${node.index}`);
      level.push(Buffer.from(node.hash));
    }
  }

  async readNodes(positions: readonly NodePosition[]): Promise<Hash[]> {
    this.assertOpen();
    const size = this.levels[0]?.length ?? 0;
    return positions.map((position) => {
      checkReadablePosition(position, size);
      const hash = this.levels[position.level]?.[position.index];
      if (!hash) throw new TreeStorageCorruptError(`node (${position.level}, ${position.index}) is missing`);
      return Buffer.from(hash);
    });
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  private assertOpen(): void {
    if (this.closed) throw new TreeClosedError();
  }
}
