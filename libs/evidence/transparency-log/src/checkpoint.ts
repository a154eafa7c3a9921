// C2SP tlog-checkpoint body (c2sp.org/tlog-checkpoint): origin, decimal tree size, base64 root hash,
// then optional non-empty extension lines, each line ending in \n.
import { decodeBase64Strict, encodeBase64 } from './base64-strict.js';
import { CheckpointMalformedError } from './errors.js';
import { HASH_SIZE, isHash } from './hashing.js';

export interface Checkpoint {
  /** Names the log; by convention also the name of the log's signing key. */
  readonly origin: string;
  readonly size: number;
  readonly rootHash: Buffer;
  /** Extra lines after the root hash (not interpreted here). */
  readonly extensions: readonly string[];
}

const DECIMAL = /^(0|[1-9][0-9]*)$/;

function checkLine(what: string, line: string): void {
  // eslint-disable-next-line no-control-regex
  if (line.length === 0 || /[\u0000-\u001F]/.test(line)) throw new CheckpointMalformedError(`${what} must be a non-empty line without control characters`);
}

/** The checkpoint body text: the exact bytes a log signs and a witness cosigns. */
export function formatCheckpoint(checkpoint: Checkpoint): string {
  checkLine('origin', checkpoint.origin);
  if (!Number.isSafeInteger(checkpoint.size) || checkpoint.size < 0) throw new CheckpointMalformedError(`size must be a non-negative safe integer, got ${String(checkpoint.size)}`);
  if (!isHash(checkpoint.rootHash)) throw new CheckpointMalformedError(`root hash must be ${HASH_SIZE} bytes`);
  for (const line of checkpoint.extensions) checkLine('an extension line', line);
  return [checkpoint.origin, String(checkpoint.size), encodeBase64(checkpoint.rootHash), ...checkpoint.extensions].map((line) => `${line}\n`).join('');
}

/** Parses a checkpoint body (the text of a signed note, signatures removed). */
export function parseCheckpoint(text: string): Checkpoint {
  if (!text.endsWith('\n')) throw new CheckpointMalformedError('a checkpoint ends with a newline');
  const lines = text.slice(0, -1).split('\n');
  if (lines.length < 3) throw new CheckpointMalformedError('a checkpoint has an origin, a size and a root hash line');
  const [origin, sizeText, rootText, ...extensions] = lines as [string, string, string, ...string[]];
  checkLine('origin', origin);
  if (!DECIMAL.test(sizeText) || !Number.isSafeInteger(Number(sizeText))) throw new CheckpointMalformedError(`size ${JSON.stringify(sizeText)} is not a canonical decimal number below 2^53`);
  const rootHash = decodeBase64Strict(rootText);
  if (!rootHash || rootHash.length !== HASH_SIZE) throw new CheckpointMalformedError(`root hash is not base64 of ${HASH_SIZE} bytes`);
  for (const line of extensions) checkLine('an extension line', line);
  return { origin, size: Number(sizeText), rootHash, extensions };
}
