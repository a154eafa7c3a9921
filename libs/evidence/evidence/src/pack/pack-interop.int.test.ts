// An evidence pack checked by tools no one at Custodian wrote: Go's golang.org/x/mod/sumdb/note and
// github.com/transparency-dev/merkle (tools/tlog-verify-go) for checkpoints, cosignatures,
// consistency proofs and leaf-set proofs (compact ranges); sigstore cosign for the DSSE / in-toto attestation (run with
// no network); compliance-trestle's OSCAL models for the assessment results.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { CUSTODY_PREDICATE_TYPE } from '@custodian/custody';
import type { CustodyAttested } from '@custodian/event-contracts';
import { Ed25519CosignatureSigner, parseNote, signNote } from '@custodian/transparency-log';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadControlCatalogue } from '../controls/control-catalogue.js';
import { AGENT, ALICE, appendSpecs, buildScenario, bulkSpecs } from '../testing/evidence-scenario.js';
import { TEST_ORIGIN, createEvidenceLogFixture, type EvidenceLogFixture } from '../testing/evidence-log-fixture.js';
import { REPO_ROOT, buildTlogVerifyGo, findCosign, findGo, findTrestlePython, runOffline, unshareWorks } from '../testing/external-tools.js';
import { submitCosignatures, witnessVerifiers } from '../witness-cosignatures.js';
import { PACK_FILES, PACK_PREDICATE_TYPE, buildEvidencePack, type PackManifest } from './evidence-pack.js';
import { readTarGz } from './tar-archive.js';

const go = findGo();
const cosign = findCosign();
const trestle = findTrestlePython();
if (!go) console.warn('evidence interop: Go checks skipped — no Go toolchain (install Go ≥ 1.26)');
if (!cosign) console.warn('evidence interop: cosign checks skipped — run tools/cosign/install.sh to build cosign into .tools/go-bin');
if (cosign && !unshareWorks) console.warn('evidence interop: cosign checks skipped — cannot run it without network (unshare -n not permitted), and it must not reach out');
if (!trestle) console.warn('evidence interop: OSCAL validation skipped — run scripts/setup-python.sh to install compliance-trestle into .tools/python');

let f: EvidenceLogFixture;
let dir: string;
let files: Map<string, Buffer>;
let manifest: PackManifest;
let midWindow: Map<string, Buffer>;
let scattered: Map<string, Buffer>;
const witness = Ed25519CosignatureSigner.generate('witness.example/w1', () => 1_772_400_000);

beforeAll(async () => {
  f = await createEvidenceLogFixture();
  const projection = await f.openProjection();
  const { specs } = buildScenario();
  await appendSpecs(f.store, f.factory, specs.slice(0, 7));
  await projection.caughtUp();
  await projection.checkpointNow();
  await appendSpecs(f.store, f.factory, [...specs.slice(7), ...bulkSpecs(40)]);
  await projection.caughtUp();
  const latest = (await projection.checkpointNow())!;
  const state = await f.openState();
  const { text, signatures } = parseNote(latest.note);
  await submitCosignatures(state, witnessVerifiers([witness.vkey]), signNote(text, [witness.signer], signatures));
  const pack = await buildEvidencePack({ store: f.store, state, catalogue: loadControlCatalogue(), scope: { from: '2026-03-01T00:00:00Z', to: '2026-03-02T00:00:00Z' }, signer: f.signer, exportedBy: ALICE, witnessKeys: [witness.vkey] });
  // One identity's events only: scattered through the log, so the proof has many gaps.
  const byAgent = await buildEvidencePack({ store: f.store, state, catalogue: loadControlCatalogue(), scope: { from: '2026-03-01T00:00:00Z', to: '2026-03-02T00:00:00Z', identity: AGENT.subject }, signer: f.signer, exportedBy: ALICE });
  scattered = new Map(readTarGz(byAgent.bytes).map((x) => [x.path, x.data]));
  // A window strictly inside the log (format v3): its edges are proven by the neighbouring leaves.
  const times = readTarGz(pack.bytes).find((x) => x.path === PACK_FILES.events)!.data.toString('utf8').trim().split('\n').map((l) => (JSON.parse(l) as { occurredAt: string }).occurredAt);
  const mid = await buildEvidencePack({ store: f.store, state, catalogue: loadControlCatalogue(), scope: { from: times[3]!, to: times[times.length - 3]! }, signer: f.signer, exportedBy: ALICE });
  midWindow = new Map(readTarGz(mid.bytes).map((x) => [x.path, x.data]));
  await state.close();
  files = new Map(readTarGz(pack.bytes).map((x) => [x.path, x.data]));
  manifest = pack.manifest;
  dir = mkdtempSync(join(tmpdir(), 'custodian-pack-interop-'));
  for (const [path, data] of files) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), data);
  }
});

afterAll(async () => {
  await f?.cleanup();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const lines = (path: string): string[] => files.get(path)!.toString('utf8').trim().split('\n');

/**
 * The leaves a pack proves, in index order, as docs/evidence-pack-format.md §4–5 lists them: the
 * edge before the range, the events (a complete pack) or the headers (a headers pack), the edge
 * after; only the events otherwise. In a headers pack each selected header is replaced by its whole
 * event, which Go turns into its header (tools/tlog-verify-go/header.go): the root then recomputes
 * only if both sides derive the same header. `format2From` is the log's switch to header leaves.
 */
function provenLeaves(pack: Map<string, Buffer>, events?: readonly string[]): { leaves: string[]; format2From?: number } {
  const text = (path: string): string[] => (pack.get(path)?.toString('utf8') ?? '').split('\n').filter((l) => l.length > 0);
  const m = JSON.parse(pack.get(PACK_FILES.manifest)!.toString('utf8')) as PackManifest;
  const lines = events ?? text(PACK_FILES.events);
  const format2From = typeof m.leafFormat2From === 'number' ? { format2From: m.leafFormat2From } : {};
  const coverage = m.coverage;
  if (coverage?.kind !== 'complete' && coverage?.kind !== 'headers') return { leaves: [...lines], ...format2From };
  const edges = text(PACK_FILES.edges);
  const before = coverage.firstLeaf > 0 ? edges.slice(0, 1) : [];
  const after = edges.slice(before.length);
  let middle = lines;
  if (coverage.kind === 'headers') {
    const byId = new Map(lines.map((l) => [(JSON.parse(l) as { id: string }).id, l]));
    middle = text(PACK_FILES.headers).map((h) => byId.get((JSON.parse(h) as { id: string }).id) ?? h);
  }
  return { leaves: [...before, ...middle, ...after], ...format2From };
}

function goRequest(eventLines: readonly string[]): object {
  const checkpoints = manifest.checkpoints.map((p) => files.get(p)!.toString('utf8'));
  const latest = checkpoints.length - 1;
  const { leaves, format2From } = provenLeaves(files, eventLines);
  return {
    origin: TEST_ORIGIN,
    logVkey: f.signer.vkey,
    // The witness cosigned the latest checkpoint only: ask Go about that one through a second request below.
    witnessVkeys: [],
    checkpoints,
    inclusion: [],
    consistency: lines(PACK_FILES.consistency).map((l, i) => ({ from: i, to: i + 1, proof: (JSON.parse(l) as { hashes: string[] }).hashes })),
    tlogProofs: [],
    leafSets: [],
    leafSetProofs: [{ checkpoint: latest, leaves: leaves.map((l) => Buffer.from(l, 'utf8').toString('base64')), gaps: (JSON.parse(files.get(PACK_FILES.leafSet)!.toString('utf8')) as { gaps: unknown[] }).gaps, ...(format2From !== undefined ? { format2From } : {}) }],
  };
}

function runGo(request: object): { status: number | null; results: { check: string; ok: boolean; error?: string; detail?: string }[] } {
  const binary = buildTlogVerifyGo(go!);
  const file = join(dir, `go-request-${Math.random().toString(16).slice(2)}.json`);
  writeFileSync(file, JSON.stringify(request));
  const run = spawnSync(binary, [file], { encoding: 'utf8' });
  return { status: run.status, results: (JSON.parse(run.stdout) as { results: { check: string; ok: boolean; error?: string; detail?: string }[] }).results };
}

describe.skipIf(!go)('pack checkpoints and proofs, checked with Go reference code (tools/tlog-verify-go)', () => {
  it('accepts every checkpoint signature, witness cosignature, consistency proof and the leaf-set proof of the events', () => {
    const events = lines(PACK_FILES.events);
    expect(events.length).toBeGreaterThan(10);
    const all = runGo(goRequest(events));
    expect(all.results.filter((r) => !r.ok)).toEqual([]);
    expect(all.status).toBe(0);
    expect(all.results.filter((r) => r.check.startsWith('leafSetProof')).map((r) => r.ok)).toEqual([true]);
    expect(all.results.filter((r) => r.check.startsWith('consistency')).length).toBe(1);
    const latest = files.get(manifest.latestCheckpoint.path)!.toString('utf8');
    const cosigned = runGo({ origin: TEST_ORIGIN, logVkey: f.signer.vkey, witnessVkeys: [witness.vkey], checkpoints: [latest], inclusion: [], consistency: [], tlogProofs: [], leafSets: [], leafSetProofs: [] });
    expect(cosigned.results).toEqual(expect.arrayContaining([{ check: 'cosignature[0][0]', ok: true }]));
    expect(cosigned.status).toBe(0);
  });

  it("accepts the leaf-set proof of an identity's headers pack: every header of the range, each selected event turned into its header by Go (issue 20, item 1)", () => {
    const m = JSON.parse(scattered.get(PACK_FILES.manifest)!.toString('utf8')) as PackManifest;
    expect(m.coverage?.kind).toBe('headers');
    const { leaves, format2From } = provenLeaves(scattered);
    expect(format2From).toBe(0);
    const proof = JSON.parse(scattered.get(PACK_FILES.leafSet)!.toString('utf8')) as { gaps: unknown[] };
    const checkpoints = manifest.checkpoints.map((p) => files.get(p)!.toString('utf8'));
    const request = { origin: TEST_ORIGIN, logVkey: f.signer.vkey, witnessVkeys: [], checkpoints, inclusion: [], consistency: [], tlogProofs: [], leafSets: [], leafSetProofs: [{ checkpoint: checkpoints.length - 1, leaves: leaves.map((l) => Buffer.from(l, 'utf8').toString('base64')), gaps: proof.gaps, format2From }] };
    const run = runGo(request);
    expect(run.results.filter((r) => !r.ok)).toEqual([]);
    expect(run.status).toBe(0);
    // An event whose payload differs from its header: Go derives another header, the root fails.
    const events = scattered.get(PACK_FILES.events)!.toString('utf8').trim().split('\n');
    const altered = events.map((l, i) => (i === 0 ? l.replace('"payload":{', '"payload":{"x":1,') : l));
    const forged = runGo({ ...request, leafSetProofs: [{ ...request.leafSetProofs[0]!, leaves: provenLeaves(scattered, altered).leaves.map((l) => Buffer.from(l, 'utf8').toString('base64')) }] });
    expect(forged.status).toBe(1);
    // Without the switch Go hashes the events as whole envelopes (format 1): the root fails too.
    expect(runGo({ ...request, leafSetProofs: [{ ...request.leafSetProofs[0]!, format2From: undefined }] }).status).toBe(1);
  });

  it('accepts the leaf-set proof of a complete pack: the leaf before the range, every event, the leaf after it (issue 20, item 1)', () => {
    const text = (path: string): string[] => midWindow.get(path)!.toString('utf8').trim().split('\n').filter((l) => l.length > 0);
    expect(text(PACK_FILES.edges)).toHaveLength(2);
    const { leaves, format2From } = provenLeaves(midWindow);
    const proof = JSON.parse(midWindow.get(PACK_FILES.leafSet)!.toString('utf8')) as { gaps: unknown[] };
    const checkpoints = manifest.checkpoints.map((p) => files.get(p)!.toString('utf8'));
    const request = { origin: TEST_ORIGIN, logVkey: f.signer.vkey, witnessVkeys: [], checkpoints, inclusion: [], consistency: [], tlogProofs: [], leafSets: [], leafSetProofs: [{ checkpoint: checkpoints.length - 1, leaves: leaves.map((l) => Buffer.from(l, 'utf8').toString('base64')), gaps: proof.gaps, format2From }] };
    const run = runGo(request);
    expect(run.results.filter((r) => !r.ok)).toEqual([]);
    expect(run.status).toBe(0);
    // Without the edge leaves the walk does not add up.
    expect(runGo({ ...request, leafSetProofs: [{ ...request.leafSetProofs[0]!, leaves: request.leafSetProofs[0]!.leaves.slice(1, -1) }] }).status).toBe(1);
  });

  const VECTORS = join(dirname(createRequire(import.meta.url).resolve('@custodian/schemas/evidence/controls.json')), 'test-vectors');
  it.each([VECTORS, join(VECTORS, 'v4'), join(VECTORS, 'v3')])('accepts the proofs of every genuine test vector in %s, edges and headers included, and refuses the omission forgery', (vectors) => {
    const index = JSON.parse(readFileSync(join(vectors, 'index.json'), 'utf8')) as { keys: { log: string[] }; vectors: { file: string; item: string }[] };
    const requestOf = (file: string): object => {
      const pack = new Map(readTarGz(readFileSync(join(vectors, file))).map((x) => [x.path, x.data]));
      const text = (path: string): string[] => (pack.get(path)?.toString('utf8') ?? '').split('\n').filter((l) => l.length > 0);
      const m = JSON.parse(pack.get(PACK_FILES.manifest)!.toString('utf8')) as PackManifest;
      const checkpoints = m.checkpoints.map((p) => pack.get(p)!.toString('utf8'));
      const proof = JSON.parse(pack.get(PACK_FILES.leafSet)!.toString('utf8')) as { gaps: unknown[] };
      const { leaves, format2From } = provenLeaves(pack);
      return {
        origin: TEST_ORIGIN,
        logVkey: index.keys.log[0],
        witnessVkeys: [],
        checkpoints,
        inclusion: [],
        consistency: text(PACK_FILES.consistency).map((l, i) => ({ from: i, to: i + 1, proof: (JSON.parse(l) as { hashes: string[] }).hashes })),
        tlogProofs: [],
        leafSets: [],
        leafSetProofs: [{ checkpoint: checkpoints.length - 1, leaves: leaves.map((l) => Buffer.from(l, 'utf8').toString('base64')), gaps: proof.gaps, ...(format2From !== undefined ? { format2From } : {}) }],
      };
    };
    const genuine = index.vectors.filter((v) => v.item === 'genuine');
    expect(genuine.length).toBeGreaterThanOrEqual(5);
    for (const v of genuine) expect({ file: v.file, status: runGo(requestOf(v.file)).status }).toEqual({ file: v.file, status: 0 });
    // The omission forgery recomputes the root (the missing leaf is a gap): the proofs alone accept it; the coverage rules (docs/evidence-pack-format.md §4) are what refuse it.
    expect(runGo(requestOf('item1-omission-as-gap.tar.gz')).status).toBe(0);
    expect(runGo(requestOf('event-byte-flipped.tar.gz')).status).toBe(1);
  });

  /**
   * A pack's request with its rules (tools/tlog-verify-go/pack.go): the window, the coverage, the
   * allowed checkpoint delay the mapping ships and the checkpoint-gap findings evidence.json lists.
   */
  function packRequest(pack: Map<string, Buffer>, logVkey: string, allowIncomplete = false): object {
    const text = (path: string): string[] => (pack.get(path)?.toString('utf8') ?? '').split('\n').filter((l) => l.length > 0);
    const m = JSON.parse(pack.get(PACK_FILES.manifest)!.toString('utf8')) as PackManifest;
    const checkpoints = m.checkpoints.map((p) => pack.get(p)!.toString('utf8'));
    const proof = JSON.parse(pack.get(PACK_FILES.leafSet)!.toString('utf8')) as { gaps: unknown[] };
    const mapping = JSON.parse(pack.get(PACK_FILES.mapping)!.toString('utf8')) as { checkpointGap?: { maxDelayMicroseconds: number }; findings: { kind: string; controls: string[] }[] };
    const gapKind = mapping.findings.find((k) => k.kind === 'checkpoint-gap');
    const views = JSON.parse(pack.get(PACK_FILES.evidence)!.toString('utf8')) as { findings: { id: string; kind: string }[] };
    const { leaves, format2From } = provenLeaves(pack);
    return {
      origin: TEST_ORIGIN,
      logVkey,
      witnessVkeys: [],
      checkpoints,
      inclusion: [],
      consistency: text(PACK_FILES.consistency).map((l, i) => ({ from: i, to: i + 1, proof: (JSON.parse(l) as { hashes: string[] }).hashes })),
      tlogProofs: [],
      leafSets: [],
      leafSetProofs: [
        {
          checkpoint: checkpoints.length - 1,
          leaves: leaves.map((l) => Buffer.from(l, 'utf8').toString('base64')),
          gaps: proof.gaps,
          ...(format2From !== undefined ? { format2From } : {}),
          pack: {
            from: m.scope.from,
            to: m.scope.to,
            coverage: m.coverage ?? { kind: 'filtered' },
            allowIncomplete,
            ...(mapping.checkpointGap ? { maxDelayMicroseconds: mapping.checkpointGap.maxDelayMicroseconds } : {}),
            checkpoints: checkpoints.map((_, i) => i),
            gapFindings: views.findings.filter((x) => x.kind === 'checkpoint-gap').map((x) => x.id),
            ...(gapKind ? { gapKindControls: gapKind.controls } : {}),
            ...(m.scope.control !== undefined ? { control: m.scope.control } : {}),
          },
        },
      ],
    };
  }
  const vectorPack = (dir: string, file: string): Map<string, Buffer> => new Map(readTarGz(readFileSync(join(dir, file))).map((x) => [x.path, x.data]));
  const failing = (run: ReturnType<typeof runGo>): string[] => run.results.filter((r) => !r.ok).map((r) => r.check);

  it('recomputes checkpoint-gap from the times the checkpoints state under the log signature, and decides completeness, as the TypeScript verifier does (issue 20)', () => {
    const index = JSON.parse(readFileSync(join(VECTORS, 'index.json'), 'utf8')) as { keys: { log: string[] }; vectors: { file: string; item: string }[] };
    const key = index.keys.log[0]!;
    for (const file of ['genuine-complete.tar.gz', 'genuine-window.tar.gz', 'genuine-identity.tar.gz', 'genuine-connection.tar.gz', 'genuine-control.tar.gz']) {
      const run = runGo(packRequest(vectorPack(VECTORS, file), key));
      expect({ file, failing: failing(run), status: run.status }).toEqual({ file, failing: [], status: 0 });
      // The gap is recomputed (not skipped): the genuine complete and headers packs list one and Go finds one.
      if (file !== 'genuine-control.tar.gz') expect(run.results.find((r) => r.check === 'checkpointGaps[0]')?.detail, file).toMatch(/^1 finding\(s\) recomputed from the signed times/);
    }
    // A listed finding removed, or one invented: Go's recomputation disagrees.
    for (const file of ['item7-checkpoint-gap-removed.tar.gz', 'item7-checkpoint-gap-removed-identity.tar.gz', 'item7-checkpoint-gap-invented.tar.gz']) {
      const run = runGo(packRequest(vectorPack(VECTORS, file), key));
      expect({ file, failing: failing(run), status: run.status }).toEqual({ file, failing: ['checkpointGaps[0]'], status: 1 });
    }
    // A checkpoint whose signed-at line was changed: note.Open refuses its signature.
    const changed = runGo(packRequest(vectorPack(VECTORS, 'item7-checkpoint-time-changed.tar.gz'), key));
    expect(changed.status).toBe(1);
    expect(failing(changed)).toContain(`checkpoint[${(JSON.parse(vectorPack(VECTORS, 'item7-checkpoint-time-changed.tar.gz').get(PACK_FILES.manifest)!.toString('utf8')) as PackManifest).checkpoints.length - 1}]`);
    // A plain filtered pack: refused unless incompleteness is accepted.
    const plain = vectorPack(VECTORS, 'item2-filtered-instead-of-headers.tar.gz');
    expect(failing(runGo(packRequest(plain, key)))).toEqual(['completeness[0]']);
    const accepted = runGo(packRequest(plain, key, true));
    expect({ failing: failing(accepted), status: accepted.status }).toEqual({ failing: [], status: 0 });
    expect(accepted.results.find((r) => r.check === 'checkpointGaps[0]')?.detail).toMatch(/not recomputable/);
    // v4 packs: their checkpoints state no time and their mapping no delay: not recomputed, still verified.
    const v4 = JSON.parse(readFileSync(join(VECTORS, 'v4', 'index.json'), 'utf8')) as { keys: { log: string[] } };
    const old = runGo(packRequest(vectorPack(join(VECTORS, 'v4'), 'genuine-complete.tar.gz'), v4.keys.log[0]!));
    expect({ failing: failing(old), status: old.status }).toEqual({ failing: [], status: 0 });
    expect(old.results.find((r) => r.check === 'checkpointGaps[0]')?.detail).toMatch(/not recomputable/);
  });

  it('rejects a modified, a dropped and a reordered event', () => {
    const modified = lines(PACK_FILES.events);
    modified[3] = modified[3]!.replace('"stream":"', '"stream":"x');
    const dropped = lines(PACK_FILES.events).slice(1);
    const reordered = lines(PACK_FILES.events);
    [reordered[4], reordered[5]] = [reordered[5]!, reordered[4]!];
    for (const events of [modified, dropped, reordered]) {
      const run = runGo(goRequest(events));
      expect(run.status).toBe(1);
      expect(run.results.filter((r) => !r.ok).map((r) => r.check)).toEqual(['leafSetProof[0]']);
    }
  });
});

describe.skipIf(!cosign || !unshareWorks)('pack attestation, checked by cosign verify-blob-attestation (no network)', () => {
  const verify = (blob: string) =>
    runOffline(cosign!, ['verify-blob-attestation', '--key', PACK_FILES.signingKeyPem, '--signature', PACK_FILES.attestation, '--type', PACK_PREDICATE_TYPE, '--insecure-ignore-tlog', blob], { cwd: dir });

  it('verifies the attestation over every file of the pack', () => {
    for (const path of files.keys()) {
      if (path === PACK_FILES.attestation) continue;
      const run = verify(path);
      expect(run.status, `${path}: ${run.stderr}`).toBe(0);
      expect(run.stderr).toContain('Verified OK');
    }
  });

  it('refuses a file that is not the attested one', () => {
    writeFileSync(join(dir, 'tampered-events.jsonl'), files.get(PACK_FILES.events)!.toString('utf8').replace('"orders-prod"', '"orders-prox"'));
    const run = verify('tampered-events.jsonl');
    expect(run.status).not.toBe(0);
    expect(run.stderr).toContain('no matching subject digest');
  });
});

describe.skipIf(!cosign || !unshareWorks)('custody statements, extracted from the pack as an auditor would and checked by cosign (no network)', () => {
  /** The custody.attested events of the pack: envelope and gateway public key each to a file, as docs/verifying-evidence.md shows with jq. */
  function extract(): { dir: string; payload: CustodyAttested; digest: string }[] {
    return lines(PACK_FILES.events)
      .map((l) => JSON.parse(l) as { type: string; payload: CustodyAttested })
      .filter((e) => e.type === 'custody.attested')
      .map((e, i) => {
        const at = join(dir, `custody-${i}`);
        mkdirSync(at, { recursive: true });
        writeFileSync(join(at, 'statement.dsse.json'), JSON.stringify(e.payload.envelope));
        writeFileSync(join(at, 'gateway.pem'), e.payload.publicKey);
        const statement = JSON.parse(Buffer.from(e.payload.envelope.payload, 'base64').toString('utf8')) as { subject: { digest: { sha256: string } }[] };
        return { dir: at, payload: e.payload, digest: statement.subject[0]!.digest.sha256 };
      });
  }
  const verify = (cwd: string, signature: string, digest: string) =>
    runOffline(cosign!, ['verify-blob-attestation', '--key', 'gateway.pem', '--signature', signature, '--type', CUSTODY_PREDICATE_TYPE, '--digest', digest, '--digestAlg', 'sha256', '--insecure-ignore-tlog'], { cwd });

  it('verifies each statement with the gateway key, clean and exposed alike', () => {
    const statements = extract();
    expect(statements.map((s) => s.payload.exposed).sort()).toEqual([false, true]);
    for (const { dir: at, digest } of statements) {
      const run = verify(at, 'statement.dsse.json', digest);
      expect(run.status, run.stderr).toBe(0);
      expect(run.stderr).toContain('Verified OK');
    }
  });

  it('rejects a statement with one byte changed, another subject digest, or another key', () => {
    const { dir: at, payload, digest } = extract()[0]!;
    const envelope = JSON.stringify(payload.envelope);
    // One byte of the signed payload (a base64 character inside it) changed.
    const i = envelope.indexOf('"payload":"') + '"payload":"'.length + 30;
    writeFileSync(join(at, 'changed.dsse.json'), `${envelope.slice(0, i)}${envelope[i] === 'A' ? 'B' : 'A'}${envelope.slice(i + 1)}`);
    const changed = verify(at, 'changed.dsse.json', digest);
    expect(changed.status).not.toBe(0);
    expect(changed.stderr).not.toContain('Verified OK');
    const otherDigest = verify(at, 'statement.dsse.json', '0'.repeat(64));
    expect(otherDigest.status).not.toBe(0);
    expect(otherDigest.stderr).toContain('no matching subject digest');
    writeFileSync(join(at, 'gateway.pem'), files.get(PACK_FILES.signingKeyPem)!);
    const otherKey = verify(at, 'statement.dsse.json', digest);
    expect(otherKey.status).not.toBe(0);
  });
});

describe.skipIf(!trestle)('OSCAL assessment results, validated by compliance-trestle', () => {
  const validate = (path: string) => spawnSync(trestle!, [join(REPO_ROOT, 'tools/oscal-validate/validate_assessment_results.py'), path], { encoding: 'utf8' });

  it('loads the pack document into the OSCAL assessment-results model', () => {
    const run = validate(join(dir, PACK_FILES.oscal));
    expect(run.stdout).toContain('"ok": true');
    expect(run.status).toBe(0);
  });

  it('rejects a document that breaks the model', () => {
    const doc = JSON.parse(files.get(PACK_FILES.oscal)!.toString('utf8')) as { 'assessment-results': { results: { findings: { target: { status: { state: string } } }[] }[] } };
    doc['assessment-results'].results[0]!.findings[0]!.target.status.state = 'mostly-fine';
    const broken = join(dir, 'broken-oscal.json');
    writeFileSync(broken, JSON.stringify(doc));
    const run = validate(broken);
    expect(run.status).toBe(1);
    expect(run.stdout).toContain('"ok": false');
  });
});
