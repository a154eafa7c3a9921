// checkpoint-gap findings recomputed offline (issue 20, item 7): each checkpoint states its signing
// time in a `signed-at` extension line under the log key, and the verifier recomputes, from those
// times and the events (or headers) of a complete (or headers) pack, which checkpoints came later
// than allowed after the first event they cover. A checkpoint signed before the line existed states
// no time: a finding it may raise is neither required nor refused ("time not proven").
import { copyFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import type { ManualClock } from '@custodian/event-contracts';
import { SIGNED_AT_PREFIX, Ed25519NoteSigner, checkpointSignedAt, parseCheckpoint, parseNote, signNote, type NoteSigner } from '@custodian/transparency-log';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadControlCatalogue } from '../controls/control-catalogue.js';
import { SqliteEvidenceLogState } from '../sqlite/index.js';
import { AGENT, ALICE, appendSpecs, buildScenario, bulkSpecs } from '../testing/evidence-scenario.js';
import { TEST_ORIGIN, createEvidenceLogFixture, type EvidenceLogFixture } from '../testing/evidence-log-fixture.js';
import { packJson, removeFindings, resealPack } from '../testing/pack-forgery.js';
import { PACK_FILES, buildEvidencePack, type PackManifest } from './evidence-pack.js';
import { verifyEvidencePack } from './pack-verification.js';
import { readTarGz } from './tar-archive.js';

const catalogue = loadControlCatalogue();
const PERIOD = { from: '2026-03-01T00:00:00Z', to: '2026-03-02T00:00:00Z' };
const attestation: NoteSigner = Ed25519NoteSigner.generate(`${TEST_ORIGIN}/packs`).signer;
let f: EvidenceLogFixture;
let state: SqliteEvidenceLogState;

beforeAll(async () => {
  f = await createEvidenceLogFixture();
  const projection = await f.openProjection();
  await appendSpecs(f.store, f.factory, bulkSpecs(3, 'before'));
  await projection.caughtUp();
  await projection.checkpointNow();
  await appendSpecs(f.store, f.factory, [...buildScenario().specs, ...bulkSpecs(3, 'after')]);
  await projection.caughtUp();
  // Signed 10 minutes after the events it covers (allowed: 300 s by default).
  (f.clock as ManualClock).advance(600_000_000n);
  await projection.checkpointNow();
  await projection.close();
  state = await f.openState();
});

afterAll(async () => {
  await state?.close();
  await f?.cleanup();
});

const keys = (): { trustedLogKeys: string[]; trustedAttestationKeys: string[] } => ({ trustedLogKeys: [f.signer.vkey], trustedAttestationKeys: [attestation.vkey] });
const packOf = async (scope: Record<string, string>, of: SqliteEvidenceLogState = state): Promise<Buffer> =>
  (await buildEvidencePack({ store: f.store, state: of, catalogue, scope: { ...PERIOD, ...scope }, signer: attestation, exportedBy: ALICE, now: () => new Date('2026-03-02T00:00:00Z') })).bytes;
const gapsOf = (bytes: Buffer): { id: string; description: string }[] =>
  (JSON.parse(readTarGz(bytes).find((x) => x.path === PACK_FILES.evidence)!.data.toString('utf8')) as { findings: { id: string; kind: string; description: string }[] }).findings.filter((x) => x.kind === 'checkpoint-gap');
const detailOf = (report: Awaited<ReturnType<typeof verifyEvidencePack>>, check: string): string => report.checks.find((c) => c.name === check)!.detail;

describe('checkpoint-gap, recomputed from the signing times the checkpoints state (issue 20, item 7)', () => {
  it('every checkpoint the log signs states its signing time, under the log key', async () => {
    const checkpoints = await state.checkpoints();
    expect(checkpoints).toHaveLength(2);
    for (const c of checkpoints) {
      const signedAt = checkpointSignedAt(parseCheckpoint(parseNote(c.note).text));
      expect(signedAt).toBe(c.signedAt);
      expect(signedAt).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/);
    }
    expect(Date.parse(checkpoints[1]!.signedAt) - Date.parse(checkpoints[0]!.signedAt)).toBeGreaterThanOrEqual(600_000);
  });

  it.each([
    ['complete', {}],
    ['identity (headers)', { identity: AGENT.subject }],
    ['connection (headers)', { connection: 'orders-prod' }],
  ])('a genuine %s pack lists the late checkpoint and the verifier recomputes it', async (_name, scope) => {
    const bytes = await packOf(scope);
    expect(gapsOf(bytes)).toHaveLength(1);
    const report = await verifyEvidencePack(bytes, keys());
    expect(report.firstFailure).toBeUndefined();
    expect(report.verdict).toBe('verified');
    expect(detailOf(report, 'checkpoints')).toContain('signing time signed in every checkpoint');
    expect(detailOf(report, 'evidence views')).toContain('checkpoint-gap recomputed from the signed times: 1 finding(s)');
  });

  it('refuses a pack whose listed checkpoint-gap findings disagree with the signed times, and a checkpoint whose time line was changed', async () => {
    const complete = await packOf({});
    const removed = await resealPack(complete, (fs) => void removeFindings(fs, (x) => x.kind === 'checkpoint-gap'), attestation);
    expect((await verifyEvidencePack(removed, keys())).firstFailure).toMatchObject({ name: 'evidence views', detail: expect.stringMatching(/the checkpoint of size \d+, signed at .* first covers the event at leaf \d+ 600\.\d+ s after it \(allowed: 300 s\), but evidence\.json has no checkpoint-gap finding/) });
    // The time moved 10 minutes earlier so that no gap is left: the log's signature fails.
    const moved = await resealPack(
      complete,
      (fs) => {
        const path = packJson<PackManifest>(fs, PACK_FILES.manifest).latestCheckpoint.path;
        const note = fs.get(path)!.toString('utf8');
        const line = note.split('\n').find((l) => l.startsWith(SIGNED_AT_PREFIX))!;
        const earlier = new Date(Date.parse(line.slice(SIGNED_AT_PREFIX.length)) - 600_000).toISOString().slice(0, 19);
        fs.set(path, Buffer.from(note.replace(line, `${SIGNED_AT_PREFIX}${earlier}${line.slice(SIGNED_AT_PREFIX.length + 19)}`)));
        removeFindings(fs, (x) => x.kind === 'checkpoint-gap');
      },
      attestation,
    );
    expect((await verifyEvidencePack(moved, keys())).firstFailure).toMatchObject({ name: 'checkpoints', detail: expect.stringContaining('invalid signature') });
  });

  it('a log whose checkpoint predates the time line: the pack verifies, the finding under it is neither required nor refused ("time not proven")', async () => {
    // A copy of the log with its latest checkpoint as an older Custodian signed it: no signed-at line.
    const path = join(f.dir, 'untimed-state.sqlite');
    copyFileSync(f.statePath, path);
    if (existsSync(`${f.statePath}-wal`)) copyFileSync(`${f.statePath}-wal`, `${path}-wal`);
    const db = new BetterSqlite3(path);
    db.exec('DROP TRIGGER evidence_checkpoints_u');
    const { tree_size: size, note } = db.prepare<[], { tree_size: number; note: string }>('SELECT tree_size, note FROM evidence_checkpoints ORDER BY tree_size DESC LIMIT 1').get()!;
    const body = parseNote(note).text.split('\n').filter((l) => !l.startsWith(SIGNED_AT_PREFIX)).join('\n');
    db.prepare('UPDATE evidence_checkpoints SET note = ? WHERE tree_size = ?').run(signNote(body, [f.signer]), size);
    db.close();
    const untimed = await SqliteEvidenceLogState.open({ path, origin: TEST_ORIGIN });
    try {
      const bytes = await packOf({}, untimed);
      // The exporter still raises it from the time the log recorded.
      expect(gapsOf(bytes)).toHaveLength(1);
      const report = await verifyEvidencePack(bytes, keys());
      expect(report.verdict).toBe('verified');
      expect(detailOf(report, 'checkpoints')).toContain('signing time signed in 1, not proven in 1');
      expect(detailOf(report, 'evidence views')).toContain('0 finding(s), 1 possible under 1 checkpoint(s) whose time is not proven (1 listed)');
      // Removed: not proven either way, so not refused.
      const removed = await resealPack(bytes, (fs) => void removeFindings(fs, (x) => x.kind === 'checkpoint-gap'), attestation);
      const without = await verifyEvidencePack(removed, keys());
      expect(without.verdict).toBe('verified');
      expect(detailOf(without, 'evidence views')).toContain('(0 listed)');
    } finally {
      await untimed.close();
    }
  });
});

describe('a v5 pack cannot skip the views check', () => {
  it('refuses a v5 pack re-sealed without controls/mapping.json or evidence.json', async () => {
    const complete = await packOf({});
    for (const path of [PACK_FILES.mapping, PACK_FILES.evidence]) {
      const forged = await resealPack(
        complete,
        (fs) => {
          fs.delete(path);
          // The OSCAL document's links to the file removed too, as a careful forger would.
          const oscal = packJson<{ 'assessment-results': { 'back-matter': { resources: { rlinks?: { href: string }[] }[] } } }>(fs, PACK_FILES.oscal);
          for (const r of oscal['assessment-results']['back-matter'].resources) if (r.rlinks) r.rlinks = r.rlinks.filter((l) => l.href !== `./${path}`);
          fs.set(PACK_FILES.oscal, Buffer.from(`${JSON.stringify(oscal, null, 2)}\n`));
        },
        attestation,
      );
      expect((await verifyEvidencePack(forged, keys())).firstFailure, path).toMatchObject({ name: 'manifest', detail: `a custodian-evidence-pack/v5 pack needs ${path}` });
    }
  });
});
