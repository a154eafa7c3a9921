// SFTP READ with the policy's detectors applied. A detector needs the bytes before and after a
// position, so a file cannot be masked one client READ at a time (a card number split by a
// chunk boundary would pass). Instead the gateway reads the file from offset 0 in order, masks it
// as one stream (bounded hold-back) and answers each READ from that masked stream at the
// client's offset. Masking here is length-preserving (every letter and digit of a detected value
// becomes `*`, bytes are taken one for one as Latin-1 so invalid UTF-8 and binary bytes pass
// unchanged outside a match), so masked offsets are file offsets and the size the client stat()s
// stays true. A READ behind what is still kept restarts the masked stream from 0 (exact, since
// masking from the start is deterministic); restarts are bounded per handle.
import { DetectionProfile, MaskingFindings, createStreamMasker, type StreamMasker } from '@custodian/masking';

/** Upstream READ size the masked stream is filled with. */
export const MASKED_READ_CHUNK = 64 * 1024;
/** Upstream READs in flight per masked file (bounds memory: depth × chunk). */
export const MASKED_READ_DEPTH = 8;
/** Masked bytes kept behind the furthest byte served, so a re-read just behind it needs no restart. */
export const MASKED_READ_RETAIN = 256 * 1024;
/** Restarts from offset 0 per handle before READs behind the kept window are refused. */
export const MASKED_READ_MAX_RESTARTS = 8;

/** Length-preserving profiles, one per policy profile (built from its compiled detectors; cheap). */
const lengthPreserving = new WeakMap<DetectionProfile, DetectionProfile>();

/** The same detectors and rule ids as `profile`, each hit masked letter-for-letter with `*`. */
export function lengthPreservingProfile(profile: DetectionProfile): DetectionProfile {
  let found = lengthPreserving.get(profile);
  if (!found) {
    const ruleIds: Record<string, string> = {};
    for (const compiled of profile.compiled) ruleIds[compiled.detector.id] = compiled.rule;
    found = new DetectionProfile({ detectors: profile.compiled.map((c) => c.detector), strategy: { kind: 'partial', keepFirst: 0, keepLast: 0, maskChar: '*' }, ruleIds });
    lengthPreserving.set(profile, found);
  }
  return found;
}

export class MaskedReadRefused extends Error {
  override readonly name = 'MaskedReadRefused';
  readonly code = 'SFTP_MASKED_READ_REFUSED';
}

interface UpstreamRead {
  readonly offset: number;
  readonly length: number;
  readonly result: Promise<Buffer | undefined>;
}

/**
 * The masked content of one open file, produced in order from upstream READs. `read(offset,
 * length)` answers from it (undefined at end of file). Calls are served one at a time, in the
 * order they arrive (a client pipelines READs at increasing offsets).
 */
export class MaskedFileReader {
  private masker!: StreamMasker;
  /** Masked bytes kept, in order, starting at `base`. */
  private chunks: Buffer[] = [];
  private base = 0;
  /** Masked bytes produced so far (= file offset the masker has emitted up to). */
  private emitted = 0;
  private nextRaw = 0;
  private queue: UpstreamRead[] = [];
  private eof = false;
  private servedEnd = 0;
  private restarts = 0;
  private serial: Promise<unknown> = Promise.resolve();
  /** What the masked stream found (from its last start: a restart counts the file once). */
  private found = new MaskingFindings();

  constructor(
    private readonly profile: DetectionProfile,
    private readonly readUpstream: (offset: number, length: number) => Promise<Buffer | undefined>,
    private readonly location: string,
  ) {
    this.reset();
  }

  get findings(): MaskingFindings {
    return this.found;
  }

  get restartCount(): number {
    return this.restarts;
  }

  /** The masked bytes [offset, offset + length), fewer at the end of the file, undefined past it. */
  read(offset: number, length: number): Promise<Buffer | undefined> {
    const next = this.serial.then(() => this.readNow(offset, length));
    this.serial = next.catch(() => undefined);
    return next;
  }

  private reset(): void {
    this.found = new MaskingFindings();
    this.masker = createStreamMasker({ profile: this.profile, location: this.location, findings: this.found });
    this.chunks = [];
    this.base = 0;
    this.emitted = 0;
    this.nextRaw = 0;
    this.queue = [];
    this.eof = false;
    this.servedEnd = 0;
  }

  private async readNow(offset: number, length: number): Promise<Buffer | undefined> {
    if (offset < this.base) {
      if (this.restarts >= MASKED_READ_MAX_RESTARTS) throw new MaskedReadRefused(`reads of a masked file must go forward: offset ${offset} is behind the masked stream (${MASKED_READ_MAX_RESTARTS} restarts used)`);
      this.restarts++;
      this.reset();
    }
    const end = offset + length;
    while (this.emitted < end && !this.eof) {
      await this.produce();
      // Bytes before the request (and behind the retained window) are not needed: memory stays bounded when a client skips ahead.
      this.trim(Math.min(offset, Math.max(0, this.servedEnd - MASKED_READ_RETAIN)));
    }
    const stop = Math.min(end, this.emitted);
    if (offset >= stop) return undefined;
    const data = this.slice(offset, stop);
    this.servedEnd = Math.max(this.servedEnd, stop);
    this.trim(Math.max(0, this.servedEnd - MASKED_READ_RETAIN));
    return data;
  }

  /** Takes the next upstream READ in order, masks it and appends the output. */
  private async produce(): Promise<void> {
    while (this.queue.length < MASKED_READ_DEPTH) {
      const offset = this.nextRaw;
      this.queue.push({ offset, length: MASKED_READ_CHUNK, result: this.readUpstream(offset, MASKED_READ_CHUNK) });
      this.nextRaw += MASKED_READ_CHUNK;
    }
    const head = this.queue[0]!;
    const generation = this.masker;
    const data = await head.result;
    if (generation !== this.masker) return; // restarted meanwhile
    this.queue.shift();
    if (!data || data.length === 0) {
      this.append(this.masker.end());
      this.eof = true;
      this.queue = [];
      return;
    }
    if (data.length < head.length) {
      // A short read: the rest of this range is read next, before the later ranges already asked for.
      const offset = head.offset + data.length;
      const length = head.length - data.length;
      this.queue.unshift({ offset, length, result: this.readUpstream(offset, length) });
    }
    this.append(this.masker.push(data.toString('latin1')));
  }

  private append(text: string): void {
    if (text.length === 0) return;
    const bytes = Buffer.from(text, 'latin1');
    this.chunks.push(bytes);
    this.emitted += bytes.length;
  }

  private slice(from: number, to: number): Buffer {
    const parts: Buffer[] = [];
    let at = this.base;
    for (const chunk of this.chunks) {
      const chunkEnd = at + chunk.length;
      if (chunkEnd > from && at < to) parts.push(chunk.subarray(Math.max(0, from - at), Math.min(chunk.length, to - at)));
      at = chunkEnd;
      if (at >= to) break;
    }
    return parts.length === 1 ? Buffer.from(parts[0]!) : Buffer.concat(parts);
  }

  /** Drops whole chunks that end at or before `before`. */
  private trim(before: number): void {
    while (this.chunks.length > 0 && this.base + this.chunks[0]!.length <= before) {
      this.base += this.chunks[0]!.length;
      this.chunks.shift();
    }
  }
}
