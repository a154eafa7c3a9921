import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import BetterSqlite3 from 'better-sqlite3';
import { join } from 'node:path';
import { Ed25519CosignatureSigner, Ed25519NoteSigner, MerkleTree, formatCheckpoint, formatKeyId, hashLeaf, parseNote, signNote, type NoteSigner } from '@custodian/transparency-log';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadControlCatalogue } from '../controls/control-catalogue.js';
import { SqliteEvidenceLogState } from '../sqlite/index.js';
import { generateKeyPairSync } from 'node:crypto';
import type { CustodyAttested, EventType, NewEvent } from '@custodian/event-contracts';
import { ALICE, AGENT, SCENARIO_GATEWAY_KEY, SCENARIO_SECRET, appendSpecs, buildScenario, bulkSpecs, type Scenario } from '../testing/evidence-scenario.js';
import { TEST_ORIGIN, createEvidenceLogFixture, type EvidenceLogFixture } from '../testing/evidence-log-fixture.js';
import { submitCosignatures, witnessVerifiers } from '../witness-cosignatures.js';
import { sha256Hex, signStatement, type DsseEnvelope, type InTotoStatement } from './dsse.js';
import { PACK_FILES, buildEvidencePack, type EvidencePack, type PackManifest } from './evidence-pack.js';
import { verifyEvidencePack, verifyEvidencePackFile } from './pack-verification.js';
import { readTarGz, writeTarGz } from './tar-archive.js';
import { liveEventCheckWorkers } from './pack-reader.js';
import { gunzipSync, gzipSync } from 'node:zlib';

const catalogue = loadControlCatalogue();
const PERIOD = { from: '2026-03-01T00:00:00Z', to: '2026-03-02T00:00:00Z' };
let f: EvidenceLogFixture;
let state: SqliteEvidenceLogState;
let scenario: Scenario;
let pack: EvidencePack;
/** One identity's events: scattered through the log, so its leaf-set proof has gaps. */
let agentPack: EvidencePack;
let oldKey: NoteSigner;
let newKey: NoteSigner;
const witness = Ed25519CosignatureSigner.generate('witness.example/w1', () => 1_772_400_000);

beforeAll(async () => {
  f = await createEvidenceLogFixture();
  oldKey = f.signer;
  // A log from before leaf format 2 (whole envelopes), switched to headers in the middle: packs
  // of a log that holds both formats, and filtered ones whose range starts in format 1 (no headers).
  const before = await f.openProjection({ leafFormat: 1 });
  scenario = buildScenario();
  await appendSpecs(f.store, f.factory, scenario.specs.slice(0, 10));
  await before.caughtUp();
  await before.checkpointNow();
  await before.close();
  const projection = await f.openProjection();
  expect(projection.leafFormatSwitch).toBeGreaterThan(9);
  // Rotation in the middle: the pack holds checkpoints by both keys.
  newKey = Ed25519NoteSigner.generate(TEST_ORIGIN).signer;
  await projection.rotate(newKey);
  await appendSpecs(f.store, f.factory, [...scenario.specs.slice(10), ...bulkSpecs(5)]);
  await projection.caughtUp();
  const latest = (await projection.checkpointNow())!;
  state = await f.openState();
  const { text, signatures } = parseNote(latest.note);
  await submitCosignatures(state, witnessVerifiers([witness.vkey]), signNote(text, [witness.signer], signatures));
  pack = await buildEvidencePack({
    store: f.store,
    state,
    catalogue,
    scope: PERIOD,
    signer: newKey,
    exportedBy: ALICE,
    witnessKeys: [witness.vkey],
    maskingRules: ['pii-email', 'pii-card'],
    now: () => new Date('2026-03-01T12:00:00Z'),
  });
  agentPack = await buildEvidencePack({ store: f.store, state, catalogue, scope: { ...PERIOD, identity: AGENT.subject }, signer: newKey, exportedBy: ALICE });
});

afterAll(async () => {
  await state?.close();
  await f?.cleanup();
});

const trusted = (): string[] => [newKey.vkey, oldKey.vkey];

describe('evidence views', () => {
  it('counts evidence per control and raises the planted findings, and only those', () => {
    const { report } = pack;
    const kinds = report.findings.map((x) => `${x.kind}:${x.sessionId ?? '-'}`).sort();
    expect(kinds).toEqual(
      [
        `privileged-command-without-approval:${scenario.planted.privilegedWithoutApproval}`,
        `session-without-identity:${scenario.planted.sessionWithoutIdentity}`,
        `credential-exposed:${scenario.planted.credentialExposed}`,
        'masking-rule-never-fired:-',
      ].sort(),
    );
    const control = (id: string) => report.controls.find((c) => c.id === id)!;
    expect(control('AC-6(10)').status).toBe('not-satisfied');
    expect(control('AC-6(10)').findings).toHaveLength(1);
    expect(control('SC-8').status).toBe('satisfied');
    expect(control('SC-8').count).toBe(5);
    expect(control('AU-9').status).toBe('satisfied');
    expect(control('IA-2').status).toBe('not-satisfied');
    expect(control('AU-6').statusReason).toBe('no evidencing event in the period');
    expect(control('A.8.11').byRule).toEqual(expect.arrayContaining([expect.objectContaining({ rule: 'data-masked', count: 1 })]));
    expect(control('AC-2').sampleSessions.length).toBeGreaterThan(0);
    expect(control('AC-3').asks.length).toBeGreaterThan(10);
    for (const c of catalogue.controls) expect(report.controls.map((x) => x.id)).toContain(c.id);
  });

  it('the catalogue holds the NIST and ISO controls the issue names, each with its own one-line summary', () => {
    const ids = catalogue.controls.map((c) => c.id);
    for (const id of ['AC-2', 'AC-3', 'AC-6(9)', 'AC-6(10)', 'AU-2', 'AU-3', 'AU-9', 'AU-10', 'AU-12', 'IA-2', 'SC-8', 'SI-4']) expect(ids).toContain(id);
    for (const id of ['5.15', '5.17', '5.18', '5.28', '5.33', '8.2', '8.5', '8.11', '8.12', '8.15', '8.16', '8.18', '8.24']) expect(ids).toContain(`A.${id}`);
    expect(catalogue.controls.find((c) => c.id === 'AC-6(9)')!.oscalId).toBe('ac-6.9');
  });
});

describe('custody statements in the evidence', () => {
  it('raises a leaked credential as a finding against IA-5 / SC-28 / A.5.17 / A.8.12 and counts clean statements as evidence', () => {
    const { report } = pack;
    const leak = report.findings.find((x) => x.kind === 'credential-exposed')!;
    expect(leak).toMatchObject({ severity: 'high', sessionId: scenario.planted.credentialExposed, subject: AGENT.subject, connection: 'orders-prod', controls: ['IA-5', 'SC-28', 'A.5.17', 'A.8.12'] });
    expect(leak.description).toMatch(/env:ORDERS_DB_PASSWORD was found 1 time\(s\) \(1 in client-bound bytes, 0 in events; encodings: base64\)/);
    expect(leak.eventIds).toHaveLength(1);
    const control = (id: string) => report.controls.find((c) => c.id === id)!;
    for (const id of ['IA-5', 'SC-28', 'A.8.12']) expect(control(id).status, id).toBe('not-satisfied');
    expect(control('IA-5').byRule).toEqual([expect.objectContaining({ rule: 'custody-not-exposed', count: 1 })]);
    expect(control('AU-10').byRule).toEqual(expect.arrayContaining([expect.objectContaining({ rule: 'custody-attested', count: 2 })]));
    expect(JSON.stringify(report)).not.toContain(SCENARIO_SECRET.toString('utf8'));
  });

  it('verifies every custody statement in a pack, reports the signer key id, and checks a pinned key', async () => {
    const unpinned = await verifyEvidencePack(pack.bytes, { trustedLogKeys: trusted() });
    const check = unpinned.checks.find((c) => c.name === 'custody statements')!;
    expect(check.ok).toBe(true);
    expect(check.detail).toMatch(/^2 custody statement\(s\) verified, signed by key id\(s\) scenario-gateway-1, the key\(s\) each event carries \(not pinned/);
    expect(check.detail).toContain('1 state(s) the credential was EXPOSED');
    expect(unpinned.custody).toEqual({ statements: 2, exposed: 1, keyIds: ['scenario-gateway-1'], pinned: false });
    const pinned = await verifyEvidencePack(pack.bytes, { trustedLogKeys: trusted(), trustedCustodyKeys: [SCENARIO_GATEWAY_KEY.publicKeyPem] });
    expect(pinned.ok).toBe(true);
    expect(pinned.custody?.pinned).toBe(true);
    const otherKey = generateKeyPairSync('ed25519').publicKey.export({ format: 'pem', type: 'spki' }).toString();
    const wrong = await verifyEvidencePack(pack.bytes, { trustedLogKeys: trusted(), trustedCustodyKeys: [otherKey] });
    expect(wrong.firstFailure?.name).toBe('custody statements');
    expect(wrong.firstFailure?.detail).toMatch(/^event \d+: the custody statement does not verify: session [0-9a-f-]{36}: signed by key scenario-gateway-1, which is not one of the 1 trusted custody key\(s\) \(CUSTODY_SIGNATURE_INVALID\) \(and 1 more\)$/);
    const notPem = await verifyEvidencePack(pack.bytes, { trustedLogKeys: trusted(), trustedCustodyKeys: ['not a key'] });
    expect(notPem.firstFailure).toMatchObject({ name: 'custody statements', detail: 'trusted custody key 1: not a PEM public key' });
    // A pack without statements (one control's events only) says so.
    const none = await verifyEvidencePack((await buildEvidencePack({ store: f.store, state, catalogue, scope: { ...PERIOD, control: 'sc-8' }, signer: newKey, exportedBy: ALICE })).bytes, { trustedLogKeys: trusted() });
    expect(none.checks.find((c) => c.name === 'custody statements')!.detail).toBe('no custody statement in the pack');
  });

  it('fails, naming the event and the session, when one byte of a logged statement\'s envelope was changed before it was logged', async () => {
    const g = await createEvidenceLogFixture();
    try {
      const projection = await g.openProjection();
      const specs = buildScenario().specs.map((spec): NewEvent<EventType> => {
        if (spec.type !== 'custody.attested') return spec;
        const payload = spec.payload as CustodyAttested;
        if (payload.exposed) return spec;
        // One character of the signed payload (base64) changed: still a valid event, no longer a valid signature.
        const at = 40;
        const flipped = payload.envelope.payload[at] === 'A' ? 'B' : 'A';
        return { ...spec, payload: { ...payload, envelope: { ...payload.envelope, payload: `${payload.envelope.payload.slice(0, at)}${flipped}${payload.envelope.payload.slice(at + 1)}` } } } as NewEvent<EventType>;
      });
      await appendSpecs(g.store, g.factory, specs);
      await projection.caughtUp();
      await projection.checkpointNow();
      await projection.close();
      const gState = await g.openState();
      try {
        const forged = await buildEvidencePack({ store: g.store, state: gState, catalogue, scope: PERIOD, signer: g.signer, exportedBy: ALICE });
        for (const workers of [0, 2]) {
          const report = await verifyEvidencePack(forged.bytes, { trustedLogKeys: [g.signer.vkey], workers, chunkBytes: 900 });
          expect(report.ok).toBe(false);
          // Everything else holds: the log faithfully kept a statement that was bad when it was written.
          expect(report.checks.filter((c) => !c.ok).map((c) => c.name)).toEqual(['custody statements']);
          expect(report.firstFailure?.detail).toMatch(/^event \d+: the custody statement does not verify: session [0-9a-f-]{36}: the DSSE signature does not verify with the key given \(CUSTODY_SIGNATURE_INVALID\)$/);
        }
      } finally {
        await gState.close();
      }
    } finally {
      await g.cleanup();
    }
  });
});

describe('evidence packs', () => {
  it('holds every part the format promises and verifies offline against pinned keys', async () => {
    const files = new Map(readTarGz(pack.bytes).map((x) => [x.path, x.data]));
    expect([...files.keys()]).toEqual(
      expect.arrayContaining([PACK_FILES.manifest, PACK_FILES.events, PACK_FILES.leafSet, PACK_FILES.consistency, PACK_FILES.logKeys, PACK_FILES.witnessKeys, PACK_FILES.signingKeyPem, PACK_FILES.evidence, PACK_FILES.oscal, PACK_FILES.report, PACK_FILES.attestation]),
    );
    expect(pack.manifest.counts.checkpoints).toBe(2);
    expect(pack.manifest.counts.events).toBe(files.get(PACK_FILES.events)!.toString('utf8').trim().split('\n').length);
    expect(files.get(PACK_FILES.report)!.toString('utf8')).toContain('Privileged command executed without approval');
    const report = await verifyEvidencePack(pack.bytes, { trustedLogKeys: trusted(), requiredWitnesses: [witness.vkey] });
    expect(report.checks.filter((c) => !c.ok)).toEqual([]);
    expect(report.ok).toBe(true);
    expect(report.checks.map((c) => c.name)).toEqual(['archive', 'keys', 'attestation signature', 'digests', 'manifest', 'checkpoints', 'cosignatures', 'consistency proofs', 'leaf-set proof', 'custody statements', 'oscal', 'evidence views', 'completeness']);
    // After a rotation the auditor needs every key the log used: pinning only the new one fails on the old checkpoint.
    const newOnly = await verifyEvidencePack(pack.bytes, { trustedLogKeys: [newKey.vkey] });
    expect(newOnly.firstFailure?.name).toBe('checkpoints');
    // Unpinned: still self-consistent, and the report says the keys came from the pack.
    expect(report.verdict).toBe('verified');
    // Unpinned (issue 20, item 3): every check holds, but the report is not ok unless self-consistency is asked for.
    const unpinned = await verifyEvidencePack(pack.bytes);
    expect(unpinned.checks.every((c) => c.ok)).toBe(true);
    expect(unpinned.ok).toBe(false);
    expect(unpinned.verdict).toBe('self-consistent');
    expect(unpinned.keysPinned).toBe(false);
    expect((await verifyEvidencePack(pack.bytes, { trustPackKeys: true })).ok).toBe(true);
  });

  it('is a tar.gz that GNU tar reads', () => {
    const dir = mkdtempSync(join(f.dir, 'tar-'));
    try {
      writeFileSync(join(dir, 'pack.tar.gz'), pack.bytes);
      const listed = spawnSync('tar', ['-tzf', join(dir, 'pack.tar.gz')], { encoding: 'utf8' });
      expect(listed.status).toBe(0);
      expect(listed.stdout.trim().split('\n')).toEqual(readTarGz(pack.bytes).map((x) => x.path));
      const extracted = spawnSync('tar', ['-xzf', 'pack.tar.gz', PACK_FILES.events], { cwd: dir, encoding: 'utf8' });
      expect(extracted.status).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('scopes by identity, connection and control', async () => {
    const byIdentity = await buildEvidencePack({ store: f.store, state, catalogue, scope: { ...PERIOD, identity: AGENT.subject }, signer: newKey, exportedBy: ALICE });
    const lines = readTarGz(byIdentity.bytes).find((x) => x.path === PACK_FILES.events)!.data.toString('utf8').trim().split('\n');
    expect(lines.length).toBe(byIdentity.manifest.counts.events);
    expect(lines.every((l) => (JSON.parse(l) as { identity: { subject: string } | null }).identity?.subject === AGENT.subject)).toBe(true);
    const byConnection = await buildEvidencePack({ store: f.store, state, catalogue, scope: { ...PERIOD, connection: 'billing-prod' }, signer: newKey, exportedBy: ALICE });
    expect(byConnection.report.findings.map((x) => x.kind)).toEqual(['privileged-command-without-approval']);
    const byControl = await buildEvidencePack({ store: f.store, state, catalogue, scope: { ...PERIOD, control: 'sc-8' }, signer: newKey, exportedBy: ALICE });
    expect(byControl.report.controls.map((c) => c.id)).toEqual(['SC-8']);
    expect(byControl.manifest.counts.events).toBe(5);
    for (const p of [byIdentity, byConnection, byControl]) expect((await verifyEvidencePack(p.bytes, { trustedLogKeys: trusted(), allowIncomplete: true })).ok).toBe(true);
    await expect(buildEvidencePack({ store: f.store, state, catalogue, scope: { ...PERIOD, control: 'XX-1' }, signer: newKey, exportedBy: ALICE })).rejects.toMatchObject({ code: 'EVIDENCE_SCOPE_INVALID' });
  });
});

/** Rewrites pack files; with `resign`, recomputes manifest digests and re-signs the attestation (an insider holding that key). */
function repack(source: Buffer, change: (files: Map<string, Buffer>) => void, resign?: NoteSigner): Promise<Buffer> {
  const files = new Map(readTarGz(source).map((x) => [x.path, x.data]));
  change(files);
  if (resign) {
    const manifest = JSON.parse(files.get(PACK_FILES.manifest)!.toString('utf8')) as PackManifest & { files: { path: string; sha256: string; bytes: number }[] };
    manifest.files = manifest.files.filter((x) => files.has(x.path)).map((x) => ({ path: x.path, sha256: sha256Hex(files.get(x.path)!), bytes: files.get(x.path)!.length }));
    files.set(PACK_FILES.manifest, Buffer.from(JSON.stringify(manifest)));
    const envelope = JSON.parse(files.get(PACK_FILES.attestation)!.toString('utf8')) as DsseEnvelope;
    const statement = JSON.parse(Buffer.from(envelope.payload, 'base64').toString('utf8')) as InTotoStatement;
    const subject = [...files.keys()].filter((p) => p !== PACK_FILES.attestation).map((p) => ({ name: p, digest: { sha256: sha256Hex(files.get(p)!) } }));
    files.set(PACK_FILES.attestation, Buffer.from(JSON.stringify(signStatement({ ...statement, subject }, resign, formatKeyId(resign.keyId)))));
  }
  return writeTarGz([...files.entries()].map(([path, data]) => ({ path, data })), 1_772_000_000);
}

const lines = (data: Buffer): string[] => data.toString('utf8').trim().split('\n');
const joinLines = (l: readonly string[]): Buffer => Buffer.from(`${l.join('\n')}\n`);

describe('pack tamper matrix: each change is detected and named', () => {
  const cases: [string, () => Promise<Buffer>, string, RegExp][] = [
    ['flip one byte of an event', () => repack(pack.bytes, (fs) => void fs.set(PACK_FILES.events, Buffer.from(fs.get(PACK_FILES.events)!.toString('utf8').replace('"orders-prod"', '"orders-prox"')))), 'digests', /events\.jsonl/],
    [
      'flip one byte of an event, re-sealed by someone with the right key',
      () => repack(pack.bytes, (fs) => void fs.set(PACK_FILES.events, Buffer.from(fs.get(PACK_FILES.events)!.toString('utf8').replace('"orders-prod"', '"orders-prox"'))), newKey),
      'leaf-set proof',
      /do not recompute the root/,
    ],
    ['flip one byte, re-sealed with another key', () => repack(pack.bytes, (fs) => void fs.set(PACK_FILES.events, Buffer.from(fs.get(PACK_FILES.events)!.toString('utf8').replace('"orders-prod"', '"orders-prox"'))), Ed25519NoteSigner.generate(TEST_ORIGIN).signer), 'attestation signature', /does not verify/],
    ['drop one event, re-sealed', () => repack(pack.bytes, (fs) => void fs.set(PACK_FILES.events, joinLines(lines(fs.get(PACK_FILES.events)!).slice(1))), newKey), 'leaf-set proof', /manifest counts/],
    [
      'reorder two events, re-sealed',
      () =>
        repack(
          pack.bytes,
          (fs) => {
            const l = lines(fs.get(PACK_FILES.events)!);
            [l[1], l[2]] = [l[2]!, l[1]!];
            fs.set(PACK_FILES.events, joinLines(l));
          },
          newKey,
        ),
      'leaf-set proof',
      /do not recompute the root/,
    ],
    [
      'append a forged event, re-sealed',
      () =>
        repack(
          pack.bytes,
          (fs) => {
            const ev = lines(fs.get(PACK_FILES.events)!);
            fs.set(PACK_FILES.events, joinLines([...ev, ev[ev.length - 1]!.replace('"client-closed"', '"timeout"')]));
          },
          newKey,
        ),
      'leaf-set proof',
      /more events than the proof/,
    ],
    [
      'forge a subtree root in the proof, re-sealed',
      () =>
        repack(
          agentPack.bytes,
          (fs) => {
            const proof = JSON.parse(fs.get(PACK_FILES.leafSet)!.toString('utf8')) as { gaps: { hashes: string[] }[] };
            const gap = proof.gaps.find((g) => g.hashes.length > 0)!;
            gap.hashes[0] = Buffer.alloc(32, 7).toString('base64');
            fs.set(PACK_FILES.leafSet, Buffer.from(JSON.stringify(proof)));
          },
          newKey,
        ),
      'leaf-set proof',
      /do not recompute the root/,
    ],
    [
      'claim an event sits one leaf earlier (shift a gap), re-sealed',
      () =>
        repack(
          agentPack.bytes,
          (fs) => {
            const proof = JSON.parse(fs.get(PACK_FILES.leafSet)!.toString('utf8')) as { gaps: { begin: number; end: number; hashes: string[] }[] };
            // The second gap starts one leaf later: the event before it now claims the gap's first position.
            const gap = proof.gaps[1]!;
            gap.begin += 1;
            gap.hashes = gap.hashes.slice(1);
            fs.set(PACK_FILES.leafSet, Buffer.from(JSON.stringify(proof)));
          },
          newKey,
        ),
      'leaf-set proof',
      /not ascending|needs \d+ hashes|leaves room for|do not recompute the root/,
    ],
    [
      'replace a checkpoint with one signed by another key, re-sealed',
      () =>
        repack(
          pack.bytes,
          (fs) => {
            const path = pack.manifest.checkpoints[0]!;
            const body = parseNote(fs.get(path)!.toString('utf8')).text;
            fs.set(path, Buffer.from(signNote(body, [Ed25519NoteSigner.generate(TEST_ORIGIN).signer])));
          },
          newKey,
        ),
      'checkpoints',
      /no signature by a known key|NOTE_UNVERIFIED|known key/i,
    ],
    [
      'sign an inconsistent checkpoint (a fork) with the right key, re-sealed',
      () =>
        repack(
          pack.bytes,
          (fs) => {
            const path = pack.manifest.checkpoints[0]!;
            const size = Number(parseNote(fs.get(path)!.toString('utf8')).text.split('\n')[1]);
            fs.set(path, Buffer.from(signNote(formatCheckpoint({ origin: TEST_ORIGIN, size, rootHash: Buffer.alloc(32, 9), extensions: [] }), [oldKey])));
          },
          newKey,
        ),
      'consistency proofs',
      /not consistent/,
    ],
    [
      'flip one byte of a custody statement\'s envelope',
      () => repack(pack.bytes, (fs) => void fs.set(PACK_FILES.events, Buffer.from(fs.get(PACK_FILES.events)!.toString('utf8').replace(/"sig":"(.)/, (_m, c: string) => `"sig":"${c === 'A' ? 'B' : 'A'}`)))),
      'digests',
      /events\.jsonl/,
    ],
    [
      'flip one byte of a custody statement\'s envelope, re-sealed by someone with the log key',
      () => repack(pack.bytes, (fs) => void fs.set(PACK_FILES.events, Buffer.from(fs.get(PACK_FILES.events)!.toString('utf8').replace(/"sig":"(.)/, (_m, c: string) => `"sig":"${c === 'A' ? 'B' : 'A'}`))), newKey),
      'leaf-set proof',
      /do not recompute the root/,
    ],
    ['swap a file (the report)', () => repack(pack.bytes, (fs) => void fs.set(PACK_FILES.report, Buffer.from('<html>all good</html>'))), 'digests', /report\.html/],
    ['add a file', () => repack(pack.bytes, (fs) => void fs.set('extra.txt', Buffer.from('hello'))), 'digests', /not in the attestation/],
    ['change the OSCAL document', () => repack(pack.bytes, (fs) => void fs.set(PACK_FILES.oscal, Buffer.from(fs.get(PACK_FILES.oscal)!.toString('utf8').replace('"not-satisfied"', '"satisfied"')))), 'digests', /assessment-results\.json/],
    [
      'change the OSCAL evidence links, re-sealed',
      () => repack(pack.bytes, (fs) => void fs.set(PACK_FILES.oscal, Buffer.from(fs.get(PACK_FILES.oscal)!.toString('utf8').replace(/"value": "[0-9a-f]{64}"/, `"value": "${'0'.repeat(64)}"`))), newKey),
      'oscal',
      /SHA-256 does not match/,
    ],
  ];
  it.each(cases)('%s', async (_name, make, check, detail) => {
    const report = await verifyEvidencePack(await make(), { trustedLogKeys: trusted() });
    expect(report.ok).toBe(false);
    expect(report.firstFailure?.name).toBe(check);
    expect(report.firstFailure?.detail).toMatch(detail);
  });
});

describe('pack verification in worker threads (a chunk of event lines each)', () => {
  it('gives the same result with 2 workers and tiny chunks as in one thread', async () => {
    for (const p of [pack, agentPack]) {
      const inThread = await verifyEvidencePack(p.bytes, { trustedLogKeys: trusted(), allowIncomplete: true, workers: 0 });
      const parallel = await verifyEvidencePack(p.bytes, { trustedLogKeys: trusted(), allowIncomplete: true, workers: 2, chunkBytes: 512 });
      expect(inThread.ok).toBe(true);
      expect(parallel.checks).toEqual(inThread.checks);
    }
  });

  it('names the same failure from a worker as in one thread', async () => {
    const tampered = await repack(pack.bytes, (fs) => void fs.set(PACK_FILES.events, Buffer.from(fs.get(PACK_FILES.events)!.toString('utf8').replace('"orders-prod"', '"orders-prox"'))), newKey);
    // A filtered pack: every line must lie in the window (a complete pack holds its whole range instead).
    const outOfScope = await repack(
      agentPack.bytes,
      (fs) => {
        const l = lines(fs.get(PACK_FILES.events)!);
        l[7] = l[7]!.replace(/"occurredAt":"[^"]+"/, '"occurredAt":"2027-01-01T00:00:00.000000Z"');
        fs.set(PACK_FILES.events, joinLines(l));
      },
      newKey,
    );
    for (const bytes of [tampered, outOfScope]) {
      const inThread = await verifyEvidencePack(bytes, { trustedLogKeys: trusted(), workers: 0 });
      const parallel = await verifyEvidencePack(bytes, { trustedLogKeys: trusted(), workers: 2, chunkBytes: 700 });
      expect(inThread.ok).toBe(false);
      expect(parallel.firstFailure).toEqual(inThread.firstFailure);
    }
    const scoped = await verifyEvidencePack(outOfScope, { trustedLogKeys: trusted(), workers: 2, chunkBytes: 700 });
    expect(scoped.firstFailure?.detail).toMatch(/^event 8 \(leaf \d+\) occurred at 2027-01-01T00:00:00.000000Z, outside the pack's scope$/);
    // In a complete pack the same change is a leaf that no longer hashes to the log's.
    const inComplete = await repack(pack.bytes, (fs) => void fs.set(PACK_FILES.events, joinLines(lines(fs.get(PACK_FILES.events)!).map((l, i) => (i === 7 ? l.replace(/"occurredAt":"[^"]+"/, '"occurredAt":"2027-01-01T00:00:00.000000Z"') : l)))), newKey);
    expect((await verifyEvidencePack(inComplete, { trustedLogKeys: trusted() })).firstFailure?.detail).toMatch(/do not recompute the root/);
  });
});

describe('pack verification as a stream', () => {
  it('verifies a pack file streamed from disk exactly as from memory', async () => {
    const path = join(f.dir, 'agent-pack.tar.gz');
    writeFileSync(path, agentPack.bytes);
    const fromFile = await verifyEvidencePackFile(path, { trustedLogKeys: trusted(), allowIncomplete: true });
    const fromMemory = await verifyEvidencePack(agentPack.bytes, { trustedLogKeys: trusted(), allowIncomplete: true });
    expect(fromFile.ok).toBe(true);
    expect(fromFile.checks).toEqual(fromMemory.checks);
    const missing = await verifyEvidencePackFile(join(f.dir, 'no-such-pack.tar.gz'));
    expect(missing.firstFailure?.name).toBe('archive');
  });

  it('verifies a pack whose events come before its manifest (re-archived by another tool)', async () => {
    const files = readTarGz(pack.bytes);
    const events = files.find((x) => x.path === PACK_FILES.events)!;
    const reordered = await writeTarGz([events, ...files.filter((x) => x !== events)], 1_772_000_000);
    const report = await verifyEvidencePack(reordered, { trustedLogKeys: trusted(), workers: 2, chunkBytes: 600 });
    expect(report.checks.filter((c) => !c.ok)).toEqual([]);
  });

  it('refuses an events file with a line longer than any event can be, without holding it whole', async () => {
    const hostile = await repack(pack.bytes, (fs) => void fs.set(PACK_FILES.events, Buffer.alloc(17 * 1024 * 1024, 0x61)), newKey);
    const report = await verifyEvidencePack(hostile, { trustedLogKeys: trusted(), chunkBytes: 1024 * 1024 });
    expect(report.firstFailure?.name).toBe('archive');
    expect(report.firstFailure?.detail).toMatch(/line longer than/);
  });
});

describe('trailing data (issue 20, item 4): one gzip member ending at the end of the file, only zeros after the end blocks', () => {
  const forgedReport = Buffer.from('<html>all controls satisfied</html>');
  const cases: [string, () => Promise<Buffer>, RegExp][] = [
    [
      'a forged report.html after the tar end blocks',
      async () => {
        const tar = gunzipSync(pack.bytes);
        const forged = gunzipSync(await writeTarGz([{ path: PACK_FILES.report, data: forgedReport }], 1_772_000_000));
        return gzipSync(Buffer.concat([tar, forged]));
      },
      /data after the end-of-archive blocks/,
    ],
    ['a forged report.html as a second gzip member', async () => Buffer.concat([pack.bytes, await writeTarGz([{ path: PACK_FILES.report, data: forgedReport }], 1_772_000_000)]), /data after the end-of-archive blocks/],
    ['a second gzip member of zeros', () => Promise.resolve(Buffer.concat([pack.bytes, gzipSync(Buffer.alloc(1024))])), /more than one gzip member/],
    ['zero bytes after the gzip member', () => Promise.resolve(Buffer.concat([pack.bytes, Buffer.alloc(16)])), /16 byte\(s\) follow the gzip data/],
    ['only one end-of-archive block', () => Promise.resolve(gzipSync(gunzipSync(pack.bytes).subarray(0, -BLOCK_BYTES))), /one end-of-archive block, not two/],
  ];
  it.each(cases)('%s fails the archive check, pinned keys or not', async (_name, make, detail) => {
    const bytes = await make();
    for (const options of [{ trustedLogKeys: trusted() }, { trustedLogKeys: trusted(), workers: 2, chunkBytes: 700 }]) {
      const report = await verifyEvidencePack(bytes, options);
      expect(report.ok).toBe(false);
      expect(report.firstFailure?.name).toBe('archive');
      expect(report.firstFailure?.detail).toMatch(detail);
    }
    expect(() => readTarGz(bytes)).toThrow(detail);
  });

  it('still accepts zero padding after the end blocks (tar pads to a record) in one member', async () => {
    const padded = gzipSync(Buffer.concat([gunzipSync(pack.bytes), Buffer.alloc(9 * BLOCK_BYTES)]));
    expect((await verifyEvidencePack(padded, { trustedLogKeys: trusted() })).ok).toBe(true);
  });
});

describe('a failure while reading a large pack (issue 20, item 5): workers and stream stopped, no hang', () => {
  it('returns FAILED for a truncated 9 MiB pack and leaves no worker thread running', async () => {
    const lineBytes = lines(readTarGz(pack.bytes).find((x) => x.path === PACK_FILES.events)!.data);
    const many: string[] = [];
    for (let size = 0; size < 9 * 1024 * 1024; size += lineBytes[many.length % lineBytes.length]!.length + 1) many.push(lineBytes[many.length % lineBytes.length]!);
    const large = await repack(pack.bytes, (fs) => void fs.set(PACK_FILES.events, joinLines(many)), newKey);
    const truncated = large.subarray(0, Math.floor(large.length * 0.6));
    const path = join(f.dir, 'truncated-large.tar.gz');
    writeFileSync(path, truncated);
    const before = liveEventCheckWorkers();
    const report = await verifyEvidencePackFile(path, { trustedLogKeys: trusted(), chunkBytes: 256 * 1024 });
    expect(report.ok).toBe(false);
    expect(report.firstFailure?.name).toBe('archive');
    expect(report.firstFailure?.detail).toMatch(/unexpected end of file|truncated/);
    expect(liveEventCheckWorkers()).toBe(before);
    // Also when the failure is in the tar stream, not in gzip (trailing data after a large pack).
    const trailing = await verifyEvidencePack(Buffer.concat([large, gzipSync(Buffer.from('x'))]), { trustedLogKeys: trusted(), chunkBytes: 256 * 1024 });
    expect(trailing.firstFailure?.name).toBe('archive');
    expect(liveEventCheckWorkers()).toBe(before);
  }, 60_000);
});

const BLOCK_BYTES = 512;

describe('omission (issue 20, item 1): an unfiltered pack proves it holds every event of its window', () => {
  type Coverage = { kind: string; firstLeaf: number; endLeaf: number };
  type Manifest = PackManifest & { coverage: Coverage; counts: { events: number }; format: string };
  const manifestOf = (fs: Map<string, Buffer>): Manifest => JSON.parse(fs.get(PACK_FILES.manifest)!.toString('utf8')) as Manifest;
  const setManifest = (fs: Map<string, Buffer>, m: Manifest): void => void fs.set(PACK_FILES.manifest, Buffer.from(JSON.stringify(m)));
  /** An honest leaf-set proof for any set of leaves: what an insider holding the log can compute. */
  const proofFor = async (indices: number[], treeSize: number, rootHash: string): Promise<Buffer> => {
    const proof = await (await MerkleTree.open(state.treeStorage)).leafSetProof(indices, treeSize);
    return Buffer.from(JSON.stringify({ treeSize, rootHash, events: indices.length, gaps: proof.gaps.map((g) => ({ begin: g.begin, end: g.end, hashes: g.hashes.map((h) => Buffer.from(h).toString('base64')) })) }));
  };
  const range = (a: number, b: number): number[] => Array.from({ length: b - a }, (_, i) => a + i);
  /** A window strictly inside the log: both edges are proven by neighbouring leaves. */
  let midPack: EvidencePack;
  beforeAll(async () => {
    const times = lines(readTarGz(pack.bytes).find((x) => x.path === PACK_FILES.events)!.data).map((l) => (JSON.parse(l) as { occurredAt: string }).occurredAt);
    midPack = await buildEvidencePack({ store: f.store, state, catalogue, scope: { from: times[4]!, to: times[times.length - 4]! }, signer: newKey, exportedBy: ALICE });
  });

  it('states its leaf range, proves both edges with the neighbouring leaves, and says it is complete', async () => {
    const m = midPack.manifest as Manifest;
    expect(m.coverage.firstLeaf).toBeGreaterThan(0);
    expect(m.coverage.endLeaf).toBeLessThan(m.latestCheckpoint.treeSize);
    expect(lines(readTarGz(midPack.bytes).find((x) => x.path === PACK_FILES.edges)!.data)).toHaveLength(2);
    expect(m.format).toBe('custodian-evidence-pack/v5');
    expect(m.coverage.kind).toBe('complete');
    // The whole-period pack straddles the log's switch from leaf format 1 to 2: each leaf is hashed in its format.
    const switchedAt = (pack.manifest as Manifest & { leafFormat2From: number }).leafFormat2From;
    expect(switchedAt).toBeGreaterThan(0);
    expect(switchedAt).toBeLessThan(pack.manifest.counts.events);
    expect(m.coverage.endLeaf - m.coverage.firstLeaf).toBe(m.counts.events);
    const report = await verifyEvidencePack(midPack.bytes, { trustedLogKeys: trusted() });
    expect(report.ok).toBe(true);
    expect(report.complete).toBe(true);
    expect(report.checks.find((c) => c.name === 'leaf-set proof')!.detail).toMatch(/leaf \d+ before the window and leaf \d+ after it/);
    const whole = await verifyEvidencePack(pack.bytes, { trustedLogKeys: trusted() });
    expect(whole.complete).toBe(true);
    expect(whole.checks.find((c) => c.name === 'leaf-set proof')!.detail).toMatch(/from the log's first leaf and up to the latest checkpoint/);
    expect(report.checks.find((c) => c.name === 'leaf-set proof')!.detail).toMatch(/complete: every leaf \d+\.\.\d+ is in the pack/);
    // A plain filtered pack is refused by default (it cannot show nothing was left out); accepted only when asked.
    const refused = await verifyEvidencePack(agentPack.bytes, { trustedLogKeys: trusted() });
    expect(refused).toMatchObject({ ok: false, verdict: 'failed', complete: false, firstFailure: { name: 'completeness', detail: expect.stringContaining('NOT proven') } });
    expect(refused.checks.filter((c) => !c.ok).map((c) => c.name)).toEqual(['completeness']);
    const filtered = await verifyEvidencePack(agentPack.bytes, { trustedLogKeys: trusted(), allowIncomplete: true });
    expect(filtered.ok).toBe(true);
    expect(filtered.checks.find((c) => c.name === 'completeness')!.detail).toContain('NOT proven, accepted as asked');
    expect(filtered.complete).toBe(false);
    // Its range starts among format-1 leaves (before the log's switch): no headers to prove completeness with.
    expect(agentPack.manifest.coverage?.kind).toBe('filtered');
    expect(filtered.checks.find((c) => c.name === 'leaf-set proof')!.detail).toContain('completeness not proven (a filtered pack)');
  });

  const omissions: [string, () => Promise<Buffer>, string, RegExp][] = [
    [
      'an event removed and its position described as a one-leaf gap holding its leaf hash, re-sealed',
      () =>
        repack(
          midPack.bytes,
          (fs) => {
            const m = manifestOf(fs);
            const ev = lines(fs.get(PACK_FILES.events)!);
            const k = 5;
            const index = m.coverage.firstLeaf + k;
            const proof = JSON.parse(fs.get(PACK_FILES.leafSet)!.toString('utf8')) as { gaps: { begin: number; end: number; hashes: string[] }[] };
            proof.gaps.push({ begin: index, end: index + 1, hashes: [Buffer.from(hashLeaf(Buffer.from(ev[k]!, 'utf8'))).toString('base64')] });
            proof.gaps.sort((a, b) => a.begin - b.begin);
            fs.set(PACK_FILES.leafSet, Buffer.from(JSON.stringify(proof)));
            fs.set(PACK_FILES.events, joinLines(ev.filter((_l, i) => i !== k)));
            setManifest(fs, { ...m, counts: { ...m.counts, events: m.counts.events - 1 } });
          },
          newKey,
        ),
      'leaf-set proof',
      /coverage .* holds \d+ leaves but the manifest counts/,
    ],
    [
      'the same, with the coverage claiming one leaf fewer',
      () =>
        repack(
          midPack.bytes,
          (fs) => {
            const m = manifestOf(fs);
            const ev = lines(fs.get(PACK_FILES.events)!);
            const k = 5;
            const index = m.coverage.firstLeaf + k;
            const proof = JSON.parse(fs.get(PACK_FILES.leafSet)!.toString('utf8')) as { gaps: { begin: number; end: number; hashes: string[] }[] };
            proof.gaps.push({ begin: index, end: index + 1, hashes: [Buffer.from(hashLeaf(Buffer.from(ev[k]!, 'utf8'))).toString('base64')] });
            proof.gaps.sort((a, b) => a.begin - b.begin);
            fs.set(PACK_FILES.leafSet, Buffer.from(JSON.stringify(proof)));
            fs.set(PACK_FILES.events, joinLines(ev.filter((_l, i) => i !== k)));
            setManifest(fs, { ...m, coverage: { ...m.coverage, endLeaf: m.coverage.endLeaf - 1 }, counts: { ...m.counts, events: m.counts.events - 1 } });
          },
          newKey,
        ),
      'leaf-set proof',
      /sits at leaf \d+, not \d+: a complete pack has no gap inside its range|should be at/,
    ],
    [
      'the first event of the window left out and passed off as the leaf before the range, re-sealed',
      async () => {
        const m = midPack.manifest as Manifest;
        const proof = await proofFor(range(m.coverage.firstLeaf, m.coverage.endLeaf + 1), m.latestCheckpoint.treeSize, m.latestCheckpoint.rootHash);
        return repack(
          midPack.bytes,
          (fs) => {
            const ev = lines(fs.get(PACK_FILES.events)!);
            const edges = lines(fs.get(PACK_FILES.edges)!);
            fs.set(PACK_FILES.edges, joinLines([ev[0]!, edges[edges.length - 1]!]));
            fs.set(PACK_FILES.events, joinLines(ev.slice(1)));
            fs.set(PACK_FILES.leafSet, proof);
            setManifest(fs, { ...m, coverage: { ...m.coverage, firstLeaf: m.coverage.firstLeaf + 1 }, counts: { ...m.counts, events: m.counts.events - 1 } });
          },
          newKey,
        );
      },
      'leaf-set proof',
      /the leaf before the range \(leaf \d+\) occurred at [^,]+, inside the window: the pack leaves out events of its window/,
    ],
    [
      'the last event of the window left out and passed off as the leaf after the range, re-sealed',
      async () => {
        const m = midPack.manifest as Manifest;
        const first = m.coverage.firstLeaf > 0 ? m.coverage.firstLeaf - 1 : m.coverage.firstLeaf;
        const proof = await proofFor(range(first, m.coverage.endLeaf), m.latestCheckpoint.treeSize, m.latestCheckpoint.rootHash);
        return repack(
          midPack.bytes,
          (fs) => {
            const ev = lines(fs.get(PACK_FILES.events)!);
            const edges = lines(fs.get(PACK_FILES.edges)!);
            fs.set(PACK_FILES.edges, joinLines([...(m.coverage.firstLeaf > 0 ? [edges[0]!] : []), ev[ev.length - 1]!]));
            fs.set(PACK_FILES.events, joinLines(ev.slice(0, -1)));
            fs.set(PACK_FILES.leafSet, proof);
            setManifest(fs, { ...m, coverage: { ...m.coverage, endLeaf: m.coverage.endLeaf - 1 }, counts: { ...m.counts, events: m.counts.events - 1 } });
          },
          newKey,
        );
      },
      'leaf-set proof',
      /the leaf after the range \(leaf \d+\) occurred at [^,]+, inside the window/,
    ],
    [
      'an unfiltered pack that states no coverage, re-sealed',
      () =>
        repack(
          midPack.bytes,
          (fs) => {
            const { coverage: _dropped, ...m } = manifestOf(fs);
            fs.set(PACK_FILES.manifest, Buffer.from(JSON.stringify(m)));
          },
          newKey,
        ),
      'manifest',
      /must state the complete leaf range/,
    ],
  ];
  it.each(omissions)('%s fails', async (_name, make, check, detail) => {
    const report = await verifyEvidencePack(await make(), { trustedLogKeys: trusted() });
    expect(report.ok).toBe(false);
    expect(report.complete).toBe(false);
    expect(report.firstFailure?.name).toBe(check);
    expect(report.firstFailure?.detail).toMatch(detail);
  });

  it('a pack relabelled as format v2 (no coverage) with an event removed verifies only as incomplete, and says so', async () => {
    const downgraded = await repack(
      midPack.bytes,
      (fs) => {
        const { coverage, ...m } = manifestOf(fs);
        const ev = lines(fs.get(PACK_FILES.events)!);
        const k = 5;
        const index = coverage.firstLeaf + k;
        const proof = JSON.parse(fs.get(PACK_FILES.leafSet)!.toString('utf8')) as { gaps: { begin: number; end: number; hashes: string[] }[] };
        proof.gaps.push({ begin: index, end: index + 1, hashes: [Buffer.from(hashLeaf(Buffer.from(ev[k]!, 'utf8'))).toString('base64')] });
        proof.gaps.sort((a, b) => a.begin - b.begin);
        // v2 had no edges file: drop the edge leaves from the proof too.
        fs.delete(PACK_FILES.edges);
        fs.set(PACK_FILES.leafSet, Buffer.from(JSON.stringify(proof)));
        fs.set(PACK_FILES.events, joinLines(ev.filter((_l, i) => i !== k)));
        fs.set(PACK_FILES.manifest, Buffer.from(JSON.stringify({ ...m, format: 'custodian-evidence-pack/v2', files: m.files.filter((x) => x.path !== PACK_FILES.edges), counts: { ...m.counts, events: m.counts.events - 1 } })));
      },
      newKey,
    );
    const report = await verifyEvidencePack(downgraded, { trustedLogKeys: trusted() });
    // The edges are still in the proof, so this one even fails; a v2 pack never claims completeness either way.
    expect(report.complete).toBe(false);
    if (report.ok) expect(report.checks.find((c) => c.name === 'leaf-set proof')!.detail).toContain('completeness not proven (format custodian-evidence-pack/v2)');
  });
});

describe('scope (issue 20, item 6): connection through the sessions, control through the shipped mapping, times as instants', () => {
  const reScope = (source: Buffer, change: (m: PackManifest) => PackManifest): Promise<Buffer> =>
    repack(source, (fs) => void fs.set(PACK_FILES.manifest, Buffer.from(JSON.stringify(change(JSON.parse(fs.get(PACK_FILES.manifest)!.toString('utf8')) as PackManifest)))), newKey);

  it('a connection pack re-sealed to claim another connection fails, naming the event and its session', async () => {
    const byConnection = await buildEvidencePack({ store: f.store, state, catalogue, scope: { ...PERIOD, connection: 'billing-prod' }, signer: newKey, exportedBy: ALICE });
    expect((await verifyEvidencePack(byConnection.bytes, { trustedLogKeys: trusted(), allowIncomplete: true })).ok).toBe(true);
    const forged = await reScope(byConnection.bytes, (m) => ({ ...m, scope: { ...m.scope, connection: 'orders-prod' } }));
    const report = await verifyEvidencePack(forged, { trustedLogKeys: trusted(), workers: 2, chunkBytes: 600 });
    expect(report.firstFailure?.name).toBe('leaf-set proof');
    expect(report.firstFailure?.detail).toMatch(/^event \d+ is a session\.opened event of connection billing-prod, not of connection orders-prod, the pack's scope/);
  });

  it('a control pack ships the mapping; re-sealed to claim another control it fails', async () => {
    const byControl = await buildEvidencePack({ store: f.store, state, catalogue, scope: { ...PERIOD, control: 'sc-8' }, signer: newKey, exportedBy: ALICE });
    const mapping = JSON.parse(readTarGz(byControl.bytes).find((x) => x.path === PACK_FILES.mapping)!.data.toString('utf8')) as { rules: { controls: string[] }[] };
    expect(mapping.rules.some((r) => r.controls.includes('SC-8'))).toBe(true);
    expect((await verifyEvidencePack(byControl.bytes, { trustedLogKeys: trusted(), allowIncomplete: true })).ok).toBe(true);
    const forged = await reScope(byControl.bytes, (m) => ({ ...m, scope: { ...m.scope, control: 'AC-6(10)' } }));
    const report = await verifyEvidencePack(forged, { trustedLogKeys: trusted() });
    expect(report.firstFailure?.name).toBe('leaf-set proof');
    expect(report.firstFailure?.detail).toMatch(/^event 1 is a session\.opened event that no rule of the shipped mapping counts for control AC-6\(10\), the pack's scope \(and 4 more\)$/);
    // The mapping itself rewritten so that the events match the claimed control: the attestation covers it, so only a re-sealer can, and the report shows what the mapping says.
    const noMapping = await repack(byControl.bytes, (fs) => void fs.delete(PACK_FILES.mapping), newKey);
    expect((await verifyEvidencePack(noMapping, { trustedLogKeys: trusted() })).firstFailure?.detail).toMatch(/a control pack needs controls\/mapping\.json|not in the attestation|manifest entry/);
  });

  it('compares times as instants: the same window written with an offset verifies, a `to` without a fraction does not admit later events', async () => {
    const times = lines(readTarGz(agentPack.bytes).find((x) => x.path === PACK_FILES.events)!.data).map((l) => (JSON.parse(l) as { occurredAt: string }).occurredAt);
    const offset = await reScope(agentPack.bytes, (m) => ({ ...m, scope: { ...m.scope, from: '2026-03-01T01:00:00+01:00', to: '2026-03-02T01:00:00.000+01:00' } }));
    expect((await verifyEvidencePack(offset, { trustedLogKeys: trusted(), allowIncomplete: true })).ok).toBe(true);
    // The scenario's events lie in the first second of the day; as text every one of them sorts before "…T00:00:00Z".
    expect(times.every((t) => t.startsWith('2026-03-01T00:00:00.') && t < '2026-03-01T00:00:00Z')).toBe(true);
    const cut = await reScope(agentPack.bytes, (m) => ({ ...m, scope: { ...m.scope, from: '2026-02-28T23:59:59Z', to: '2026-03-01T00:00:00Z' } }));
    const report = await verifyEvidencePack(cut, { trustedLogKeys: trusted() });
    expect(report.firstFailure?.name).toBe('leaf-set proof');
    expect(report.firstFailure?.detail).toMatch(new RegExp(`^event 1 \\(leaf \\d+\\) occurred at ${times[0]!.replace(/\./g, '\\.')}, outside the pack's scope$`));
    const notATime = await reScope(agentPack.bytes, (m) => ({ ...m, scope: { ...m.scope, to: 'tomorrow' } }));
    expect((await verifyEvidencePack(notATime, { trustedLogKeys: trusted() })).firstFailure).toMatchObject({ name: 'manifest', detail: expect.stringContaining('is not a window of two RFC 3339 times') });
  });
});

describe('keys split by duty (issue 20, items 2 and 3): the log key signs checkpoints, a separate key attests packs', () => {
  const attestationKey = Ed25519NoteSigner.generate(`${TEST_ORIGIN}/packs`).signer;
  let split: EvidencePack;
  beforeAll(async () => {
    split = await buildEvidencePack({ store: f.store, state, catalogue, scope: PERIOD, signer: attestationKey, exportedBy: ALICE });
  });
  const flipFinding = (fs: Map<string, Buffer>): void => void fs.set(PACK_FILES.oscal, Buffer.from(fs.get(PACK_FILES.oscal)!.toString('utf8').replace('"not-satisfied"', '"satisfied"')));
  const withAttestationKey = (signer: NoteSigner) => (fs: Map<string, Buffer>): void => void fs.set(PACK_FILES.attestationKey, Buffer.from(`${signer.vkey}\n`));
  /** What a forger does last: the OSCAL evidence links re-hashed to the changed files. */
  const relinkOscal = (fs: Map<string, Buffer>): void => {
    const doc = JSON.parse(fs.get(PACK_FILES.oscal)!.toString('utf8')) as { 'assessment-results': { 'back-matter': { resources: { rlinks?: { href: string; hashes?: { algorithm: string; value: string }[] }[] }[] } } };
    for (const r of doc['assessment-results']['back-matter'].resources) {
      for (const link of r.rlinks ?? []) {
        const data = fs.get(link.href.slice(2));
        for (const h of link.hashes ?? []) if (data && h.algorithm === 'SHA-256') h.value = sha256Hex(data);
      }
    }
    fs.set(PACK_FILES.oscal, Buffer.from(JSON.stringify(doc)));
  };

  it('ships the attestation key apart from the log keys and reports which key signed what, both pinned', async () => {
    const files = new Map(readTarGz(split.bytes).map((x) => [x.path, x.data]));
    expect(files.get(PACK_FILES.attestationKey)!.toString('utf8')).toBe(`${attestationKey.vkey}\n`);
    expect(files.get(PACK_FILES.logKeys)!.toString('utf8')).not.toContain(attestationKey.vkey);
    const report = await verifyEvidencePack(split.bytes, { trustedLogKeys: trusted(), trustedAttestationKeys: [attestationKey.vkey] });
    expect(report.verdict).toBe('verified');
    expect(report.signers).toEqual({
      checkpoints: [`${TEST_ORIGIN}+${formatKeyId(oldKey.keyId)}`, `${TEST_ORIGIN}+${formatKeyId(newKey.keyId)}`].sort(),
      logKeysPinned: true,
      attestation: `${TEST_ORIGIN}/packs+${formatKeyId(attestationKey.keyId)}`,
      attestationPinned: true,
      attestedByLogKey: false,
    });
    // Only the log keys pinned: whoever exports could attest anything, so not verified.
    const logOnly = await verifyEvidencePack(split.bytes, { trustedLogKeys: trusted() });
    expect(logOnly.checks.every((c) => c.ok)).toBe(true);
    expect(logOnly).toMatchObject({ ok: false, verdict: 'self-consistent', signers: { attestationPinned: false, logKeysPinned: true } });
    // The attestation key pinned as a log key signs no checkpoint; a log key given as the attestation key does not verify the attestation.
    expect((await verifyEvidencePack(split.bytes, { trustedLogKeys: [attestationKey.vkey] })).firstFailure?.name).toBe('checkpoints');
    expect((await verifyEvidencePack(split.bytes, { trustedLogKeys: trusted(), trustedAttestationKeys: [newKey.vkey] })).firstFailure?.name).toBe('attestation signature');
    // Packs attested with the log key (before the split) still verify with the log keys pinned, and say so.
    const old = await verifyEvidencePack(pack.bytes, { trustedLogKeys: trusted() });
    expect(old.verdict).toBe('verified');
    expect(old.signers?.attestedByLogKey).toBe(true);
    expect(old.checks.find((c) => c.name === 'attestation signature')!.detail).toContain('no split of duties');
  });

  it('a finding flipped and the pack re-attested with another key fails against the pinned attestation key, and is not verified without it', async () => {
    const attacker = Ed25519NoteSigner.generate(`${TEST_ORIGIN}/packs`).signer;
    const forged = await repack(split.bytes, (fs) => (flipFinding(fs), withAttestationKey(attacker)(fs), relinkOscal(fs)), attacker);
    const pinned = await verifyEvidencePack(forged, { trustedLogKeys: trusted(), trustedAttestationKeys: [attestationKey.vkey] });
    expect(pinned.verdict).toBe('failed');
    expect(pinned.firstFailure).toMatchObject({ name: 'attestation signature', detail: expect.stringMatching(/does not verify/) });
    // The flipped finding no longer agrees with the events (item 7): it fails even when everything else is self-consistent.
    const logOnly = await verifyEvidencePack(forged, { trustedLogKeys: trusted() });
    expect(logOnly).toMatchObject({ ok: false, verdict: 'failed', firstFailure: { name: 'evidence views' } });
    const unflipped = await repack(split.bytes, (fs) => (withAttestationKey(attacker)(fs), relinkOscal(fs)), attacker);
    expect(await verifyEvidencePack(unflipped, { trustedLogKeys: trusted() })).toMatchObject({ ok: false, verdict: 'self-consistent' });
  });

  it('a pack re-signed end to end with an attacker\'s fresh keys (checkpoints included, a finding flipped) is never ok without pinned keys', async () => {
    const attackerLog = Ed25519NoteSigner.generate(TEST_ORIGIN).signer;
    const attackerPacks = Ed25519NoteSigner.generate(`${TEST_ORIGIN}/packs`).signer;
    const forged = await repack(
      split.bytes,
      (fs) => {
        for (const path of split.manifest.checkpoints) fs.set(path, Buffer.from(signNote(parseNote(fs.get(path)!.toString('utf8')).text, [attackerLog])));
        fs.set(PACK_FILES.logKeys, Buffer.from(`${attackerLog.vkey}\n`));
        fs.delete(PACK_FILES.witnessKeys);
        flipFinding(fs);
        withAttestationKey(attackerPacks)(fs);
        relinkOscal(fs);
      },
      attackerPacks,
    );
    const unpinned = await verifyEvidencePack(forged);
    // Every signature holds (the attacker's keys), but the flipped finding contradicts the events (item 7).
    expect(unpinned.checks.filter((c) => !c.ok).map((c) => c.name)).toEqual(['evidence views']);
    expect(unpinned).toMatchObject({ ok: false, verdict: 'failed', keysPinned: false });
    expect((await verifyEvidencePack(forged, { trustedLogKeys: trusted(), trustedAttestationKeys: [attestationKey.vkey] })).verdict).toBe('failed');
  });
});

describe('the exporter checks a pack before signing it (issue 20, item 8)', () => {
  it('refuses to attest a pack whose proofs come from a log database altered underneath, naming what failed', async () => {
    // A copy of the log's database with its stored interior nodes corrupted (triggers dropped first).
    const path = join(f.dir, 'altered-state.sqlite');
    copyFileSync(f.statePath, path);
    if (existsSync(`${f.statePath}-wal`)) copyFileSync(`${f.statePath}-wal`, `${path}-wal`);
    const db = new BetterSqlite3(path);
    for (const { name } of db.prepare<[], { name: string }>("SELECT name FROM sqlite_master WHERE type = 'trigger'").all()) db.exec(`DROP TRIGGER ${name}`);
    db.prepare('UPDATE tlog_nodes SET hash = randomblob(32) WHERE level >= 1').run();
    db.close();
    const altered = await SqliteEvidenceLogState.open({ path, origin: TEST_ORIGIN });
    try {
      const attempt = buildEvidencePack({ store: f.store, state: altered, catalogue, scope: { ...PERIOD, identity: AGENT.subject }, signer: newKey, exportedBy: ALICE });
      await expect(attempt).rejects.toMatchObject({ code: 'EVIDENCE_PACK_SELF_CHECK_FAILED', message: expect.stringMatching(/the pack was not signed: .*(leaf-set proof|consistency proof)/) });
    } finally {
      await altered.close();
    }
    // The intact database still exports a pack that verifies.
    const good = await buildEvidencePack({ store: f.store, state, catalogue, scope: { ...PERIOD, identity: AGENT.subject }, signer: newKey, exportedBy: ALICE });
    expect((await verifyEvidencePack(good.bytes, { trustedLogKeys: trusted(), allowIncomplete: true })).verdict).toBe('verified');
  });
});

describe('findings tied to events (issue 20, item 7): evidence.json, OSCAL and the report agree with the events and the shipped mapping', () => {
  /** A forger with the attestation key re-links the OSCAL evidence digests after changing files. */
  const relink = (fs: Map<string, Buffer>): void => {
    const doc = JSON.parse(fs.get(PACK_FILES.oscal)!.toString('utf8')) as { 'assessment-results': { 'back-matter': { resources: { rlinks?: { href: string; hashes?: { algorithm: string; value: string }[] }[] }[] } } };
    for (const r of doc['assessment-results']['back-matter'].resources) for (const link of r.rlinks ?? []) for (const h of link.hashes ?? []) if (fs.has(link.href.slice(2))) h.value = sha256Hex(fs.get(link.href.slice(2))!);
    fs.set(PACK_FILES.oscal, Buffer.from(JSON.stringify(doc)));
  };
  type Views = { totals: { findings: number }; controls: { id: string; status: string; count: number; findings: string[]; byRule: { count: number }[] }[]; findings: { id: string; kind: string }[] };
  const editViews = (edit: (v: Views) => void) => (fs: Map<string, Buffer>): void => {
    const views = JSON.parse(fs.get(PACK_FILES.evidence)!.toString('utf8')) as Views;
    edit(views);
    fs.set(PACK_FILES.evidence, Buffer.from(JSON.stringify(views)));
    relink(fs);
  };
  const failsWith = async (bytes: Buffer, detail: RegExp): Promise<void> => {
    const report = await verifyEvidencePack(bytes, { trustedLogKeys: trusted(), trustedAttestationKeys: [newKey.vkey] });
    expect(report.firstFailure).toMatchObject({ name: 'evidence views', detail: expect.stringMatching(detail) });
    expect(report.verdict).toBe('failed');
  };

  it('a genuine pack: every control and finding agrees, and the check says how many', async () => {
    const report = await verifyEvidencePack(pack.bytes, { trustedLogKeys: trusted(), trustedAttestationKeys: [newKey.vkey] });
    expect(report.checks.find((c) => c.name === 'evidence views')).toMatchObject({ ok: true, detail: expect.stringMatching(/control\(s\) .* agree with the events, the shipped mapping, OSCAL and the report/) });
    for (const p of [agentPack]) expect((await verifyEvidencePack(p.bytes, { trustedLogKeys: trusted() })).checks.find((c) => c.name === 'evidence views')?.ok).toBe(true);
  });

  it('masking-rule-never-fired is recomputed from the data.masked events and the masking rules the pack ships (v4)', async () => {
    const mapping = JSON.parse(readTarGz(pack.bytes).find((x) => x.path === PACK_FILES.mapping)!.data.toString('utf8')) as { maskingRules: string[] };
    expect(mapping.maskingRules).toEqual(['pii-email', 'pii-card']);
    const never = pack.report.findings.filter((x) => x.kind === 'masking-rule-never-fired');
    expect(never.length).toBeGreaterThan(0);
    // The finding removed, the totals kept consistent.
    const removed = await repack(
      pack.bytes,
      (fs) => {
        editViews((v) => {
          v.findings = v.findings.filter((x) => x.id !== never[0]!.id);
          v.totals.findings -= 1;
          for (const c of v.controls) c.findings = c.findings.filter((id) => id !== never[0]!.id);
        })(fs);
        const m = JSON.parse(fs.get(PACK_FILES.manifest)!.toString('utf8')) as PackManifest;
        fs.set(PACK_FILES.manifest, Buffer.from(JSON.stringify({ ...m, counts: { ...m.counts, findings: m.counts.findings - 1 } })));
      },
      newKey,
    );
    await failsWith(removed, /masking rule pii-\w+ masked nothing in the window .* has no masking-rule-never-fired finding for it/);
    // A rule that fired claimed as never fired: its rule added to the shipped list does not make a finding stick, another id is refused.
    const fabricated = await repack(
      pack.bytes,
      editViews((v) => {
        const f = v.findings.find((x) => x.id === never[0]!.id)!;
        f.id = '00000000-0000-5000-8000-000000000000';
        for (const c of v.controls) c.findings = c.findings.map((id) => (id === never[0]!.id ? f.id : id));
      }),
      newKey,
    );
    await failsWith(fabricated, /masking rule pii-\w+ masked nothing|lists masking-rule-never-fired finding 00000000/);
  });

  it('a filtered pack calls a control without evidence "not assessed" (no OSCAL finding), the whole period "not-satisfied"', async () => {
    const au6 = agentPack.report.controls.find((c) => c.id === 'AU-6')!;
    expect(au6).toMatchObject({ status: 'not-assessed', count: 0, findings: [] });
    expect(pack.report.controls.find((c) => c.id === 'AU-6')!.status).toBe('not-satisfied');
    const oscal = JSON.parse(new Map(readTarGz(agentPack.bytes).map((x) => [x.path, x.data])).get(PACK_FILES.oscal)!.toString('utf8')) as { 'assessment-results': { results: { findings: { target: { 'target-id': string } }[] }[] } };
    const targets = oscal['assessment-results'].results[0]!.findings.map((f) => f.target['target-id']);
    expect(targets).not.toContain(`${au6.oscalId}_obj`);
    expect(targets).toHaveLength(agentPack.report.controls.filter((c) => c.status !== 'not-assessed').length);
    // Claiming a not-assessed control as not-satisfied (OSCAL finding added) contradicts the events.
    const forged = await repack(
      agentPack.bytes,
      (fs) => {
        const doc = JSON.parse(fs.get(PACK_FILES.oscal)!.toString('utf8')) as { 'assessment-results': { results: { findings: unknown[] }[] } };
        const findings = doc['assessment-results'].results[0]!.findings;
        findings.push({ ...(findings[0] as object), uuid: '6f1c2a9e-3b7d-4c1e-9a2b-5d8e7f6a1b2c', target: { type: 'objective-id', 'target-id': `${au6.oscalId}_obj`, status: { state: 'not-satisfied', reason: 'fail' } } });
        fs.set(PACK_FILES.oscal, Buffer.from(JSON.stringify(doc)));
      },
      newKey,
    );
    await failsWith(forged, /OSCAL has \d+ control findings/);
  });

  it('an OSCAL finding state flipped, re-sealed: the events and mapping give another state', async () => {
    const forged = await repack(pack.bytes, (fs) => void fs.set(PACK_FILES.oscal, Buffer.from(fs.get(PACK_FILES.oscal)!.toString('utf8').replace('"not-satisfied"', '"satisfied"'))), newKey);
    await failsWith(forged, /OSCAL states .* "satisfied", the events and mapping give "not-satisfied"/);
  });

  it('a finding removed from evidence.json (and its control marked satisfied, OSCAL too), re-sealed: its event still raises it', async () => {
    const forged = await repack(
      pack.bytes,
      editViews((v) => {
        const leak = v.findings.find((f) => f.kind === 'credential-exposed')!;
        v.findings = v.findings.filter((f) => f !== leak);
        v.totals.findings -= 1;
        for (const c of v.controls) c.findings = c.findings.filter((id) => id !== leak.id);
      }),
      newKey,
    );
    // …and the manifest's count of findings, so that only the events contradict it.
    const files = new Map(readTarGz(forged).map((x) => [x.path, x.data]));
    const manifest = JSON.parse(files.get(PACK_FILES.manifest)!.toString('utf8')) as PackManifest;
    const recounted = await repack(forged, (fs) => void fs.set(PACK_FILES.manifest, Buffer.from(JSON.stringify({ ...manifest, counts: { ...manifest.counts, findings: manifest.counts.findings - 1 } }))), newKey);
    await failsWith(recounted, /raises a credential-exposed finding that evidence\.json does not list/);
  });

  it('a complete pack: a privileged command executed without approval, its finding removed and every status and OSCAL state made consistent, re-sealed: the command events still raise it', async () => {
    const forged = await repack(
      pack.bytes,
      (fs) => {
        const views = JSON.parse(fs.get(PACK_FILES.evidence)!.toString('utf8')) as Views & { controls: (Views['controls'][number] & { oscalId: string })[] };
        const removed = views.findings.find((x) => x.kind === 'privileged-command-without-approval')!;
        views.findings = views.findings.filter((x) => x !== removed);
        views.totals.findings -= 1;
        const oscal = JSON.parse(fs.get(PACK_FILES.oscal)!.toString('utf8')) as { 'assessment-results': { results: { findings: { target: { 'target-id': string; status: { state: string } } }[] }[] } };
        for (const c of views.controls) {
          c.findings = c.findings.filter((id) => id !== removed.id);
          c.status = c.findings.length === 0 && c.count > 0 ? 'satisfied' : 'not-satisfied';
          for (const f of oscal['assessment-results'].results[0]!.findings) if (f.target['target-id'] === `${c.oscalId}_obj`) f.target.status.state = c.status;
        }
        fs.set(PACK_FILES.evidence, Buffer.from(JSON.stringify(views)));
        fs.set(PACK_FILES.oscal, Buffer.from(JSON.stringify(oscal)));
        fs.set(PACK_FILES.report, Buffer.from(fs.get(PACK_FILES.report)!.toString('utf8').replace('<tr class="not-satisfied"><td><strong>AC-6(10)', '<tr class="satisfied"><td><strong>AC-6(10)')));
        relink(fs);
        const manifest = JSON.parse(fs.get(PACK_FILES.manifest)!.toString('utf8')) as PackManifest;
        fs.set(PACK_FILES.manifest, Buffer.from(JSON.stringify({ ...manifest, counts: { ...manifest.counts, findings: manifest.counts.findings - 1 } })));
      },
      newKey,
    );
    await failsWith(forged, /raises a privileged-command-without-approval finding that evidence\.json does not list/);
  });

  it('a control\'s count or status changed in evidence.json, re-sealed', async () => {
    await failsWith(await repack(pack.bytes, editViews((v) => void (v.controls.find((c) => c.count > 0)!.byRule[0]!.count += 1)), newKey), /counts .*, the events give/);
    await failsWith(await repack(pack.bytes, editViews((v) => void (v.controls.find((c) => c.id === 'AU-6')!.status = 'satisfied')), newKey), /control AU-6 is "satisfied" .* it is "not-satisfied"/);
  });

  it('a row of report.html shown in another status, re-sealed', async () => {
    const forged = await repack(pack.bytes, (fs) => (fs.set(PACK_FILES.report, Buffer.from(fs.get(PACK_FILES.report)!.toString('utf8').replace('<tr class="not-satisfied"><td><strong>AC-6(10)', '<tr class="satisfied"><td><strong>AC-6(10)'))), relink(fs)), newKey);
    await failsWith(forged, /report\.html shows/);
  });
});
