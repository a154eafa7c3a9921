// Pure verification of RFC 9162 proofs, step for step as §2.1.3.2 and §2.1.4.2 describe them.
// fn/sn are tree positions that can exceed 2^32, so shifts are divisions.
import { ProofInvalidError } from './errors.js';
import { EMPTY_TREE_ROOT, HASH_SIZE, hashChildren, hashesEqual, isHash, type Hash } from './hashing.js';

const isOdd = (n: number): boolean => n % 2 === 1;
const shift = (n: number): number => Math.floor(n / 2);

function checkHashes(what: string, hashes: readonly Uint8Array[]): void {
  for (const [i, h] of hashes.entries()) if (!isHash(h)) throw new ProofInvalidError(`${what}[${i}] is not ${HASH_SIZE} bytes`);
}

function checkSize(name: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 0) throw new ProofInvalidError(`${name} must be a non-negative safe integer, got ${String(value)}`);
}

/**
 * The root an inclusion proof leads to (RFC 9162 §2.1.3.2 steps 1–4), or ProofInvalidError when the
 * proof has the wrong length for (index, size).
 */
export function rootFromInclusionProof(leafHash: Uint8Array, index: number, size: number, proof: readonly Uint8Array[]): Hash {
  checkSize('index', index);
  checkSize('size', size);
  if (!isHash(leafHash)) throw new ProofInvalidError(`leaf hash is not ${HASH_SIZE} bytes`);
  checkHashes('proof', proof);
  if (index >= size) throw new ProofInvalidError(`leaf index ${index} is not below tree size ${size}`);
  let fn = index;
  let sn = size - 1;
  let r: Hash = Buffer.from(leafHash);
  for (const p of proof) {
    if (sn === 0) throw new ProofInvalidError('inclusion proof is longer than the path to the root');
    if (isOdd(fn) || fn === sn) {
      r = hashChildren(p, r);
      if (!isOdd(fn)) {
        while (!isOdd(fn) && fn !== 0) {
          fn = shift(fn);
          sn = shift(sn);
        }
      }
    } else {
      r = hashChildren(r, p);
    }
    fn = shift(fn);
    sn = shift(sn);
  }
  if (sn !== 0) throw new ProofInvalidError('inclusion proof is shorter than the path to the root');
  return r;
}

/** Throws ProofInvalidError unless `proof` shows the leaf with `leafHash` at `index` in the tree of `size` leaves with `root`. */
export function verifyInclusion(leafHash: Uint8Array, index: number, size: number, proof: readonly Uint8Array[], root: Uint8Array): void {
  if (!isHash(root)) throw new ProofInvalidError(`root is not ${HASH_SIZE} bytes`);
  const calculated = rootFromInclusionProof(leafHash, index, size, proof);
  if (!hashesEqual(calculated, root)) throw new ProofInvalidError(`inclusion proof for leaf ${index} leads to another root than the tree of size ${size}`);
}

/**
 * Throws ProofInvalidError unless `proof` shows that the tree of `size1` leaves with `root1` is a
 * prefix of the tree of `size2` leaves with `root2`. Sizes equal: the proof must be empty and the
 * roots equal. size1 = 0: the proof must be empty and root1 the empty-tree root.
 */
export function verifyConsistency(size1: number, size2: number, proof: readonly Uint8Array[], root1: Uint8Array, root2: Uint8Array): void {
  checkSize('size1', size1);
  checkSize('size2', size2);
  if (!isHash(root1) || !isHash(root2)) throw new ProofInvalidError(`roots must be ${HASH_SIZE} bytes`);
  checkHashes('proof', proof);
  if (size1 > size2) throw new ProofInvalidError(`size1 ${size1} is larger than size2 ${size2}`);
  if (size1 === size2) {
    if (proof.length > 0) throw new ProofInvalidError('equal sizes need an empty consistency proof');
    if (!hashesEqual(root1, root2)) throw new ProofInvalidError(`two different roots for tree size ${size1}`);
    return;
  }
  if (size1 === 0) {
    if (proof.length > 0) throw new ProofInvalidError('a consistency proof from the empty tree is empty');
    if (!hashesEqual(root1, EMPTY_TREE_ROOT)) throw new ProofInvalidError('root1 is not the empty-tree root');
    return;
  }
  // §2.1.4.2 step 1.
  if (proof.length === 0) throw new ProofInvalidError('empty consistency proof');
  // Step 2: if size1 is an exact power of two, the old root is the first node of the path.
  const path = isPowerOfTwo(size1) ? [root1, ...proof] : [...proof];
  // Step 3–4.
  let fn = size1 - 1;
  let sn = size2 - 1;
  while (isOdd(fn)) {
    fn = shift(fn);
    sn = shift(sn);
  }
  // Step 5.
  let fr: Hash = Buffer.from(path[0]!);
  let sr: Hash = Buffer.from(path[0]!);
  // Step 6.
  for (const c of path.slice(1)) {
    if (sn === 0) throw new ProofInvalidError('consistency proof is longer than needed');
    if (isOdd(fn) || fn === sn) {
      fr = hashChildren(c, fr);
      sr = hashChildren(c, sr);
      if (!isOdd(fn)) {
        while (!isOdd(fn) && fn !== 0) {
          fn = shift(fn);
          sn = shift(sn);
        }
      }
    } else {
      sr = hashChildren(sr, c);
    }
    fn = shift(fn);
    sn = shift(sn);
  }
  // Step 7.
  if (sn !== 0) throw new ProofInvalidError('consistency proof is shorter than needed');
  if (!hashesEqual(fr, root1)) throw new ProofInvalidError(`consistency proof does not lead to the root of size ${size1}`);
  if (!hashesEqual(sr, root2)) throw new ProofInvalidError(`consistency proof does not lead to the root of size ${size2}`);
}

function isPowerOfTwo(n: number): boolean {
  let k = 1;
  while (k < n) k *= 2;
  return k === n;
}
