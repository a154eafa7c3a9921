// The log's signing keys come from a key file or an environment variable holding an skey (the text
// format of Go's note package). The key never leaves the signer object: it is not logged, not in
// events, and SecretKeyText / Ed25519NoteSigner print "[redacted]" or only the public half.
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { Ed25519NoteSigner, Ed25519NoteVerifier } from '@custodian/transparency-log';
import { EvidenceError } from './errors.js';

/** A signer from skey text (surrounding whitespace ignored). Errors never quote the key. */
export function signerFromSkey(text: string): Ed25519NoteSigner {
  try {
    return Ed25519NoteSigner.fromSkey(text.trim());
  } catch (error) {
    throw new EvidenceError('EVIDENCE_KEY_INVALID', `the evidence log signing key is not a valid Ed25519 skey: ${error instanceof Error ? error.message : String(error)}`);
  }
}

export function verifierFromVkey(text: string): Ed25519NoteVerifier {
  try {
    return new Ed25519NoteVerifier(text.trim());
  } catch (error) {
    throw new EvidenceError('EVIDENCE_KEY_INVALID', `not a valid Ed25519 vkey: ${error instanceof Error ? error.message : String(error)}`);
  }
}

/**
 * The signing key in `path`, created (mode 0600) with a fresh key named `origin` when the file does
 * not exist yet: the embedded deployment's default. Returns the signer and whether it was created.
 */
export function loadOrCreateKeyFile(path: string, origin: string): { signer: Ed25519NoteSigner; created: boolean } {
  if (existsSync(path)) return { signer: signerFromSkey(readFileSync(path, 'utf8')), created: false };
  const generated = Ed25519NoteSigner.generate(origin);
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  writeFileSync(path, `${generated.skey.reveal()}\n`, { mode: 0o600, flag: 'wx' });
  chmodSync(path, 0o600);
  return { signer: generated.signer, created: true };
}
