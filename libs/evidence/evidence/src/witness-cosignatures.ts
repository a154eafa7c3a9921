// Witness cosignatures (c2sp.org/tlog-cosignature) on the log's checkpoints: a witness returns the
// checkpoint note with its cosignature line(s); each line by a configured witness key is verified
// against the checkpoint the log signed and stored.
import { Ed25519CosignatureVerifier, formatKeyId, parseCheckpoint, parseNote, verifyCosignatures } from '@custodian/transparency-log';
import { EvidenceError } from './errors.js';
import type { EvidenceLogState, StoredCheckpoint, StoredCosignature } from './evidence-log-state.js';

export function witnessVerifiers(vkeys: readonly string[]): Ed25519CosignatureVerifier[] {
  return vkeys.map((vkey) => {
    try {
      return new Ed25519CosignatureVerifier(vkey.trim());
    } catch (error) {
      throw new EvidenceError('EVIDENCE_KEY_INVALID', `witness key is not a valid vkey: ${error instanceof Error ? error.message : String(error)}`);
    }
  });
}

/**
 * Verifies and stores the cosignatures in `note` (a signed checkpoint note carrying witness
 * signature lines). Refused (EVIDENCE_COSIGNATURE_REJECTED) when the checkpoint is not one this log
 * signed, when no line is by a configured witness, or when a witness line does not verify.
 */
export async function submitCosignatures(state: EvidenceLogState, witnesses: readonly Ed25519CosignatureVerifier[], note: string): Promise<StoredCosignature[]> {
  let parsed: ReturnType<typeof parseNote>;
  let size: number;
  try {
    parsed = parseNote(note);
    size = parseCheckpoint(parsed.text).size;
  } catch (error) {
    throw new EvidenceError('EVIDENCE_COSIGNATURE_REJECTED', `not a signed checkpoint note: ${error instanceof Error ? error.message : String(error)}`);
  }
  const checkpoint = (await state.checkpoints()).find((c) => c.treeSize === size);
  if (!checkpoint || parseNote(checkpoint.note).text !== parsed.text) throw new EvidenceError('EVIDENCE_COSIGNATURE_REJECTED', `this log signed no checkpoint with that body (size ${size})`);
  const stored: StoredCosignature[] = [];
  for (const witness of witnesses) {
    const line = parsed.signatures.find((s) => s.name === witness.name && s.keyId === witness.keyId);
    if (!line) continue;
    let timestamp: number;
    try {
      timestamp = verifyCosignatures(note, [witness]).cosignatures[0]!.timestamp;
    } catch (error) {
      throw new EvidenceError('EVIDENCE_COSIGNATURE_REJECTED', `cosignature by ${witness.name} does not verify: ${error instanceof Error ? error.message : String(error)}`);
    }
    const record: StoredCosignature = { treeSize: size, witness: witness.name, keyId: formatKeyId(witness.keyId), timestamp, line: `\u2014 ${line.name} ${line.base64}` };
    await state.addCosignature(record);
    stored.push(record);
  }
  if (stored.length === 0) throw new EvidenceError('EVIDENCE_COSIGNATURE_REJECTED', 'the note carries no cosignature by a configured witness');
  return stored;
}

/** The log's note for a checkpoint with the stored witness cosignature lines appended. */
export function cosignedNote(checkpoint: StoredCheckpoint, cosignatures: readonly StoredCosignature[]): string {
  return checkpoint.note + cosignatures.filter((c) => c.treeSize === checkpoint.treeSize).map((c) => `${c.line}\n`).join('');
}
