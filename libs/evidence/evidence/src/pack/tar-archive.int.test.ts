import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { readTarGz, readTarGzStream, writeTarGz, type ArchiveFile } from './tar-archive.js';

const FILES = [
  { path: 'manifest.json', data: Buffer.from('{"a":1}\n') },
  { path: 'empty.txt', data: Buffer.alloc(0) },
  { path: 'events.jsonl', data: [Buffer.from('x'.repeat(700)), Buffer.from('\n'), Buffer.from('y'.repeat(1500) + '\n')] },
  { path: 'exact/512.bin', data: Buffer.alloc(512, 7) },
  { path: 'keys/log.vkeys', data: Buffer.from('k\n') },
];
const whole = (data: Buffer | readonly Buffer[]): Buffer => (Buffer.isBuffer(data) ? data : Buffer.concat(data));

async function streamed(bytes: Buffer, options: { chunkSize?: number; maxBytes?: number; pieces?: number } = {}): Promise<ArchiveFile[]> {
  const out: ArchiveFile[] = [];
  const pieceSize = options.pieces ?? bytes.length;
  const source = (async function* () {
    for (let i = 0; i < bytes.length; i += pieceSize) yield bytes.subarray(i, i + pieceSize);
  })();
  await readTarGzStream(
    source,
    (path) => {
      const parts: Buffer[] = [];
      return { write: (p) => void parts.push(Buffer.from(p)), end: () => void out.push({ path, data: Buffer.concat(parts) }) };
    },
    { ...(options.chunkSize !== undefined ? { chunkSize: options.chunkSize } : {}), ...(options.maxBytes !== undefined ? { maxBytes: options.maxBytes } : {}) },
  );
  return out;
}

describe('tar.gz writer and readers', () => {
  it('writes what GNU tar lists and extracts, the same bytes whole or in chunks', async () => {
    const bytes = await writeTarGz(FILES, 1_772_000_000);
    expect(await writeTarGz(FILES.map((f) => ({ path: f.path, data: whole(f.data) })), 1_772_000_000)).toEqual(bytes);
    const dir = mkdtempSync(join(tmpdir(), 'custodian-tar-'));
    try {
      writeFileSync(join(dir, 'a.tar.gz'), bytes);
      const listed = spawnSync('tar', ['-tzf', 'a.tar.gz'], { cwd: dir, encoding: 'utf8' });
      expect(listed.stdout.trim().split('\n')).toEqual(FILES.map((f) => f.path));
      expect(spawnSync('tar', ['-xzf', 'a.tar.gz'], { cwd: dir }).status).toBe(0);
      for (const f of FILES) expect(readFileSync(join(dir, f.path))).toEqual(whole(f.data));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the stream reader gives the same files as the whole reader for every output piece size and input split', async () => {
    const bytes = await writeTarGz(FILES, 1_772_000_000);
    const expected = readTarGz(bytes).map((f) => ({ path: f.path, data: Buffer.from(f.data) }));
    expect(expected.map((f) => f.path)).toEqual(FILES.map((f) => f.path));
    for (const chunkSize of [64, 100, 511, 512, 513, 1000, 16 * 1024]) expect(await streamed(bytes, { chunkSize }), `chunkSize ${chunkSize}`).toEqual(expected);
    for (const pieces of [1, 7, 100]) expect(await streamed(bytes, { pieces, chunkSize: 64 }), `input pieces of ${pieces}`).toEqual(expected);
  });

  it('refuses what it cannot trust, with EVIDENCE_PACK_MALFORMED', async () => {
    const bytes = await writeTarGz(FILES, 1_772_000_000);
    const tar = gunzipSync(bytes);
    const corruptHeader = Buffer.from(tar);
    corruptHeader[10] = corruptHeader[10]! ^ 0xff;
    const duplicate = gzipSync(Buffer.concat([tar.subarray(0, 1024), tar.subarray(0, 1024), Buffer.alloc(1024)]));
    const cases: [string, Buffer, { maxBytes?: number }, RegExp][] = [
      ['not gzip', Buffer.from('hello, this is not gzip'), {}, /not a gzip archive/],
      ['truncated in an entry', gzipSync(tar.subarray(0, 512 + 4)), {}, /manifest\.json is truncated/],
      ['truncated in a header', gzipSync(tar.subarray(0, 1024 + 300)), {}, /end-of-archive/],
      ['truncated at a header', gzipSync(tar.subarray(0, 1024)), {}, /end-of-archive/],
      ['header checksum', gzipSync(corruptHeader), {}, /checksum/],
      ['the same path twice', duplicate, {}, /twice/],
      ['decompresses past the bound', bytes, { maxBytes: 2048 }, /more than 2048 bytes/],
    ];
    for (const [name, input, options, message] of cases) {
      await expect(streamed(input, options), name).rejects.toMatchObject({ code: 'EVIDENCE_PACK_MALFORMED', message: expect.stringMatching(message) });
      expect(() => readTarGz(input, options.maxBytes), name).toThrow(expect.objectContaining({ code: 'EVIDENCE_PACK_MALFORMED' }));
    }
  });
});
