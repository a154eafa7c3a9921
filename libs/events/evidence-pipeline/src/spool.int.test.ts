import { execFileSync } from 'node:child_process';
import { appendFileSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { SpoolError } from './errors.js';
import { RECORD_HEADER_BYTES, Spool, encodeRecord } from './spool.js';

const dirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'custodian-spool-'));
  dirs.push(dir);
  return dir;
}
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

const payload = (i: number, size = 100): Buffer => Buffer.from(`record-${i}:`.padEnd(size, 'x'));
const texts = (records: { payload: Buffer }[]): string[] => records.map((r) => r.payload.toString().split(':')[0]!);

async function readAll(spool: Spool): Promise<{ payload: Buffer; eventCount: number }[]> {
  const out = [];
  for (;;) {
    const batch = await spool.read(64 * 1024);
    if (batch.length === 0) return out;
    out.push(...batch);
  }
}

function segmentPaths(dir: string): string[] {
  return readdirSync(dir).filter((f) => f.startsWith('segment-')).sort().map((f) => join(dir, f));
}

describe('Spool', () => {
  it('group-commits concurrent appends in call order; reopening finds every record', async () => {
    const dir = tempDir();
    const spool = await Spool.open({ dir, maxBytes: 1024 * 1024 });
    const positions = await Promise.all(Array.from({ length: 300 }, (_, i) => spool.append(payload(i), 2)));
    expect(positions.map((p) => p.offset)).toEqual([...positions.map((p) => p.offset)].sort((a, b) => a - b));
    expect(spool.depth()).toEqual({ records: 300, events: 600, bytes: 300 * (100 + RECORD_HEADER_BYTES) });
    await spool.close();

    const reopened = await Spool.open({ dir, maxBytes: 1024 * 1024 });
    expect(reopened.recovery).toEqual({ truncatedBytes: 0, records: 300 });
    expect(texts(await readAll(reopened))).toEqual(Array.from({ length: 300 }, (_, i) => `record-${i}`));
    await reopened.close();
  });

  it('detects a torn last record by its length and truncates it; appending continues after the good records', async () => {
    const dir = tempDir();
    const spool = await Spool.open({ dir, maxBytes: 1024 * 1024 });
    for (let i = 0; i < 5; i++) await spool.append(payload(i), 1);
    await spool.close();
    const [segment] = segmentPaths(dir);
    const goodSize = statSync(segment!).size;
    // A crash in the middle of the sixth write: header and part of the payload on disk.
    appendFileSync(segment!, encodeRecord(payload(5), 1).subarray(0, RECORD_HEADER_BYTES + 40));

    const reopened = await Spool.open({ dir, maxBytes: 1024 * 1024 });
    expect(reopened.recovery).toEqual({ truncatedBytes: RECORD_HEADER_BYTES + 40, records: 5 });
    expect(statSync(segment!).size).toBe(goodSize);
    await reopened.append(payload(6), 1);
    expect(texts(await readAll(reopened))).toEqual(['record-0', 'record-1', 'record-2', 'record-3', 'record-4', 'record-6']);
    await reopened.close();
  });

  it('detects a last record whose bytes do not match its CRC and truncates it', async () => {
    const dir = tempDir();
    const spool = await Spool.open({ dir, maxBytes: 1024 * 1024 });
    for (let i = 0; i < 3; i++) await spool.append(payload(i), 1);
    await spool.close();
    const [segment] = segmentPaths(dir);
    const bytes = readFileSync(segment!);
    bytes[bytes.length - 10] = bytes[bytes.length - 10]! ^ 0xff; // a sector of the last write never made it
    writeFileSync(segment!, bytes);

    const reopened = await Spool.open({ dir, maxBytes: 1024 * 1024 });
    expect(reopened.recovery.truncatedBytes).toBe(100 + RECORD_HEADER_BYTES);
    expect(texts(await readAll(reopened))).toEqual(['record-0', 'record-1']);
    await reopened.close();
  });

  it('refuses to open when a record before the last segment is damaged (accepted events), naming the file', async () => {
    const dir = tempDir();
    const spool = await Spool.open({ dir, maxBytes: 64 * 1024, segmentBytes: 4096 });
    for (let i = 0; i < 100; i++) await spool.append(payload(i), 1);
    await spool.close();
    const segments = segmentPaths(dir);
    expect(segments.length).toBeGreaterThan(2);
    const bytes = readFileSync(segments[0]!);
    bytes[RECORD_HEADER_BYTES + 5] = bytes[RECORD_HEADER_BYTES + 5]! ^ 0xff;
    writeFileSync(segments[0]!, bytes);
    const failure = await Spool.open({ dir, maxBytes: 64 * 1024, segmentBytes: 4096 }).catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(SpoolError);
    expect(failure).toMatchObject({ code: 'SPOOL_CORRUPT' });
    expect((failure as Error).message).toContain(segments[0]);
  });

  it('is bounded in bytes: a record beyond maxBytes is refused with SPOOL_FULL until acknowledged records free room', async () => {
    const dir = tempDir();
    const recordSize = 100 + RECORD_HEADER_BYTES;
    const spool = await Spool.open({ dir, maxBytes: recordSize * 10 });
    for (let i = 0; i < 10; i++) await spool.append(payload(i), 1);
    const full = await spool.append(payload(10), 1).catch((e: unknown) => e);
    expect(full).toMatchObject({ code: 'SPOOL_FULL' });
    expect((full as Error).message).toMatch(/holds 1120 of 1120 bytes/);
    expect(spool.depth().records).toBe(10);

    const delivered = await spool.read(recordSize * 3);
    expect(delivered).toHaveLength(3);
    await spool.ack(delivered);
    await spool.append(payload(10), 1);
    expect(spool.depth()).toMatchObject({ records: 8, bytes: recordSize * 8 });
    await spool.close();
  });

  it('rolls segments, deletes acknowledged ones and resumes after the acknowledged records when reopened', async () => {
    const dir = tempDir();
    const spool = await Spool.open({ dir, maxBytes: 1024 * 1024, segmentBytes: 1024 });
    for (let i = 0; i < 50; i++) await spool.append(payload(i), 1);
    const segmentsBefore = segmentPaths(dir).length;
    expect(segmentsBefore).toBeGreaterThan(4);
    const first = await spool.read(30 * (100 + RECORD_HEADER_BYTES));
    expect(first).toHaveLength(30);
    await spool.ack(first);
    expect(segmentPaths(dir).length).toBeLessThan(segmentsBefore);
    await spool.close();

    const reopened = await Spool.open({ dir, maxBytes: 1024 * 1024, segmentBytes: 1024 });
    expect(reopened.recovery.records).toBe(20);
    expect(texts(await readAll(reopened))).toEqual(Array.from({ length: 20 }, (_, i) => `record-${i + 30}`));
    await reopened.close();
  });

  it('rewind() reads the unacknowledged records again (a delivery that failed)', async () => {
    const spool = await Spool.open({ dir: tempDir(), maxBytes: 1024 * 1024 });
    for (let i = 0; i < 4; i++) await spool.append(payload(i), 1);
    const a = await spool.read(1024 * 1024);
    await spool.ack(a.slice(0, 1));
    spool.rewind();
    expect(texts(await readAll(spool))).toEqual(['record-1', 'record-2', 'record-3']);
    await spool.close();
  });

  // A full disk is real here: a 64 KiB tmpfs (mounting needs root).
  const canMount = process.getuid?.() === 0;
  if (!canMount) console.warn('spool.int.test.ts: not root, so the disk-full test (tmpfs mount) is skipped');
  it.skipIf(!canMount)('a full disk makes appends fail with SPOOL_UNWRITABLE, and appends work again once space is freed', async () => {
    const mountPoint = tempDir();
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', mountPoint]);
    } catch (error) {
      console.warn(`spool.int.test.ts: cannot mount a tmpfs (${(error as Error).message}); disk-full test skipped`);
      return;
    }
    try {
      const dir = join(mountPoint, 'spool');
      mkdirSync(dir);
      const spool = await Spool.open({ dir, maxBytes: 1024 * 1024 });
      await spool.append(payload(0), 1);
      const filler = join(mountPoint, 'filler');
      try {
        execFileSync('dd', ['if=/dev/zero', `of=${filler}`, 'bs=4k', 'count=64'], { stdio: 'ignore' });
      } catch {
        // dd stops at ENOSPC: the disk is full, which is the point.
      }
      const failure = await spool.append(payload(1, 8192), 1).catch((e: unknown) => e);
      expect(failure).toMatchObject({ code: 'SPOOL_UNWRITABLE' });
      expect((failure as Error).message).toContain('ENOSPC');
      rmSync(filler);
      await spool.append(payload(2), 1);
      expect(texts(await readAll(spool))).toEqual(['record-0', 'record-2']);
      await spool.close();
    } finally {
      execFileSync('umount', [mountPoint]);
    }
  });
});
