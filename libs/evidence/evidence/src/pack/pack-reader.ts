// Reads an evidence pack as a stream for the verifier. Every file is hashed as it streams by; the
// small ones are kept; events.jsonl, by far the largest, is never held whole: it is cut into chunks
// of lines that worker threads hash (RFC 6962 leaf) and scope-check while decompression goes on,
// and only 32 bytes per event are kept, with per-chunk rule counts, event-local findings and (complete
// packs) compact command facts for the views check. Memory: the small files, 32 B per event, those
// facts, and at most two chunks per worker in flight.
import { createHash, type Hash } from 'node:crypto';
import { availableParallelism } from 'node:os';
import type { Readable } from 'node:stream';
import { Worker } from 'node:worker_threads';
import { EvidenceError } from '../errors.js';
import { WORKER_ROLE, checkEventLines, type CheckedLines, type CustodyLine, type LineRule, type LineScope } from './event-line-check.js';
import { PACK_FILES, type PackCoverage, type PackManifest } from './evidence-pack.js';
import { readTarGzStream, type ArchiveEntrySink } from './tar-archive.js';

export interface PackReadOptions {
  /** Worker threads for the events; default up to 4 (one per core) once events.jsonl is 8 MiB or more, else 0. */
  readonly workers?: number;
  /** Bytes of events.jsonl per chunk (cut at a line end). Default 4 MiB. */
  readonly chunkBytes?: number;
  /** Largest file other than events.jsonl kept in memory. Default 256 MiB. */
  readonly maxFileBytes?: number;
  readonly onProgress?: (eventsChecked: number, total: number) => void;
  /**
   * Receives each chunk's custody.attested lines as the chunk is checked (chunks may arrive out of
   * order; `chunk` is its index in `events`). They are not kept in the result, so memory stays bounded.
   */
  readonly onCustodyLines?: (chunk: number, lines: readonly CustodyLine[]) => void;
  /** Receives every line of a connection or control pack as its chunk is checked (same order rules as onCustodyLines). */
  readonly onScopedLines?: (chunk: number, lines: readonly CustodyLine[]) => void;
  /** Each file other than events.jsonl as soon as it is read (the verifier needs the control mapping while the events stream). */
  readonly onFile?: (path: string, data: Buffer) => void;
}

export interface ReadPack {
  /** Entry paths, in archive order. */
  readonly paths: readonly string[];
  has(path: string): boolean;
  /** A file's bytes; events.jsonl is not kept (see `events`). */
  file(path: string): Buffer | undefined;
  /** SHA-256 (hex) of any file, events.jsonl included. */
  digest(path: string): string | undefined;
  /** The checked chunks of events.jsonl, in order; undefined when the pack has no events file. */
  readonly events?: readonly CheckedLines[];
}

const WORKERS_FROM_BYTES = 8 * 1024 * 1024;
const MAX_LINE_BYTES = 16 * 1024 * 1024;

export async function readPack(source: Readable | AsyncIterable<Buffer>, options: PackReadOptions = {}): Promise<ReadPack> {
  const paths: string[] = [];
  const files = new Map<string, Buffer>();
  const digests = new Map<string, string>();
  const maxFileBytes = options.maxFileBytes ?? 256 * 1024 * 1024;
  let events: EventsSink | undefined;
  let buffered: Buffer | undefined;
  const eventsSink = (bytes: number): EventsSink => {
    // The scope and count come from the manifest, which our packs put first. Checked as claims
    // only: the manifest itself is verified later, in order, before any of this is reported.
    const hints = manifestHints(files.get(PACK_FILES.manifest));
    const mapping = mappingRules(files.get(PACK_FILES.mapping));
    // Command and masking facts for complete and headers packs: the verifier recomputes from them
    // what such a pack can prove (a complete pack holds every event a command finding joins; a
    // connection headers pack every event of its sessions and approvals).
    const facts = mapping?.privilegedFlags && (hints?.coverageKind === 'complete' || hints?.coverageKind === 'headers') ? { privilegedFlags: mapping.privilegedFlags } : {};
    const scope: LineScope = { ...(hints?.scope ?? { from: '', to: '' }), ...(mapping ? { rules: mapping.rules, ...facts } : {}) };
    return new EventsSink(scope, workerCount(options.workers, bytes), options.chunkBytes ?? 4 * 1024 * 1024, hints?.total ?? 0, options.onProgress, options.onCustodyLines, options.onScopedLines);
  };

  // On any failure the worker threads are stopped (they would keep the process alive) and the
  // stream is destroyed (readTarGzStream does that), before the error is reported.
  try {
    await readEntries();
  } catch (error) {
    await events?.abort();
    throw error;
  }
  async function readEntries(): Promise<void> {
    await readTarGzStream(source, (path, size) => {
      paths.push(path);
      if (path === PACK_FILES.events) {
        if (manifestHints(files.get(PACK_FILES.manifest))) return (events = eventsSink(size));
        // events.jsonl before the manifest (another tool re-archived the pack): keep it, check it after.
        return collect(path, (data) => void (buffered = data));
      }
      if (size > maxFileBytes) throw new EvidenceError('EVIDENCE_PACK_MALFORMED', `${path} is ${size} bytes, more than the ${maxFileBytes} a pack file other than the events may hold`);
      return collect(path, (data) => {
        files.set(path, data);
        options.onFile?.(path, data);
      });
    });

    function collect(path: string, done: (data: Buffer) => void): ArchiveEntrySink {
      const pieces: Buffer[] = [];
      const hash = createHash('sha256');
      return {
        write(piece) {
          hash.update(piece);
          pieces.push(piece);
        },
        end() {
          digests.set(path, hash.digest('hex'));
          done(Buffer.concat(pieces));
        },
      };
    }

    if (buffered !== undefined) {
      events = eventsSink(buffered.length);
      await events.write(buffered);
      await events.end();
    }
  }
  let checked: readonly CheckedLines[] | undefined;
  try {
    checked = events ? await events.results() : undefined;
  } catch (error) {
    await events?.abort();
    throw error;
  }
  if (events) digests.set(PACK_FILES.events, events.sha256());
  return {
    paths,
    has: (path) => digests.has(path),
    file: (path) => files.get(path),
    digest: (path) => digests.get(path),
    ...(checked ? { events: checked } : {}),
  };
}

function workerCount(requested: number | undefined, bytes: number): number {
  return requested ?? (bytes >= WORKERS_FROM_BYTES ? Math.min(4, availableParallelism()) : 0);
}

/** The rules of the shipped control mapping (read before the events), or undefined when there is none to read. */
function mappingRules(mapping: Buffer | undefined): { rules: LineRule[]; privilegedFlags?: string[] } | undefined {
  if (!mapping) return undefined;
  try {
    const { rules, privilegedFlags } = JSON.parse(mapping.toString('utf8')) as { rules?: unknown; privilegedFlags?: unknown };
    if (!Array.isArray(rules)) return undefined;
    const flags = Array.isArray(privilegedFlags) ? privilegedFlags.filter((f): f is string => typeof f === 'string') : undefined;
    return { rules: ruleList(rules), ...(flags ? { privilegedFlags: flags } : {}) };
  } catch {
    return undefined;
  }
}

function ruleList(rules: unknown[]): LineRule[] {
  return rules.filter((r): r is LineRule => typeof r === 'object' && r !== null && typeof (r as LineRule).id === 'string' && typeof (r as LineRule).event === 'string').map((r) => ({ id: r.id, event: r.event, ...(r.where && typeof r.where === 'object' ? { where: r.where } : {}) }));
}

/**
 * Which leaf hashes the events need (the leaves' indices are known only to the main thread): format
 * 1 below the log's switch, 2 from it; both when the events may lie on either side.
 */
function eventLeafFormat(coverage: PackCoverage | undefined, headerFrom: number | undefined, treeSize: number): 1 | 2 | 'both' {
  if (headerFrom === undefined) return 1;
  // A headers pack proves header leaves; each event is checked against its header (format 2).
  if (coverage?.kind === 'headers') return 2;
  const [first, end] = coverage?.kind === 'complete' ? [coverage.firstLeaf, coverage.endLeaf] : [0, treeSize];
  return headerFrom <= first ? 2 : headerFrom >= end ? 1 : 'both';
}

/** The scope and event count a manifest claims, or undefined when there is none to read. */
function manifestHints(manifest: Buffer | undefined): { scope: LineScope; total: number; coverageKind?: string } | undefined {
  if (!manifest) return undefined;
  try {
    const { scope, counts, coverage, leafFormat2From, latestCheckpoint } = JSON.parse(manifest.toString('utf8')) as Partial<PackManifest>;
    if (typeof scope?.from !== 'string' || typeof scope.to !== 'string') return undefined;
    return {
      scope: {
        from: scope.from,
        to: scope.to,
        leafFormat: eventLeafFormat(coverage, typeof leafFormat2From === 'number' ? leafFormat2From : undefined, latestCheckpoint?.treeSize ?? 0),
        ...(typeof scope.identity === 'string' ? { identity: scope.identity } : {}),
        ...(coverage?.kind === 'complete' ? { outsideAllowed: true, gapTimes: true } : {}),
        ...(typeof scope.connection === 'string' || typeof scope.control === 'string' ? { collectLines: true } : {}),
      },
      total: typeof counts?.events === 'number' ? counts.events : 0,
      ...(typeof coverage?.kind === 'string' ? { coverageKind: coverage.kind } : {}),
    };
  } catch {
    return undefined;
  }
}

/** events.jsonl: hashed whole for its digest, cut into chunks of whole lines, each checked in a worker (or here). */
class EventsSink implements ArchiveEntrySink {
  readonly #hash: Hash = createHash('sha256');
  readonly #pool: LinePool;
  readonly #chunkBytes: number;
  #pending: Buffer[] = [];
  #pendingBytes = 0;
  // The pending bytes hold no line end: nothing can be cut until a piece brings one.
  #openLine = false;

  constructor(
    scope: LineScope,
    workers: number,
    chunkBytes: number,
    total: number,
    onProgress?: (done: number, total: number) => void,
    onCustody?: (chunk: number, lines: readonly CustodyLine[]) => void,
    onScoped?: (chunk: number, lines: readonly CustodyLine[]) => void,
  ) {
    this.#pool = new LinePool(scope, workers, total, onProgress, onCustody, onScoped);
    this.#chunkBytes = Math.max(1, chunkBytes);
  }

  async write(piece: Buffer): Promise<void> {
    this.#hash.update(piece);
    this.#pending.push(piece);
    this.#pendingBytes += piece.length;
    if (this.#openLine && piece.indexOf(0x0a) < 0) {
      if (this.#pendingBytes > MAX_LINE_BYTES) throw new EvidenceError('EVIDENCE_PACK_MALFORMED', `events.jsonl has a line longer than ${MAX_LINE_BYTES} bytes`);
      return;
    }
    while (this.#pendingBytes >= this.#chunkBytes) {
      // One copy with its own ArrayBuffer (it is transferred to a worker), cut after the last line end.
      const joined = this.#join();
      const lastLineEnd = joined.lastIndexOf(0x0a);
      if (lastLineEnd < 0) {
        // A line longer than a chunk: keep gathering, up to a bound (an event is at most 2 MiB).
        if (this.#pendingBytes > MAX_LINE_BYTES) throw new EvidenceError('EVIDENCE_PACK_MALFORMED', `events.jsonl has a line longer than ${MAX_LINE_BYTES} bytes`);
        this.#pending = [Buffer.from(joined.buffer, joined.byteOffset, joined.byteLength)];
        this.#openLine = true;
        return;
      }
      this.#openLine = false;
      const rest = joined.subarray(lastLineEnd + 1);
      this.#pending = rest.length > 0 ? [Buffer.from(rest)] : [];
      this.#pendingBytes = rest.length;
      await this.#pool.submit(joined.subarray(0, lastLineEnd + 1));
    }
  }

  async end(): Promise<void> {
    if (this.#pendingBytes > 0) await this.#pool.submit(this.#join());
    this.#pending = [];
    this.#pendingBytes = 0;
  }

  sha256(): string {
    return this.#hash.digest('hex');
  }

  results(): Promise<readonly CheckedLines[]> {
    return this.#pool.finish();
  }

  /** Stops the workers at once, whatever they are doing. */
  abort(): Promise<void> {
    return this.#pool.abort();
  }

  #join(): Uint8Array {
    const joined = new Uint8Array(this.#pendingBytes);
    let offset = 0;
    for (const p of this.#pending) {
      joined.set(p, offset);
      offset += p.length;
    }
    return joined;
  }
}

/** Checks chunks in order of submission: in worker threads (at most two chunks each in flight) or, with no workers, here. */
class LinePool {
  readonly #workers: LineWorker[];
  readonly #results: CheckedLines[] = [];
  readonly #inFlight = new Set<Promise<void>>();
  #next = 0;
  #done = 0;
  #error: unknown;

  constructor(
    private readonly scope: LineScope,
    workers: number,
    private readonly total: number,
    private readonly onProgress?: (done: number, total: number) => void,
    private readonly onCustody?: (chunk: number, lines: readonly CustodyLine[]) => void,
    private readonly onScoped?: (chunk: number, lines: readonly CustodyLine[]) => void,
  ) {
    this.#workers = Array.from({ length: Math.max(0, workers) }, () => new LineWorker());
  }

  async submit(bytes: Uint8Array): Promise<void> {
    if (this.#error !== undefined) throw this.#error;
    const id = this.#next++;
    if (this.#workers.length === 0) return this.#record(id, checkEventLines(bytes, this.scope));
    while (this.#inFlight.size >= 2 * this.#workers.length) await Promise.race(this.#inFlight);
    const job = this.#workers[id % this.#workers.length]!.check(id, bytes, this.scope).then(
      (result) => this.#record(id, result),
      (error: unknown) => void (this.#error ??= error),
    );
    const tracked = job.finally(() => this.#inFlight.delete(tracked));
    this.#inFlight.add(tracked);
  }

  async finish(): Promise<readonly CheckedLines[]> {
    try {
      await Promise.all(this.#inFlight);
      if (this.#error !== undefined) throw this.#error;
      return this.#results;
    } finally {
      await Promise.all(this.#workers.map((w) => w.terminate()));
    }
  }

  async abort(): Promise<void> {
    this.#error ??= new EvidenceError('EVIDENCE_PACK_MALFORMED', 'reading the pack was stopped');
    await Promise.all(this.#workers.map((w) => w.terminate()));
  }

  #record(id: number, result: CheckedLines): void {
    const { custody, lines, ...kept } = result;
    if (custody && this.onCustody) this.onCustody(id, custody);
    if (lines && this.onScoped) this.onScoped(id, lines);
    this.#results[id] = { ...kept, ...(custody && !this.onCustody ? { custody } : {}) };
    this.#done += result.count;
    this.onProgress?.(this.#done, this.total);
  }
}

/** Where the worker entry point is: beside this file, as .ts when running from sources. */
const LINE_WORKER = new URL(import.meta.url.endsWith('.ts') ? './event-line-check.ts' : './event-line-check.js', import.meta.url);

let liveWorkers = 0;
/** Event-check worker threads currently running (a failed read must leave none: they keep the process alive). */
export function liveEventCheckWorkers(): number {
  return liveWorkers;
}

/** One worker thread running event-line-check, answering chunks in the order they were sent. */
class LineWorker {
  readonly #worker = new Worker(LINE_WORKER, { workerData: { role: WORKER_ROLE } });
  readonly #waiting = new Map<number, { resolve: (r: CheckedLines) => void; reject: (e: Error) => void }>();

  constructor() {
    liveWorkers += 1;
    this.#worker.once('exit', () => void (liveWorkers -= 1));
    this.#worker.on('message', (message: CheckedLines & { id: number }) => {
      this.#waiting.get(message.id)?.resolve(message);
      this.#waiting.delete(message.id);
    });
    const failAll = (error: Error): void => {
      for (const w of this.#waiting.values()) w.reject(new Error(`event check worker failed: ${error.message}`));
      this.#waiting.clear();
    };
    this.#worker.on('error', failAll);
    this.#worker.on('exit', (code) => failAll(new Error(`exited with code ${code}`)));
  }

  /** `bytes` must be the only view of its ArrayBuffer still in use: the buffer is transferred, not copied. */
  check(id: number, bytes: Uint8Array, scope: LineScope): Promise<CheckedLines> {
    return new Promise((resolve, reject) => {
      this.#waiting.set(id, { resolve, reject });
      this.#worker.postMessage({ id, bytes, scope }, [bytes.buffer as ArrayBuffer]);
    });
  }

  async terminate(): Promise<void> {
    await this.#worker.terminate();
  }
}
