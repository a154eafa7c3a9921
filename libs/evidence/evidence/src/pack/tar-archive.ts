// A minimal, deterministic POSIX ustar writer and a strict reader, for evidence packs (.tar.gz).
// Deterministic: fixed mode, owner and mtime, files in the order given, so the same pack content
// gives the same bytes. The reader accepts regular files only, refuses unsafe or duplicate paths,
// and checks every header checksum; nothing is ever written to disk. readTarGzStream reads an
// archive piece by piece, for packs too large to hold decompressed.
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { crc32, createGunzip, createGzip, gunzipSync, type Gunzip } from 'node:zlib';
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

interface EntryHeader {
  readonly path: string;
  readonly size: number;
  /** Directories carry no data and are skipped. */
  readonly directory: boolean;
}

/** Parses one 512-byte header block (checksum, type, safe path); `offset` is for messages. */
function parseHeader(h: Buffer, offset: number): EntryHeader {
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
  if (type === '5') return { path, size: 0, directory: true };
  if (type !== '0' && type !== '\0') throw new EvidenceError('EVIDENCE_PACK_MALFORMED', `archive entry ${JSON.stringify(path)} is not a regular file`);
  assertSafePath(path);
  return { path, size, directory: false };
}

/**
 * One gzip member ending exactly at the end of the file. Node's gunzip silently reads a second
 * member as a continuation and ignores zero bytes after the first, and common extractors unpack
 * whatever such data holds over the attested files, so neither is accepted: every compressed byte
 * must have been consumed, and the last member's trailer (CRC-32 and size of its data) must
 * describe the whole decompressed stream, which only holds when there is one member.
 */
function assertSingleGzipMember(read: { compressedBytes: number; consumed: number; trailer: Buffer; crc: number; decompressedBytes: number }): void {
  if (read.consumed !== read.compressedBytes) {
    throw new EvidenceError('EVIDENCE_PACK_MALFORMED', `${read.compressedBytes - read.consumed} byte(s) follow the gzip data: a pack is one gzip member ending at the end of the file`);
  }
  if (read.trailer.length !== 8 || read.trailer.readUInt32LE(0) !== read.crc >>> 0 || read.trailer.readUInt32LE(4) !== read.decompressedBytes % 2 ** 32) {
    throw new EvidenceError('EVIDENCE_PACK_MALFORMED', 'the file holds more than one gzip member: a pack is one gzip member ending at the end of the file');
  }
}

/** After the first end-of-archive block: a second one, then only zero padding (anything else would be unpacked by some extractors). */
function assertEndBlocks(rest: Buffer, offset: number): void {
  if (rest.length < BLOCK) throw new EvidenceError('EVIDENCE_PACK_MALFORMED', 'the archive is truncated: it ends with one end-of-archive block, not two');
  const at = rest.findIndex((b) => b !== 0);
  if (at >= 0) throw new EvidenceError('EVIDENCE_PACK_MALFORMED', `data after the end-of-archive blocks (byte ${offset + at} of the tar stream): only zero padding may follow them`);
}

/** The regular files of a tar.gz, in archive order. */
export function readTarGz(bytes: Buffer, maxBytes = 8 * 1024 ** 3): ArchiveFile[] {
  let tar: Buffer;
  let consumed: number;
  try {
    const { buffer, engine } = gunzipSync(bytes, { maxOutputLength: Math.min(maxBytes, 2 ** 32), info: true }) as unknown as { buffer: Buffer; engine: Gunzip };
    tar = buffer;
    consumed = engine.bytesWritten;
  } catch (error) {
    throw new EvidenceError('EVIDENCE_PACK_MALFORMED', `not a gzip archive: ${error instanceof Error ? error.message : String(error)}`);
  }
  const files: ArchiveFile[] = [];
  const seen = new Set<string>();
  let offset = 0;
  let ended = false;
  while (offset + BLOCK <= tar.length) {
    const h = tar.subarray(offset, offset + BLOCK);
    if (h.every((b) => b === 0)) {
      ended = true;
      offset += BLOCK;
      break;
    }
    const entry = parseHeader(h, offset);
    offset += BLOCK;
    if (entry.directory) continue;
    if (seen.has(entry.path)) throw new EvidenceError('EVIDENCE_PACK_MALFORMED', `archive holds ${entry.path} twice`);
    seen.add(entry.path);
    if (offset + entry.size > tar.length) throw new EvidenceError('EVIDENCE_PACK_MALFORMED', `archive entry ${entry.path} is truncated`);
    // A view into the one decompressed buffer: large packs are not copied file by file.
    files.push({ path: entry.path, data: tar.subarray(offset, offset + entry.size) });
    offset += Math.ceil(entry.size / BLOCK) * BLOCK;
  }
  if (!ended) throw new EvidenceError('EVIDENCE_PACK_MALFORMED', 'the archive is truncated: it ends without the end-of-archive blocks');
  assertEndBlocks(tar.subarray(offset), offset);
  assertSingleGzipMember({ compressedBytes: bytes.length, consumed, trailer: bytes.subarray(Math.max(0, bytes.length - 8)), crc: crc32(tar), decompressedBytes: tar.length });
  return files;
}

/** Where the bytes of one archive entry go, piece by piece. */
export interface ArchiveEntrySink {
  write(piece: Buffer): void | Promise<void>;
  end(): void | Promise<void>;
}

/**
 * Reads a tar.gz as a stream: decompression runs in libuv's thread pool while `open(path, size)`'s
 * sink consumes each entry's bytes, so nothing is held but what the sinks keep. Same checks as
 * readTarGz: header checksums, regular files only, safe and unique paths, at most `maxBytes`
 * decompressed, no truncated entry.
 */
export async function readTarGzStream(
  source: Readable | AsyncIterable<Buffer>,
  open: (path: string, size: number) => ArchiveEntrySink | Promise<ArchiveEntrySink>,
  options: { readonly maxBytes?: number; /** zlib output piece size (tests use small ones to cut headers apart). */ readonly chunkSize?: number } = {},
): Promise<void> {
  const maxBytes = options.maxBytes ?? 8 * 1024 ** 3;
  const gunzip = createGunzip(options.chunkSize !== undefined ? { chunkSize: options.chunkSize } : {});
  let sourceError: unknown;
  // The compressed bytes are counted and their last 8 (the gzip trailer) kept, for the one-member check.
  let compressedBytes = 0;
  let trailer = Buffer.alloc(0);
  const counted = async function* (input: AsyncIterable<Buffer>): AsyncIterable<Buffer> {
    for await (const chunk of input) {
      compressedBytes += chunk.length;
      trailer = chunk.length >= 8 ? Buffer.from(chunk.subarray(chunk.length - 8)) : Buffer.concat([trailer, chunk]).subarray(-8);
      yield chunk;
    }
  };
  const feeding = pipeline(source instanceof Readable ? source : Readable.from(source), counted, gunzip).catch((error: unknown) => {
    sourceError = error;
  });
  let crc = 0;
  let endBlocks = 0;
  const seen = new Set<string>();
  let header = Buffer.alloc(0);
  let entry: { sink: ArchiveEntrySink; path: string; remaining: number; padding: number } | undefined;
  let skip = 0;
  let total = 0;
  let ended = false;
  try {
    for await (const chunk of gunzip as AsyncIterable<Buffer>) {
      total += chunk.length;
      if (total > maxBytes) throw new EvidenceError('EVIDENCE_PACK_MALFORMED', `the archive decompresses to more than ${maxBytes} bytes`);
      crc = crc32(chunk, crc);
      let piece = chunk;
      if (ended) {
        // After the end-of-archive block: only zeros (the second end block, then padding).
        const at = piece.findIndex((b) => b !== 0);
        if (at >= 0) throw new EvidenceError('EVIDENCE_PACK_MALFORMED', `data after the end-of-archive blocks (byte ${total - piece.length + at} of the tar stream): only zero padding may follow them`);
        endBlocks += piece.length;
        continue;
      }
      while (piece.length > 0 && !ended) {
        if (entry) {
          const take = Math.min(entry.remaining, piece.length);
          if (take > 0) await entry.sink.write(piece.subarray(0, take));
          entry.remaining -= take;
          piece = piece.subarray(take);
          if (entry.remaining === 0) {
            await entry.sink.end();
            skip = entry.padding;
            entry = undefined;
          }
          continue;
        }
        if (skip > 0) {
          const dropped = Math.min(skip, piece.length);
          skip -= dropped;
          piece = piece.subarray(dropped);
          continue;
        }
        const need = BLOCK - header.length;
        header = Buffer.concat([header, piece.subarray(0, need)]);
        piece = piece.subarray(Math.min(need, piece.length));
        if (header.length < BLOCK) continue;
        const block = header;
        header = Buffer.alloc(0);
        if (block.every((b) => b === 0)) {
          ended = true;
          const at = piece.findIndex((b) => b !== 0);
          if (at >= 0) throw new EvidenceError('EVIDENCE_PACK_MALFORMED', `data after the end-of-archive blocks (byte ${total - piece.length + at} of the tar stream): only zero padding may follow them`);
          endBlocks = piece.length;
          break;
        }
        const parsed = parseHeader(block, total - piece.length - BLOCK);
        if (parsed.directory) continue;
        if (seen.has(parsed.path)) throw new EvidenceError('EVIDENCE_PACK_MALFORMED', `archive holds ${parsed.path} twice`);
        seen.add(parsed.path);
        const sink = await open(parsed.path, parsed.size);
        entry = { sink, path: parsed.path, remaining: parsed.size, padding: (BLOCK - (parsed.size % BLOCK)) % BLOCK };
        if (parsed.size === 0) {
          await sink.end();
          entry = undefined;
        }
      }
    }
  } catch (error) {
    gunzip.destroy();
    if (error instanceof EvidenceError) throw error;
    throw new EvidenceError('EVIDENCE_PACK_MALFORMED', `not a gzip archive: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
  await feeding;
  if (sourceError !== undefined) throw new EvidenceError('EVIDENCE_PACK_MALFORMED', `cannot read the pack: ${sourceError instanceof Error ? sourceError.message : String(sourceError)}`, { cause: sourceError });
  if (entry) throw new EvidenceError('EVIDENCE_PACK_MALFORMED', `archive entry ${entry.path} is truncated`);
  if (!ended) throw new EvidenceError('EVIDENCE_PACK_MALFORMED', 'the archive is truncated: it ends without the end-of-archive blocks');
  if (endBlocks < BLOCK) throw new EvidenceError('EVIDENCE_PACK_MALFORMED', 'the archive is truncated: it ends with one end-of-archive block, not two');
  assertSingleGzipMember({ compressedBytes, consumed: gunzip.bytesWritten, trailer, crc, decompressedBytes: total });
}
