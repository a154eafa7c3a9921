// Evidence packs: one tar.gz holding the events in scope (canonical JSON lines), one leaf-set proof
// that all of them are in the log at the latest signed checkpoint (the subtree roots of the gaps
// between them, so a million contiguous events need ~40 hashes, not a million proofs), the
// checkpoints with consistency proofs between them, the log's public keys, the evidence views, an
// OSCAL assessment-results document, an HTML report, a manifest, and a DSSE envelope over an
// in-toto Statement v1 whose subjects are all of them.
import { createHash, randomUUID } from 'node:crypto';
import type { Identity } from '@custodian/event-contracts';
import type { EventStore } from '@custodian/event-store';
import { Ed25519NoteVerifier, LeafSetProofVerifier, MerkleTree, checkpointSignedAt, formatKeyId, parseCheckpoint, parseNote, hashLeaf, hashesEqual, openCheckpoint, parseVerifierKey, verifyConsistency, type Hash, type LeafSetProof, type NoteSigner } from '@custodian/transparency-log';
import { canonicalJson } from '../canonical-leaf.js';
import { maxDelayMicros } from '../checkpoint-gaps.js';
import { HeaderSelection, instantKey, rulesDecidableOnHeaders, type EventHeader } from '../leaf-format.js';
import type { ControlCatalogue } from '../controls/control-catalogue.js';
import { EvidenceError } from '../errors.js';
import type { EvidenceLogState, StoredCheckpoint } from '../evidence-log-state.js';
import { eventsOfLeaves } from '../evidence-source.js';
import { EvidenceAccumulator, type EvidenceReport, type EvidenceScope } from '../evidence-views.js';
import { cosignedNote } from '../witness-cosignatures.js';
import { ed25519PublicKeyPem, sha256Hex, signStatement, type InTotoStatement } from './dsse.js';
import { renderHtmlReport } from './html-report.js';
import { buildAssessmentResults, type PackFileRef } from './oscal-assessment-results.js';
import { writeTarGz, type ArchiveInput } from './tar-archive.js';

/**
 * v5: every checkpoint the log signs states its signing time (a `signed-at` extension line, under
 * the log key) and the mapping ships the allowed checkpoint delay (`checkpointGap`), so that a
 * verifier recomputes checkpoint-gap findings offline. Otherwise as v4.
 * v4: the manifest names the log's switch to leaf format 2 (`leafFormat2From`); a filtered pack over
 * format-2 leaves carries the header of every leaf of its window's range (proofs/headers.jsonl) and
 * the full event only of those its filter selects (`coverage.kind = "headers"`), so a verifier sees
 * that nothing matching was withheld. v3: an unfiltered pack states the leaf range it covers
 * (`coverage`), holds every leaf in it (no interior gap) and proves the range's edges with the
 * neighbouring leaves (proofs/edges.jsonl), whose times lie outside the window. v2 packs (no
 * coverage) still verify, without completeness. v2 and v3 packs hold format-1 leaves only.
 */
export const PACK_FORMAT = 'custodian-evidence-pack/v5';
export const PACK_FORMAT_V4 = 'custodian-evidence-pack/v4';
export const PACK_FORMAT_V3 = 'custodian-evidence-pack/v3';
export const PACK_FORMATS_READ = ['custodian-evidence-pack/v2', PACK_FORMAT_V3, PACK_FORMAT_V4, PACK_FORMAT] as const;
/** Formats whose manifest names the log's switch to leaf format 2 (and may hold headers packs). */
export const PACK_FORMATS_WITH_HEADERS: readonly string[] = [PACK_FORMAT_V4, PACK_FORMAT];
export const PACK_PREDICATE_TYPE = 'https://custodian.dev/attestations/evidence-pack/v1';
export const PACK_FILES = {
  manifest: 'manifest.json',
  events: 'events.jsonl',
  leafSet: 'proofs/leaf-set.json',
  edges: 'proofs/edges.jsonl',
  headers: 'proofs/headers.jsonl',
  mapping: 'controls/mapping.json',
  consistency: 'proofs/consistency.jsonl',
  logKeys: 'keys/log.vkeys',
  attestationKey: 'keys/attestation.vkey',
  witnessKeys: 'keys/witness.vkeys',
  signingKeyPem: 'keys/attestation-key.pem',
  evidence: 'evidence.json',
  oscal: 'oscal/assessment-results.json',
  report: 'report.html',
  attestation: 'attestation.dsse.json',
} as const;
export const checkpointPath = (treeSize: number): string => `checkpoints/${String(treeSize).padStart(12, '0')}.checkpoint`;

/**
 * What the pack's events cover. `complete`: every leaf in [firstLeaf, endLeaf) is in events.jsonl,
 * in order; the leaf before (firstLeaf − 1, when firstLeaf > 0) occurred before the window and the
 * leaf at endLeaf (when endLeaf < the latest checkpoint's size) at or after its end; both are in
 * proofs/edges.jsonl, in that order, and in the leaf-set proof. Leaves in the range whose time is
 * outside the window (clocks of different writers) are included too and not counted as evidence.
 * `filtered`: only the events matching the scope's filter (completeness not provable in v3).
 */
export type PackCoverage =
  | { readonly kind: 'complete'; readonly firstLeaf: number; readonly endLeaf: number }
  /** v4, filtered: proofs/headers.jsonl holds the format-2 leaf of every index in [firstLeaf, endLeaf); events.jsonl the events those headers say the filter selects. */
  | { readonly kind: 'headers'; readonly firstLeaf: number; readonly endLeaf: number }
  /** Filtered, completeness not provable (the range holds format-1 leaves, or the control's rules look at payload paths headers do not carry). */
  | { readonly kind: 'filtered' };

export interface PackManifest {
  readonly format: (typeof PACK_FORMATS_READ)[number];
  /** v3 and later. */
  readonly coverage?: PackCoverage;
  /** v4: leaves from this index on are format 2 (headers), those below format 1; null: all format 1. */
  readonly leafFormat2From?: number | null;
  readonly packId: string;
  readonly createdAt: string;
  readonly exportedBy: { readonly subject: string; readonly issuer: string };
  readonly scope: EvidenceScope;
  readonly origin: string;
  readonly latestCheckpoint: { readonly treeSize: number; readonly rootHash: string; readonly path: string };
  readonly checkpoints: readonly string[];
  readonly counts: { readonly events: number; readonly sessions: number; readonly findings: number; readonly checkpoints: number; readonly notYetCheckpointed: number };
  readonly files: readonly { readonly path: string; readonly sha256: string; readonly bytes: number }[];
  readonly tool: { readonly name: string; readonly version: string };
}

export interface EvidencePackOptions {
  readonly store: EventStore;
  readonly state: EvidenceLogState;
  readonly catalogue: ControlCatalogue;
  readonly scope: EvidenceScope;
  /**
   * The key that attests the pack (DSSE). Not the log key: the log key stays with the projector,
   * which alone signs checkpoints (`ConfiguredEvidence.loadAttestationSigner`). The pack ships
   * its vkey (keys/attestation.vkey) and PEM; auditors pin it apart from the log keys.
   */
  readonly signer: NoteSigner;
  readonly exportedBy: Identity;
  readonly witnessKeys?: readonly string[];
  readonly maskingRules?: readonly string[];
  readonly maxCheckpointDelaySeconds?: number;
  readonly packId?: string;
  readonly now?: () => Date;
  readonly tool?: { readonly name: string; readonly version: string };
}

export interface EvidencePack {
  readonly packId: string;
  readonly bytes: Buffer;
  /** SHA-256 (hex) of the tar.gz. */
  readonly digest: string;
  readonly manifest: PackManifest;
  readonly report: EvidenceReport;
}

const b64 = (h: Uint8Array): string => Buffer.from(h).toString('base64');
const json = (value: unknown): Buffer => Buffer.from(`${JSON.stringify(value, null, 2)}\n`, 'utf8');

function micros(date: Date): string {
  return `${date.toISOString().slice(0, 23)}000Z`;
}

export async function buildEvidencePack(options: EvidencePackOptions): Promise<EvidencePack> {
  const { state } = options;
  const packId = options.packId ?? randomUUID();
  const createdAt = micros((options.now ?? (() => new Date()))());
  const tool = options.tool ?? { name: 'custodian', version: '0.1.0' };
  const all = await state.checkpoints();
  const latest = all[all.length - 1];
  if (!latest) throw new EvidenceError('EVIDENCE_NOT_CHECKPOINTED', 'the evidence log has no signed checkpoint yet: nothing can be proven');

  const accumulator = new EvidenceAccumulator({
    catalogue: options.catalogue,
    scope: options.scope,
    // The signed time when the checkpoint states one (what a verifier recomputes from), else the recorded one.
    checkpoints: all.map((c) => ({ treeSize: c.treeSize, signedAt: signedTimeOf(c) })),
    origin: state.origin,
    now: createdAt < options.scope.to ? createdAt : options.scope.to,
    ...(options.maskingRules ? { maskingRules: options.maskingRules } : {}),
    ...(options.maxCheckpointDelaySeconds !== undefined ? { maxCheckpointDelaySeconds: options.maxCheckpointDelaySeconds } : {}),
  });
  const scope = accumulator.scope;
  const complete = scope.identity === undefined && scope.connection === undefined && scope.control === undefined;
  const headerFrom = await state.leafFormatSwitch();
  // Events in scope as canonical envelopes in ~8 MiB chunks, their leaf indices, and the proven
  // leaves (events or headers, and edges) with their hashes in index order; views see every event.
  const events = new ChunkedLines();
  const headers = new ChunkedLines();
  const indices: number[] = [];
  const proven: { index: number; hash: Hash }[] = [];
  let coverage: PackCoverage = { kind: 'filtered' };
  const edges: Buffer[] = [];
  const range = complete || headerFrom !== undefined ? await completeRange(state, scope, latest.treeSize) : undefined;
  const controlRules = scope.control !== undefined ? options.catalogue.rules.filter((r) => r.controls.includes(scope.control!)) : undefined;
  // A filtered pack proves completeness with headers when every leaf it proves is a header (format 2)
  // and the filter can be decided on headers.
  const withHeaders = !complete && range !== undefined && headerFrom !== undefined && Math.max(range.begin - 1, 0) >= headerFrom && (controlRules === undefined || rulesDecidableOnHeaders(controlRules));
  if (complete || withHeaders) {
    // Every leaf of the range, edges proven by their neighbours.
    coverage = { kind: complete ? 'complete' : 'headers', firstLeaf: range!.begin, endLeaf: range!.end };
    const selection = withHeaders
      ? new HeaderSelection({ ...(scope.identity !== undefined ? { identity: scope.identity } : {}), ...(scope.connection !== undefined ? { connection: scope.connection } : {}), ...(controlRules ? { controlRules } : {}) }, instantKey(scope.from)!, instantKey(scope.to)!)
      : undefined;
    const edgeBefore = range!.begin - 1;
    if (edgeBefore >= 0) await addEdge(edgeBefore);
    let seen = 0;
    if (range!.end > range!.begin) {
      for await (const { event, leafIndex, leaf, line } of eventsOfLeaves(options.store, state, { fromIndex: range!.begin, belowIndex: range!.end })) {
        seen += 1;
        const added = accumulator.add({ event, leafIndex });
        proven.push({ index: leafIndex, hash: hashLeaf(leaf) });
        if (selection) {
          headers.push(leaf);
          const selected = selection.selects(JSON.parse(leaf.toString('utf8')) as EventHeader);
          // The views and the headers must select alike, or the verifier would find the pack incomplete.
          if (selected !== added) throw new EvidenceError('EVIDENCE_PACK_SELF_CHECK_FAILED', `the pack was not signed: event ${event.id} (leaf ${leafIndex}) is ${added ? '' : 'not '}in scope for the views but ${selected ? '' : 'not '}by its header`);
          if (!selected) continue;
        }
        events.push(line);
        indices.push(leafIndex);
      }
    }
    if (seen !== range!.end - range!.begin) throw new EvidenceError('EVIDENCE_LEAF_MISMATCH', `the log records ${range!.end - range!.begin} leaves in [${range!.begin}, ${range!.end}) but the store gave ${seen}: run \`custodian log verify\``);
    if (range!.end < latest.treeSize) await addEdge(range!.end);
  } else {
    for await (const { event, leafIndex, leaf, line } of eventsOfLeaves(options.store, state, { from: scope.from, to: scope.to, belowIndex: latest.treeSize })) {
      if (!accumulator.add({ event, leafIndex })) continue;
      events.push(line);
      indices.push(leafIndex);
      proven.push({ index: leafIndex, hash: hashLeaf(leaf) });
    }
  }
  async function addEdge(index: number): Promise<void> {
    for await (const { leaf } of eventsOfLeaves(options.store, state, { fromIndex: index, belowIndex: index + 1 })) {
      edges.push(leaf);
      proven.push({ index, hash: hashLeaf(leaf) });
    }
  }
  const report = accumulator.finish();
  // Events of the window after the latest checkpoint that this scope selects (not every event of the window).
  let notYetCheckpointed = 0;
  for await (const { event } of eventsOfLeaves(options.store, state, { from: scope.from, to: scope.to, fromIndex: latest.treeSize })) if (accumulator.selects(event)) notYetCheckpointed += 1;

  // Checkpoints from the first that covers an event in scope up to the latest, chained by consistency proofs.
  const firstIndex = proven[0]?.index ?? latest.treeSize - 1;
  const included = all.filter((c) => c.treeSize > firstIndex);
  const tree = await MerkleTree.open(state.treeStorage);
  const files: PackFile[] = [];
  const add = (path: string, data: Buffer | readonly Buffer[]): void => void files.push({ path, data, ...digestOf(data) });

  // The control mapping (v3), before the events: a verifier checks a control pack's events against it as they stream.
  add(
    PACK_FILES.mapping,
    json({
      controls: options.catalogue.controls.map((c) => ({ id: c.id, oscalId: c.oscalId })),
      rules: options.catalogue.rules.map((r) => ({ id: r.id, event: r.event, ...(r.where ? { where: r.where } : {}), controls: r.controls })),
      // Finding kinds and the controls each counts against: a verifier ties evidence.json's statuses to them.
      findings: Object.entries(options.catalogue.findings).map(([kind, d]) => ({ kind, severity: d.severity, controls: d.controls })),
      // The classification flags that make a command privileged: the command findings are recomputed from them.
      privilegedFlags: options.catalogue.privilegedFlags,
      // v4: the masking rules the views expected to fire: masking-rule-never-fired is recomputed from them.
      maskingRules: options.maskingRules ?? [],
      // v5: the allowed delay between an event and the checkpoint that first covers it, in whole microseconds.
      checkpointGap: { maxDelayMicroseconds: maxDelayMicros(options.maxCheckpointDelaySeconds ?? 300) },
    }),
  );
  add(PACK_FILES.events, events.chunks());
  const leafSet = await tree.leafSetProof(proven.map((p) => p.index), latest.treeSize);
  if (coverage.kind !== 'filtered') add(PACK_FILES.edges, Buffer.from(edges.map((l) => `${l.toString('utf8')}\n`).join(''), 'utf8'));
  if (coverage.kind === 'headers') add(PACK_FILES.headers, headers.chunks());
  add(
    PACK_FILES.leafSet,
    Buffer.from(
      `${JSON.stringify({ treeSize: leafSet.treeSize, rootHash: b64(latest.rootHash), events: indices.length, gaps: leafSet.gaps.map((g) => ({ begin: g.begin, end: g.end, hashes: g.hashes.map(b64) })) })}\n`,
      'utf8',
    ),
  );
  const cosignatures = await state.cosignatures();
  for (const c of included) add(checkpointPath(c.treeSize), Buffer.from(cosignedNote(c, cosignatures), 'utf8'));
  const consistency: string[] = [];
  const consistencyProofs: { size1: number; size2: number; hashes: Hash[] }[] = [];
  for (let i = 1; i < included.length; i += 1) {
    const proof = await tree.consistencyProof(included[i - 1]!.treeSize, included[i]!.treeSize);
    consistencyProofs.push({ size1: proof.size1, size2: proof.size2, hashes: [...proof.hashes] });
    consistency.push(canonicalJson({ fromSize: proof.size1, toSize: proof.size2, hashes: proof.hashes.map(b64) }));
  }
  add(PACK_FILES.consistency, Buffer.from(consistency.map((l) => `${l}\n`).join(''), 'utf8'));
  const logKeys = await state.keys();
  // Nothing is attested that does not verify: the proofs served by the log's database are checked
  // against the signed checkpoints before the attestation key signs (issue 20 item 8).
  checkBeforeSigning({ origin: state.origin, logKeys, included, leafSet, leaves: proven.map((p) => p.hash), consistency: consistencyProofs });
  add(PACK_FILES.logKeys, Buffer.from(logKeys.map((k) => `${k}\n`).join(''), 'utf8'));
  add(PACK_FILES.attestationKey, Buffer.from(`${options.signer.vkey}\n`, 'utf8'));
  if (options.witnessKeys && options.witnessKeys.length > 0) add(PACK_FILES.witnessKeys, Buffer.from(options.witnessKeys.map((k) => `${k.trim()}\n`).join(''), 'utf8'));
  add(PACK_FILES.signingKeyPem, Buffer.from(ed25519PublicKeyPem(parseVerifierKey(options.signer.vkey).publicKey), 'utf8'));
  add(PACK_FILES.evidence, json(report));

  const describe = (path: string): string =>
    path === PACK_FILES.events
      ? 'Events in scope, RFC 8785 canonical JSON, one per line (each line is the Merkle leaf).'
      : path === PACK_FILES.headers
        ? 'The header (leaf format 2: envelope without payload, payload SHA-256, selector values) of every leaf of the window\'s range, RFC 8785 canonical JSON, one per line (each line is the Merkle leaf): proves no event matching the filter was left out.'
      : path === PACK_FILES.edges
        ? 'The leaves just before and after the range of a complete pack (proving the window\'s edges), RFC 8785 canonical JSON, one per line.'
        : path === PACK_FILES.leafSet
        ? 'Leaf-set proof: the subtree roots of every gap between the events, so that the events and the gaps recompute the latest checkpoint\'s root (RFC 6962 compact ranges).'
        : path === PACK_FILES.consistency
          ? 'RFC 9162 consistency proofs between consecutive checkpoints.'
          : path.startsWith('checkpoints/')
            ? 'C2SP signed checkpoint (signed note), with witness cosignatures when any.'
            : path === PACK_FILES.mapping
              ? 'The control mapping the views used: event rules (type and conditions) and the controls each evidences.'
            : path === PACK_FILES.evidence
              ? 'Evidence views: per control counts, sample sessions, findings.'
              : path.startsWith('keys/')
                ? 'Public keys: log vkeys (C2SP signed-note format; they sign checkpoints), witness vkeys, the pack attestation key (vkey and PEM; it signs attestation.dsse.json).'
                : path;
  const refs: PackFileRef[] = files.map((f) => ({ path: f.path, sha256: f.sha256, mediaType: f.path.endsWith('.json') ? 'application/json' : f.path.endsWith('.pem') ? 'application/x-pem-file' : 'text/plain', description: describe(f.path) }));
  const oscal = buildAssessmentResults({ packId, createdAt, report, catalogue: options.catalogue, origin: state.origin, treeSize: latest.treeSize, rootHash: b64(latest.rootHash), files: refs, tool });
  add(PACK_FILES.oscal, json(oscal));
  const witnesses = [...new Set(cosignatures.filter((c) => included.some((i) => i.treeSize === c.treeSize)).map((c) => c.witness))];
  add(
    PACK_FILES.report,
    Buffer.from(
      renderHtmlReport({ packId, createdAt, exportedBy: options.exportedBy.subject, origin: state.origin, treeSize: latest.treeSize, rootHash: b64(latest.rootHash), keyIds: latest.keyIds, checkpoints: included.length, witnesses, report }),
      'utf8',
    ),
  );

  const manifest: PackManifest = {
    format: PACK_FORMAT,
    coverage,
    leafFormat2From: headerFrom ?? null,
    packId,
    createdAt,
    exportedBy: { subject: options.exportedBy.subject, issuer: options.exportedBy.issuer },
    scope,
    origin: state.origin,
    latestCheckpoint: { treeSize: latest.treeSize, rootHash: b64(latest.rootHash), path: checkpointPath(latest.treeSize) },
    checkpoints: included.map((c: StoredCheckpoint) => checkpointPath(c.treeSize)),
    counts: { events: indices.length, sessions: report.totals.sessions, findings: report.findings.length, checkpoints: included.length, notYetCheckpointed },
    files: files.map((f) => ({ path: f.path, sha256: f.sha256, bytes: f.bytes })),
    tool,
  };
  add(PACK_FILES.manifest, json(manifest));

  const statement: InTotoStatement = {
    _type: 'https://in-toto.io/Statement/v1',
    subject: files.map((f) => ({ name: f.path, digest: { sha256: f.sha256 } })),
    predicateType: PACK_PREDICATE_TYPE,
    predicate: { packId, origin: state.origin, treeSize: latest.treeSize, rootHash: b64(latest.rootHash), scope, createdAt },
  };
  add(PACK_FILES.attestation, json(signStatement(statement, options.signer, formatKeyId(options.signer.keyId))));
  // Reading order for people: manifest first.
  const ordered: ArchiveInput[] = [files.find((f) => f.path === PACK_FILES.manifest)!, ...files.filter((f) => f.path !== PACK_FILES.manifest)];
  const bytes = await writeTarGz(ordered, Math.floor(Date.parse(createdAt) / 1000));
  return { packId, bytes, digest: sha256Hex(bytes), manifest, report };
}

/** A checkpoint's signing time: the one its signed note states (v5), else the time the log recorded. */
function signedTimeOf(c: StoredCheckpoint): string {
  return checkpointSignedAt(parseCheckpoint(parseNote(c.note).text)) ?? c.signedAt;
}

/**
 * The leaf range of a complete pack: from the first to the last leaf in the window (below the
 * latest checkpoint), widened until the leaf before it occurred before the window and the leaf
 * after it at or after its end (writers' clocks may put a leaf slightly out of order). An empty
 * window is the empty range at the first leaf at or after its end.
 */
async function completeRange(state: EvidenceLogState, scope: EvidenceScope, treeSize: number): Promise<{ begin: number; end: number }> {
  const inWindow = { from: scope.from, to: scope.to, belowIndex: treeSize, limit: 1 };
  const first = (await state.findLeaves(inWindow))[0];
  const last = (await state.findLeaves({ ...inWindow, descending: true }))[0];
  let begin: number;
  let end: number;
  if (first && last) {
    begin = first.leafIndex;
    end = last.leafIndex + 1;
  } else {
    const after = (await state.findLeaves({ from: scope.to, belowIndex: treeSize, limit: 1 }))[0];
    begin = end = after?.leafIndex ?? treeSize;
  }
  const at = async (index: number): Promise<string> => (await state.leaves(index, index + 1))[0]!.occurredAt;
  while (begin > 0 && (await at(begin - 1)) >= scope.from) begin -= 1;
  while (end < treeSize && (await at(end)) < scope.to) end += 1;
  return { begin, end };
}

/**
 * Checks what is about to be attested against the signatures that make it evidence: every
 * included checkpoint opens with the log's keys and states the root the log recorded, the events
 * and the gaps recompute the latest root, and each consistency proof holds. Throws
 * EVIDENCE_PACK_SELF_CHECK_FAILED (with what failed) instead of signing.
 */
function checkBeforeSigning(input: { origin: string; logKeys: readonly string[]; included: readonly StoredCheckpoint[]; leafSet: LeafSetProof; leaves: Iterable<Hash>; consistency: readonly { size1: number; size2: number; hashes: Hash[] }[] }): void {
  const fail = (what: string, error?: unknown): never => {
    throw new EvidenceError('EVIDENCE_PACK_SELF_CHECK_FAILED', `the pack was not signed: ${what}${error ? `: ${error instanceof Error ? error.message : String(error)}` : ''}; run \`custodian log verify\``, error ? { cause: error } : undefined);
  };
  const verifiers = input.logKeys.map((k) => new Ed25519NoteVerifier(k));
  const roots = new Map<number, Hash>();
  for (const c of input.included) {
    let root: Hash;
    try {
      root = openCheckpoint(c.note, input.origin, verifiers).checkpoint.rootHash;
    } catch (error) {
      return fail(`the checkpoint of size ${c.treeSize} does not verify with the log's keys`, error);
    }
    if (!hashesEqual(root, c.rootHash)) fail(`the checkpoint of size ${c.treeSize} signs another root than the log recorded`);
    roots.set(c.treeSize, root);
  }
  const latestRoot = roots.get(input.leafSet.treeSize) ?? fail(`the latest checkpoint (size ${input.leafSet.treeSize}) is not in the pack`);
  try {
    const verifier = new LeafSetProofVerifier(input.leafSet);
    for (const leaf of input.leaves) verifier.append(leaf);
    verifier.finish(latestRoot);
  } catch (error) {
    fail(`the events and the leaf-set proof do not recompute the signed root of size ${input.leafSet.treeSize}`, error);
  }
  for (const p of input.consistency) {
    try {
      verifyConsistency(p.size1, p.size2, p.hashes, roots.get(p.size1)!, roots.get(p.size2)!);
    } catch (error) {
      fail(`the consistency proof from size ${p.size1} to ${p.size2} does not hold`, error);
    }
  }
}

interface PackFile extends ArchiveInput {
  readonly sha256: string;
  readonly bytes: number;
}

function digestOf(data: Buffer | readonly Buffer[]): { sha256: string; bytes: number } {
  const hash = createHash('sha256');
  let bytes = 0;
  for (const chunk of Buffer.isBuffer(data) ? [data] : data) {
    hash.update(chunk);
    bytes += chunk.length;
  }
  return { sha256: hash.digest('hex'), bytes };
}

/** Lines gathered into ~8 MiB chunks: a million small buffers would cost more than the bytes. */
class ChunkedLines {
  static readonly CHUNK = 8 * 1024 * 1024;
  readonly #done: Buffer[] = [];
  #current = Buffer.alloc(0);
  #used = 0;

  push(line: Buffer): void {
    const need = line.length + 1;
    if (this.#used + need > this.#current.length) {
      this.#seal();
      this.#current = Buffer.allocUnsafe(Math.max(ChunkedLines.CHUNK, need));
    }
    line.copy(this.#current, this.#used);
    this.#current[this.#used + line.length] = 0x0a;
    this.#used += need;
  }

  chunks(): Buffer[] {
    this.#seal();
    return this.#done;
  }

  #seal(): void {
    if (this.#used > 0) this.#done.push(this.#current.subarray(0, this.#used));
    this.#current = Buffer.alloc(0);
    this.#used = 0;
  }
}
