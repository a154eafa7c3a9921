// Interop with implementations no one at Custodian wrote: tools/tlog-verify-go checks our signed
// checkpoints, cosignatures, proofs and tlog-proof files with golang.org/x/mod/sumdb/note,
// github.com/transparency-dev/merkle and github.com/transparency-dev/formats. The binary is built
// once per source hash and cached under ~/.cache/custodian.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { CheckpointSigner, type SignedCheckpoint } from './checkpoint-signer.js';
import { Ed25519CosignatureSigner } from './cosignature.js';
import { MemoryTreeStorage } from './memory-tree-storage.js';
import { MerkleTree } from './merkle-tree.js';
import { Ed25519NoteSigner } from './note-keys.js';
import { parseNote, signNote } from './signed-note.js';
import { formatCheckpoint } from './checkpoint.js';
import { testLeaves } from './testing/reference-tree.js';
import { formatTlogProof } from './tlog-proof.js';

const TOOL_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '../../../../tools/tlog-verify-go');
const ORIGIN = 'custodian.example/evidence/interop';

function findGo(): string | undefined {
  for (const candidate of ['go', '/usr/local/go/bin/go', '/usr/lib/go/bin/go']) {
    const probe = spawnSync(candidate, ['version'], { encoding: 'utf8' });
    if (probe.status === 0) return candidate;
  }
  return undefined;
}

const go = findGo();
if (!go) console.warn('go-interop: skipped — no Go toolchain on PATH or in /usr/local/go; install Go ≥ 1.26 to run the interop checks');

/** Builds the Go verifier, or reuses the binary cached for this exact source and Go version. */
function buildVerifier(goBinary: string): string {
  const version = spawnSync(goBinary, ['version'], { encoding: 'utf8' }).stdout.trim();
  const hash = createHash('sha256').update(version);
  for (const file of ['main.go', 'header.go', 'pack.go', 'go.mod', 'go.sum']) hash.update(file).update(readFileSync(join(TOOL_DIR, file)));
  const dir = join(homedir(), '.cache', 'custodian', 'tlog-verify-go', hash.digest('hex').slice(0, 32));
  const binary = join(dir, 'tlog-verify-go');
  if (existsSync(binary)) return binary;
  mkdirSync(dir, { recursive: true });
  const partial = `${binary}.${process.pid}.partial`;
  // -mod=readonly: go.sum is the committed record of what the module proxy served; never rewrite it here.
  const built = spawnSync(goBinary, ['build', '-mod=readonly', '-o', partial, '.'], { cwd: TOOL_DIR, encoding: 'utf8', env: { ...process.env, GOFLAGS: '-buildvcs=false' } });
  if (built.status !== 0) throw new Error(`go build of ${TOOL_DIR} failed (status ${built.status}):\n${built.stderr}`);
  renameSync(partial, binary);
  return binary;
}

interface ToolResult {
  readonly exitCode: number;
  readonly results: readonly { check: string; ok: boolean; error?: string }[];
}

function runVerifier(binary: string, request: object): ToolResult {
  const dir = mkdtempSync(join(tmpdir(), 'tlog-interop-'));
  try {
    const file = join(dir, 'request.json');
    writeFileSync(file, JSON.stringify(request));
    const run = spawnSync(binary, [file], { encoding: 'utf8' });
    if (run.status !== 0 && run.status !== 1) throw new Error(`tlog-verify-go exited ${run.status}: ${run.stderr}`);
    return { exitCode: run.status, results: (JSON.parse(run.stdout) as { results: ToolResult['results'] }).results };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const b64 = (bytes: Uint8Array): string => Buffer.from(bytes).toString('base64');

describe.skipIf(!go)('interop with Go reference implementations (tools/tlog-verify-go)', () => {
  let binary: string;
  let vkey: string;
  let witnessVkey: string;
  let logKey: Ed25519NoteSigner;
  let tree: MerkleTree;
  let leaves: Buffer[];
  const signed: SignedCheckpoint[] = [];
  // The request built from our artifacts, as an auditor's script would feed it.
  let request: {
    origin: string;
    logVkey: string;
    witnessVkeys: string[];
    checkpoints: string[];
    inclusion: { checkpoint: number; index: number; leaf: string; proof: string[] }[];
    consistency: { from: number; to: number; proof: string[] }[];
    tlogProofs: { text: string; leaf: string }[];
    leafSets: { checkpoint: number; leaves: string[] }[];
  };

  beforeAll(async () => {
    binary = buildVerifier(go!);
    const generated = Ed25519NoteSigner.generate(ORIGIN);
    logKey = generated.signer;
    vkey = generated.vkey;
    const witness = Ed25519CosignatureSigner.generate('witness.example/w1', () => 1_760_000_000);
    witnessVkey = witness.vkey;
    console.log(`interop: log vkey ${vkey}`);
    console.log(`interop: witness vkey ${witnessVkey}`);

    const checkpointSigner = new CheckpointSigner({ origin: ORIGIN, signer: logKey });
    tree = await MerkleTree.open(new MemoryTreeStorage());
    leaves = testLeaves(1100, 'custodian-event');
    const sizes = [1, 2, 3, 8, 37, 64, 65, 1000, 1100];
    for (const size of sizes) {
      await tree.appendLeaves(leaves.slice(tree.size, size));
      const checkpoint = await checkpointSigner.signTree(tree, size === 37 ? ['custodian-extension 37'] : []);
      // Each checkpoint is also cosigned by a witness (cosignature/v1).
      const { text, signatures } = parseNote(checkpoint.note);
      signed.push({ checkpoint: checkpoint.checkpoint, note: signNote(text, [witness.signer], signatures) });
    }

    request = { origin: ORIGIN, logVkey: vkey, witnessVkeys: [witnessVkey], checkpoints: signed.map((s) => s.note), inclusion: [], consistency: [], tlogProofs: [], leafSets: [] };
    for (const [c, s] of signed.entries()) {
      const size = s.checkpoint.size;
      for (const index of new Set([0, size - 1, Math.floor(size / 2), Math.floor(size / 3)])) {
        const proof = await tree.inclusionProof(index, size);
        request.inclusion.push({ checkpoint: c, index, leaf: b64(leaves[index]!), proof: proof.hashes.map(b64) });
      }
      if (size <= 100) request.leafSets.push({ checkpoint: c, leaves: leaves.slice(0, size).map(b64) });
    }
    for (let from = 0; from < signed.length; from += 1) {
      for (let to = from; to < signed.length; to += 1) {
        const proof = await tree.consistencyProof(signed[from]!.checkpoint.size, signed[to]!.checkpoint.size);
        request.consistency.push({ from, to, proof: proof.hashes.map(b64) });
      }
    }
    const last = signed.length - 1;
    for (const index of [0, 513, 1099]) {
      const proof = await tree.inclusionProof(index, 1100);
      request.tlogProofs.push({ text: formatTlogProof({ index, hashes: [...proof.hashes], checkpoint: signed[last]!.note, extra: Buffer.from(`event ${index}`) }), leaf: b64(leaves[index]!) });
    }
  });

  it('accepts every checkpoint, cosignature, inclusion and consistency proof, tlog-proof and recomputed root we produce', () => {
    const { exitCode, results } = runVerifier(binary, request);
    const failed = results.filter((r) => !r.ok);
    expect(failed).toEqual([]);
    expect(exitCode).toBe(0);
    const count = (prefix: string) => results.filter((r) => r.check.startsWith(prefix)).length;
    expect(count('checkpoint[')).toBe(signed.length);
    expect(count('cosignature[')).toBe(signed.length);
    expect(count('inclusion[')).toBe(request.inclusion.length);
    expect(count('consistency[')).toBe((signed.length * (signed.length + 1)) / 2);
    expect(count('tlogProof[')).toBe(3);
    expect(count('leafSet[')).toBe(request.leafSets.length);
  });

  it('rejects each kind of tampering', async () => {
    const flip = (text: string): string => {
      const bytes = Buffer.from(text, 'base64');
      bytes[0]! ^= 0x01;
      return bytes.toString('base64');
    };
    const notes = [...request.checkpoints];
    // Checkpoint 4 (size 37) now claims size 38: the log signature no longer matches.
    notes[4] = notes[4]!.replace(`\n37\n`, '\n38\n');
    // Checkpoint 3's witness cosignature claims another time.
    const witnessLine = notes[3]!.split('\n').find((l) => l.startsWith('\u2014 witness.example/w1 '))!;
    const raw = Buffer.from(witnessLine.split(' ')[2]!, 'base64');
    raw.writeBigUInt64BE(1_760_000_001n, 4);
    notes[3] = notes[3]!.replace(witnessLine, `\u2014 witness.example/w1 ${raw.toString('base64')}`);

    // A fork: the same key, misused outside CheckpointSigner, signs a tree where event 5 was rewritten.
    const forkLeaves = leaves.slice(0, 1100);
    forkLeaves[5] = Buffer.from('rewritten event');
    const forkBody = (root: Buffer) => formatCheckpoint({ origin: ORIGIN, size: 1100, rootHash: root, extensions: [] });

    const tampered = {
      ...request,
      checkpoints: notes,
      inclusion: [
        { ...request.inclusion[20]!, proof: [flip(request.inclusion[20]!.proof[0]!), ...request.inclusion[20]!.proof.slice(1)] },
        { ...request.inclusion[21]!, index: request.inclusion[21]!.index + 1 },
        { ...request.inclusion[22]!, leaf: b64(Buffer.from('never logged')) },
        { ...request.inclusion[23]!, proof: request.inclusion[23]!.proof.slice(0, -1) },
      ],
      consistency: [
        { from: 5, to: 8, proof: request.consistency.find((c) => c.from === 5 && c.to === 8)!.proof.slice(0, -1) },
        { from: 5, to: 8, proof: [...request.consistency.find((c) => c.from === 5 && c.to === 8)!.proof, request.inclusion[0]!.proof[0] ?? b64(Buffer.alloc(32))] },
        { from: 6, to: 7, proof: request.consistency.find((c) => c.from === 5 && c.to === 7)!.proof },
      ],
      tlogProofs: [{ ...request.tlogProofs[1]!, text: request.tlogProofs[1]!.text.replace('index 513', 'index 514') }],
      leafSets: [{ checkpoint: 5, leaves: request.leafSets.find((s) => s.checkpoint === 5)!.leaves.map((l, i) => (i === 9 ? b64(Buffer.from('x')) : l)) }],
    };
    const fork = await MerkleTree.open(new MemoryTreeStorage());
    await fork.appendLeaves(forkLeaves);
    const forkNote = signNote(forkBody(fork.root), [logKey]);
    const forkProof = await fork.consistencyProof(1000, 1100);
    const forkIndex = tampered.checkpoints.push(forkNote) - 1;
    tampered.consistency.push({ from: 7, to: forkIndex, proof: forkProof.hashes.map(b64) });

    const { exitCode, results } = runVerifier(binary, tampered);
    expect(exitCode).toBe(1);
    const outcome = Object.fromEntries(results.map((r) => [r.check, r.ok]));
    expect(outcome).toMatchObject({
      'checkpoint[4]': false,
      'cosignature[3][0]': false,
      'inclusion[0]': false,
      'inclusion[1]': false,
      'inclusion[2]': false,
      'inclusion[3]': false,
      'consistency[0]': false,
      'consistency[1]': false,
      'consistency[2]': false,
      // The fork is well signed (the key was misused) but cannot be proven consistent with what was published.
      [`checkpoint[${forkIndex}]`]: true,
      'consistency[3]': false,
      'tlogProof[0]': false,
      'leafSet[0]': false,
    });
    // Everything not tampered still passes.
    for (const check of ['logVkey', 'checkpoint[0]', 'checkpoint[3]', 'cosignature[5][0]', 'cosignature[0][0]']) expect(outcome[check], check).toBe(true);
  });
});
