// C2SP tlog-proof (c2sp.org/tlog-proof): a self-contained inclusion proof file.
//   c2sp.org/tlog-proof@v1\n[extra <base64>\n]index <N>\n<base64 hash>\n…\n\n<signed checkpoint note>
import { decodeBase64Strict, encodeBase64 } from './base64-strict.js';
import { openCheckpoint, type SignedCheckpoint } from './checkpoint-signer.js';
import { ProofMalformedError } from './errors.js';
import { HASH_SIZE, hashLeaf, isHash } from './hashing.js';
import { type NoteVerifier } from './note-keys.js';
import { verifyInclusion } from './proof-verification.js';

const HEADER = 'c2sp.org/tlog-proof@v1';
const DECIMAL = /^(0|[1-9][0-9]*)$/;

export interface TlogProof {
  readonly index: number;
  /** Inclusion proof hashes, leaf side first. */
  readonly hashes: readonly Buffer[];
  /** The signed checkpoint note the proof is against (tree size and root come from it). */
  readonly checkpoint: string;
  /** Optional application data (e.g. the entry or a pointer to it). */
  readonly extra?: Buffer;
}

export function formatTlogProof(proof: TlogProof): string {
  if (!Number.isSafeInteger(proof.index) || proof.index < 0) throw new ProofMalformedError(`index must be a non-negative safe integer, got ${String(proof.index)}`);
  let out = `${HEADER}\n`;
  if (proof.extra !== undefined) out += `extra ${encodeBase64(proof.extra)}\n`;
  out += `index ${proof.index}\n`;
  for (const hash of proof.hashes) {
    if (!isHash(hash)) throw new ProofMalformedError(`proof hashes are ${HASH_SIZE} bytes`);
    out += `${encodeBase64(hash)}\n`;
  }
  return `${out}\n${proof.checkpoint}`;
}

export function parseTlogProof(text: string): TlogProof {
  const blank = text.indexOf('\n\n');
  if (blank < 0) throw new ProofMalformedError('a tlog-proof has a blank line before the checkpoint');
  const lines = text.slice(0, blank).split('\n');
  const checkpoint = text.slice(blank + 2);
  if (checkpoint.length === 0) throw new ProofMalformedError('a tlog-proof ends with a signed checkpoint');
  let i = 0;
  if (lines[i++] !== HEADER) throw new ProofMalformedError(`a tlog-proof starts with ${HEADER}`);
  let extra: Buffer | undefined;
  if (lines[i]?.startsWith('extra ')) {
    extra = decodeBase64Strict(lines[i]!.slice('extra '.length));
    if (!extra) throw new ProofMalformedError('extra data is not base64');
    i += 1;
  }
  const indexLine = lines[i++];
  const indexText = indexLine?.startsWith('index ') ? indexLine.slice('index '.length) : undefined;
  if (indexText === undefined || !DECIMAL.test(indexText) || !Number.isSafeInteger(Number(indexText))) throw new ProofMalformedError('a tlog-proof has an "index <N>" line');
  const hashes = lines.slice(i).map((line, n) => {
    const hash = decodeBase64Strict(line);
    if (!hash || hash.length !== HASH_SIZE) throw new ProofMalformedError(`proof hash ${n} is not base64 of ${HASH_SIZE} bytes`);
    return hash;
  });
  return extra === undefined ? { index: Number(indexText), hashes, checkpoint } : { index: Number(indexText), hashes, checkpoint, extra };
}

/**
 * Verifies a tlog-proof end to end: the checkpoint's signature by one of the log's keys and its
 * origin, then the inclusion of `entry` (raw leaf bytes, hashed as an RFC 6962 leaf) in it.
 */
export function verifyTlogProof(text: string, entry: Uint8Array, origin: string, logKeys: readonly NoteVerifier[]): { proof: TlogProof; checkpoint: SignedCheckpoint } {
  const proof = parseTlogProof(text);
  const signed = openCheckpoint(proof.checkpoint, origin, logKeys);
  verifyInclusion(hashLeaf(entry), proof.index, signed.checkpoint.size, proof.hashes, signed.checkpoint.rootHash);
  return { proof, checkpoint: signed };
}
