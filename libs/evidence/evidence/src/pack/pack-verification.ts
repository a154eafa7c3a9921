// The offline verifier of evidence packs (`custodian evidence verify`): no network, no store. It
// checks the DSSE attestation, every digest, every checkpoint signature and cosignature, every
// consistency proof, the leaf-set proof of the events, every custody statement (custody.attested)
// among them, and the OSCAL document's structure; it names what failed.
import { type KeyObject } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import {
  Ed25519CosignatureVerifier,
  Ed25519NoteVerifier,
  checkpointSignedAt,
  ed25519PublicKeyObject,
  formatKeyId,
  hashLeaf,
  openNote,
  LeafSetProofVerifier,
  openCheckpoint,
  parseVerifierKey,
  verifyConsistency,
  verifyCosignatures,
  type LeafSetProofGap,
  type SignedCheckpoint,
} from '@custodian/transparency-log';
import { CustodyError, ed25519PublicKeyFromPem, verifyCustodyAttestation } from '@custodian/custody';
import { openStatement } from './dsse.js';
import { instantKey, type CheckedLines, type CustodyLine, type LocalFinding } from './event-line-check.js';
import { PACK_FILES, PACK_FORMATS_READ, PACK_FORMATS_WITH_HEADERS, PACK_PREDICATE_TYPE, type PackManifest } from './evidence-pack.js';
import { CHECKPOINT_GAP, CheckpointGapScan, checkpointGapId, countsForCheckpointGap, instantMicros } from '../checkpoint-gaps.js';
import { HeaderSelection, isHeaderLeaf, leafFormatAt, type HeaderFilter } from '../leaf-format.js';
import { readPack, type ReadPack } from './pack-reader.js';
import { ruleMatches, type MappingRule } from '../controls/control-catalogue.js';
import { deterministicUuid } from '../deterministic-uuid.js';

export interface PackCheck {
  readonly name: string;
  readonly ok: boolean;
  readonly detail: string;
}

export interface PackVerificationOptions {
  /**
   * The log keys (vkeys) you trust, obtained independently of the pack. Without them the keys
   * shipped in the pack are used, and the report says so: that only proves the pack is
   * self-consistent, not who made it.
   */
  readonly trustedLogKeys?: readonly string[];
  /**
   * Without trusted log keys the report is never `ok` (anyone can make a pack that is consistent
   * with keys of their own), unless this is set: then `ok` means self-consistent only.
   */
  readonly trustPackKeys?: boolean;
  /**
   * The pack attestation keys (vkeys) you trust, obtained independently of the pack. The log keys
   * sign checkpoints; this key signs attestation.dsse.json (packs from before the split were
   * attested by a log key: a pinned log key is accepted for that). Unpinned, the pack's own
   * attestation key is used and the verdict is at best `self-consistent`.
   */
  readonly trustedAttestationKeys?: readonly string[];
  /** Witness keys (vkeys) whose cosignatures must be present on the latest checkpoint. */
  readonly requiredWitnesses?: readonly string[];
  readonly onProgress?: (done: number, total: number) => void;
  /**
   * Worker threads that hash and scope-check the events, a chunk of lines each. Default: up to 4
   * (one per core) when events.jsonl is at least 8 MiB, else 0 (all in this thread).
   */
  readonly workers?: number;
  /** Bytes of events.jsonl per chunk handed to a worker (cut at a line end). Default 4 MiB. */
  readonly chunkBytes?: number;
  /**
   * The gateway public keys (PEM) you trust for custody statements, obtained independently of the
   * pack. Without them each statement is checked against the key its event carries, and the
   * report says so.
   */
  readonly trustedCustodyKeys?: readonly string[];
  /**
   * Accept a pack that does not prove its completeness (coverage `filtered`, or format v2): by
   * default such a pack fails the `completeness` check, since whoever holds the attestation key
   * could issue one that leaves events out instead of a pack that proves it holds them all.
   */
  readonly allowIncomplete?: boolean;
}

export interface PackSigners {
  /** The log keys that signed the pack's checkpoints. */
  readonly checkpoints: readonly string[];
  readonly logKeysPinned: boolean;
  /** The key that signed the attestation. */
  readonly attestation: string;
  readonly attestationPinned: boolean;
  /** The attestation was signed by a log key (packs from before keys were split by duty). */
  readonly attestedByLogKey: boolean;
}

export interface CustodySummary {
  /** custody.attested events in the pack, each verified. */
  readonly statements: number;
  /** How many state that the credential was exposed (each is a finding). */
  readonly exposed: number;
  /** The key ids that signed them. */
  readonly keyIds: readonly string[];
  /** Whether the signatures were checked against trusted keys. */
  readonly pinned: boolean;
}

export interface PackVerificationReport {
  /**
   * Every check held and the keys were pinned (or `trustPackKeys` was given). Never true for an
   * unpinned verification without `trustPackKeys`: see `verdict`.
   */
  readonly ok: boolean;
  /**
   * `verified`: every check held against pinned keys. `self-consistent`: every check held, but
   * against the keys the pack carries (proves nothing about who made it). `failed`: a check failed.
   */
  readonly verdict: 'verified' | 'self-consistent' | 'failed';
  /** The pack proved that it holds every event of its window (a complete pack), or every event of its window its filter selects (a v4 headers pack). */
  readonly complete: boolean;
  readonly checks: readonly PackCheck[];
  readonly firstFailure?: PackCheck;
  /** The log keys and the attestation key were both pinned (each signature checked against keys you gave). */
  readonly keysPinned: boolean;
  /** Which keys signed what (`name+keyid`), and whether each was pinned. */
  readonly signers?: PackSigners;
  readonly manifest?: PackManifest;
  readonly custody?: CustodySummary;
}

class CheckFailed extends Error {}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-5][0-9a-f]{3}-[089ab][0-9a-f]{3}-[0-9a-f]{12}$/i;

/** Verifies a pack held in memory. */
export function verifyEvidencePack(bytes: Buffer, options: PackVerificationOptions = {}): Promise<PackVerificationReport> {
  return verifyEvidencePackStream(Readable.from([bytes]), options);
}

/** Verifies a pack file as a stream: memory stays bounded whatever the pack's size (see pack-reader.ts). */
export function verifyEvidencePackFile(path: string, options: PackVerificationOptions = {}): Promise<PackVerificationReport> {
  return verifyEvidencePackStream(createReadStream(path), options);
}

/** Verifies a pack read from a stream (an upload): memory stays bounded likewise. */
export async function verifyEvidencePackStream(source: Readable, options: PackVerificationOptions = {}): Promise<PackVerificationReport> {
  const checks: PackCheck[] = [];
  let manifest: PackManifest | undefined;
  let custodySummary: CustodySummary | undefined;
  let completenessProven = false;
  const logKeysPinned = (options.trustedLogKeys?.length ?? 0) > 0;
  let attestationPinned = false;
  let signers: PackSigners | undefined;
  const pass = (name: string, detail: string): void => void checks.push({ name, ok: true, detail });
  const fail = (name: string, detail: string): never => {
    checks.push({ name, ok: false, detail });
    throw new CheckFailed(detail);
  };
  /** Runs a check; a failure is recorded and the checks that depend on it are skipped. */
  const step = async <T>(name: string, run: () => T | Promise<T>): Promise<T> => {
    try {
      return await run();
    } catch (error) {
      if (error instanceof CheckFailed) throw error;
      return fail(name, error instanceof Error ? error.message : String(error));
    }
  };

  try {
    const custody = await step('custody statements', () => new CustodyStatementCheck(options.trustedCustodyKeys ?? []));
    const scopeCheck = new ScopeCheck();
    const files: ReadPack = await step('archive', () =>
      readPack(source, {
        ...(options.workers !== undefined ? { workers: options.workers } : {}),
        ...(options.chunkBytes !== undefined ? { chunkBytes: options.chunkBytes } : {}),
        ...(options.onProgress ? { onProgress: options.onProgress } : {}),
        onCustodyLines: (chunk, lines) => custody.check(chunk, lines),
        onScopedLines: (chunk, lines) => scopeCheck.check(chunk, lines),
        onFile: (path, data) => scopeCheck.file(path, data),
      }),
    );
    for (const required of [PACK_FILES.manifest, PACK_FILES.events, PACK_FILES.leafSet, PACK_FILES.consistency, PACK_FILES.logKeys, PACK_FILES.oscal, PACK_FILES.report, PACK_FILES.attestation]) {
      if (!files.has(required)) fail('archive', `the pack has no ${required}`);
    }
    pass('archive', `${files.paths.length} files`);
    const digestOf = (path: string): string => files.digest(path)!;
    const text = (path: string): string => files.file(path)!.toString('utf8');

    // Keys: pinned by the auditor, or (self-consistency only) the pack's own.
    const lines = (path: string): string[] => (files.has(path) ? text(path).split('\n').map((l) => l.trim()).filter((l) => l.length > 0) : []);
    const logVkeys = await step('keys', () => (logKeysPinned ? [...options.trustedLogKeys!] : lines(PACK_FILES.logKeys)).map((k) => k.trim()));
    const logVerifiers = await step('keys', () => logVkeys.map((k) => new Ed25519NoteVerifier(k)));
    const pinnedAttestationVkeys = (options.trustedAttestationKeys ?? []).map((k) => k.trim());
    await step('keys', () => pinnedAttestationVkeys.forEach((k) => new Ed25519NoteVerifier(k)));
    pass(
      'keys',
      `${logKeysPinned ? `${logVkeys.length} pinned log key(s)` : `${logVkeys.length} log key(s) taken from the pack itself (not pinned: pass --key)`}; ${pinnedAttestationVkeys.length > 0 ? `${pinnedAttestationVkeys.length} pinned attestation key(s)` : 'attestation key not pinned (pass --attestation-key)'}`,
    );

    // 1. The attestation: DSSE signature by the attestation key (or, in packs from before keys were
    // split, a log key), in-toto Statement v1 over every other file. Pinned keys first; else the
    // pack's own attestation key, which proves only self-consistency.
    const pinnedForAttestation = [...pinnedAttestationVkeys, ...(logKeysPinned ? logVkeys : [])];
    // Pinned attestation keys leave no fallback: an attestation by any other key fails.
    const packForAttestation = pinnedAttestationVkeys.length > 0 ? [] : [...lines(PACK_FILES.attestationKey), ...(logKeysPinned ? [] : logVkeys)];
    const publicKeys = (vkeys: readonly string[]): KeyObject[] => vkeys.map((k) => ed25519PublicKeyObject(parseVerifierKey(k).publicKey));
    const opened = await step('attestation signature', () => {
      try {
        return { ...openStatement(text(PACK_FILES.attestation), publicKeys(pinnedForAttestation)), vkeys: pinnedForAttestation, pinned: true };
      } catch (error) {
        if (packForAttestation.length === 0) throw error;
        try {
          return { ...openStatement(text(PACK_FILES.attestation), publicKeys(packForAttestation)), vkeys: packForAttestation, pinned: false };
        } catch {
          throw error;
        }
      }
    });
    const { statement, keyIndex } = opened;
    if (statement.predicateType !== PACK_PREDICATE_TYPE) fail('attestation signature', `predicateType is ${JSON.stringify(statement.predicateType)}, expected ${PACK_PREDICATE_TYPE}`);
    const attestationVkey = opened.vkeys[keyIndex]!;
    const attestationName = `${attestationVkey.split('+')[0]!}+${attestationVkey.split('+')[1]!}`;
    attestationPinned = opened.pinned;
    const attestedByLogKey = logVkeys.includes(attestationVkey);
    pass(
      'attestation signature',
      `DSSE (in-toto Statement v1) signed by ${attestedByLogKey ? 'log key ' : ''}${attestationName}${opened.pinned ? ' (pinned)' : ' (taken from the pack, not pinned: pass --attestation-key)'}${attestedByLogKey ? '; the log key attested the pack itself (no split of duties)' : ''}`,
    );

    const subjects = new Map<string, string>();
    for (const s of statement.subject) {
      if (subjects.has(s.name)) fail('digests', `the attestation names ${s.name} twice`);
      subjects.set(s.name, s.digest?.sha256 ?? '');
    }
    for (const path of files.paths) {
      if (path === PACK_FILES.attestation) continue;
      const expected = subjects.get(path);
      if (expected === undefined) fail('digests', `${path} is in the pack but not in the attestation (added or swapped in)`);
      if (digestOf(path) !== expected) fail('digests', `${path}: SHA-256 ${digestOf(path)} does not match the attested ${expected}`);
    }
    for (const name of subjects.keys()) if (!files.has(name)) fail('digests', `${name} is attested but missing from the pack`);
    pass('digests', `${subjects.size} files match the attested SHA-256 digests`);

    // 2. The manifest agrees with the files.
    manifest = await step('manifest', () => JSON.parse(text(PACK_FILES.manifest)) as PackManifest);
    if (!(PACK_FORMATS_READ as readonly string[]).includes(manifest.format)) fail('manifest', `format ${JSON.stringify(manifest.format)} is not one of ${PACK_FORMATS_READ.join(', ')}`);
    for (const f of manifest.files) if (!files.has(f.path) || digestOf(f.path) !== f.sha256) fail('manifest', `manifest entry ${f.path} does not match the file`);
    const windowFrom = instantKey(String(manifest.scope?.from));
    const windowTo = instantKey(String(manifest.scope?.to));
    if (windowFrom === undefined || windowTo === undefined || windowFrom >= windowTo) fail('manifest', `the scope ${String(manifest.scope?.from)} → ${String(manifest.scope?.to)} is not a window of two RFC 3339 times, from before to`);
    const unfiltered = manifest.scope.identity === undefined && manifest.scope.connection === undefined && manifest.scope.control === undefined;
    const coverage = manifest.coverage;
    scopeCheck.scope(manifest);
    // v2 and v3 packs hold format-1 leaves only; v4 names the log's switch to format 2 (null: none).
    const withHeaders = PACK_FORMATS_WITH_HEADERS.includes(manifest.format);
    const headerFrom = withHeaders ? manifest.leafFormat2From : null;
    if (withHeaders && !(headerFrom === null || (Number.isSafeInteger(headerFrom) && headerFrom! >= 0))) fail('manifest', 'leafFormat2From must be null or a leaf index');
    if (manifest.format !== 'custodian-evidence-pack/v2') {
      if (manifest.scope.control !== undefined && !files.has(PACK_FILES.mapping)) fail('manifest', `a control pack needs ${PACK_FILES.mapping}`);
      // v5: the views are always checked (and checkpoint-gap recomputed): a pack cannot skip that by leaving the mapping or the views out.
      if (manifest.format === PACK_FORMATS_READ[PACK_FORMATS_READ.length - 1]) for (const path of [PACK_FILES.mapping, PACK_FILES.evidence]) if (!files.has(path)) fail('manifest', `a ${manifest.format} pack needs ${path}`);
      // v3: an unfiltered pack must prove it holds every event of its window.
      if (unfiltered && coverage?.kind !== 'complete') fail('manifest', 'an unfiltered pack must state the complete leaf range it covers (coverage)');
      if (!unfiltered && coverage?.kind !== 'filtered' && !(coverage?.kind === 'headers' && withHeaders)) fail('manifest', `a filtered pack states coverage "filtered"${withHeaders ? ' or "headers"' : ''}`);
      if ((coverage?.kind === 'complete' || coverage?.kind === 'headers') && !(Number.isSafeInteger(coverage.firstLeaf) && Number.isSafeInteger(coverage.endLeaf) && coverage.firstLeaf >= 0 && coverage.endLeaf >= coverage.firstLeaf)) fail('manifest', 'coverage needs firstLeaf ≤ endLeaf, non-negative integers');
      if ((coverage?.kind === 'complete' || coverage?.kind === 'headers') && !files.has(PACK_FILES.edges)) fail('manifest', `a ${coverage.kind === 'complete' ? 'complete' : 'headers'} pack needs ${PACK_FILES.edges}`);
      if (coverage?.kind === 'headers' && !files.has(PACK_FILES.headers)) fail('manifest', `a headers pack needs ${PACK_FILES.headers}`);
      if (coverage?.kind === 'headers' && (headerFrom === null || Math.max(coverage.firstLeaf - 1, 0) < headerFrom!)) fail('manifest', `a headers pack proves format-2 leaves only, but its range starts at leaf ${coverage.firstLeaf} and the log switched to format 2 at ${String(headerFrom)}`);
    }
    pass('manifest', `pack ${manifest.packId} (${manifest.format}), scope ${manifest.scope.from} → ${manifest.scope.to}`);

    // 3. Checkpoints: each signed by a log key, for the manifest's origin; witness cosignatures.
    const origin = manifest.origin;
    const checkpoints: SignedCheckpoint[] = [];
    for (const path of manifest.checkpoints) {
      if (!files.has(path)) fail('checkpoints', `${path} is listed but missing`);
      checkpoints.push(await step('checkpoints', () => openCheckpoint(files.file(path)!, origin, logVerifiers)));
    }
    if (checkpoints.length === 0) fail('checkpoints', 'the pack has no checkpoint');
    const checkpointSigners = new Set<string>();
    for (const path of manifest.checkpoints) for (const sig of openNote(files.file(path)!, logVerifiers).verified) checkpointSigners.add(`${sig.name}+${formatKeyId(sig.keyId)}`);
    signers = { checkpoints: [...checkpointSigners].sort(), logKeysPinned, attestation: attestationName, attestationPinned, attestedByLogKey };
    for (let i = 1; i < checkpoints.length; i += 1) if (checkpoints[i]!.checkpoint.size <= checkpoints[i - 1]!.checkpoint.size) fail('checkpoints', 'checkpoints are not in increasing size');
    const latest = checkpoints[checkpoints.length - 1]!;
    // Each checkpoint's signing time, when its signed note states one (v5; parsed and checked when opened).
    const signedTimes = checkpoints.map((c) => ({ treeSize: c.checkpoint.size, signedAt: checkpointSignedAt(c.checkpoint) }));
    const timed = signedTimes.filter((c) => c.signedAt !== undefined).length;
    if (latest.checkpoint.size !== manifest.latestCheckpoint.treeSize || latest.checkpoint.rootHash.toString('base64') !== manifest.latestCheckpoint.rootHash) fail('checkpoints', 'the latest checkpoint is not the one the manifest names');
    pass(
      'checkpoints',
      `${checkpoints.length} checkpoint(s) signed by ${[...checkpointSigners].sort().join(', ')}${logKeysPinned ? ' (pinned)' : ' (taken from the pack, not pinned)'}; latest: size ${latest.checkpoint.size}, root ${latest.checkpoint.rootHash.toString('base64')}; signing time ${timed === checkpoints.length ? 'signed in every checkpoint' : timed === 0 ? 'not proven (no checkpoint states it)' : `signed in ${timed}, not proven in ${checkpoints.length - timed}`}`,
    );
    const witnessKeys = [...(options.requiredWitnesses ?? []), ...(files.has(PACK_FILES.witnessKeys) ? text(PACK_FILES.witnessKeys).split('\n').filter((l) => l.trim()) : [])];
    if (witnessKeys.length > 0) {
      const witnesses = await step('cosignatures', () => witnessKeys.map((k) => new Ed25519CosignatureVerifier(k.trim())));
      const required = new Set((options.requiredWitnesses ?? []).map((k) => new Ed25519CosignatureVerifier(k.trim()).name));
      let verified = 0;
      for (const [i, c] of checkpoints.entries()) {
        for (const w of witnesses) {
          const present = c.note.includes(`\u2014 ${w.name} `);
          if (!present) {
            if (required.has(w.name) && i === checkpoints.length - 1) fail('cosignatures', `the latest checkpoint has no cosignature by required witness ${w.name}`);
            continue;
          }
          await step('cosignatures', () => verifyCosignatures(c.note, [w]));
          verified += 1;
        }
      }
      pass('cosignatures', `${verified} witness cosignature(s) verified`);
    }

    // 4. Consistency: each checkpoint is a prefix of the next.
    const consistency = text(PACK_FILES.consistency).split('\n').filter((l) => l.length > 0);
    if (consistency.length !== checkpoints.length - 1) fail('consistency proofs', `${consistency.length} consistency proofs for ${checkpoints.length} checkpoints`);
    for (const [i, line] of consistency.entries()) {
      const proof = await step('consistency proofs', () => JSON.parse(line) as { fromSize: number; toSize: number; hashes: string[] });
      const from = checkpoints[i]!.checkpoint;
      const to = checkpoints[i + 1]!.checkpoint;
      if (proof.fromSize !== from.size || proof.toSize !== to.size) fail('consistency proofs', `consistency proof ${i} is for sizes ${proof.fromSize} → ${proof.toSize}, not ${from.size} → ${to.size}`);
      await step('consistency proofs', () => {
        try {
          verifyConsistency(from.size, to.size, proof.hashes.map((h) => Buffer.from(h, 'base64')), from.rootHash, to.rootHash);
        } catch (error) {
          throw new Error(`checkpoint ${to.size} is not consistent with checkpoint ${from.size}: ${error instanceof Error ? error.message : String(error)}`);
        }
      });
    }
    pass('consistency proofs', `${consistency.length} consistency proof(s) verified`);

    // 5. Every event in the pack's scope; the events and the gaps between them recompute the latest root.
    const leafSet = await step('leaf-set proof', () => parseLeafSetProof(text(PACK_FILES.leafSet)));
    if (leafSet.treeSize !== latest.checkpoint.size) fail('leaf-set proof', `the proof is for tree size ${leafSet.treeSize}, not the latest checkpoint's ${latest.checkpoint.size}`);
    const proof = await step('leaf-set proof', () => new LeafSetProofVerifier(leafSet));
    // A complete or headers pack: the edge leaves around the range, proven like the events, outside the window.
    const ranged = coverage?.kind === 'complete' || coverage?.kind === 'headers' ? coverage : undefined;
    const complete = coverage?.kind === 'complete' ? coverage : undefined;
    const edgeLines = ranged ? text(PACK_FILES.edges).split('\n').filter((l) => l.length > 0) : [];
    const headerLines = coverage?.kind === 'headers' ? text(PACK_FILES.headers).split('\n').filter((l) => l.length > 0) : [];
    const beforeEdge = ranged && ranged.firstLeaf > 0 ? ranged.firstLeaf - 1 : undefined;
    const afterEdge = ranged && ranged.endLeaf < latest.checkpoint.size ? ranged.endLeaf : undefined;
    if (ranged) {
      if (ranged.endLeaf > latest.checkpoint.size) fail('leaf-set proof', `the coverage ends at leaf ${ranged.endLeaf}, beyond the latest checkpoint's size ${latest.checkpoint.size}`);
      if (complete && manifest.counts.events !== complete.endLeaf - complete.firstLeaf) fail('leaf-set proof', `the coverage [${complete.firstLeaf}, ${complete.endLeaf}) holds ${complete.endLeaf - complete.firstLeaf} leaves but the manifest counts ${manifest.counts.events} events: a complete pack holds every leaf of its range`);
      if (!complete && headerLines.length !== ranged.endLeaf - ranged.firstLeaf) fail('leaf-set proof', `the coverage [${ranged.firstLeaf}, ${ranged.endLeaf}) holds ${ranged.endLeaf - ranged.firstLeaf} leaves but ${PACK_FILES.headers} has ${headerLines.length} headers: a headers pack holds the header of every leaf of its range`);
      const expected = (beforeEdge !== undefined ? 1 : 0) + (afterEdge !== undefined ? 1 : 0);
      if (edgeLines.length !== expected) fail('leaf-set proof', `${PACK_FILES.edges} holds ${edgeLines.length} leaves, not the ${expected} that bound the range [${ranged.firstLeaf}, ${ranged.endLeaf})`);
    }
    const edgeCount = edgeLines.length;
    const provenLeaves = (coverage?.kind === 'headers' ? headerLines.length : manifest.counts.events) + edgeCount;
    if (proof.leafCount !== provenLeaves) fail('leaf-set proof', `the proof leaves room for ${proof.leafCount} leaves but the pack proves ${provenLeaves} (${coverage?.kind === 'headers' ? `${headerLines.length} headers` : `${manifest.counts.events} events`}${edgeCount > 0 ? ` and ${edgeCount} edge leaves` : ''})`);
    const appendEdge = (line: string, index: number, side: 'before' | 'after'): void => {
      if (proof.nextIndex() !== index) fail('leaf-set proof', `the leaf ${side} the range should be at ${index}, the proof puts the next leaf at ${String(proof.nextIndex())}`);
      let occurredAt: unknown;
      try {
        occurredAt = (JSON.parse(line) as { occurredAt?: unknown }).occurredAt;
      } catch {
        fail('leaf-set proof', `the edge leaf ${index} is not JSON`);
      }
      const at = typeof occurredAt === 'string' ? instantKey(occurredAt) : undefined;
      const outside = at !== undefined && (side === 'before' ? at < windowFrom! : at >= windowTo!);
      if (!outside) fail('leaf-set proof', `the leaf ${side} the range (leaf ${index}) occurred at ${String(occurredAt)}, inside the window: the pack leaves out events of its window`);
      proof.append(hashLeaf(Buffer.from(line, 'utf8')));
    };
    if (beforeEdge !== undefined) appendEdge(edgeLines[0]!, beforeEdge, 'before');
    const scope = manifest.scope;
    const total = manifest.counts.events;
    // A headers pack: every header of the range is a proven leaf; the filter, applied to them, says
    // which events the pack must hold (in leaf order, with the leaf hash of each one's header).
    const selected: { index: number; id: string; hash: Buffer }[] = [];
    // checkpoint-gap: recomputed from the signed times over every in-window event of a complete or
    // headers pack (it holds them all, or their headers), when the mapping ships the allowed delay (v5).
    const gapLimit = files.has(PACK_FILES.mapping) ? shippedGapLimit(text(PACK_FILES.mapping)) : undefined;
    const gapScan = ranged && gapLimit !== undefined ? new CheckpointGapScan(signedTimes) : undefined;
    // data.masked headers of the window, and how many of them the filter selects (their events, with
    // the rules they name, are in the pack): all of them selected, masking findings recompute exactly.
    const masked = { inWindow: 0, selected: 0 };
    if (coverage?.kind === 'headers') {
      const mapping = files.has(PACK_FILES.mapping) ? (JSON.parse(text(PACK_FILES.mapping)) as { rules?: MappingRule[] }) : {};
      const filter: HeaderFilter = scope.identity !== undefined ? { identity: scope.identity } : scope.connection !== undefined ? { connection: scope.connection } : { controlRules: (mapping.rules ?? []).filter((r) => Array.isArray(r.controls) && r.controls.includes(scope.control!)) };
      const selection = new HeaderSelection(filter, windowFrom!, windowTo!);
      for (const [i, line] of headerLines.entries()) {
        const index = proof.nextIndex();
        if (index !== coverage.firstLeaf + i) fail('leaf-set proof', `header ${i + 1} sits at leaf ${String(index)}, not ${coverage.firstLeaf + i}: a headers pack has no gap inside its range (a leaf was left out)`);
        let header: unknown;
        try {
          header = JSON.parse(line);
        } catch {
          fail('leaf-set proof', `header ${i + 1} (leaf ${index}) is not JSON`);
        }
        if (!isHeaderLeaf(header)) fail('leaf-set proof', `header ${i + 1} (leaf ${index}) is not a format-2 header (leafFormat 2)`);
        const hash = hashLeaf(Buffer.from(line, 'utf8'));
        proof.append(hash);
        const h = header as { type?: unknown; occurredAt?: unknown };
        const at = typeof h.occurredAt === 'string' ? instantKey(h.occurredAt) : undefined;
        const inWindow = at !== undefined && at >= windowFrom! && at < windowTo!;
        if (gapScan && inWindow && countsForCheckpointGap(h.type)) gapScan.add(index!, String(h.occurredAt), instantMicros(String(h.occurredAt))!);
        const chosen = selection.selects(header as Parameters<HeaderSelection['selects']>[0]);
        if (chosen) selected.push({ index: index!, id: String((header as { id?: unknown }).id), hash });
        if (inWindow && h.type === 'data.masked') {
          masked.inWindow += 1;
          if (chosen) masked.selected += 1;
        }
      }
    }
    // Events outside the claimed scope first: that names the event, whatever the headers say.
    const scopeFailure = scopeCheck.firstFailure(files.events ?? []);
    if (scopeFailure) fail('leaf-set proof', scopeFailure);
    let count = 0;
    let outsideWindow = 0;
    for (const { count: lines, leafHashes, headerHashes, failure, outside, gapTimes } of files.events ?? []) {
      outsideWindow += outside ?? 0;
      for (let k = 0; k < lines; k += 1) {
        const at = leafHashes.byteOffset + 32 * k;
        if (coverage?.kind === 'headers') {
          // Each event is the next selected header's event: its own header hashes to that leaf.
          if (count >= selected.length) fail('leaf-set proof', `event ${count + 1}: the pack holds more events than the ${selected.length} its headers select`);
          const hash = Buffer.from(leafHashes.buffer, at, 32);
          if (!hash.equals(selected[count]!.hash)) {
            const later = selected.findIndex((h, j) => j > count && h.hash.equals(hash));
            if (later > count) fail('leaf-set proof', `the header of leaf ${selected[count]!.index} (event ${selected[count]!.id}) matches the pack's filter but its event is not in the pack: an event of the scope was withheld`);
            fail('leaf-set proof', `event ${count + 1} does not match the header of leaf ${selected[count]!.index} (event ${selected[count]!.id}), header number ${count + 1} the filter selects: its payload digest or envelope differs from the header the log holds`);
          }
          count += 1;
          continue;
        }
        const index = proof.nextIndex();
        if (index === undefined || (afterEdge !== undefined && index === afterEdge)) fail('leaf-set proof', `event ${count + 1}: the pack holds more events than the proof and manifest (${total})`);
        if (complete && index !== complete.firstLeaf + count) fail('leaf-set proof', `event ${count + 1} sits at leaf ${String(index)}, not ${complete.firstLeaf + count}: a complete pack has no gap inside its range (an event was left out)`);
        // The leaf is the line (format 1) or the event's header (format 2), by the log's switch.
        const format = leafFormatAt(index!, headerFrom ?? undefined);
        const hashes = format === 2 && headerHashes ? headerHashes : leafHashes;
        proof.append(Buffer.from(hashes.buffer, hashes.byteOffset + 32 * k, 32));
        const eventTime = gapTimes?.[k];
        if (gapScan && complete && eventTime !== undefined && !Number.isNaN(eventTime)) gapScan.add(index!, '', eventTime);
        count += 1;
      }
      if (failure) {
        const index = coverage?.kind === 'headers' ? selected[count]?.index : proof.nextIndex();
        const where = `event ${count + 1}${index === undefined ? '' : ` (leaf ${index})`}`;
        if (failure.kind === 'not-json') fail('leaf-set proof', `${where} is not a JSON object`);
        if (failure.kind === 'outside-period') fail('leaf-set proof', `${where} occurred at ${failure.occurredAt}, outside the pack's scope`);
        fail('leaf-set proof', `${where} is not an event of ${scope.identity ?? '?'}, the pack's scope`);
      }
    }
    if (count !== total) fail('leaf-set proof', `${count} events but the manifest counts ${total}`);
    if (coverage?.kind === 'headers' && count < selected.length) fail('leaf-set proof', `the header of leaf ${selected[count]!.index} (event ${selected[count]!.id}) matches the pack's filter but its event is not in the pack: an event of the scope was withheld (${selected.length} headers match, ${count} events)`);
    if (afterEdge !== undefined) appendEdge(edgeLines[edgeLines.length - 1]!, afterEdge, 'after');
    await step('leaf-set proof', () => {
      try {
        proof.finish(latest.checkpoint.rootHash);
      } catch (error) {
        throw new Error(
          `the events and the proof's gaps do not recompute the root of checkpoint ${latest.checkpoint.size}: an event was modified, forged, dropped, reordered or moved (${error instanceof Error ? error.message : String(error)}); \`custodian log verify\` on the log locates it`,
        );
      }
    });
    const completeness = complete
      ? `; complete: every leaf ${complete.firstLeaf}..${complete.endLeaf - 1} is in the pack${outsideWindow > 0 ? ` (${outsideWindow} of them timed outside the window, not counted as evidence)` : ''}, ${beforeEdge !== undefined ? `leaf ${beforeEdge} before the window` : 'from the log\'s first leaf'} and ${afterEdge !== undefined ? `leaf ${afterEdge} after it` : `up to the latest checkpoint (events after leaf ${latest.checkpoint.size - 1} are not checkpointed yet)`}`
      : ranged
        ? `; complete for its filter: the headers of every leaf ${ranged.firstLeaf}..${ranged.endLeaf - 1} are in the pack and the ${selected.length} that match the filter are its events, ${beforeEdge !== undefined ? `leaf ${beforeEdge} before the window` : 'from the log\'s first leaf'} and ${afterEdge !== undefined ? `leaf ${afterEdge} after it` : `up to the latest checkpoint (events after leaf ${latest.checkpoint.size - 1} are not checkpointed yet)`}`
        : `; completeness not proven (${manifest.format === 'custodian-evidence-pack/v2' ? `format ${manifest.format}` : headerFrom === null ? 'a filtered pack of a log without header leaves' : 'a filtered pack'})`;
    completenessProven = ranged !== undefined;
    const leafSetDetail = `${count} event(s) proven included in checkpoint ${latest.checkpoint.size} (${leafSet.gaps.length} gap(s), ${leafSet.gaps.reduce((n, g) => n + g.hashes.length, 0)} hashes)${completeness}`;
    pass('leaf-set proof', leafSetDetail);

    // 6. Every custody statement: DSSE signature by the gateway key (pinned or carried), statement = event.
    custodySummary = custody.summary();
    const custodyFailure = custody.firstFailure(files.events ?? []);
    if (custodyFailure) fail('custody statements', custodyFailure);
    pass('custody statements', custody.describe());

    // 7. The OSCAL document's structure, and its evidence links into the pack by digest.
    await step('oscal', () => checkOscal(text(PACK_FILES.oscal), files, digestOf));
    pass('oscal', 'assessment-results structure and evidence digests verified');

    // 8. The views tied to the events: counts recomputed with the shipped mapping, statuses from
    // counts and findings, event-local findings from their events; OSCAL and the report agree.
    if (files.has(PACK_FILES.mapping) && files.has(PACK_FILES.evidence)) {
      const gaps = gapScan ? { ...gapScan.finish(), limit: gapLimit!, untimed: signedTimes.length - timed } : undefined;
      // What the pack's events can prove (docs/evidence-pack-format.md §6): a complete pack holds
      // every event of the window; a connection headers pack every event of its sessions and
      // approvals (the command findings' joins); a headers pack whose every data.masked header is
      // selected, every rule that fired; other headers packs, some of the rules that fired.
      const recompute: Recompute = {
        commands: complete !== undefined || (coverage?.kind === 'headers' && scope.connection !== undefined),
        masking: complete !== undefined || (coverage?.kind === 'headers' && masked.selected === masked.inWindow) ? 'exact' : coverage?.kind === 'headers' ? 'possible' : 'none',
      };
      pass('evidence views', await step('evidence views', () => checkViews({ manifest: manifest!, mapping: text(PACK_FILES.mapping), evidence: text(PACK_FILES.evidence), oscal: text(PACK_FILES.oscal), report: text(PACK_FILES.report), events: files.events ?? [], recompute, ...(gaps ? { gaps } : {}) })));
    } else pass('evidence views', `not checked: ${manifest.format} ships no ${PACK_FILES.mapping}`);

    // The completeness policy: a pack that does not prove it holds every event its scope selects is
    // refused unless the auditor accepts that explicitly (docs/evidence-pack-format.md §4). Last, so
    // that a pack failing anything else is named for that.
    if (completenessProven) pass('completeness', complete ? 'proven: every event of the window is in the pack' : 'proven for its filter: every event of the window its filter selects is in the pack');
    else if (options.allowIncomplete === true) pass('completeness', `NOT proven, accepted as asked (allow incomplete): ${manifest.format === 'custodian-evidence-pack/v2' ? 'a v2 pack states no coverage' : 'a filtered pack without the headers of its window'} shows what it holds, not that nothing was left out`);
    else fail('completeness', `NOT proven: ${manifest.format === 'custodian-evidence-pack/v2' ? 'a v2 pack states no coverage' : 'a filtered pack (coverage "filtered") carries no headers of its window'}, so it cannot show that no event of its scope was left out; whoever holds the attestation key could issue such a pack instead of one that proves completeness. Ask for a pack that proves it (an unfiltered pack, or a filtered one with headers from a log with header leaves), or accept it explicitly (--allow-incomplete)`);
  } catch (error) {
    if (!(error instanceof CheckFailed)) throw error;
  }
  const firstFailure = checks.find((c) => !c.ok);
  const keysPinned = logKeysPinned && attestationPinned;
  const verdict = firstFailure !== undefined ? 'failed' : keysPinned ? 'verified' : 'self-consistent';
  return { ok: verdict === 'verified' || (verdict === 'self-consistent' && options.trustPackKeys === true), verdict, complete: verdict !== 'failed' && completenessProven, checks, ...(firstFailure ? { firstFailure } : {}), keysPinned, ...(signers ? { signers } : {}), ...(manifest ? { manifest } : {}), ...(custodySummary ? { custody: custodySummary } : {}) };
}

/**
 * Verifies custody.attested lines as the reader hands them over (chunk by chunk, possibly out of
 * order) and keeps only counts, key ids and failures; the first failure in pack order is reported.
 */
class CustodyStatementCheck {
  readonly #trusted: ReturnType<typeof ed25519PublicKeyFromPem>[];
  #statements = 0;
  #exposed = 0;
  readonly #keyIds = new Set<string>();
  readonly #failures: { chunk: number; line: number; detail: string }[] = [];

  constructor(trustedPems: readonly string[]) {
    this.#trusted = trustedPems.map((pem, i) => {
      try {
        return ed25519PublicKeyFromPem(pem);
      } catch (error) {
        throw new Error(`trusted custody key ${i + 1}: ${error instanceof Error ? error.message : String(error)}`);
      }
    });
  }

  check(chunk: number, lines: readonly CustodyLine[]): void {
    for (const { line, text } of lines) {
      try {
        const event = JSON.parse(text) as { stream?: unknown; identity?: { subject: string; issuer: string } | null; payload?: unknown };
        const verified = verifyCustodyAttestation(event.payload, { ...(this.#trusted.length > 0 ? { trustedKeys: this.#trusted } : {}), identity: event.identity ?? null });
        if (event.stream !== `session-${verified.sessionId}`) throw new CustodyError('CUSTODY_STATEMENT_MISMATCH', `the statement about session ${verified.sessionId} is in stream ${String(event.stream)}`);
        this.#statements += 1;
        if (verified.exposed) this.#exposed += 1;
        this.#keyIds.add(verified.keyId);
      } catch (error) {
        const sessionId = /"sessionId":"([0-9a-f-]{36})"/.exec(text)?.[1];
        const reason = error instanceof CustodyError ? `${error.message} (${error.code})` : error instanceof Error ? error.message : String(error);
        this.#failures.push({ chunk, line, detail: `${sessionId ? `session ${sessionId}: ` : ''}${reason}` });
      }
    }
  }

  /** The first failure in pack order, numbered as the event's line in events.jsonl. */
  firstFailure(chunks: readonly { readonly count: number }[]): string | undefined {
    if (this.#failures.length === 0) return undefined;
    const first = this.#failures.reduce((a, b) => (b.chunk < a.chunk || (b.chunk === a.chunk && b.line < a.line) ? b : a));
    const before = chunks.slice(0, first.chunk).reduce((n, c) => n + c.count, 0);
    return `event ${before + first.line + 1}: the custody statement does not verify: ${first.detail}${this.#failures.length > 1 ? ` (and ${this.#failures.length - 1} more)` : ''}`;
  }

  summary(): CustodySummary {
    return { statements: this.#statements, exposed: this.#exposed, keyIds: [...this.#keyIds].sort(), pinned: this.#trusted.length > 0 };
  }

  describe(): string {
    if (this.#statements === 0) return 'no custody statement in the pack';
    const keys = [...this.#keyIds].sort().join(', ');
    const pinned = this.#trusted.length > 0 ? `pinned key(s) ${keys}` : `key id(s) ${keys}, the key(s) each event carries (not pinned: pass --custody-key to check who signed)`;
    const exposed = this.#exposed > 0 ? `; ${this.#exposed} state(s) the credential was EXPOSED (a finding)` : '; none states an exposure';
    return `${this.#statements} custody statement(s) verified, signed by ${pinned}${exposed}`;
  }
}

/**
 * The scope of a connection or control pack, checked line by line as the chunks arrive (possibly
 * out of order): a connection pack's events name the connection or belong to a session whose
 * `session.opened` (in the pack) does; a control pack's events match a rule of the shipped mapping
 * (controls/mapping.json) that evidences the control. Keeps only failures and per-session state.
 */
class ScopeCheck {
  #mapping?: { rules: MappingRule[] };
  #mappingError?: string;
  #connection?: string;
  #control?: string;
  readonly #sessionConnection = new Map<string, string>();
  readonly #approvalConnection = new Map<string, string>();
  /** Sessions whose events rely on the session's connection: the first such event, for messages. */
  readonly #pendingSessions = new Map<string, { chunk: number; line: number }>();
  /** Approvals whose decisions rely on the request's connection: the first such event. */
  readonly #pendingApprovals = new Map<string, { chunk: number; line: number }>();
  readonly #lines: { chunk: number; line: number; text: string }[] = [];
  readonly #failures: { chunk: number; line: number; detail: string }[] = [];

  #scoped = false;

  file(path: string, data: Buffer): void {
    if (path === PACK_FILES.manifest) {
      // The claims, as the events start streaming (our packs put the manifest first); a manifest
      // that does not match its attested digest fails later, before anything is reported as held.
      try {
        this.scope(JSON.parse(data.toString('utf8')) as PackManifest);
      } catch {
        // not JSON: the manifest check says so
      }
      return;
    }
    if (path !== PACK_FILES.mapping) return;
    try {
      const doc = JSON.parse(data.toString('utf8')) as { rules?: unknown };
      if (!Array.isArray(doc.rules)) throw new Error('no rules');
      this.#mapping = { rules: doc.rules as MappingRule[] };
    } catch (error) {
      this.#mappingError = `${PACK_FILES.mapping} is not a control mapping (${error instanceof Error ? error.message : String(error)})`;
    }
  }

  /** The claims to check, from the manifest (read after the events when another tool re-archived the pack). */
  scope(manifest: PackManifest): void {
    if (this.#scoped) return;
    this.#scoped = true;
    this.#connection = manifest.scope?.connection;
    this.#control = manifest.format !== 'custodian-evidence-pack/v2' ? manifest.scope?.control : undefined;
    // Lines handed over before the manifest was known were kept: check them now.
    for (const l of this.#lines.splice(0)) this.#checkLine(l.chunk, l.line, l.text);
  }

  check(chunk: number, lines: readonly CustodyLine[]): void {
    for (const { line, text } of lines) {
      if (!this.#scoped) this.#lines.push({ chunk, line, text });
      else this.#checkLine(chunk, line, text);
    }
  }

  #checkLine(chunk: number, line: number, text: string): void {
    let event: { type?: unknown; payload?: { sessionId?: unknown; approvalId?: unknown; connection?: { name?: unknown } } };
    try {
      event = JSON.parse(text) as typeof event;
    } catch {
      return; // the worker reports lines that are not JSON
    }
    const sessionId = typeof event.payload?.sessionId === 'string' ? event.payload.sessionId : undefined;
    const approvalId = typeof event.payload?.approvalId === 'string' ? event.payload.approvalId : undefined;
    const own = typeof event.payload?.connection?.name === 'string' ? event.payload.connection.name : undefined;
    if (event.type === 'session.opened' && sessionId && own) this.#sessionConnection.set(sessionId, own);
    if (event.type === 'approval.requested' && approvalId && own) this.#approvalConnection.set(approvalId, own);
    if (this.#connection !== undefined && own !== this.#connection) {
      if (own === undefined && sessionId !== undefined) {
        if (!this.#pendingSessions.has(sessionId)) this.#pendingSessions.set(sessionId, { chunk, line });
      } else if (own === undefined && approvalId !== undefined) {
        // A decision on an approval: of the connection its approval.requested (in the pack) names.
        if (!this.#pendingApprovals.has(approvalId)) this.#pendingApprovals.set(approvalId, { chunk, line });
      } else this.#failures.push({ chunk, line, detail: `is a ${String(event.type)} event of ${own ? `connection ${own}` : 'no connection, session or approval'}, not of connection ${this.#connection}, the pack's scope` });
    }
    if (this.#control !== undefined) {
      if (this.#mappingError !== undefined) this.#failures.push({ chunk, line, detail: this.#mappingError });
      else if (!this.#mapping) this.#failures.push({ chunk, line, detail: `cannot be checked against control ${this.#control}: ${PACK_FILES.mapping} must come before events.jsonl` });
      else if (!this.#mapping.rules.some((r) => r.controls.includes(this.#control!) && ruleMatches(r, event as { type: string }))) {
        this.#failures.push({ chunk, line, detail: `is a ${String(event.type)} event that no rule of the shipped mapping counts for control ${this.#control}, the pack's scope` });
      }
    }
  }

  firstFailure(chunks: readonly { readonly count: number }[]): string | undefined {
    const failures = [...this.#failures];
    for (const [sessionId, at] of this.#pendingSessions) {
      const connection = this.#sessionConnection.get(sessionId);
      if (connection !== this.#connection) failures.push({ ...at, detail: `belongs to session ${sessionId}, ${connection ? `of connection ${connection}` : 'whose session.opened is not in the pack'}, not of connection ${this.#connection!}, the pack's scope` });
    }
    for (const [approvalId, at] of this.#pendingApprovals) {
      const connection = this.#approvalConnection.get(approvalId);
      if (connection !== this.#connection) failures.push({ ...at, detail: `decides approval ${approvalId}, ${connection ? `of connection ${connection}` : 'whose approval.requested is not in the pack'}, not of connection ${this.#connection!}, the pack's scope` });
    }
    if (failures.length === 0) return undefined;
    const first = failures.reduce((a, b) => (b.chunk < a.chunk || (b.chunk === a.chunk && b.line < a.line) ? b : a));
    const before = chunks.slice(0, first.chunk).reduce((n, c) => n + c.count, 0);
    return `event ${before + first.line + 1} ${first.detail}${failures.length > 1 ? ` (and ${failures.length - 1} more)` : ''}`;
  }
}

interface ShippedMapping {
  readonly controls: readonly { readonly id: string; readonly oscalId: string }[];
  readonly rules: readonly { readonly id: string; readonly event: string; readonly controls: readonly string[] }[];
  readonly findings?: readonly { readonly kind: string; readonly severity: string; readonly controls: readonly string[] }[];
  /** v4: the masking rules expected to fire in the window. */
  readonly maskingRules?: readonly string[];
}

interface ViewsReport {
  readonly totals: { readonly events: number; readonly findings: number };
  readonly controls: readonly { readonly id: string; readonly oscalId: string; readonly status: string; readonly count: number; readonly byRule: readonly { readonly rule: string; readonly count: number }[]; readonly findings: readonly string[] }[];
  readonly findings: readonly { readonly id: string; readonly kind: string; readonly severity: string; readonly controls: readonly string[]; readonly eventIds: readonly string[] }[];
}

const LOCAL_FINDING_KINDS: readonly string[] = ['credential-exposed', 'session-without-identity', 'session-without-tls'];
const COMMAND_FINDING_KINDS: readonly string[] = ['privileged-command-without-approval', 'command-without-decision'];
/** The views' default: a command this long before the window's end without a decision is a finding. */
const DECISION_GRACE_SECONDS = 60;

/**
 * The command findings of a complete pack, recomputed from its command facts in pack order (as
 * EvidenceAccumulator does): privileged (a flag of the mapping's privilegedFlags, or held for
 * approval) and allowed/masked without a final grant; or issued more than the grace before the
 * window's end without a decision or refusal. Undefined when the facts were not collected.
 */
function commandFindings(chunks: readonly CheckedLines[], to: string): { kind: string; eventId: string }[] | undefined {
  if (chunks.length === 0 || chunks.some((c) => c.commandFacts === undefined)) return chunks.length === 0 ? [] : undefined;
  interface State {
    issued?: { id: string; occurredAt: string };
    privileged: boolean;
    executed: boolean;
    decided: boolean;
    approved: boolean;
    refused: boolean;
  }
  const commands = new Map<string, State>();
  const approvals = new Map<string, string>();
  const command = (k: string): State => {
    let state = commands.get(k);
    if (!state) commands.set(k, (state = { privileged: false, executed: false, decided: false, approved: false, refused: false }));
    return state;
  };
  for (const chunk of chunks) {
    for (const fact of chunk.commandFacts!) {
      if (fact.k === 'issued') {
        const state = command(fact.key);
        state.issued = { id: fact.id, occurredAt: fact.occurredAt };
        state.privileged ||= fact.privileged;
      } else if (fact.k === 'decided') {
        const state = command(fact.key);
        state.decided = true;
        if (fact.decision === 'require-approval') state.privileged = true;
        if (fact.decision === 'allow' || fact.decision === 'mask') state.executed = true;
      } else if (fact.k === 'requested') approvals.set(fact.approvalId, fact.key);
      else if (fact.k === 'granted') {
        const k = approvals.get(fact.approvalId);
        const state = k ? commands.get(k) : undefined;
        if (state && fact.final) state.approved = true;
      } else command(fact.key).refused = true;
    }
  }
  // Compared as the views compare them (both are UTC; the end has milliseconds).
  const graceEnd = new Date(Date.parse(to) - DECISION_GRACE_SECONDS * 1000).toISOString();
  const out: { kind: string; eventId: string }[] = [];
  for (const state of commands.values()) {
    if (!state.issued) continue;
    if (state.privileged && state.executed && !state.approved) out.push({ kind: 'privileged-command-without-approval', eventId: state.issued.id });
    if (!state.decided && !state.refused && state.issued.occurredAt < graceEnd) out.push({ kind: 'command-without-decision', eventId: state.issued.id });
  }
  return out;
}
/** Which findings that join several events a pack's events let the verifier recompute. */
interface Recompute {
  /** The command findings, exactly (complete packs, connection headers packs). */
  readonly commands: boolean;
  /** masking-rule-never-fired: exactly, only as "a listed rule did not fire in the pack", or not at all. */
  readonly masking: 'exact' | 'possible' | 'none';
}

/** The checkpoint-gap candidates of a pack (CheckpointGapScan over its in-window events) and the shipped limit. */
interface RecomputedGaps extends ReturnType<CheckpointGapScan['finish']> {
  readonly limit: number;
  /** Listed checkpoints that state no signing time. */
  readonly untimed: number;
}

/** The allowed checkpoint delay the mapping ships (v5, `checkpointGap.maxDelayMicroseconds`), or undefined. */
function shippedGapLimit(mapping: string): number | undefined {
  try {
    const limit = (JSON.parse(mapping) as { checkpointGap?: { maxDelayMicroseconds?: unknown } }).checkpointGap?.maxDelayMicroseconds;
    return typeof limit === 'number' && Number.isSafeInteger(limit) && limit >= 0 ? limit : undefined;
  } catch {
    return undefined;
  }
}

/** Same members, counted (each side sorted once: finding lists can be long). */
function sameSet(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  const sortedB = [...b].sort();
  return [...a].sort().every((x, i) => x === sortedB[i]);
}

/**
 * evidence.json, the OSCAL findings and report.html against the events and the shipped mapping.
 * Returns what held; throws naming the first contradiction.
 */
function checkViews(input: { manifest: PackManifest; mapping: string; evidence: string; oscal: string; report: string; events: readonly CheckedLines[]; recompute: Recompute; gaps?: RecomputedGaps }): string {
  const mapping = JSON.parse(input.mapping) as ShippedMapping;
  const views = JSON.parse(input.evidence) as ViewsReport;
  if (!Array.isArray(mapping.controls) || !Array.isArray(mapping.rules) || !Array.isArray(views.controls) || !Array.isArray(views.findings)) throw new Error(`${PACK_FILES.mapping} or ${PACK_FILES.evidence} is malformed`);
  const scope = input.manifest.scope;
  // What the events say, counted in the worker threads: in-window events per rule, event-local findings.
  const ruleCounts = new Map<string, number>();
  const local: LocalFinding[] = [];
  let inWindow = 0;
  for (const chunk of input.events) {
    if (!chunk.ruleCounts) throw new Error(`the events were not counted: ${PACK_FILES.mapping} must come before ${PACK_FILES.events}`);
    inWindow += chunk.inWindow ?? 0;
    for (const [rule, n] of Object.entries(chunk.ruleCounts)) ruleCounts.set(rule, (ruleCounts.get(rule) ?? 0) + n);
    local.push(...(chunk.localFindings ?? []));
  }
  if (views.totals?.events !== inWindow) throw new Error(`${PACK_FILES.evidence} counts ${String(views.totals?.events)} events in scope, the pack holds ${inWindow} in its window`);
  if (views.totals.findings !== views.findings.length || input.manifest.counts.findings !== views.findings.length) throw new Error(`${PACK_FILES.evidence} lists ${views.findings.length} findings but counts ${String(views.totals.findings)} (manifest: ${input.manifest.counts.findings})`);

  // Every finding is of a shipped kind, against that kind's controls; each event-local one matches an event.
  const kinds = new Map((mapping.findings ?? []).map((k) => [k.kind, k]));
  for (const f of views.findings) {
    const kind = kinds.get(f.kind);
    if (!kind) throw new Error(`finding ${f.id} is of kind ${JSON.stringify(f.kind)}, not one of the shipped mapping`);
    if (!sameSet(f.controls, kind.controls) || f.severity !== kind.severity) throw new Error(`finding ${f.id} (${f.kind}) states controls ${f.controls.join(', ')} / ${f.severity}, the mapping ${kind.controls.join(', ')} / ${kind.severity}`);
  }
  const expectedLocal = local.filter((l) => kinds.has(l.kind) && (scope.control === undefined || kinds.get(l.kind)!.controls.includes(scope.control)));
  const key = (kind: string, eventId: string): string => `${kind} ${eventId}`;
  const stated = new Set(views.findings.filter((f) => LOCAL_FINDING_KINDS.includes(f.kind)).map((f) => key(f.kind, f.eventIds[0] ?? '')));
  const raised = new Set(expectedLocal.map((l) => key(l.kind, l.eventId)));
  for (const k of raised) if (!stated.has(k)) throw new Error(`event ${k.split(' ')[1]!} raises a ${k.split(' ')[0]!} finding that ${PACK_FILES.evidence} does not list`);
  // A control pack holds only the events evidencing the control, not every event that raises one of its findings.
  if (scope.control === undefined) for (const k of stated) if (!raised.has(k)) throw new Error(`${PACK_FILES.evidence} lists a ${k.split(' ')[0]!} finding for event ${k.split(' ')[1]!}, which is not such an event in the pack`);
  // masking-rule-never-fired, for the rules the mapping (v4) says were expected to fire: exactly
  // when the pack holds every data.masked event of its window (complete packs, headers packs whose
  // filter selects every data.masked header); else (other headers packs) a listed rule must not
  // have fired in an event of the pack.
  const applies = (kind: string): boolean => kinds.has(kind) && (scope.control === undefined || kinds.get(kind)!.controls.includes(scope.control));
  let recomputed = '';
  if (input.recompute.masking !== 'none' && Array.isArray(mapping.maskingRules) && input.events.every((c) => c.maskingRulesFired !== undefined) && applies('masking-rule-never-fired')) {
    const fired = new Set(input.events.flatMap((c) => c.maskingRulesFired!));
    const expected = new Map(mapping.maskingRules.filter((rule) => !fired.has(rule)).map((rule) => [deterministicUuid('finding', 'masking-rule-never-fired', rule, scope.from, scope.to), rule]));
    const stated = views.findings.filter((f) => f.kind === 'masking-rule-never-fired');
    if (input.recompute.masking === 'exact') for (const [id, rule] of expected) if (!stated.some((f) => f.id === id)) throw new Error(`masking rule ${rule} masked nothing in the window (no data.masked event names it) but ${PACK_FILES.evidence} has no masking-rule-never-fired finding for it`);
    for (const f of stated) if (!expected.has(f.id)) throw new Error(`${PACK_FILES.evidence} lists masking-rule-never-fired finding ${f.id}, which is not that of an expected rule that masked nothing in ${input.recompute.masking === 'exact' ? 'the window' : "the pack's data.masked events"} (${[...expected.values()].join(', ') || 'every expected rule fired'})`);
    recomputed += input.recompute.masking === 'exact' ? '; masking findings recomputed' : "; masking findings checked against the pack's data.masked events";
  }
  // checkpoint-gap, from the checkpoints' signed times (v5 complete and headers packs): a late
  // checkpoint must be listed, and every listed one must be such a candidate. A checkpoint that
  // states no time (signed before v5) may or may not have one: its time is not proven.
  let gapDetail = '';
  if (input.manifest.format === PACK_FORMATS_READ[PACK_FORMATS_READ.length - 1] && !input.gaps && (input.manifest.coverage?.kind === 'complete' || input.manifest.coverage?.kind === 'headers')) throw new Error(`${PACK_FILES.mapping} does not state the allowed checkpoint delay (checkpointGap.maxDelayMicroseconds)`);
  if (input.gaps && kinds.has(CHECKPOINT_GAP) && (scope.control === undefined || kinds.get(CHECKPOINT_GAP)!.controls.includes(scope.control))) {
    const { candidates, limit, untimed } = input.gaps;
    if (input.gaps.uncovered) throw new Error(`event at leaf ${input.gaps.uncovered.leafIndex} is covered by no checkpoint of the pack`);
    const required = new Map(candidates.filter((c) => c.delayMicros !== undefined && c.delayMicros > limit).map((c) => [checkpointGapId(c.leafIndex, c.upTo), c]));
    const allowed = new Set(candidates.filter((c) => c.delayMicros === undefined).map((c) => checkpointGapId(c.leafIndex, c.upTo)));
    const stated = views.findings.filter((f) => f.kind === CHECKPOINT_GAP);
    for (const [id, c] of required) if (!stated.some((f) => f.id === id)) throw new Error(`the checkpoint of size ${c.upTo}, signed at ${c.signedAt!}, first covers the event at leaf ${c.leafIndex} ${(c.delayMicros! / 1_000_000).toFixed(6)} s after it (allowed: ${limit / 1_000_000} s), but ${PACK_FILES.evidence} has no checkpoint-gap finding ${id} for it`);
    for (const f of stated) if (!required.has(f.id) && !allowed.has(f.id)) throw new Error(`${PACK_FILES.evidence} lists checkpoint-gap finding ${f.id}, which the checkpoints' signed times and the events do not raise`);
    gapDetail = `; checkpoint-gap recomputed from the signed times: ${required.size} finding(s)${untimed > 0 ? `, ${allowed.size} possible under ${untimed} checkpoint(s) whose time is not proven (${stated.filter((f) => allowed.has(f.id)).length} listed)` : ''}`;
  } else if (views.findings.some((f) => f.kind === CHECKPOINT_GAP)) gapDetail = '; checkpoint-gap findings checked for kind only (not recomputable from this pack)';
  // A complete pack, and a connection headers pack, hold every event a command finding joins: those findings are recomputed too.
  const commands = input.recompute.commands ? commandFindings(input.events, scope.to) : undefined;
  if (commands) {
    recomputed += '; command findings recomputed';
    const statedCommands = new Set(views.findings.filter((f) => COMMAND_FINDING_KINDS.includes(f.kind)).map((f) => key(f.kind, f.eventIds[0] ?? '')));
    const expected = new Set(commands.filter((c) => kinds.has(c.kind)).map((c) => key(c.kind, c.eventId)));
    for (const k of expected) if (!statedCommands.has(k)) throw new Error(`the command.issued event ${k.split(' ')[1]!} raises a ${k.split(' ')[0]!} finding that ${PACK_FILES.evidence} does not list`);
    for (const k of statedCommands) if (!expected.has(k)) throw new Error(`${PACK_FILES.evidence} lists a ${k.split(' ')[0]!} finding for command.issued ${k.split(' ')[1]!}, which the pack's events do not raise`);
  }

  // Each control: the controls reported are the mapping's (or the scope's one); counts per rule, findings, status.
  const expectedControls = scope.control !== undefined ? mapping.controls.filter((c) => c.id === scope.control) : mapping.controls;
  if (!sameSet(views.controls.map((c) => c.id), expectedControls.map((c) => c.id))) throw new Error(`${PACK_FILES.evidence} reports controls ${views.controls.map((c) => c.id).join(', ')}, not those of the mapping in scope`);
  const statuses = new Map<string, string>();
  for (const control of views.controls) {
    const shipped = expectedControls.find((c) => c.id === control.id)!;
    if (control.oscalId !== shipped.oscalId) throw new Error(`control ${control.id}: OSCAL id ${control.oscalId}, the mapping says ${shipped.oscalId}`);
    const expectedByRule = mapping.rules.filter((r) => r.controls.includes(control.id) && (ruleCounts.get(r.id) ?? 0) > 0).map((r) => `${r.id}=${ruleCounts.get(r.id)!}`);
    const byRule: readonly { readonly rule: string; readonly count: number }[] = control.byRule ?? [];
    const statedByRule = byRule.map((r) => `${r.rule}=${r.count}`);
    if (!sameSet(statedByRule, expectedByRule)) throw new Error(`control ${control.id}: ${PACK_FILES.evidence} counts ${statedByRule.join(', ') || 'nothing'}, the events give ${expectedByRule.join(', ') || 'nothing'}`);
    const count = expectedByRule.reduce((n, r) => n + Number(r.split('=')[1]), 0);
    if (control.count !== count) throw new Error(`control ${control.id}: ${PACK_FILES.evidence} counts ${control.count} evidencing events, the events give ${count}`);
    const findings = views.findings.filter((f) => f.controls.includes(control.id)).map((f) => f.id);
    if (!sameSet(control.findings ?? [], findings)) throw new Error(`control ${control.id}: its findings (${(control.findings ?? []).join(', ') || 'none'}) are not the findings against it (${findings.join(', ') || 'none'})`);
    const filtered = scope.identity !== undefined || scope.connection !== undefined || scope.control !== undefined;
    const status = findings.length > 0 ? 'not-satisfied' : count > 0 ? 'satisfied' : filtered ? 'not-assessed' : 'not-satisfied';
    if (control.status !== status) throw new Error(`control ${control.id} is "${control.status}" in ${PACK_FILES.evidence}; with ${count} evidencing event(s) and ${findings.length} finding(s) it is "${status}"`);
    if (status !== 'not-assessed') statuses.set(shipped.oscalId, status);
  }

  // The OSCAL document: one finding per control, in the same state; one finding observation per finding kind occurrence.
  const oscal = JSON.parse(input.oscal) as { 'assessment-results': { results: { findings?: { target?: { 'target-id'?: string; status?: { state?: string } } }[]; observations?: { props?: { name?: string; value?: string }[] }[] }[] } };
  const result = oscal['assessment-results'].results[0]!;
  const oscalStates = new Map<string, string>();
  for (const f of result.findings ?? []) oscalStates.set(String(f.target?.['target-id']).replace(/_obj$/, ''), String(f.target?.status?.state));
  if (oscalStates.size !== statuses.size) throw new Error(`OSCAL has ${oscalStates.size} control findings, ${PACK_FILES.evidence} ${statuses.size} assessed controls`);
  for (const [oscalId, status] of statuses) if (oscalStates.get(oscalId) !== status) throw new Error(`OSCAL states ${oscalId} "${String(oscalStates.get(oscalId))}", the events and mapping give "${status}"`);
  const oscalKinds = (result.observations ?? []).flatMap((o) => (o.props ?? []).filter((p) => p.name === 'finding-kind').map((p) => String(p.value)));
  if (!sameSet(oscalKinds, views.findings.map((f) => f.kind))) throw new Error(`OSCAL's finding observations (${oscalKinds.join(', ') || 'none'}) are not ${PACK_FILES.evidence}'s findings`);

  // report.html: one row per control, in its status.
  const rows = [...input.report.matchAll(/<tr class="(satisfied|not-satisfied|not-assessed)"><td><strong>([^<]*)<\/strong>/g)].map((m) => `${unescapeHtml(m[2]!)}=${m[1]!}`);
  const expectedRows = views.controls.map((c) => `${c.id}=${c.status}`);
  if (!sameSet(rows, expectedRows)) throw new Error(`${PACK_FILES.report} shows ${rows.join(', ') || 'no control'}, not the controls' statuses`);
  const tally = (status: string): number => views.controls.filter((c) => c.status === status).length;
  return `${views.controls.length} control(s) (${tally('satisfied')} satisfied, ${tally('not-satisfied')} not satisfied, ${tally('not-assessed')} not assessed) and ${views.findings.length} finding(s) agree with the events, the shipped mapping, OSCAL and the report${gapDetail}${recomputed}`;
}

function unescapeHtml(value: string): string {
  return value.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&amp;/g, '&');
}

/** The leaf-set proof file: tree size, root and events for people; gaps with base64 subtree roots. */
function parseLeafSetProof(textValue: string): { treeSize: number; gaps: LeafSetProofGap[] } {
  let doc: unknown;
  try {
    doc = JSON.parse(textValue);
  } catch {
    throw new Error('the leaf-set proof is not JSON');
  }
  if (!isObject(doc) || !Array.isArray(doc.gaps) || typeof doc.treeSize !== 'number') throw new Error('the leaf-set proof needs treeSize and gaps');
  const gaps = (doc.gaps as unknown[]).map((g, i): LeafSetProofGap => {
    if (!isObject(g) || !Array.isArray(g.hashes) || !g.hashes.every((h) => typeof h === 'string')) throw new Error(`leaf-set proof gap ${i} is malformed`);
    return { begin: g.begin as number, end: g.end as number, hashes: (g.hashes as string[]).map((h) => Buffer.from(h, 'base64')) };
  });
  return { treeSize: doc.treeSize, gaps };
}

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

function need(cond: boolean, message: string): void {
  if (!cond) throw new Error(`OSCAL: ${message}`);
}

function checkOscal(textValue: string, files: ReadPack, digestOf: (path: string) => string): void {
  let doc: unknown;
  try {
    doc = JSON.parse(textValue);
  } catch {
    throw new Error('OSCAL: not JSON');
  }
  need(isObject(doc) && isObject(doc['assessment-results']), 'no assessment-results root');
  const ar = (doc as Json)['assessment-results'] as Json;
  need(typeof ar.uuid === 'string' && UUID.test(ar.uuid), 'assessment-results uuid is not a UUID');
  const metadata = ar.metadata as Json | undefined;
  need(isObject(metadata) && typeof metadata.title === 'string' && typeof metadata['last-modified'] === 'string' && typeof metadata.version === 'string' && typeof metadata['oscal-version'] === 'string', 'metadata needs title, last-modified, version, oscal-version');
  need(isObject(ar['import-ap']) && typeof (ar['import-ap'] as Json).href === 'string', 'import-ap.href is required');
  const resources = new Map<string, Json>();
  const backMatter = ar['back-matter'] as Json | undefined;
  for (const r of (isObject(backMatter) && Array.isArray(backMatter.resources) ? backMatter.resources : []) as Json[]) {
    need(typeof r.uuid === 'string' && UUID.test(r.uuid), 'a back-matter resource has no UUID');
    resources.set(r.uuid as string, r);
    for (const link of (Array.isArray(r.rlinks) ? r.rlinks : []) as Json[]) {
      const href = String(link.href ?? '');
      if (!href.startsWith('./')) continue;
      const path = href.slice(2);
      need(files.has(path), `resource ${String(r.uuid)} links to ${path}, which is not in the pack`);
      const sha = ((Array.isArray(link.hashes) ? link.hashes : []) as Json[]).find((h) => h.algorithm === 'SHA-256');
      need(sha !== undefined, `resource link ${path} carries no SHA-256`);
      need(sha!.value === digestOf(path), `resource link ${path}: SHA-256 does not match the file`);
    }
  }
  need(Array.isArray(ar.results) && ar.results.length > 0, 'no results');
  for (const result of ar.results as Json[]) {
    need(typeof result.uuid === 'string' && UUID.test(result.uuid) && typeof result.title === 'string' && typeof result.start === 'string', 'a result needs uuid, title, start');
    const reviewed = result['reviewed-controls'] as Json | undefined;
    need(isObject(reviewed) && Array.isArray(reviewed['control-selections']) && reviewed['control-selections'].length > 0, 'reviewed-controls.control-selections is required');
    const observationIds = new Set<string>();
    for (const o of (Array.isArray(result.observations) ? result.observations : []) as Json[]) {
      need(typeof o.uuid === 'string' && UUID.test(o.uuid) && Array.isArray(o.methods) && o.methods.length > 0 && typeof o.collected === 'string', 'an observation needs uuid, methods, collected');
      observationIds.add(o.uuid as string);
      for (const e of (Array.isArray(o['relevant-evidence']) ? o['relevant-evidence'] : []) as Json[]) {
        const href = String(e.href ?? '');
        need(!href.startsWith('#') || resources.has(href.slice(1)), `evidence ${href} names no back-matter resource`);
      }
    }
    for (const f of (Array.isArray(result.findings) ? result.findings : []) as Json[]) {
      const target = f.target as Json | undefined;
      const status = target?.status as Json | undefined;
      need(typeof f.uuid === 'string' && UUID.test(f.uuid) && isObject(target) && typeof target['target-id'] === 'string', 'a finding needs uuid and target');
      need(isObject(status) && (status.state === 'satisfied' || status.state === 'not-satisfied'), `finding ${String(f.uuid)}: status.state must be satisfied or not-satisfied`);
      for (const r of (Array.isArray(f['related-observations']) ? f['related-observations'] : []) as Json[]) need(observationIds.has(String(r['observation-uuid'])), `finding ${String(f.uuid)} relates to an unknown observation`);
    }
  }
}
