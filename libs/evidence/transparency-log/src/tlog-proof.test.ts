import { describe, expect, it } from 'vitest';
import { CheckpointSigner } from './checkpoint-signer.js';
import { MemoryTreeStorage } from './memory-tree-storage.js';
import { MerkleTree } from './merkle-tree.js';
import { Ed25519NoteSigner } from './note-keys.js';
import { testLeaves } from './testing/reference-tree.js';
import { formatTlogProof, parseTlogProof, verifyTlogProof } from './tlog-proof.js';

const ORIGIN = 'custodian.example/evidence/test';

describe('tlog-proof (c2sp.org/tlog-proof@v1)', () => {
  it('encodes, parses and verifies end to end; tampering is detected', async () => {
    const { signer: key } = Ed25519NoteSigner.generate(ORIGIN);
    const signer = new CheckpointSigner({ origin: ORIGIN, signer: key });
    const tree = await MerkleTree.open(new MemoryTreeStorage());
    const leaves = testLeaves(11);
    await tree.appendLeaves(leaves);
    const signed = await signer.signTree(tree);
    const inclusion = await tree.inclusionProof(6, 11);
    const text = formatTlogProof({ index: 6, hashes: [...inclusion.hashes], checkpoint: signed.note, extra: Buffer.from('event-id-6') });

    const lines = text.split('\n');
    expect(lines[0]).toBe('c2sp.org/tlog-proof@v1');
    expect(lines[1]).toBe(`extra ${Buffer.from('event-id-6').toString('base64')}`);
    expect(lines[2]).toBe('index 6');
    expect(lines.slice(3, 3 + inclusion.hashes.length)).toEqual(inclusion.hashes.map((h) => h.toString('base64')));
    expect(lines[3 + inclusion.hashes.length]).toBe('');
    expect(text.endsWith(signed.note)).toBe(true);

    const parsed = parseTlogProof(text);
    expect(parsed).toEqual({ index: 6, hashes: inclusion.hashes, checkpoint: signed.note, extra: Buffer.from('event-id-6') });
    expect(parseTlogProof(formatTlogProof({ index: 6, hashes: [...inclusion.hashes], checkpoint: signed.note }))).not.toHaveProperty('extra');

    const verified = verifyTlogProof(text, leaves[6]!, ORIGIN, [key.verifier()]);
    expect(verified.checkpoint.checkpoint.size).toBe(11);
    expect(() => verifyTlogProof(text, leaves[5]!, ORIGIN, [key.verifier()])).toThrow(expect.objectContaining({ code: 'PROOF_INVALID' }));
    expect(() => verifyTlogProof(text.replace('index 6', 'index 7'), leaves[6]!, ORIGIN, [key.verifier()])).toThrow(expect.objectContaining({ code: 'PROOF_INVALID' }));
    expect(() => verifyTlogProof(text, leaves[6]!, 'other.example/log', [key.verifier()])).toThrow(expect.objectContaining({ code: 'CHECKPOINT_MALFORMED' }));
    expect(() => verifyTlogProof(text.replace('\n11\n', '\n12\n'), leaves[6]!, ORIGIN, [key.verifier()])).toThrow(expect.objectContaining({ code: 'NOTE_SIGNATURE_INVALID' }));
  });

  it('refuses malformed proofs with PROOF_MALFORMED', () => {
    const checkpoint = 'o\n1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n\n\u2014 o AAAAAAA=\n';
    const h = Buffer.alloc(32, 1).toString('base64');
    for (const text of [
      `c2sp.org/tlog-proof@v2\nindex 0\n\n${checkpoint}`,
      `c2sp.org/tlog-proof@v1\nindex -1\n\n${checkpoint}`,
      `c2sp.org/tlog-proof@v1\nindex 01\n\n${checkpoint}`,
      `c2sp.org/tlog-proof@v1\n${h}\n\n${checkpoint}`,
      `c2sp.org/tlog-proof@v1\nextra !!\nindex 0\n\n${checkpoint}`,
      `c2sp.org/tlog-proof@v1\nindex 0\n${h.slice(4)}\n\n${checkpoint}`,
      `c2sp.org/tlog-proof@v1\nindex 0\n${h}\n`,
    ]) {
      expect(() => parseTlogProof(text), JSON.stringify(text)).toThrow(expect.objectContaining({ code: 'PROOF_MALFORMED' }));
    }
  });
});
