// The shape of an RFC 6962 / RFC 9162 tree, as arithmetic on leaf ranges. Sizes and indices are
// JS numbers (exact up to 2^53), so no 32-bit bitwise operators here.
import { InvalidTreeArgumentError } from './errors.js';

/** A node of the tree: level 0 are leaves; the node at (level, index) covers leaves [index·2^level, (index+1)·2^level). */
export interface NodePosition {
  readonly level: number;
  readonly index: number;
}

/** A contiguous run of leaves [start, end). */
export interface LeafRange {
  readonly start: number;
  readonly end: number;
}

export function assertTreeSize(name: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 0) throw new InvalidTreeArgumentError(`${name} must be a non-negative safe integer, got ${String(value)}`);
}

/** The largest power of two strictly below n (n ≥ 2): the `k` of RFC 9162 MTH. */
export function largestPowerOfTwoBelow(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

/** Whether the node at `position` has both children (is final) in a tree of `size` leaves. */
export function isCompleteAt(position: NodePosition, size: number): boolean {
  return (position.index + 1) * 2 ** position.level <= size;
}

/**
 * The complete subtrees that make up [start, end), left to right, largest first. For every range
 * an RFC 9162 proof uses, the start is aligned to a power of two ≥ the range length, so folding
 * these from the right (`h1 ‖ (h2 ‖ (… ‖ hk))`) gives exactly MTH(D[start:end]).
 */
export function completeSubtrees(range: LeafRange): NodePosition[] {
  const out: NodePosition[] = [];
  let start = range.start;
  while (start < range.end) {
    let width = 1;
    let level = 0;
    while (start % (width * 2) === 0 && width * 2 <= range.end - start) {
      width *= 2;
      level += 1;
    }
    out.push({ level, index: start / width });
    start += width;
  }
  return out;
}

/** Complete subtrees on the right edge of a tree of `size` leaves, lowest level first: the tree's "frontier". */
export function frontierPositions(size: number): NodePosition[] {
  const out: NodePosition[] = [];
  for (let level = 0, width = 1; width <= size; level += 1, width *= 2) {
    const count = Math.floor(size / width);
    if (count % 2 === 1) out.push({ level, index: count - 1 });
  }
  return out;
}

/** Every interior node (level ≥ 1) that becomes complete when the tree grows from `fromSize` to `toSize`. */
export function newlyCompletedNodes(fromSize: number, toSize: number): NodePosition[] {
  const out: NodePosition[] = [];
  for (let level = 1, width = 2; width <= toSize; level += 1, width *= 2) {
    const first = Math.floor(fromSize / width);
    const end = Math.floor(toSize / width);
    if (first === end) break; // no new node here means none above either
    for (let index = first; index < end; index += 1) out.push({ level, index });
  }
  return out;
}

/** RFC 9162 §2.1.3.1 PATH(m, D[0:n]) as leaf ranges, in proof order (nearest the leaf first). */
export function inclusionPathRanges(index: number, size: number): LeafRange[] {
  const out: LeafRange[] = [];
  const path = (m: number, lo: number, hi: number): void => {
    const n = hi - lo;
    if (n <= 1) return;
    const k = largestPowerOfTwoBelow(n);
    if (m < k) {
      path(m, lo, lo + k);
      out.push({ start: lo + k, end: hi });
    } else {
      path(m - k, lo + k, hi);
      out.push({ start: lo, end: lo + k });
    }
  };
  path(index, 0, size);
  return out;
}

/** RFC 9162 §2.1.4.1 PROOF(m, D[0:n]) = SUBPROOF(m, D[0:n], true) as leaf ranges, for 0 < m < n. */
export function consistencyProofRanges(size1: number, size2: number): LeafRange[] {
  const out: LeafRange[] = [];
  const subproof = (m: number, lo: number, hi: number, wholeTreeKnown: boolean): void => {
    const n = hi - lo;
    if (m === n) {
      if (!wholeTreeKnown) out.push({ start: lo, end: hi });
      return;
    }
    const k = largestPowerOfTwoBelow(n);
    if (m <= k) {
      subproof(m, lo, lo + k, wholeTreeKnown);
      out.push({ start: lo + k, end: hi });
    } else {
      subproof(m - k, lo + k, hi, false);
      out.push({ start: lo, end: lo + k });
    }
  };
  subproof(size1, 0, size2, true);
  return out;
}
