// The gateway's durable spool: an append-only log of records in segment files. A record is
// durable (fdatasync'd) before append() resolves; appends that arrive while a sync is in flight
// share the next one (group commit). Records are read back in order by the drainer and
// acknowledged once the bus has them; fully acknowledged segments are deleted.
//
// Record: u32 LE payload length | u32 LE event count | u32 LE CRC-32 (of length, count and
// payload) | payload. A crash can tear only the write in flight, i.e. the tail of the last
// segment: open() detects it by length or CRC and truncates it (those appends never resolved).
import { mkdirSync, readdirSync } from 'node:fs';
import { open, readFile, rename, rm, writeFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { SpoolError } from './errors.js';

export const RECORD_HEADER_BYTES = 12;

export interface SpoolOptions {
  readonly dir: string;
  /** Most bytes of unacknowledged records; an append beyond it fails with SPOOL_FULL. */
  readonly maxBytes: number;
  /** A new segment file is started once the current one reaches this size. Default min(16 MiB, maxBytes / 4). */
  readonly segmentBytes?: number;
}

/** Where a record starts: segment number and byte offset. */
export interface SpoolPosition {
  readonly segment: number;
  readonly offset: number;
}

export interface SpoolRecord {
  readonly position: SpoolPosition;
  /** Where the next record starts (acknowledge up to here). */
  readonly next: SpoolPosition;
  readonly eventCount: number;
  readonly payload: Buffer;
  /** Bytes on disk, header included. */
  readonly size: number;
}

export interface SpoolDepth {
  readonly records: number;
  readonly events: number;
  readonly bytes: number;
}

export interface SpoolRecovery {
  /** Bytes of a torn last record that open() truncated (0 when the spool was clean). */
  readonly truncatedBytes: number;
  /** Unacknowledged records found. */
  readonly records: number;
}

interface Segment {
  readonly index: number;
  /** Valid (durable) bytes. */
  size: number;
  /** Records and events in the unacknowledged part. */
  records: number;
  events: number;
  bytes: number;
}

interface PendingAppend {
  readonly record: Buffer;
  readonly eventCount: number;
  readonly resolve: (position: SpoolPosition) => void;
  readonly reject: (error: unknown) => void;
}

const SEGMENT_FILE = /^segment-(\d{12})\.log$/;
const segmentName = (index: number): string => `segment-${String(index).padStart(12, '0')}.log`;
const CURSOR_FILE = 'cursor.json';

export function encodeRecord(payload: Buffer, eventCount: number): Buffer {
  const record = Buffer.allocUnsafe(RECORD_HEADER_BYTES + payload.length);
  record.writeUInt32LE(payload.length, 0);
  record.writeUInt32LE(eventCount, 4);
  payload.copy(record, RECORD_HEADER_BYTES);
  const crc = crc32(payload, crc32(record.subarray(0, 8)));
  record.writeUInt32LE(crc, 8);
  return record;
}

type Decoded = { readonly kind: 'record'; readonly size: number; readonly eventCount: number; readonly payload: Buffer } | { readonly kind: 'incomplete' } | { readonly kind: 'corrupt'; readonly why: string };

function decodeRecord(buffer: Buffer, at: number): Decoded {
  if (buffer.length - at < RECORD_HEADER_BYTES) return { kind: 'incomplete' };
  const length = buffer.readUInt32LE(at);
  const eventCount = buffer.readUInt32LE(at + 4);
  const crc = buffer.readUInt32LE(at + 8);
  if (buffer.length - at - RECORD_HEADER_BYTES < length) return { kind: 'incomplete' };
  const payload = buffer.subarray(at + RECORD_HEADER_BYTES, at + RECORD_HEADER_BYTES + length);
  const actual = crc32(payload, crc32(buffer.subarray(at, at + 8)));
  if (actual !== crc) return { kind: 'corrupt', why: `CRC mismatch at offset ${at}` };
  return { kind: 'record', size: RECORD_HEADER_BYTES + length, eventCount, payload };
}

export class Spool {
  readonly dir: string;
  readonly maxBytes: number;
  readonly segmentBytes: number;
  readonly recovery: SpoolRecovery;

  private readonly segments: Segment[];
  private acked: SpoolPosition;
  private readCursor: SpoolPosition;
  private writer: FileHandle | undefined;
  private queue: PendingAppend[] = [];
  private writing: Promise<void> | undefined;
  private readonly readers = new Map<number, FileHandle>();
  private closed = false;
  private readonly appendWaiters = new Set<() => void>();
  private cursorWrite: Promise<void> = Promise.resolve();

  /** Opens (creating) the spool in `dir` and recovers it: torn tail truncated, depth counted. */
  static async open(options: SpoolOptions): Promise<Spool> {
    if (!Number.isSafeInteger(options.maxBytes) || options.maxBytes < 1024) throw new SpoolError('SPOOL_INVALID_REQUEST', `maxBytes must be an integer ≥ 1024, got ${options.maxBytes}`);
    mkdirSync(options.dir, { recursive: true });
    const segmentBytes = options.segmentBytes ?? Math.min(16 * 1024 * 1024, Math.max(4096, Math.floor(options.maxBytes / 4)));
    const indexes = readdirSync(options.dir)
      .map((f) => SEGMENT_FILE.exec(f)?.[1])
      .filter((m): m is string => m !== undefined)
      .map(Number)
      .sort((a, b) => a - b);
    let cursor: SpoolPosition = { segment: indexes[0] ?? 1, offset: 0 };
    try {
      const saved = JSON.parse(await readFile(join(options.dir, CURSOR_FILE), 'utf8')) as SpoolPosition;
      if (Number.isSafeInteger(saved.segment) && Number.isSafeInteger(saved.offset) && saved.offset >= 0) cursor = saved;
    } catch {
      // No cursor yet (or an unreadable one): start at the first segment; acknowledged records
      // may be delivered again, which consumers deduplicate by event id.
    }
    // A cursor into a deleted segment means every older segment was acknowledged.
    if (!indexes.includes(cursor.segment)) cursor = { segment: indexes.find((i) => i > cursor.segment) ?? cursor.segment, offset: 0 };

    const segments: Segment[] = [];
    let truncatedBytes = 0;
    for (const index of indexes) {
      const path = join(options.dir, segmentName(index));
      if (index < cursor.segment) {
        await rm(path, { force: true });
        continue;
      }
      const data = await readFile(path);
      const segment: Segment = { index, size: data.length, records: 0, events: 0, bytes: 0 };
      let at = index === cursor.segment ? Math.min(cursor.offset, data.length) : 0;
      if (index === cursor.segment && cursor.offset > data.length) cursor = { segment: index, offset: data.length };
      while (at < data.length) {
        const decoded = decodeRecord(data, at);
        if (decoded.kind === 'record') {
          segment.records += 1;
          segment.events += decoded.eventCount;
          segment.bytes += decoded.size;
          at += decoded.size;
          continue;
        }
        const last = index === indexes[indexes.length - 1];
        if (!last) {
          throw new SpoolError('SPOOL_CORRUPT', `${path}: ${decoded.kind === 'corrupt' ? decoded.why : `incomplete record at offset ${at}`} in a segment that is not the last; accepted events may be damaged, refusing to start`);
        }
        // The torn write of a crash: never acknowledged to anyone. Cut it off durably.
        truncatedBytes = data.length - at;
        const handle = await open(path, 'r+');
        try {
          await handle.truncate(at);
          await handle.datasync();
        } finally {
          await handle.close();
        }
        segment.size = at;
        break;
      }
      segments.push(segment);
    }
    const spool = new Spool(options.dir, options.maxBytes, segmentBytes, segments, cursor, { truncatedBytes, records: segments.reduce((n, s) => n + s.records, 0) });
    if (segments.length === 0) await spool.startSegment(cursor.segment);
    return spool;
  }

  private constructor(dir: string, maxBytes: number, segmentBytes: number, segments: Segment[], cursor: SpoolPosition, recovery: SpoolRecovery) {
    this.dir = dir;
    this.maxBytes = maxBytes;
    this.segmentBytes = segmentBytes;
    this.segments = segments;
    this.acked = cursor;
    this.readCursor = cursor;
    this.recovery = recovery;
  }

  depth(): SpoolDepth {
    let records = 0;
    let events = 0;
    let bytes = 0;
    for (const s of this.segments) {
      records += s.records;
      events += s.events;
      bytes += s.bytes;
    }
    return { records, events, bytes };
  }

  /** Appends one record; resolves when it is on disk (fdatasync). SPOOL_FULL / SPOOL_UNWRITABLE / SPOOL_CLOSED. */
  append(payload: Buffer, eventCount: number): Promise<SpoolPosition> {
    if (this.closed) return Promise.reject(new SpoolError('SPOOL_CLOSED', 'the spool is closed'));
    const record = encodeRecord(payload, eventCount);
    return new Promise<SpoolPosition>((resolve, reject) => {
      this.queue.push({ record, eventCount, resolve, reject });
      this.kick();
    });
  }

  private kick(): void {
    if (this.writing) return;
    this.writing = this.writeLoop().finally(() => {
      this.writing = undefined;
      // An append may have queued after the loop's last look at the queue.
      if (this.queue.length > 0) this.kick();
    });
  }

  private current(): Segment {
    return this.segments[this.segments.length - 1]!;
  }

  private async startSegment(index: number): Promise<void> {
    await this.writer?.close().catch(() => undefined);
    this.writer = undefined;
    const handle = await open(join(this.dir, segmentName(index)), 'a');
    // The new file's directory entry must survive a crash like its contents.
    const dir = await open(this.dir, 'r');
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
    this.segments.push({ index, size: 0, records: 0, events: 0, bytes: 0 });
    this.writer = handle;
  }

  private async openWriter(): Promise<FileHandle> {
    if (this.writer) return this.writer;
    // After a failed write: reopen, cut whatever partial bytes the failure left, and go on.
    const segment = this.current();
    const handle = await open(join(this.dir, segmentName(segment.index)), 'a');
    try {
      await handle.truncate(segment.size);
      await handle.datasync();
    } catch (error) {
      await handle.close().catch(() => undefined);
      throw error;
    }
    this.writer = handle;
    return handle;
  }

  private async writeLoop(): Promise<void> {
    while (this.queue.length > 0) {
      const group = this.queue.splice(0, this.queue.length);
      let pending = this.depth().bytes;
      const fits: PendingAppend[] = [];
      for (const p of group) {
        if (pending + p.record.length > this.maxBytes) {
          p.reject(new SpoolError('SPOOL_FULL', `the spool holds ${pending} of ${this.maxBytes} bytes not yet delivered; a ${p.record.length}-byte record does not fit`));
          continue;
        }
        pending += p.record.length;
        fits.push(p);
      }
      if (fits.length === 0) continue;
      const before = this.current().size;
      try {
        if (before >= this.segmentBytes) await this.startSegment(this.current().index + 1);
        const handle = await this.openWriter();
        const segment = this.current();
        const buffers = fits.map((p) => p.record);
        const total = buffers.reduce((n, b) => n + b.length, 0);
        let written = 0;
        while (written < total) {
          const { bytesWritten } = await handle.writev(written === 0 ? buffers : [Buffer.concat(buffers).subarray(written)]);
          written += bytesWritten;
        }
        await handle.datasync();
        let offset = segment.size;
        const positions = fits.map((p) => {
          const position = { segment: segment.index, offset };
          offset += p.record.length;
          return position;
        });
        segment.size = offset;
        segment.records += fits.length;
        segment.events += fits.reduce((n, p) => n + p.eventCount, 0);
        segment.bytes += total;
        fits.forEach((p, i) => p.resolve(positions[i]!));
        for (const wake of [...this.appendWaiters]) wake();
      } catch (cause) {
        // Nothing of this group is acknowledged; the next append first cuts what it left behind.
        await this.writer?.close().catch(() => undefined);
        this.writer = undefined;
        const error = new SpoolError('SPOOL_UNWRITABLE', `the spool in ${this.dir} cannot be written: ${(cause as NodeJS.ErrnoException).code ?? (cause as Error).message}`, { cause });
        for (const p of fits) p.reject(error);
      }
    }
  }

  /** Resolves when a record is appended after `since` calls, or `signal` aborts, or after `timeoutMs`. */
  waitForAppend(signal: AbortSignal, timeoutMs: number): Promise<void> {
    return new Promise((resolve) => {
      if (signal.aborted) return resolve();
      const done = (): void => {
        clearTimeout(timer);
        this.appendWaiters.delete(done);
        signal.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      this.appendWaiters.add(done);
      signal.addEventListener('abort', done, { once: true });
    });
  }

  /**
   * Reads records after the last one read (initially: after the acknowledged ones), up to about
   * `maxBytes` (at least one record) and `maxEvents`. Only durable bytes are read.
   */
  async read(maxBytes: number, maxEvents = Number.POSITIVE_INFINITY): Promise<SpoolRecord[]> {
    if (this.closed) throw new SpoolError('SPOOL_CLOSED', 'the spool is closed');
    const records: SpoolRecord[] = [];
    let bytes = 0;
    let events = 0;
    while (bytes < maxBytes && events < maxEvents) {
      const segment = this.segments.find((s) => s.index === this.readCursor.segment);
      if (!segment) return records;
      if (this.readCursor.offset >= segment.size) {
        const next = this.segments.find((s) => s.index > segment.index);
        if (!next) return records;
        this.readCursor = { segment: next.index, offset: 0 };
        continue;
      }
      const handle = await this.reader(segment.index);
      const want = Math.min(segment.size - this.readCursor.offset, Math.max(maxBytes - bytes, RECORD_HEADER_BYTES));
      let chunk = Buffer.allocUnsafe(want);
      const { bytesRead } = await handle.read(chunk, 0, want, this.readCursor.offset);
      chunk = chunk.subarray(0, bytesRead);
      let at = 0;
      let progressed = false;
      while (at < chunk.length && bytes < maxBytes && events < maxEvents) {
        let decoded = decodeRecord(chunk, at);
        if (decoded.kind === 'incomplete' && !progressed) {
          // One record larger than what we asked for: read exactly it.
          const length = chunk.length - at >= 4 ? chunk.readUInt32LE(at) : 0;
          const whole = Buffer.allocUnsafe(RECORD_HEADER_BYTES + length);
          await handle.read(whole, 0, whole.length, this.readCursor.offset + at);
          decoded = decodeRecord(whole, 0);
        }
        if (decoded.kind === 'incomplete') break;
        if (decoded.kind === 'corrupt') throw new SpoolError('SPOOL_CORRUPT', `segment ${segment.index}: ${decoded.why}`);
        const position = { segment: segment.index, offset: this.readCursor.offset + at };
        at += decoded.size;
        records.push({ position, next: { segment: segment.index, offset: position.offset + decoded.size }, eventCount: decoded.eventCount, payload: Buffer.from(decoded.payload), size: decoded.size });
        bytes += decoded.size;
        events += decoded.eventCount;
        progressed = true;
      }
      this.readCursor = { segment: segment.index, offset: this.readCursor.offset + at };
      if (!progressed) return records;
    }
    return records;
  }

  /** Reading starts again after the acknowledged records (after a failed delivery). */
  rewind(): void {
    this.readCursor = this.acked;
  }

  private async reader(index: number): Promise<FileHandle> {
    let handle = this.readers.get(index);
    if (!handle) {
      handle = await open(join(this.dir, segmentName(index)), 'r');
      this.readers.set(index, handle);
    }
    return handle;
  }

  /** Acknowledges `records` (read in order, delivered): they leave the depth; emptied segments are deleted. */
  async ack(records: readonly SpoolRecord[]): Promise<void> {
    if (records.length === 0) return;
    for (const r of records) {
      const segment = this.segments.find((s) => s.index === r.position.segment);
      if (!segment) continue;
      segment.records -= 1;
      segment.events -= r.eventCount;
      segment.bytes -= r.size;
    }
    this.acked = records[records.length - 1]!.next;
    // Segments before the acknowledged position are done (never the one being written).
    while (this.segments.length > 1 && this.segments[0]!.index < this.acked.segment) {
      const done = this.segments.shift()!;
      await this.readers.get(done.index)?.close().catch(() => undefined);
      this.readers.delete(done.index);
      await rm(join(this.dir, segmentName(done.index)), { force: true });
    }
    // Not fsync'd: a cursor lost in a crash only makes records be delivered again (and deduplicated).
    const cursor = this.acked;
    this.cursorWrite = this.cursorWrite.then(async () => {
      const tmp = join(this.dir, `${CURSOR_FILE}.tmp`);
      await writeFile(tmp, JSON.stringify(cursor));
      await rename(tmp, join(this.dir, CURSOR_FILE));
    });
    await this.cursorWrite;
  }

  /** Segment files on disk (for tests and diagnostics). */
  segmentFiles(): string[] {
    return this.segments.map((s) => segmentName(s.index));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    while (this.writing) await this.writing;
    await this.cursorWrite.catch(() => undefined);
    await this.writer?.close().catch(() => undefined);
    for (const handle of this.readers.values()) await handle.close().catch(() => undefined);
    this.readers.clear();
    for (const wake of [...this.appendWaiters]) wake();
  }
}
