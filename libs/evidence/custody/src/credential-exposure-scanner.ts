// Watches one session for the credential the gateway injected upstream: every client-bound byte
// (streamed, in whatever chunks the socket writes) and every event of the session's stream. It
// keeps only the last (longest needle − 1) bytes of the client stream between chunks, a running
// SHA-256 and byte count of that stream, and counts; never the secret in anything it returns.
import { createHash, type Hash } from 'node:crypto';
import { inspect } from 'node:util';
import { CustodyError } from './errors.js';
import { SHORT_SECRET_BYTES, exposureNeedles, type ExposureEncoding, type ExposureNeedle } from './exposure-needles.js';

export type ExposureSite = 'client-bytes' | 'events';

export interface ExposureDetection {
  readonly where: ExposureSite;
  readonly encoding: ExposureEncoding;
  /** client-bytes: offset of the match in the client-bound stream; events: offset in the serialized event. */
  readonly offset: number;
  /** events: the event's ordinal among those scanned (0-based). */
  readonly event?: number;
  /** Which secret (index) matched, when the scanner holds several. */
  readonly secret: number;
  /** base64 / base64url: the secret's offset mod 3 in the encoded data. */
  readonly alignment?: 0 | 1 | 2;
}

export interface CredentialScanResult {
  /** The client-bound byte stream: SHA-256 (hex) and length. */
  readonly clientBytes: { readonly sha256: string; readonly length: number };
  readonly eventsScanned: number;
  readonly exposed: boolean;
  /** The first `maxDetections` detections, in the order found. */
  readonly detections: readonly ExposureDetection[];
  /** Every detection, counted (the list above is bounded). */
  readonly detectionCount: { readonly total: number; readonly clientBytes: number; readonly events: number };
  /** The encodings scanned for (distinct needles only). */
  readonly encodings: readonly ExposureEncoding[];
  /** A secret shorter than 8 bytes was scanned for: a match may be chance, and encodings shorter than 8 bytes were not scanned. */
  readonly shortSecret: boolean;
}

export interface CredentialExposureScannerOptions {
  /** Detections kept in the result (the rest are counted). Default 16. */
  readonly maxDetections?: number;
}

export class CredentialExposureScanner {
  readonly #needles: ExposureNeedle[];
  readonly #maxNeedle: number;
  readonly #maxDetections: number;
  readonly #shortSecret: boolean;
  readonly #hash: Hash = createHash('sha256');
  readonly #detections: ExposureDetection[] = [];
  readonly #counts = { total: 0, clientBytes: 0, events: 0 };
  /** The last (maxNeedle − 1) client bytes at most: a needle split across chunks ends in the next one. */
  #tail: Buffer = Buffer.alloc(0);
  #clientLength = 0;
  #eventsScanned = 0;
  #finished = false;

  /** `secrets`: the injected value(s), e.g. the password as UTF-8. Throws CUSTODY_SECRET_INVALID (empty, > 16 KiB, not bytes). */
  constructor(secrets: readonly Uint8Array[], options: CredentialExposureScannerOptions = {}) {
    this.#needles = exposureNeedles(secrets);
    this.#maxNeedle = Math.max(...this.#needles.map((n) => n.bytes.length));
    this.#maxDetections = Math.max(0, options.maxDetections ?? 16);
    this.#shortSecret = secrets.some((s) => s.length < SHORT_SECRET_BYTES);
  }

  /** Length of the longest needle: the client-stream bytes retained between chunks stay below it. */
  get maxNeedleBytes(): number {
    return this.#maxNeedle;
  }

  /** Client-stream bytes held between chunks (at most maxNeedleBytes − 1). */
  get retainedBytes(): number {
    return this.#tail.length;
  }

  get exposed(): boolean {
    return this.#counts.total > 0;
  }

  /** The next bytes sent to the client, exactly as written to its socket. */
  scanClientBytes(chunk: Uint8Array): void {
    this.#open();
    if (chunk.length === 0) return;
    const data = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    this.#hash.update(data);
    const base = this.#clientLength;
    const tail = this.#tail;
    // Needles that start in the tail and end in this chunk.
    if (tail.length > 0) {
      const seam = Buffer.concat([tail, data.subarray(0, this.#maxNeedle - 1)]);
      for (const needle of this.#needles) {
        for (let p = seam.indexOf(needle.bytes, Math.max(0, tail.length - needle.bytes.length + 1)); p >= 0 && p < tail.length; p = seam.indexOf(needle.bytes, p + needle.bytes.length)) {
          this.#detect(needle, 'client-bytes', base - tail.length + p);
        }
      }
    }
    // Needles wholly inside this chunk.
    for (const needle of this.#needles) {
      for (let p = data.indexOf(needle.bytes); p >= 0; p = data.indexOf(needle.bytes, p + needle.bytes.length)) this.#detect(needle, 'client-bytes', base + p);
    }
    this.#clientLength += data.length;
    // A copy, so that the caller's (possibly large) buffer is not kept alive by a view into it.
    const keep = this.#maxNeedle - 1;
    this.#tail = data.length >= keep ? Buffer.from(data.subarray(data.length - keep)) : Buffer.from(Buffer.concat([tail, data]).subarray(Math.max(0, tail.length + data.length - keep)));
  }

  /** One event of the session as serialized for the store (JSON, UTF-8). Events are scanned whole, each on its own. */
  scanEvent(serializedEvent: Uint8Array | string): void {
    this.#open();
    const data = typeof serializedEvent === 'string' ? Buffer.from(serializedEvent, 'utf8') : Buffer.from(serializedEvent.buffer, serializedEvent.byteOffset, serializedEvent.byteLength);
    const index = this.#eventsScanned++;
    for (const needle of this.#needles) {
      for (let p = data.indexOf(needle.bytes); p >= 0; p = data.indexOf(needle.bytes, p + needle.bytes.length)) this.#detect(needle, 'events', p, index);
    }
  }

  /** What was found so far (may be called repeatedly). */
  result(): CredentialScanResult {
    return {
      clientBytes: { sha256: this.#hash.copy().digest('hex'), length: this.#clientLength },
      eventsScanned: this.#eventsScanned,
      exposed: this.exposed,
      detections: [...this.#detections],
      detectionCount: { ...this.#counts },
      encodings: [...new Set(this.#needles.map((n) => n.encoding))],
      shortSecret: this.#shortSecret,
    };
  }

  /** The final result; the needles (which encode the secret) are zeroed and the scanner refuses further input. */
  finish(): CredentialScanResult {
    const result = this.result();
    if (!this.#finished) {
      this.#finished = true;
      for (const needle of this.#needles) needle.bytes.fill(0);
      this.#tail.fill(0);
      this.#tail = Buffer.alloc(0);
    }
    return result;
  }

  #open(): void {
    if (this.#finished) throw new CustodyError('CUSTODY_SCANNER_FINISHED', 'the scanner has finished: its needles are wiped');
  }

  #detect(needle: ExposureNeedle, where: ExposureSite, offset: number, event?: number): void {
    this.#counts.total += 1;
    this.#counts[where === 'client-bytes' ? 'clientBytes' : 'events'] += 1;
    if (this.#detections.length >= this.#maxDetections) return;
    this.#detections.push({ where, encoding: needle.encoding, offset, ...(event === undefined ? {} : { event }), secret: needle.secret, ...(needle.alignment === undefined ? {} : { alignment: needle.alignment }) });
  }

  // The needles are the secret: never printed, never serialized.
  toJSON(): { readonly scanner: string } {
    return { scanner: '[CredentialExposureScanner: secret redacted]' };
  }

  [inspect.custom](): string {
    return `CredentialExposureScanner { needles: ${this.#needles.length}, clientBytes: ${this.#clientLength}, events: ${this.#eventsScanned}, exposed: ${this.exposed} }`;
  }
}
