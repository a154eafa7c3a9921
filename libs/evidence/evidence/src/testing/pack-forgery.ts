// Re-sealing a changed pack as a careful forger holding an attestation key would: OSCAL evidence
// links, the manifest's file list and the DSSE statement all follow the changed files. Tests use it
// to show that a check catches a forgery that every digest and signature agrees with.
import { formatKeyId, type NoteSigner } from '@custodian/transparency-log';
import { sha256Hex, signStatement, type DsseEnvelope, type InTotoStatement } from '../pack/dsse.js';
import { PACK_FILES, type PackManifest } from '../pack/evidence-pack.js';
import { readTarGz, writeTarGz } from '../pack/tar-archive.js';

export type PackFiles = Map<string, Buffer>;

export const packJson = <T>(files: PackFiles, path: string): T => JSON.parse(files.get(path)!.toString('utf8')) as T;
export const setPackJson = (files: PackFiles, path: string, value: unknown): void => void files.set(path, Buffer.from(`${JSON.stringify(value, null, 2)}\n`));
/** The non-empty lines of a pack file. */
export const packLines = (files: PackFiles, path: string): string[] => files.get(path)!.toString('utf8').split('\n').filter((l) => l.length > 0);
export const setPackLines = (files: PackFiles, path: string, lines: readonly string[]): void => void files.set(path, Buffer.from(lines.map((l) => `${l}\n`).join(''), 'utf8'));

export function resealPack(source: Buffer, change: (files: PackFiles) => void, signer: NoteSigner): Promise<Buffer> {
  const files: PackFiles = new Map(readTarGz(source).map((x) => [x.path, x.data]));
  change(files);
  const oscal = packJson<{ 'assessment-results': { 'back-matter': { resources: { rlinks?: { href: string; hashes?: { value: string }[] }[] }[] } } }>(files, PACK_FILES.oscal);
  for (const r of oscal['assessment-results']['back-matter'].resources) for (const l of r.rlinks ?? []) for (const h of l.hashes ?? []) if (files.has(l.href.slice(2))) h.value = sha256Hex(files.get(l.href.slice(2))!);
  setPackJson(files, PACK_FILES.oscal, oscal);
  const manifest = packJson<PackManifest & { files: { path: string; sha256: string; bytes: number }[] }>(files, PACK_FILES.manifest);
  manifest.files = manifest.files.filter((x) => files.has(x.path)).map((x) => ({ path: x.path, sha256: sha256Hex(files.get(x.path)!), bytes: files.get(x.path)!.length }));
  setPackJson(files, PACK_FILES.manifest, manifest);
  const envelope = packJson<DsseEnvelope>(files, PACK_FILES.attestation);
  const statement = JSON.parse(Buffer.from(envelope.payload, 'base64').toString('utf8')) as InTotoStatement;
  const subject = [...files.keys()].filter((p) => p !== PACK_FILES.attestation).map((p) => ({ name: p, digest: { sha256: sha256Hex(files.get(p)!) } }));
  setPackJson(files, PACK_FILES.attestation, signStatement({ ...statement, subject }, signer, formatKeyId(signer.keyId)));
  return writeTarGz([...files.entries()].map(([path, data]) => ({ path, data })), 1_772_400_000);
}
