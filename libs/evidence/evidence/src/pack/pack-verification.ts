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
  ed25519PublicKeyObject,
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
import type { CustodyLine } from './event-line-check.js';
import { PACK_FILES, PACK_FORMAT, PACK_PREDICATE_TYPE, type PackManifest } from './evidence-pack.js';
import { readPack, type ReadPack } from './pack-reader.js';

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
  readonly ok: boolean;
  readonly checks: readonly PackCheck[];
  readonly firstFailure?: PackCheck;
  readonly keysPinned: boolean;
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
  const keysPinned = (options.trustedLogKeys?.length ?? 0) > 0;
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
    const files: ReadPack = await step('archive', () =>
      readPack(source, {
        ...(options.workers !== undefined ? { workers: options.workers } : {}),
        ...(options.chunkBytes !== undefined ? { chunkBytes: options.chunkBytes } : {}),
        ...(options.onProgress ? { onProgress: options.onProgress } : {}),
        onCustodyLines: (chunk, lines) => custody.check(chunk, lines),
      }),
    );
    for (const required of [PACK_FILES.manifest, PACK_FILES.events, PACK_FILES.leafSet, PACK_FILES.consistency, PACK_FILES.logKeys, PACK_FILES.oscal, PACK_FILES.report, PACK_FILES.attestation]) {
      if (!files.has(required)) fail('archive', `the pack has no ${required}`);
    }
    pass('archive', `${files.paths.length} files`);
    const digestOf = (path: string): string => files.digest(path)!;
    const text = (path: string): string => files.file(path)!.toString('utf8');

    // Keys: pinned by the auditor, or (self-consistency only) the pack's own.
    const logVkeys = await step('keys', () => (keysPinned ? [...options.trustedLogKeys!] : text(PACK_FILES.logKeys).split('\n').filter((l) => l.trim().length > 0)).map((k) => k.trim()));
    const logVerifiers = await step('keys', () => logVkeys.map((k) => new Ed25519NoteVerifier(k)));
    const logPublicKeys: KeyObject[] = logVkeys.map((k) => ed25519PublicKeyObject(parseVerifierKey(k).publicKey));
    pass('keys', keysPinned ? `${logVkeys.length} pinned log key(s)` : `${logVkeys.length} log key(s) taken from the pack itself (not pinned: pass --key to check who signed it)`);

    // 1. The attestation: DSSE signature by a log key, in-toto Statement v1 over every other file.
    const { statement, keyIndex } = await step('attestation signature', () => openStatement(text(PACK_FILES.attestation), logPublicKeys));
    if (statement.predicateType !== PACK_PREDICATE_TYPE) fail('attestation signature', `predicateType is ${JSON.stringify(statement.predicateType)}, expected ${PACK_PREDICATE_TYPE}`);
    pass('attestation signature', `DSSE (in-toto Statement v1) signed by ${logVerifiers[keyIndex]!.name}+${logVkeys[keyIndex]!.split('+')[1]}`);

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
    if (manifest.format !== PACK_FORMAT) fail('manifest', `format ${JSON.stringify(manifest.format)} is not ${PACK_FORMAT}`);
    for (const f of manifest.files) if (!files.has(f.path) || digestOf(f.path) !== f.sha256) fail('manifest', `manifest entry ${f.path} does not match the file`);
    pass('manifest', `pack ${manifest.packId}, scope ${manifest.scope.from} → ${manifest.scope.to}`);

    // 3. Checkpoints: each signed by a log key, for the manifest's origin; witness cosignatures.
    const origin = manifest.origin;
    const checkpoints: SignedCheckpoint[] = [];
    for (const path of manifest.checkpoints) {
      if (!files.has(path)) fail('checkpoints', `${path} is listed but missing`);
      checkpoints.push(await step('checkpoints', () => openCheckpoint(files.file(path)!, origin, logVerifiers)));
    }
    if (checkpoints.length === 0) fail('checkpoints', 'the pack has no checkpoint');
    for (let i = 1; i < checkpoints.length; i += 1) if (checkpoints[i]!.checkpoint.size <= checkpoints[i - 1]!.checkpoint.size) fail('checkpoints', 'checkpoints are not in increasing size');
    const latest = checkpoints[checkpoints.length - 1]!;
    if (latest.checkpoint.size !== manifest.latestCheckpoint.treeSize || latest.checkpoint.rootHash.toString('base64') !== manifest.latestCheckpoint.rootHash) fail('checkpoints', 'the latest checkpoint is not the one the manifest names');
    pass('checkpoints', `${checkpoints.length} checkpoint signature(s) verified; latest: size ${latest.checkpoint.size}, root ${latest.checkpoint.rootHash.toString('base64')}`);
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
    if (proof.leafCount !== manifest.counts.events) fail('leaf-set proof', `the proof leaves room for ${proof.leafCount} events but the manifest counts ${manifest.counts.events}`);
    const scope = manifest.scope;
    const total = manifest.counts.events;
    let count = 0;
    for (const { count: lines, leafHashes, failure } of files.events ?? []) {
      for (let k = 0; k < lines; k += 1) {
        if (proof.nextIndex() === undefined) fail('leaf-set proof', `event ${count + 1}: the pack holds more events than the proof and manifest (${total})`);
        proof.append(Buffer.from(leafHashes.buffer, leafHashes.byteOffset + 32 * k, 32));
        count += 1;
      }
      if (failure) {
        const index = proof.nextIndex();
        const where = `event ${count + 1}${index === undefined ? '' : ` (leaf ${index})`}`;
        if (failure.kind === 'not-json') fail('leaf-set proof', `${where} is not a JSON object`);
        if (failure.kind === 'outside-period') fail('leaf-set proof', `${where} occurred at ${failure.occurredAt}, outside the pack's scope`);
        fail('leaf-set proof', `${where} is not an event of ${scope.identity ?? '?'}, the pack's scope`);
      }
    }
    if (count !== total) fail('leaf-set proof', `${count} events but the manifest counts ${total}`);
    await step('leaf-set proof', () => {
      try {
        proof.finish(latest.checkpoint.rootHash);
      } catch (error) {
        throw new Error(
          `the events and the proof's gaps do not recompute the root of checkpoint ${latest.checkpoint.size}: an event was modified, forged, dropped, reordered or moved (${error instanceof Error ? error.message : String(error)}); \`custodian log verify\` on the log locates it`,
        );
      }
    });
    pass('leaf-set proof', `${count} event(s) proven included in checkpoint ${latest.checkpoint.size} (${leafSet.gaps.length} gap(s), ${leafSet.gaps.reduce((n, g) => n + g.hashes.length, 0)} hashes)`);

    // 6. Every custody statement: DSSE signature by the gateway key (pinned or carried), statement = event.
    custodySummary = custody.summary();
    const custodyFailure = custody.firstFailure(files.events ?? []);
    if (custodyFailure) fail('custody statements', custodyFailure);
    pass('custody statements', custody.describe());

    // 7. The OSCAL document's structure, and its evidence links into the pack by digest.
    await step('oscal', () => checkOscal(text(PACK_FILES.oscal), files, digestOf));
    pass('oscal', 'assessment-results structure and evidence digests verified');
  } catch (error) {
    if (!(error instanceof CheckFailed)) throw error;
  }
  const firstFailure = checks.find((c) => !c.ok);
  return { ok: firstFailure === undefined, checks, ...(firstFailure ? { firstFailure } : {}), keysPinned, ...(manifest ? { manifest } : {}), ...(custodySummary ? { custody: custodySummary } : {}) };
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
