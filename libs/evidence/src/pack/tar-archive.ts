// A minimal, deterministic POSIX ustar writer and a strict reader, for evidence packs (.tar.gz).
// Deterministic: fixed mode, owner and mtime, files in the order given, so the same pack content
// gives the same bytes. The reader accepts regular files only, refuses unsafe or duplicate paths,
// and checks every header checksum; nothing is ever written to disk.
import { createGzip, gunzipSync } from 'node:zlib';
import { EvidenceError } from '../errors.js';

export interface ArchiveFile {
  readonly path: string;
  readonly data: Buffer;
}

/** A file to write: its bytes whole, or as chunks (a large file is never concatenated). */
export interface ArchiveInput {
  readonly path: string;
  readonly data: Buffer | readonly Buffer[];
}

const BLOCK = 512;

function octal(value: number, width: number): string {
  return `${value.toString(8).padStart(width - 1, '0')}\0`;
}

function assertSafePath(path: string): void {
  // eslint-disable-next-line no-control-regex
  if (path.length === 0 || path.length > 100 || path.startsWith('/') || path.split('/').some((p) => p === '..' || p === '.' || p === '') || /[\u0000-\u001f\\]/.test(path)) {
    throw new EvidenceError('EVIDENCE_PACK_MALFORMED', `unsafe or too long path in archive: ${JSON.stringify(path)}`);
  }
}

function header(path: string, size: number, mtime: number): Buffer {
  const h = Buffer.alloc(BLOCK, 0);
  h.write(path, 0, 100, 'utf8');
  h.write(octal(0o644, 8), 100, 'ascii');
  h.write(octal(0, 8), 108, 'ascii');
  h.write(octal(0, 8), 116, 'ascii');
  h.write(octal(size, 12), 124, 'ascii');
  h.write(octal(mtime, 12), 136, 'ascii');
  h.fill(0x20, 148, 156); // checksum field counts as spaces
  h.write('0', 156, 'ascii');
  h.write('ustar\u000000', 257, 'binary');
  let sum = 0;
  for (const byte of h) sum += byte;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'ascii');
  return h;
}

/**
 * tar.gz bytes of `files` (in this order), every entry with mtime `mtimeSeconds`. The tar stream
 * is fed to gzip piece by piece; deflate's output does not depend on how its input is split, so
 * the bytes are the same as compressing the whole tar at once.
 */
export async function writeTarGz(files: readonly ArchiveInput[], mtimeSeconds: number): Promise<Buffer> {
  const seen = new Set<string>();
  for (const file of files) {
    assertSafePath(file.path);
    if (seen.has(file.path)) throw new EvidenceError('EVIDENCE_PACK_MALFORMED', `duplicate path ${file.path}`);
    seen.add(file.path);
  }
  const gzip = createGzip({ level: 6 });
  const out: Buffer[] = [];
  gzip.on('data', (chunk: Buffer) => out.push(chunk));
  const done = new Promise<void>((resolve, reject) => {
    gzip.once('end', resolve);
    gzip.once('error', reject);
  });
  const write = async (chunk: Buffer): Promise<void> => {
    if (!gzip.write(chunk)) await new Promise<void>((resolve) => gzip.once('drain', resolve));
  };
  for (const file of files) {
    const chunks = Buffer.isBuffer(file.data) ? [file.data] : file.data;
    const size = chunks.reduce((n, c) => n + c.length, 0);
    await write(header(file.path, size, mtimeSeconds));
    for (const chunk of chunks) if (chunk.length > 0) await write(chunk);
    const pad = (BLOCK - (size % BLOCK)) % BLOCK;
    if (pad > 0) await write(Buffer.alloc(pad, 0));
  }
  gzip.end(Buffer.alloc(2 * BLOCK, 0));
  await done;
  return Buffer.concat(out);
}

function readOctal(h: Buffer, offset: number, width: number): number {
  const text = h.toString('ascii', offset, offset + width).replace(/[\0 ]+$/, '').trim();
  if (!/^[0-7]+$/.test(text)) throw new EvidenceError('EVIDENCE_PACK_MALFORMED', 'archive header has a malformed number');
  return Number.parseInt(text, 8);
}

/** The regular files of a tar.gz, in archive order. */
export function readTarGz(bytes: Buffer, maxBytes = 8 * 1024 ** 3): ArchiveFile[] {
  let tar: Buffer;
  try {
    tar = gunzipSync(bytes, { maxOutputLength: Math.min(maxBytes, 2 ** 32) });
  } catch (error) {
    throw new EvidenceError('EVIDENCE_PACK_MALFORMED', `not a gzip archive: ${error instanceof Error ? error.message : String(error)}`);
  }
  const files: ArchiveFile[] = [];
  const seen = new Set<string>();
  let offset = 0;
  while (offset + BLOCK <= tar.length) {
    const h = tar.subarray(offset, offset + BLOCK);
    if (h.every((b) => b === 0)) break;
    const stored = readOctal(h, 148, 8);
    let sum = 0;
    for (let i = 0; i < BLOCK; i += 1) sum += i >= 148 && i < 156 ? 0x20 : h[i]!;
    if (sum !== stored) throw new EvidenceError('EVIDENCE_PACK_MALFORMED', `archive header checksum mismatch at byte ${offset}`);
    const nameEnd = h.indexOf(0);
    const name = h.toString('utf8', 0, nameEnd >= 0 && nameEnd < 100 ? nameEnd : 100);
    const prefixEnd = h.indexOf(0, 345);
    const prefix = h.toString('utf8', 345, prefixEnd >= 345 && prefixEnd < 500 ? prefixEnd : 500);
    const path = prefix ? `${prefix}/${name}` : name;
    const type = String.fromCharCode(h[156]!);
    const size = readOctal(h, 124, 12);
    offset += BLOCK;
    if (type === '5') continue; // directories: nothing to read
    if (type !== '0' && type !== '\0') throw new EvidenceError('EVIDENCE_PACK_MALFORMED', `archive entry ${JSON.stringify(path)} is not a regular file`);
    assertSafePath(path);
    if (seen.has(path)) throw new EvidenceError('EVIDENCE_PACK_MALFORMED', `archive holds ${path} twice`);
    seen.add(path);
    if (offset + size > tar.length) throw new EvidenceError('EVIDENCE_PACK_MALFORMED', `archive entry ${path} is truncated`);
    // A view into the one decompressed buffer: large packs are not copied file by file.
    files.push({ path, data: tar.subarray(offset, offset + size) });
    offset += Math.ceil(size / BLOCK) * BLOCK;
  }
  return files;
}
