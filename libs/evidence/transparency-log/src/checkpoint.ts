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
  // A signing time, when stated, must be one well-formed line (what a verifier recomputes from).
  checkpointSignedAt({ extensions });
  return { origin, size: Number(sizeText), rootHash, extensions };
}

/**
 * The signing time as a checkpoint extension line: `signed-at <RFC 3339 UTC, six fraction digits>`,
 * e.g. `signed-at 2026-03-01T00:05:00.123456Z`. It is covered by the log's signature (a changed
 * time fails the signature), so an auditor can recompute how long an event waited for its first
 * checkpoint offline. Checkpoints signed before this line existed carry none: their time is not proven.
 */
export const SIGNED_AT_PREFIX = 'signed-at ';
const SIGNED_AT_VALUE = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\.\d{6}Z$/;

function checkSignedAt(value: string): void {
  const m = SIGNED_AT_VALUE.exec(value);
  const ms = m ? Date.parse(`${m[1]}Z`) : Number.NaN;
  if (!m || Number.isNaN(ms) || new Date(ms).toISOString().slice(0, 19) !== m[1]) throw new CheckpointMalformedError(`signed-at ${JSON.stringify(value)} is not an RFC 3339 UTC time with six fraction digits (2026-03-01T00:05:00.123456Z)`);
}

/** The extension line stating a checkpoint's signing time. */
export function signedAtExtension(signedAt: string): string {
  checkSignedAt(signedAt);
  return `${SIGNED_AT_PREFIX}${signedAt}`;
}

/**
 * The signing time a checkpoint states (its one `signed-at` extension line), or undefined when it
 * has none (signed before the line existed). Two such lines, or a malformed one, are refused.
 */
export function checkpointSignedAt(checkpoint: Pick<Checkpoint, 'extensions'>): string | undefined {
  const lines = checkpoint.extensions.filter((line) => line.startsWith(SIGNED_AT_PREFIX));
  if (lines.length > 1) throw new CheckpointMalformedError('a checkpoint states its signing time (signed-at) at most once');
  if (lines.length === 0) return undefined;
  const value = lines[0]!.slice(SIGNED_AT_PREFIX.length);
  checkSignedAt(value);
  return value;
}
