// A deliberately naive RFC 6962 MTH, straight from the definition, to check the stored tree against.
import { EMPTY_TREE_ROOT, hashChildren, hashLeaf, type Hash } from '../hashing.js';
import { largestPowerOfTwoBelow } from '../tree-shape.js';

export function referenceRoot(leafHashes: readonly Hash[]): Hash {
  if (leafHashes.length === 0) return Buffer.from(EMPTY_TREE_ROOT);
  if (leafHashes.length === 1) return leafHashes[0]!;
  const k = largestPowerOfTwoBelow(leafHashes.length);
  return hashChildren(referenceRoot(leafHashes.slice(0, k)), referenceRoot(leafHashes.slice(k)));
}

/** Distinct, reproducible leaf contents. */
export function testLeaves(count: number, prefix = 'entry'): Buffer[] {
  return Array.from({ length: count }, (_, i) => Buffer.from(`${prefix}-${i}`, 'utf8'));
}

export function testLeafHashes(count: number, prefix = 'entry'): Hash[] {
  return testLeaves(count, prefix).map(hashLeaf);
}
