import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { CheckpointSigner, openCheckpoint } from './checkpoint-signer.js';
import { CheckpointInconsistentError } from './errors.js';
import { MemoryTreeStorage } from './memory-tree-storage.js';
import { MerkleTree } from './merkle-tree.js';
import { Ed25519NoteSigner, Ed25519NoteVerifier } from './note-keys.js';
import { testLeaves } from './testing/reference-tree.js';

const ORIGIN = 'custodian.example/evidence/test';

async function treeWith(leaves: Buffer[]): Promise<MerkleTree> {
  const tree = await MerkleTree.open(new MemoryTreeStorage());
  if (leaves.length > 0) await tree.appendLeaves(leaves);
  return tree;
}

describe('CheckpointSigner', () => {
  it('signs a growing tree, each checkpoint verifiable with the vkey alone', async () => {
    const { signer: key, vkey } = Ed25519NoteSigner.generate(ORIGIN);
    const signer = new CheckpointSigner({ origin: ORIGIN, signer: key });
    const tree = await treeWith(testLeaves(10));
    const first = await signer.signTree(tree);
    await tree.appendLeaves(testLeaves(7, 'more'));
    const second = await signer.signTree(tree, ['custodian-events 17']);
    expect(second.note.startsWith(`${ORIGIN}\n17\n${tree.root.toString('base64')}\ncustodian-events 17\n\n\u2014 ${ORIGIN} `)).toBe(true);
    for (const signed of [first, second]) {
      const opened = openCheckpoint(signed.note, ORIGIN, [new Ed25519NoteVerifier(vkey)]);
      expect(opened.checkpoint).toEqual(signed.checkpoint);
    }
    expect(signer.lastSigned?.checkpoint.size).toBe(17);
  });

  it('refuses (CHECKPOINT_INCONSISTENT) a checkpoint that rewrites or forks what it signed, and a smaller size', async () => {
    const signer = new CheckpointSigner({ origin: ORIGIN, signer: Ed25519NoteSigner.generate(ORIGIN).signer });
    const honest = await treeWith(testLeaves(20));
    await signer.signTree(honest);

    // A history where entry 5 was rewritten, then grown: its proof cannot tie it to the signed root.
    const rewritten = testLeaves(30);
    rewritten[5] = Buffer.from('rewritten');
    const fork = await treeWith(rewritten);
    const forkProof = await fork.consistencyProof(20, 30);
    const attempt = () => signer.sign({ size: 30, rootHash: fork.root }, forkProof.hashes);
    expect(attempt).toThrow(CheckpointInconsistentError);
    expect(attempt).toThrow(expect.objectContaining({ code: 'CHECKPOINT_INCONSISTENT' }));
    // …nor with no proof, nor with the honest tree's proof.
    expect(() => signer.sign({ size: 30, rootHash: fork.root }, [])).toThrow(expect.objectContaining({ code: 'CHECKPOINT_INCONSISTENT' }));
    await honest.appendLeaves(testLeaves(10, 'honest-more'));
    const honestProof = await honest.consistencyProof(20, 30);
    expect(() => signer.sign({ size: 30, rootHash: fork.root }, honestProof.hashes)).toThrow(expect.objectContaining({ code: 'CHECKPOINT_INCONSISTENT' }));
    // Shrinking, or another root at the same size.
    const root19 = await honest.rootAt(19);
    const forkRoot20 = await fork.rootAt(20);
    expect(() => signer.sign({ size: 19, rootHash: root19 }, [])).toThrow(expect.objectContaining({ code: 'CHECKPOINT_INCONSISTENT' }));
    expect(() => signer.sign({ size: 20, rootHash: forkRoot20 }, [])).toThrow(expect.objectContaining({ code: 'CHECKPOINT_INCONSISTENT' }));
    // The refusals did not move the signer: the honest continuation is still accepted.
    expect(signer.lastSigned?.checkpoint.size).toBe(20);
    const next = signer.sign({ size: 30, rootHash: honest.root }, honestProof.hashes);
    expect(next.checkpoint.size).toBe(30);
    // Re-signing the same head needs no proof.
    expect(signer.sign({ size: 30, rootHash: honest.root }, []).checkpoint.size).toBe(30);
  });

  it('resumes from its last signed note after a restart, and still refuses forks of it', async () => {
    const { signer: key, skey } = Ed25519NoteSigner.generate(ORIGIN);
    const tree = await treeWith(testLeaves(8));
    const before = new CheckpointSigner({ origin: ORIGIN, signer: key });
    const last = await before.signTree(tree);

    const after = new CheckpointSigner({ origin: ORIGIN, signer: Ed25519NoteSigner.fromSkey(skey), lastSigned: last.note });
    expect(after.lastSigned?.checkpoint).toEqual(last.checkpoint);
    const fork = await treeWith([...testLeaves(7), Buffer.from('other'), ...testLeaves(2, 'x')]);
    await expect(after.signTree(fork)).rejects.toMatchObject({ code: 'CHECKPOINT_INCONSISTENT' });
    await tree.appendLeaves(testLeaves(2, 'x'));
    expect((await after.signTree(tree)).checkpoint.size).toBe(10);

    // A state file edited to point elsewhere is refused: it must carry one of the log's signatures.
    const forged = last.note.replace(`\n8\n`, '\n7\n');
    expect(() => new CheckpointSigner({ origin: ORIGIN, signer: key, lastSigned: forged })).toThrow(expect.objectContaining({ code: 'NOTE_SIGNATURE_INVALID' }));
    const otherOrigin = new CheckpointSigner({ origin: 'other.example/log', signer: Ed25519NoteSigner.generate('other.example/log').signer });
    const foreign = await otherOrigin.signTree(tree);
    expect(() => new CheckpointSigner({ origin: ORIGIN, signer: key, lastSigned: foreign.note })).toThrow(expect.objectContaining({ code: 'NOTE_UNVERIFIED' }));
  });

  it('rotates keys: signs with the current key only, verifies with any known key, refuses a reused key ID', async () => {
    const old = Ed25519NoteSigner.generate(ORIGIN);
    const next = Ed25519NoteSigner.generate(ORIGIN);
    expect(next.signer.keyId).not.toBe(old.signer.keyId);
    const signer = new CheckpointSigner({ origin: ORIGIN, signer: old.signer });
    const tree = await treeWith(testLeaves(4));
    const before = await signer.signTree(tree);
    signer.rotate(next.signer);
    await tree.appendLeaves(testLeaves(4, 'after'));
    const after = await signer.signTree(tree);

    expect(after.note.match(/\n\u2014 /g)).toHaveLength(1);
    expect(openCheckpoint(after.note, ORIGIN, [new Ed25519NoteVerifier(next.vkey)]).checkpoint.size).toBe(8);
    expect(() => openCheckpoint(after.note, ORIGIN, [new Ed25519NoteVerifier(old.vkey)])).toThrow(expect.objectContaining({ code: 'NOTE_UNVERIFIED' }));
    // The signer still knows the retired key.
    expect(signer.open(before.note).checkpoint.size).toBe(4);
    expect(signer.open(after.note).checkpoint.size).toBe(8);
    expect(signer.verifiers.map((v) => v.keyId)).toEqual([next.signer.keyId, old.signer.keyId]);
    expect(() => signer.rotate(old.signer)).toThrow(expect.objectContaining({ code: 'KEY_CONFLICT' }));
    // A restarted signer with the new key and the retired vkey resumes from a checkpoint the old key signed.
    const resumed = new CheckpointSigner({ origin: ORIGIN, signer: next.signer, previousKeys: [new Ed25519NoteVerifier(old.vkey)], lastSigned: before.note });
    expect(resumed.lastSigned?.checkpoint.size).toBe(4);
  });

  it('does not expose private keys through JSON or inspect', () => {
    const { signer: key, skey } = Ed25519NoteSigner.generate(ORIGIN);
    const signer = new CheckpointSigner({ origin: ORIGIN, signer: key });
    const seed = skey.reveal().split('+').slice(4).join('+');
    for (const text of [JSON.stringify(signer), inspect(signer, { showHidden: true, depth: 10 }), JSON.stringify({ ...signer })]) {
      expect(text).not.toContain(seed);
      expect(text).not.toContain('PRIVATE');
    }
    expect(JSON.parse(JSON.stringify(signer))).toMatchObject({ origin: ORIGIN, lastSignedSize: null });
  });
});
