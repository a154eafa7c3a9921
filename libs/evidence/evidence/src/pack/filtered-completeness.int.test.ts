// Completeness of filtered packs (issue 20, item 1): over a log whose leaves are event headers (leaf
// format 2), a pack filtered by identity, connection or control carries the header of every leaf
// of its window's range and the full events only of those its filter selects. The verifier applies
// the filter to the headers: an event withheld, an event that differs from its header, or a header
// changed to dodge the filter, is refused even when the pack is re-sealed with the attestation key.
// Over a format-1 log the same withholding cannot be seen (the last test shows it).
import { Ed25519NoteSigner, MerkleTree, type NoteSigner } from '@custodian/transparency-log';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadControlCatalogue } from '../controls/control-catalogue.js';
import type { SqliteEvidenceLogState } from '../sqlite/index.js';
import { AGENT, ALICE, appendSpecs, buildScenario, bulkSpecs } from '../testing/evidence-scenario.js';
import { TEST_ORIGIN, createEvidenceLogFixture, type EvidenceLogFixture } from '../testing/evidence-log-fixture.js';
import { packJson, packLines, removeFindings, resealPack, setPackJson, setPackLines, type PackFiles } from '../testing/pack-forgery.js';
import { deterministicUuid } from '../deterministic-uuid.js';
import { PACK_FILES, buildEvidencePack, type PackManifest } from './evidence-pack.js';
import { readTarGz } from './tar-archive.js';
import { verifyEvidencePack } from './pack-verification.js';

const catalogue = loadControlCatalogue();
const PERIOD = { from: '2026-03-01T00:00:00Z', to: '2026-03-02T00:00:00Z' };
const attestation: NoteSigner = Ed25519NoteSigner.generate(`${TEST_ORIGIN}/packs`).signer;

async function scenarioLog(leafFormat: 1 | 2): Promise<{ f: EvidenceLogFixture; state: SqliteEvidenceLogState }> {
  const f = await createEvidenceLogFixture();
  const projection = await f.openProjection({ leafFormat });
  await appendSpecs(f.store, f.factory, bulkSpecs(3, 'before'));
  await projection.caughtUp();
  await projection.checkpointNow();
  await appendSpecs(f.store, f.factory, [...buildScenario().specs, ...bulkSpecs(3, 'after')]);
  await projection.caughtUp();
  await projection.checkpointNow();
  await projection.close();
  return { f, state: await f.openState() };
}

let log: { f: EvidenceLogFixture; state: SqliteEvidenceLogState };
const pinned = (): { trustedLogKeys: string[]; trustedAttestationKeys: string[] } => ({ trustedLogKeys: [log.f.signer.vkey], trustedAttestationKeys: [attestation.vkey] });
const packOf = async (scope: Record<string, string>, of = log): Promise<Buffer> =>
  (await buildEvidencePack({ store: of.f.store, state: of.state, catalogue, scope: { ...PERIOD, ...scope }, signer: attestation, exportedBy: ALICE, now: () => new Date('2026-03-02T00:00:00Z') })).bytes;

beforeAll(async () => {
  log = await scenarioLog(2);
});

afterAll(async () => {
  await log?.state.close();
  await log?.f.cleanup();
});

/** Removes the k-th event line, as a withholding exporter would, with the counts that follow. */
function withhold(fs: PackFiles, k: number): string {
  const events = packLines(fs, PACK_FILES.events);
  const [removed] = events.splice(k, 1);
  setPackLines(fs, PACK_FILES.events, events);
  const manifest = packJson<PackManifest & { counts: { events: number } }>(fs, PACK_FILES.manifest);
  manifest.counts.events -= 1;
  setPackJson(fs, PACK_FILES.manifest, manifest);
  const proof = packJson<{ events: number }>(fs, PACK_FILES.leafSet);
  proof.events -= 1;
  fs.set(PACK_FILES.leafSet, Buffer.from(`${JSON.stringify(proof)}\n`));
  return removed!;
}

describe('filtered packs over header leaves prove what they hold is all their filter selects (issue 20, item 1)', () => {
  it.each([
    ['identity', { identity: AGENT.subject }],
    ['connection', { connection: 'orders-prod' }],
    ['control', { control: 'SC-8' }],
  ])('a genuine %s pack carries every header of its range and verifies as complete', async (_name, scope) => {
    const bytes = await packOf(scope);
    const report = await verifyEvidencePack(bytes, pinned());
    expect(report.firstFailure).toBeUndefined();
    expect(report.verdict).toBe('verified');
    expect(report.complete).toBe(true);
    const manifest = report.manifest!;
    expect(manifest.format).toBe('custodian-evidence-pack/v5');
    expect(manifest.leafFormat2From).toBe(0);
    expect(manifest.coverage).toMatchObject({ kind: 'headers', firstLeaf: 0 });
    expect(report.checks.find((c) => c.name === 'leaf-set proof')!.detail).toMatch(/complete for its filter: the headers of every leaf 0\.\.\d+ are in the pack and the \d+ that match the filter are its events/);
  });

  it('carries headers, not payloads, of the events it does not select', async () => {
    const fs: PackFiles = new Map(readTarGz(await packOf({ identity: AGENT.subject })).map((x) => [x.path, x.data]));
    const headers = packLines(fs, PACK_FILES.headers).map((l) => JSON.parse(l) as { id: string; leafFormat: number; payload?: unknown; payloadSha256: string });
    const events = packLines(fs, PACK_FILES.events).map((l) => JSON.parse(l) as { id: string });
    const manifest = packJson<PackManifest & { coverage: { endLeaf: number; firstLeaf: number } }>(fs, PACK_FILES.manifest);
    expect(headers).toHaveLength(manifest.coverage.endLeaf - manifest.coverage.firstLeaf);
    expect(events.length).toBeGreaterThan(0);
    expect(events.length).toBeLessThan(headers.length);
    expect(headers.every((h) => h.leafFormat === 2 && h.payload === undefined && /^[0-9a-f]{64}$/.test(h.payloadSha256))).toBe(true);
    const ids = new Set(headers.map((h) => h.id));
    expect(events.every((e) => ids.has(e.id))).toBe(true);
  });

  const forgeries: [string, (fs: PackFiles) => void, RegExp][] = [
    ['an event of the scope withheld (its header left in place)', (fs) => void withhold(fs, 2), /matches the pack's filter but its event is not in the pack: an event of the scope was withheld/],
    ['the last event of the scope withheld', (fs) => void withhold(fs, packLines(fs, PACK_FILES.events).length - 1), /an event of the scope was withheld \(\d+ headers match, \d+ events\)/],
    [
      'an event whose payload no longer matches its header\'s digest',
      (fs) => {
        const events = packLines(fs, PACK_FILES.events);
        const k = events.findIndex((l) => l.includes('"application":"psql"'));
        events[k] = events[k]!.replace('"application":"psql"', '"application":"psqX"');
        setPackLines(fs, PACK_FILES.events, events);
      },
      /does not match the header of leaf \d+ .*its payload digest or envelope differs from the header the log holds/,
    ],
    [
      'a header altered to dodge the filter, its event withheld',
      (fs) => {
        const removed = JSON.parse(withhold(fs, 2)) as { id: string };
        const headers = packLines(fs, PACK_FILES.headers);
        const k = headers.findIndex((l) => l.includes(`"id":"${removed.id}"`));
        headers[k] = headers[k]!.replace(`"subject":"${AGENT.subject}"`, '"subject":"someone-else"');
        setPackLines(fs, PACK_FILES.headers, headers);
      },
      /do not recompute the root/,
    ],
    [
      'an event and its header removed, the leaf described as a one-leaf gap',
      (fs) => {
        const removed = JSON.parse(withhold(fs, 2)) as { id: string };
        const headers = packLines(fs, PACK_FILES.headers);
        const k = headers.findIndex((l) => l.includes(`"id":"${removed.id}"`));
        headers.splice(k, 1);
        setPackLines(fs, PACK_FILES.headers, headers);
      },
      /holds the header of every leaf of its range|no gap inside its range|leaves room for/,
    ],
  ];

  it.each(forgeries)('refuses a re-sealed identity pack with %s', async (_name, change, detail) => {
    const forged = await resealPack(await packOf({ identity: AGENT.subject }), change, attestation);
    const report = await verifyEvidencePack(forged, pinned());
    expect(report.verdict).toBe('failed');
    expect(report.firstFailure).toMatchObject({ name: 'leaf-set proof', detail: expect.stringMatching(detail) });
  });

  it('refuses a connection pack with a session event withheld, and a control pack with an evidencing event withheld', async () => {
    for (const scope of [{ connection: 'orders-prod' }, { control: 'SC-8' }] as Record<string, string>[]) {
      const forged = await resealPack(await packOf(scope), (fs) => void withhold(fs, 1), attestation);
      const report = await verifyEvidencePack(forged, pinned());
      expect(report.firstFailure).toMatchObject({ name: 'leaf-set proof', detail: expect.stringMatching(/an event of the scope was withheld/) });
    }
  });

  it('over a format-1 log (before the switch) the same withholding passes the proof: that pack says completeness is not proven', async () => {
    const legacy = await scenarioLog(1);
    try {
      const genuine = await packOf({ identity: AGENT.subject }, legacy);
      const manifest = (await verifyEvidencePack(genuine, pinned())).manifest!;
      expect(manifest.coverage).toEqual({ kind: 'filtered' });
      expect(manifest.leafFormat2From).toBeNull();
      // An insider holding the log computes an honest proof for the events left.
      const leafOf = new Map((await legacy.state.leaves(0, manifest.latestCheckpoint.treeSize)).map((l) => [l.eventId, l.leafIndex]));
      const kept = packLines(new Map(readTarGz(genuine).map((x) => [x.path, x.data])), PACK_FILES.events).filter((_, k) => k !== 2);
      const proof = await (await MerkleTree.open(legacy.state.treeStorage)).leafSetProof(kept.map((l) => leafOf.get((JSON.parse(l) as { id: string }).id)!), manifest.latestCheckpoint.treeSize);
      const forged = await resealPack(
        genuine,
        (fs) => {
          withhold(fs, 2);
          fs.set(PACK_FILES.leafSet, Buffer.from(`${JSON.stringify({ treeSize: proof.treeSize, rootHash: manifest.latestCheckpoint.rootHash, events: kept.length, gaps: proof.gaps.map((g) => ({ begin: g.begin, end: g.end, hashes: g.hashes.map((h) => Buffer.from(h).toString('base64')) })) })}\n`));
        },
        attestation,
      );
      // Every integrity check holds: by default the verifier refuses it for what it cannot prove
      // (issue 20: an exporter holding the attestation key can issue such a pack instead of a headers pack).
      const keys = { trustedLogKeys: [legacy.f.signer.vkey], trustedAttestationKeys: [attestation.vkey] };
      const report = await verifyEvidencePack(forged, keys);
      expect(report.checks.find((c) => c.name === 'leaf-set proof')).toMatchObject({ ok: true, detail: expect.stringContaining('completeness not proven (a filtered pack of a log without header leaves)') });
      // (This forger left evidence.json's counts as they were: the views check names that.)
      expect(report).toMatchObject({ ok: false, verdict: 'failed', complete: false });
      // The genuine pack, every integrity check holding, is refused for what it cannot prove...
      const refused = await verifyEvidencePack(genuine, keys);
      expect(refused).toMatchObject({ ok: false, verdict: 'failed', complete: false, firstFailure: { name: 'completeness', detail: expect.stringContaining('NOT proven') } });
      expect(refused.checks.filter((c) => !c.ok).map((c) => c.name)).toEqual(['completeness']);
      // ...and accepted only when the auditor asks, said plainly.
      const accepted = await verifyEvidencePack(genuine, { ...keys, allowIncomplete: true });
      expect(accepted).toMatchObject({ ok: true, verdict: 'verified', complete: false });
      expect(accepted.checks.find((c) => c.name === 'completeness')!.detail).toMatch(/^NOT proven, accepted as asked/);
    } finally {
      await legacy.state.close();
      await legacy.f.cleanup();
    }
  });
});

describe('findings that join several events, recomputed from what a headers pack holds (issue 20)', () => {
  const MASKING = ['pii-email', 'pii-ssn'];
  const masking = async (scope: Record<string, string>): Promise<Buffer> =>
    (await buildEvidencePack({ store: log.f.store, state: log.state, catalogue, scope: { ...PERIOD, ...scope }, signer: attestation, exportedBy: ALICE, maskingRules: MASKING, now: () => new Date('2026-03-02T00:00:00Z') })).bytes;
  const kinds = (bytes: Buffer): string[] => (JSON.parse(readTarGz(bytes).find((x) => x.path === PACK_FILES.evidence)!.data.toString('utf8')) as { findings: { kind: string }[] }).findings.map((x) => x.kind).sort();
  const viewsDetail = async (bytes: Buffer): Promise<string> => (await verifyEvidencePack(bytes, pinned())).checks.find((c) => c.name === 'evidence views')!.detail;
  /** A copy of the first finding of `kind` with another id, counted everywhere (a forger inventing one). */
  const invent = (fs: PackFiles, kind: string, id: string): void => {
    const views = packJson<{ totals: { findings: number }; controls: { findings: string[] }[]; findings: { id: string; kind: string }[] }>(fs, PACK_FILES.evidence);
    const model = views.findings.find((x) => x.kind === kind)!;
    views.findings.push({ ...model, id });
    views.totals.findings += 1;
    for (const c of views.controls) if (c.findings.includes(model.id)) c.findings.push(id);
    setPackJson(fs, PACK_FILES.evidence, views);
    const manifest = packJson<PackManifest>(fs, PACK_FILES.manifest);
    setPackJson(fs, PACK_FILES.manifest, { ...manifest, counts: { ...manifest.counts, findings: manifest.counts.findings + 1 } });
  };

  it('a connection pack holds every event its command findings join: they are recomputed, and one removed is refused', async () => {
    const bytes = await packOf({ connection: 'billing-prod' });
    expect(kinds(bytes)).toContain('privileged-command-without-approval');
    expect(await viewsDetail(bytes)).toContain('command findings recomputed');
    const forged = await resealPack(bytes, (fs) => void removeFindings(fs, (x) => x.kind === 'privileged-command-without-approval'), attestation);
    expect((await verifyEvidencePack(forged, pinned())).firstFailure).toMatchObject({ name: 'evidence views', detail: expect.stringMatching(/raises a privileged-command-without-approval finding that evidence\.json does not list/) });
    // An identity pack does not hold the approvals by others a command finding joins: not recomputed there.
    expect(await viewsDetail(await packOf({ identity: AGENT.subject }))).not.toContain('command findings recomputed');
  });

  it('masking-rule-never-fired: exact when the filter selects every data.masked header of the window, else a listed rule must not have fired in the pack', async () => {
    // orders-prod selects the window's only data.masked event (it names pii-email): exact.
    const orders = await masking({ connection: 'orders-prod' });
    expect(kinds(orders).filter((k) => k === 'masking-rule-never-fired')).toHaveLength(1);
    expect(await viewsDetail(orders)).toContain('masking findings recomputed');
    const removed = await resealPack(orders, (fs) => void removeFindings(fs, (x) => x.kind === 'masking-rule-never-fired'), attestation);
    expect((await verifyEvidencePack(removed, pinned())).firstFailure).toMatchObject({ name: 'evidence views', detail: expect.stringContaining('masking rule pii-ssn masked nothing in the window') });
    const manifest = packJson<PackManifest>(new Map(readTarGz(orders).map((x) => [x.path, x.data])), PACK_FILES.manifest);
    const fired = deterministicUuid('finding', 'masking-rule-never-fired', 'pii-email', manifest.scope.from, manifest.scope.to);
    const invented = await resealPack(orders, (fs) => invent(fs, 'masking-rule-never-fired', fired), attestation);
    expect((await verifyEvidencePack(invented, pinned())).firstFailure).toMatchObject({ name: 'evidence views', detail: expect.stringContaining(`lists masking-rule-never-fired finding ${fired}`) });
    // billing-prod does not select it: the finding is checked only against the pack's own data.masked events (none), so a removal cannot be seen.
    const billing = await masking({ connection: 'billing-prod' });
    expect(await viewsDetail(billing)).toContain("masking findings checked against the pack's data.masked events");
    const unseen = await resealPack(billing, (fs) => void removeFindings(fs, (x) => x.kind === 'masking-rule-never-fired'), attestation);
    expect((await verifyEvidencePack(unseen, pinned())).verdict).toBe('verified');
  });
});
