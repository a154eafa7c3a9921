import { describe, expect, it } from 'vitest';
import { CheckpointSigner, openCheckpoint } from './checkpoint-signer.js';
import { checkpointSignedAt, formatCheckpoint, parseCheckpoint, signedAtExtension } from './checkpoint.js';
import { CheckpointMalformedError, NoteSignatureInvalidError } from './errors.js';
import { EMPTY_TREE_ROOT } from './hashing.js';
import { Ed25519NoteSigner } from './note-keys.js';
import { signNote } from './signed-note.js';

const ORIGIN = 'custodian.example/evidence/test';
const root = Buffer.alloc(32, 7);

describe('the signed-at extension line (a checkpoint states its signing time)', () => {
  it('formats and reads back one signed-at line; a checkpoint without one states no time', () => {
    const line = signedAtExtension('2026-03-01T00:05:00.123456Z');
    expect(line).toBe('signed-at 2026-03-01T00:05:00.123456Z');
    const body = formatCheckpoint({ origin: ORIGIN, size: 3, rootHash: root, extensions: [line] });
    expect(body).toBe(`${ORIGIN}\n3\n${root.toString('base64')}\nsigned-at 2026-03-01T00:05:00.123456Z\n`);
    expect(checkpointSignedAt(parseCheckpoint(body))).toBe('2026-03-01T00:05:00.123456Z');
    expect(checkpointSignedAt(parseCheckpoint(formatCheckpoint({ origin: ORIGIN, size: 3, rootHash: root, extensions: [] })))).toBeUndefined();
    // Other extension lines are left alone.
    expect(checkpointSignedAt(parseCheckpoint(`${ORIGIN}\n3\n${root.toString('base64')}\nsomething else\n${line}\n`))).toBe('2026-03-01T00:05:00.123456Z');
  });

  it.each([
    ['two signed-at lines', ['signed-at 2026-03-01T00:05:00.123456Z', 'signed-at 2026-03-01T00:06:00.123456Z']],
    ['no fraction', ['signed-at 2026-03-01T00:05:00Z']],
    ['three fraction digits', ['signed-at 2026-03-01T00:05:00.123Z']],
    ['an offset', ['signed-at 2026-03-01T01:05:00.123456+01:00']],
    ['a day that does not exist', ['signed-at 2026-02-30T00:05:00.123456Z']],
  ])('refuses a checkpoint with %s', (_name, extensions) => {
    const text = `${ORIGIN}\n3\n${root.toString('base64')}\n${extensions.join('\n')}\n`;
    expect(() => parseCheckpoint(text)).toThrow(CheckpointMalformedError);
    // Even signed by the log key: what a verifier recomputes from must be well-formed.
    const signer = Ed25519NoteSigner.generate(ORIGIN).signer;
    expect(() => openCheckpoint(signNote(text, [signer]), ORIGIN, [signer.verifier()])).toThrow(CheckpointMalformedError);
  });

  it('the time is covered by the log signature: a changed time fails it', () => {
    const signer = Ed25519NoteSigner.generate(ORIGIN).signer;
    const log = new CheckpointSigner({ origin: ORIGIN, signer });
    const signed = log.sign({ size: 0, rootHash: EMPTY_TREE_ROOT, extensions: [signedAtExtension('2026-03-01T00:05:00.000000Z')] }, []);
    expect(checkpointSignedAt(openCheckpoint(signed.note, ORIGIN, [signer.verifier()]).checkpoint)).toBe('2026-03-01T00:05:00.000000Z');
    const changed = signed.note.replace('00:05:00.000000Z', '00:01:00.000000Z');
    expect(() => openCheckpoint(changed, ORIGIN, [signer.verifier()])).toThrow(NoteSignatureInvalidError);
  });
});
