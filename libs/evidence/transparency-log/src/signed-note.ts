// C2SP signed-note (c2sp.org/signed-note), byte-compatible with Go's golang.org/x/mod/sumdb/note:
//   <text, ending in \n>\n— <key name> <base64(4-byte key ID ‖ signature)>\n…
import { decodeBase64Strict, encodeBase64 } from './base64-strict.js';
import { KeyConflictError, NoteMalformedError, NoteSignatureInvalidError, NoteUnverifiedError, formatKeyId } from './errors.js';
import { isValidKeyName, type NoteSigner, type NoteVerifier } from './note-keys.js';

const SIGNATURE_PREFIX = '\u2014 '; // em dash, space
const MAX_SIGNATURES = 100; // as Go's note.Open

export interface NoteSignature {
  readonly name: string;
  readonly keyId: number;
  /** The signature bytes after the key ID. */
  readonly signature: Buffer;
  /** The line's base64 (key ID ‖ signature), exactly as it appeared. */
  readonly base64: string;
}

export interface ParsedNote {
  /** The signed text, including its final newline. */
  readonly text: string;
  readonly signatures: readonly NoteSignature[];
}

export interface OpenedNote {
  readonly text: string;
  /** Signatures by known keys, each verified. */
  readonly verified: readonly NoteSignature[];
  /** Signatures by keys the caller did not name (not checked). */
  readonly unverified: readonly NoteSignature[];
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

function asText(note: string | Uint8Array): string {
  if (typeof note === 'string') {
    if (Buffer.from(note, 'utf8').toString('utf8') !== note) throw new NoteMalformedError('note is not valid UTF-8');
    return note;
  }
  try {
    return utf8.decode(note);
  } catch {
    throw new NoteMalformedError('note is not valid UTF-8');
  }
}

/** Throws unless `text` can be signed: non-empty, ends in a newline, no control characters but newline. */
export function assertNoteText(text: string): void {
  if (text.length === 0 || !text.endsWith('\n')) throw new NoteMalformedError('note text must end with a newline');
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u0009\u000B-\u001F]/.test(text)) throw new NoteMalformedError('note text contains a control character');
}

/** Splits a signed note into text and signature lines, without verifying anything. */
export function parseNote(note: string | Uint8Array): ParsedNote {
  const whole = asText(note);
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u0009\u000B-\u001F]/.test(whole)) throw new NoteMalformedError('note contains a control character');
  const split = whole.lastIndexOf('\n\n');
  if (split < 0) throw new NoteMalformedError('note has no blank line before its signatures');
  const text = whole.slice(0, split + 1);
  const block = whole.slice(split + 2);
  if (block.length === 0 || !block.endsWith('\n')) throw new NoteMalformedError('note signatures must end with a newline');
  const lines = block.slice(0, -1).split('\n');
  if (lines.length > MAX_SIGNATURES) throw new NoteMalformedError(`note has more than ${MAX_SIGNATURES} signatures`);
  const signatures = lines.map((line, i): NoteSignature => {
    if (!line.startsWith(SIGNATURE_PREFIX)) throw new NoteMalformedError(`signature line ${i + 1} does not start with an em dash and a space`);
    const rest = line.slice(SIGNATURE_PREFIX.length);
    const space = rest.indexOf(' ');
    const name = space < 0 ? rest : rest.slice(0, space);
    const base64 = space < 0 ? '' : rest.slice(space + 1);
    const raw = decodeBase64Strict(base64);
    if (!isValidKeyName(name) || base64 === '' || !raw || raw.length < 5) throw new NoteMalformedError(`signature line ${i + 1} is not "— <name> <base64>"`);
    return { name, keyId: raw.readUInt32BE(0), signature: Buffer.from(raw.subarray(4)), base64 };
  });
  return { text, signatures };
}

function signatureLine(name: string, keyId: number, signature: Uint8Array): string {
  const raw = Buffer.alloc(4 + signature.length);
  raw.writeUInt32BE(keyId, 0);
  raw.set(signature, 4);
  return `${SIGNATURE_PREFIX}${name} ${encodeBase64(raw)}\n`;
}

/**
 * Signs `text` with each signer. `keep` are signatures already on the note (e.g. from parseNote):
 * they are kept, ahead of the new ones, unless a signer with the same name and key ID replaces them.
 */
export function signNote(text: string, signers: readonly NoteSigner[], keep: readonly NoteSignature[] = []): string {
  assertNoteText(text);
  if (signers.length === 0 && keep.length === 0) throw new NoteMalformedError('a signed note needs at least one signature');
  const message = Buffer.from(text, 'utf8');
  const replaced = new Set(signers.map((s) => `${s.name}+${s.keyId}`));
  let out = `${text}\n`;
  for (const sig of keep) {
    if (replaced.has(`${sig.name}+${sig.keyId}`)) continue;
    out += `${SIGNATURE_PREFIX}${sig.name} ${sig.base64}\n`;
  }
  for (const signer of signers) {
    if (!isValidKeyName(signer.name)) throw new NoteMalformedError(`invalid signer name ${JSON.stringify(signer.name)}`);
    out += signatureLine(signer.name, signer.keyId, signer.sign(message));
  }
  return out;
}

/**
 * Verifies a signed note as Go's note.Open does: every signature by a known key (same name and key
 * ID) must verify, else NoteSignatureInvalidError; at least one must, else NoteUnverifiedError.
 * Signatures by unknown keys are returned unverified.
 */
export function openNote(note: string | Uint8Array, verifiers: readonly NoteVerifier[]): OpenedNote {
  const known = new Map<string, NoteVerifier>();
  for (const v of verifiers) {
    const k = `${v.name}+${v.keyId}`;
    if (known.has(k) && known.get(k) !== v) throw new KeyConflictError(`two verifiers for ${v.name} with key ID ${formatKeyId(v.keyId)}`);
    known.set(k, v);
  }
  const { text, signatures } = parseNote(note);
  const message = Buffer.from(text, 'utf8');
  const verified: NoteSignature[] = [];
  const unverified: NoteSignature[] = [];
  const seen = new Set<string>();
  for (const sig of signatures) {
    const k = `${sig.name}+${sig.keyId}`;
    const verifier = known.get(k);
    if (!verifier) {
      unverified.push(sig);
      continue;
    }
    if (seen.has(k)) continue;
    seen.add(k);
    if (!verifier.verify(message, sig.signature)) throw new NoteSignatureInvalidError(sig.name, sig.keyId);
    verified.push(sig);
  }
  if (verified.length === 0) throw new NoteUnverifiedError(`no signature by a known key (note is signed by ${signatures.map((s) => `${s.name}+${formatKeyId(s.keyId)}`).join(', ')})`);
  return { text, verified, unverified };
}
