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

interface ViewsDoc {
  totals: { findings: number };
  controls: { id: string; oscalId: string; count: number; status: string; statusReason?: string; findings: string[] }[];
  findings: { id: string; kind: string; description: string }[];
}
interface OscalDoc {
  'assessment-results': { results: { findings?: { target: { 'target-id': string; status: { state: string } }; 'related-observations'?: { 'observation-uuid': string }[] }[]; observations?: { uuid: string; description?: string; 'relevant-evidence'?: { description?: string }[] }[] }[] };
}

/**
 * Removes the findings `which` selects as a careful forger would: evidence.json's totals, every
 * control's findings and status, the OSCAL findings and finding observations, the report's rows
 * and the manifest's count all made to agree (then `resealPack` re-signs). Returns the removed ids.
 */
export function removeFindings(files: PackFiles, which: (finding: { id: string; kind: string }) => boolean): string[] {
  const views = packJson<ViewsDoc>(files, PACK_FILES.evidence);
  const manifest = packJson<PackManifest>(files, PACK_FILES.manifest);
  const filtered = manifest.scope.identity !== undefined || manifest.scope.connection !== undefined || manifest.scope.control !== undefined;
  const removed = views.findings.filter(which).map((f) => f.id);
  views.findings = views.findings.filter((f) => !removed.includes(f.id));
  views.totals.findings = views.findings.length;
  const oscal = packJson<OscalDoc>(files, PACK_FILES.oscal);
  const result = oscal['assessment-results'].results[0]!;
  let report = files.get(PACK_FILES.report)!.toString('utf8');
  for (const c of views.controls) {
    c.findings = c.findings.filter((id) => !removed.includes(id));
    const status = c.findings.length > 0 ? 'not-satisfied' : c.count > 0 ? 'satisfied' : filtered ? 'not-assessed' : 'not-satisfied';
    if (status !== c.status) report = report.replace(`<tr class="${c.status}"><td><strong>${c.id}<`, `<tr class="${status}"><td><strong>${c.id}<`);
    c.status = status;
    if (status === 'not-assessed') result.findings = (result.findings ?? []).filter((f) => f.target['target-id'] !== `${c.oscalId}_obj`);
    for (const f of result.findings ?? []) if (f.target['target-id'] === `${c.oscalId}_obj`) f.target.status.state = status;
  }
  const gone = new Set((result.observations ?? []).filter((o) => (o['relevant-evidence'] ?? []).some((e) => removed.some((id) => e.description === `Finding ${id}.`))).map((o) => o.uuid));
  result.observations = (result.observations ?? []).filter((o) => !gone.has(o.uuid));
  for (const f of result.findings ?? []) if (f['related-observations']) f['related-observations'] = f['related-observations'].filter((r) => !gone.has(r['observation-uuid']));
  setPackJson(files, PACK_FILES.evidence, views);
  setPackJson(files, PACK_FILES.oscal, oscal);
  files.set(PACK_FILES.report, Buffer.from(report));
  setPackJson(files, PACK_FILES.manifest, { ...manifest, counts: { ...manifest.counts, findings: views.findings.length } });
  return removed;
}
