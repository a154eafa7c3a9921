import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { CheckpointSigner } from './checkpoint-signer.js';
import { Ed25519CosignatureSigner, Ed25519CosignatureVerifier, verifyCosignatures } from './cosignature.js';
import { MemoryTreeStorage } from './memory-tree-storage.js';
import { MerkleTree } from './merkle-tree.js';
import { Ed25519NoteSigner, computeKeyId, parseVerifierKey } from './note-keys.js';
import { openNote, parseNote, signNote } from './signed-note.js';
import { testLeaves } from './testing/reference-tree.js';

const ORIGIN = 'custodian.example/evidence/test';

async function signedCheckpoint(): Promise<string> {
  const tree = await MerkleTree.open(new MemoryTreeStorage());
  await tree.appendLeaves(testLeaves(5));
  const signer = new CheckpointSigner({ origin: ORIGIN, signer: Ed25519NoteSigner.generate(ORIGIN).signer });
  return (await signer.signTree(tree)).note;
}

describe('cosignatures (C2SP tlog-cosignature, Ed25519)', () => {
  it('uses key type 0x04 in the key ID and signs "cosignature/v1\\ntime T\\n" + the checkpoint body', async () => {
    const { signer: witness, vkey } = Ed25519CosignatureSigner.generate('witness.example/w1', () => 1_700_000_000);
    const parsed = parseVerifierKey(vkey);
    expect(parsed.type).toBe(0x04);
    expect(witness.keyId).toBe(computeKeyId('witness.example/w1', 0x04, parsed.publicKey));
    expect(witness.keyId).not.toBe(computeKeyId('witness.example/w1', 0x01, parsed.publicKey));

    const note = await signedCheckpoint();
    const { text, signatures } = parseNote(note);
    const cosigned = signNote(text, [witness], signatures);
    const line = parseNote(cosigned).signatures.find((s) => s.name === 'witness.example/w1')!;
    // key ID ‖ 8-byte big-endian timestamp ‖ 64-byte signature
    expect(line.signature).toHaveLength(72);
    expect(Number(line.signature.readBigUInt64BE(0))).toBe(1_700_000_000);

    const result = verifyCosignatures(cosigned, [new Ed25519CosignatureVerifier(vkey)]);
    expect(result.checkpoint.size).toBe(5);
    expect(result.cosignatures).toEqual([{ name: 'witness.example/w1', keyId: witness.keyId, timestamp: 1_700_000_000 }]);
  });

  it('rejects a cosignature whose timestamp, checkpoint or signature was altered, and a missing one', async () => {
    const { signer: witness, vkey } = Ed25519CosignatureSigner.generate('witness.example/w1', () => 1_700_000_000);
    const verifier = new Ed25519CosignatureVerifier(vkey);
    const note = await signedCheckpoint();
    const { text, signatures } = parseNote(note);
    const cosigned = signNote(text, [witness], signatures);
    const sig = parseNote(cosigned).signatures.find((s) => s.name === 'witness.example/w1')!;

    const retimed = Buffer.concat([Buffer.alloc(4), sig.signature]);
    retimed.writeUInt32BE(sig.keyId, 0);
    retimed.writeBigUInt64BE(1_700_000_001n, 4);
    const tamperedTime = cosigned.replace(sig.base64, retimed.toString('base64'));
    expect(() => verifyCosignatures(tamperedTime, [verifier])).toThrow(expect.objectContaining({ code: 'COSIGNATURE_INVALID' }));

    const otherBody = text.replace('\n5\n', '\n6\n');
    expect(() => verifyCosignatures(`${otherBody}\n\u2014 witness.example/w1 ${sig.base64}\n`, [verifier])).toThrow(expect.objectContaining({ code: 'COSIGNATURE_INVALID' }));
    expect(() => verifyCosignatures(note, [verifier])).toThrow(expect.objectContaining({ code: 'COSIGNATURE_INVALID' }));
    // A plain note signature by the same key (type 0x01) is not a cosignature.
    expect(() => openNote(cosigned, [verifier])).not.toThrow();
  });

  it('accepts a type 0x01 vkey for the witness, re-typed as 0x04 (as Go formats/note does)', () => {
    const { signer: witness, vkey } = Ed25519CosignatureSigner.generate('w2');
    const asPlain = vkey.replace(/\+[0-9a-f]{8}\+(.*)$/, (_, b64: string) => {
      const raw = Buffer.from(b64, 'base64');
      raw[0] = 0x01;
      const pub = raw.subarray(1);
      return `+${computeKeyId('w2', 0x01, pub).toString(16).padStart(8, '0')}+${raw.toString('base64')}`;
    });
    const verifier = new Ed25519CosignatureVerifier(asPlain);
    expect(verifier.keyId).toBe(witness.keyId);
    expect(verifier.vkey).toBe(vkey);
  });

  it('keeps the witness private key out of JSON and inspect output', () => {
    const { signer, skey } = Ed25519CosignatureSigner.generate('witness.example/w3');
    const seed = skey.reveal().split('+').slice(4).join('+');
    for (const text of [JSON.stringify(signer), inspect(signer, { showHidden: true, depth: 10 }), JSON.stringify({ ...signer }), inspect(skey), JSON.stringify(skey)]) {
      expect(text).not.toContain(seed);
      expect(text).not.toContain('PRIVATE');
    }
    expect(Ed25519CosignatureSigner.fromSkey(skey).vkey).toBe(signer.vkey);
  });
});
