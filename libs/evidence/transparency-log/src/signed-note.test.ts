import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { formatCheckpoint, parseCheckpoint } from './checkpoint.js';
import { Ed25519NoteSigner, Ed25519NoteVerifier, SecretKeyText, computeKeyId, formatVerifierKey, parseVerifierKey } from './note-keys.js';
import { openNote, parseNote, signNote } from './signed-note.js';

// Test vector from Go's golang.org/x/mod/sumdb/note documentation (note.go / note_test.go):
// the skey/vkey pair for "PeterNeumann" and a note it signed.
const GO_SKEY = 'PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz';
const GO_VKEY = 'PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW';
const GO_NOTE =
  'If you think cryptography is the answer to your problem,\n' +
  'then you don\'t know what your problem is.\n' +
  '\n' +
  '\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n';

describe('signed notes (C2SP signed-note, Go note compatible)', () => {
  it('reproduces the Go note package test vector: key ID, vkey from skey, and the exact signature', () => {
    const signer = Ed25519NoteSigner.fromSkey(GO_SKEY);
    expect(signer.vkey).toBe(GO_VKEY);
    expect(signer.keyId).toBe(0xc74f20a3);
    const { text } = parseNote(GO_NOTE);
    // Ed25519 is deterministic, so our signature must be byte-identical to Go's.
    expect(signNote(text, [signer])).toBe(GO_NOTE);
    const opened = openNote(GO_NOTE, [new Ed25519NoteVerifier(GO_VKEY)]);
    expect(opened.text).toBe(text);
    expect(opened.verified.map((s) => s.name)).toEqual(['PeterNeumann']);
  });

  it('computes key IDs as SHA-256(name ‖ 0x0A ‖ 0x01 ‖ key)[0:4] and rejects vkeys whose ID does not match', () => {
    const { publicKey } = parseVerifierKey(GO_VKEY);
    expect(computeKeyId('PeterNeumann', 0x01, publicKey)).toBe(0xc74f20a3);
    expect(formatVerifierKey('PeterNeumann', 0x01, publicKey)).toBe(GO_VKEY);
    expect(() => parseVerifierKey(GO_VKEY.replace('c74f20a3', 'c74f20a4'))).toThrow(expect.objectContaining({ code: 'KEY_INVALID' }));
    expect(() => parseVerifierKey(GO_VKEY.replace('PeterNeumann', 'Peter+Neumann'))).toThrow(expect.objectContaining({ code: 'KEY_INVALID' }));
    expect(() => parseVerifierKey('PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq')).toThrow(expect.objectContaining({ code: 'KEY_INVALID' }));
    expect(() => Ed25519NoteSigner.fromSkey(GO_SKEY.replace('c74f20a3', '00000000'))).toThrow(expect.objectContaining({ code: 'KEY_INVALID' }));
    expect(() => Ed25519NoteSigner.generate('has space')).toThrow(expect.objectContaining({ code: 'KEY_INVALID' }));
  });

  it('refuses a note whose text or signature was altered (NOTE_SIGNATURE_INVALID), or that no known key signed (NOTE_UNVERIFIED)', () => {
    const verifier = new Ed25519NoteVerifier(GO_VKEY);
    expect(() => openNote(GO_NOTE.replace('cryptography', 'cryptogrophy'), [verifier])).toThrow(expect.objectContaining({ code: 'NOTE_SIGNATURE_INVALID' }));
    const sigLine = GO_NOTE.split('\n')[3]!;
    const flipped = sigLine.slice(0, -6) + (sigLine.at(-6) === 'A' ? 'B' : 'A') + sigLine.slice(-5);
    expect(() => openNote(GO_NOTE.replace(sigLine, flipped), [verifier])).toThrow(expect.objectContaining({ code: 'NOTE_SIGNATURE_INVALID' }));
    const other = Ed25519NoteSigner.generate('someone-else');
    expect(() => openNote(GO_NOTE, [other.signer.verifier()])).toThrow(expect.objectContaining({ code: 'NOTE_UNVERIFIED' }));
  });

  it('parses strictly: blank line, em dash lines, canonical base64, no control characters', () => {
    const bad = [
      GO_NOTE.replace('\n\n', '\n'),
      GO_NOTE.replace('\u2014 ', '- '),
      GO_NOTE.replace(/=\n$/, '\n'),
      GO_NOTE.replace(/\n$/, ''),
      GO_NOTE.replace('problem,', 'problem,\t'),
      GO_NOTE.replace('PeterNeumann x08', 'PeterNeumann  x08'),
    ];
    for (const note of bad) expect(() => parseNote(note)).toThrow(expect.objectContaining({ code: 'NOTE_MALFORMED' }));
    expect(() => parseNote(Buffer.from([0x61, 0x0a, 0x0a, 0xff, 0x0a]))).toThrow(expect.objectContaining({ code: 'NOTE_MALFORMED' }));
  });

  it('keeps other signatures (e.g. cosignatures) and ignores unknown ones when verifying', () => {
    const log = Ed25519NoteSigner.generate('log.example/one');
    const extra = Ed25519NoteSigner.generate('witness.example/w1');
    const body = formatCheckpoint({ origin: 'log.example/one', size: 3, rootHash: Buffer.alloc(32, 9), extensions: [] });
    const once = signNote(body, [log.signer]);
    const twice = signNote(body, [extra.signer], parseNote(once).signatures);
    expect(twice.startsWith(once)).toBe(true);
    const opened = openNote(twice, [log.signer.verifier()]);
    expect(opened.verified.map((s) => s.name)).toEqual(['log.example/one']);
    expect(opened.unverified.map((s) => s.name)).toEqual(['witness.example/w1']);
    expect(openNote(twice, [log.signer.verifier(), extra.signer.verifier()]).verified).toHaveLength(2);
  });

  it('never shows private key material through JSON, inspect, String, spread or errors', () => {
    const { signer, skey } = Ed25519NoteSigner.generate('leak-test');
    const secret = skey.reveal();
    const seedB64 = secret.split('+').slice(4).join('+');
    const seedHex = Buffer.from(seedB64, 'base64').subarray(1).toString('hex');
    const shown = [
      JSON.stringify(signer),
      JSON.stringify({ signer, skey }),
      inspect(signer, { showHidden: true, depth: 10 }),
      inspect(skey, { showHidden: true, depth: 10 }),
      inspect({ signer, skey }, { showHidden: true, depth: 10 }),
      String(skey),
      `${skey}`,
      JSON.stringify({ ...signer }),
      Object.keys(signer).join(','),
      JSON.stringify(Object.getOwnPropertyNames(signer).map((k) => (signer as unknown as Record<string, unknown>)[k])),
    ];
    try {
      Ed25519NoteSigner.fromSkey(secret.replace(/\+[0-9a-f]{8}\+/, '+00000000+'));
    } catch (error) {
      shown.push(String(error), inspect(error));
    }
    for (const text of shown) {
      expect(text).not.toContain(seedB64);
      expect(text).not.toContain(seedHex);
      expect(text).not.toContain('PRIVATE+KEY');
    }
    expect(JSON.parse(JSON.stringify(signer))).toEqual({ name: 'leak-test', keyId: expect.stringMatching(/^[0-9a-f]{8}$/), vkey: signer.vkey });
    expect(skey).toBeInstanceOf(SecretKeyText);
    // The secret is still usable on purpose.
    expect(Ed25519NoteSigner.fromSkey(skey).vkey).toBe(signer.vkey);
  });
});

describe('checkpoints (C2SP tlog-checkpoint)', () => {
  const rootHash = Buffer.from('CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=', 'base64');

  it('formats and parses origin, size, base64 root and extension lines', () => {
    const body = formatCheckpoint({ origin: 'example.com/behind-the-sofa', size: 20852163, rootHash, extensions: [] });
    expect(body).toBe('example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n');
    expect(parseCheckpoint(body)).toEqual({ origin: 'example.com/behind-the-sofa', size: 20852163, rootHash, extensions: [] });
    const withExt = formatCheckpoint({ origin: 'o', size: 0, rootHash, extensions: ['custodian-events 42'] });
    expect(parseCheckpoint(withExt).extensions).toEqual(['custodian-events 42']);
  });

  it('refuses non-canonical sizes, bad roots and empty lines', () => {
    const bad = [
      'o\n012\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n',
      'o\n+12\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n',
      'o\n12\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2=\n',
      'o\n12\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I\n',
      '\n12\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n',
      'o\n12\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n\n',
      'o\n12\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=',
      'o\n99999999999999999999\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n',
    ];
    for (const text of bad) expect(() => parseCheckpoint(text), JSON.stringify(text)).toThrow(expect.objectContaining({ code: 'CHECKPOINT_MALFORMED' }));
  });
});
