import { SECRET_TOKEN_CLASS, type DetectorTrigger } from './detectors/detector.js';

const TOKEN = 1;
const DIGIT = 2;
/** `[0-9 .()+-]`: every character a card, SSN, phone or IPv4 candidate is made of. */
const CLUSTER = 4;
/** `[0-9+(]`: the characters such a candidate can start with. */
const CLUSTER_START = 8;
const DOT = 46;
/** Relative start given to a run still open from before the buffer (never equal to -1). */
const OPEN_BEFORE_BUFFER = -0x20000000;

/** One byte of character classes per UTF-16 code unit, so the scan is one table load per character. */
const CLASSES = ((): Uint8Array => {
  const table = new Uint8Array(65536);
  const token = new RegExp(`^${SECRET_TOKEN_CLASS}$`);
  for (let code = 0; code < 65536; code++) if (token.test(String.fromCharCode(code))) table[code] = TOKEN;
  const add = (chars: string, bits: number): void => {
    for (const ch of chars) table[ch.charCodeAt(0)] = (table[ch.charCodeAt(0)] as number) | bits;
  };
  add('0123456789', DIGIT | CLUSTER | CLUSTER_START);
  add(' .-)', CLUSTER);
  add('+(', CLUSTER | CLUSTER_START);
  return table;
})();

const isUpper = (code: number): boolean => code >= 65 && code <= 90;
const isDigitCode = (code: number): boolean => code >= 48 && code <= 57;
const isAlnumCode = (code: number): boolean => isDigitCode(code) || isUpper(code) || (code >= 97 && code <= 122);

/** The digits and dots a numeric trigger needs inside one cluster. */
export interface NumericNeed {
  readonly minDigits: number;
  readonly minDots: number;
}

/**
 * Whether a whole text could hold a start the prefilter would propose: one pass of table loads,
 * no allocation. Over-approximates every lane (a numeric cluster lies inside a maximal run of
 * cluster characters, whose digits and dots are counted; a token run is any run of token
 * characters; a country code is any `AA00`), so `false` proves the prefilter proposes nothing.
 */
export function mayProposeCandidate(text: string, needs: PrefilterNeeds, numeric: readonly NumericNeed[]): boolean {
  if (needs.clusterMinDigits === Infinity && needs.tokenMinLength === Infinity && !needs.countryCodes) return false;
  let clusterDigits = 0;
  let clusterDots = 0;
  let tokenRun = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    const k = CLASSES[code] as number;
    if (k & CLUSTER) {
      if (k & DIGIT) clusterDigits++;
      else if (code === DOT) clusterDots++;
      if (clusterDigits >= needs.clusterMinDigits) {
        for (const need of numeric) if (clusterDigits >= need.minDigits && clusterDots >= need.minDots) return true;
      }
    } else {
      clusterDigits = 0;
      clusterDots = 0;
    }
    if (k & TOKEN) {
      if (++tokenRun >= needs.tokenMinLength) return true;
    } else tokenRun = 0;
    if (needs.countryCodes && isUpper(code) && i + 3 < text.length && isUpper(text.charCodeAt(i + 1)) && isDigitCode(text.charCodeAt(i + 2)) && isDigitCode(text.charCodeAt(i + 3))) {
      return true;
    }
  }
  return false;
}

/** What the detectors of one profile need from the scan. */
export interface PrefilterNeeds {
  /** Smallest `minDigits` of the numeric triggers; clusters with fewer digits are not kept. Infinity: no numeric lane. */
  readonly clusterMinDigits: number;
  /** Smallest token `minLength`; Infinity: no token lane. */
  readonly tokenMinLength: number;
  readonly countryCodes: boolean;
}

export function prefilterNeeds(triggers: readonly (DetectorTrigger | undefined)[]): PrefilterNeeds {
  let clusterMinDigits = Infinity;
  let tokenMinLength = Infinity;
  let countryCodes = false;
  for (const t of triggers) {
    if (t?.kind === 'numeric') clusterMinDigits = Math.min(clusterMinDigits, t.minDigits);
    else if (t?.kind === 'token') tokenMinLength = Math.min(tokenMinLength, t.minLength);
    else if (t?.kind === 'country-code') countryCodes = true;
  }
  return { clusterMinDigits, tokenMinLength, countryCodes };
}

/** Index of the first element ≥ value in sorted[from, length). */
function lowerBound(sorted: readonly number[], from: number, value: number): number {
  let lo = from;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((sorted[mid] as number) < value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * The combined prefilter of one stream: a single pass over each character as it arrives
 * records, at absolute input offsets,
 * - numeric clusters (runs of `[0-9 .()+-]` starting at `[0-9+(]`) with their digit and dot
 *   counts, kept only when they have enough digits for some detector;
 * - starts of token runs long enough to be a secret candidate;
 * - starts of `AA00` (letters, then check digits) for IBANs.
 * Detectors then try their regex only at the starts these lanes propose. The lanes only ever
 * over-approximate: a run still open at the end of the input is proposed as if it qualified.
 */
export class CandidatePrefilter {
  readonly #needs: PrefilterNeeds;
  /** Absolute offset up to which input has been scanned. */
  #scanned = 0;
  // Open runs at #scanned (absolute start, or -1).
  #token = -1;
  #cluster = -1;
  #clusterDigits = 0;
  #clusterDots = 0;
  // Lanes, sorted by start; entries before #head are consumed.
  #clusterHead = 0;
  readonly #clusterStarts: number[] = [];
  readonly #clusterEnds: number[] = [];
  readonly #clusterDigitCounts: number[] = [];
  readonly #clusterDotCounts: number[] = [];
  #tokenHead = 0;
  readonly #tokens: number[] = [];
  #countryHead = 0;
  readonly #countries: number[] = [];

  constructor(needs: PrefilterNeeds) {
    this.#needs = needs;
  }

  /** Back to the state of a new prefilter (for a scanner that masks value after value). */
  reset(): void {
    this.#scanned = 0;
    this.#token = -1;
    this.#cluster = -1;
    this.#clusterDigits = 0;
    this.#clusterDots = 0;
    this.#clusterHead = 0;
    this.#tokenHead = 0;
    this.#countryHead = 0;
    // Setting an array's length is a runtime call even when it is already 0.
    if (this.#clusterStarts.length !== 0) {
      this.#clusterStarts.length = 0;
      this.#clusterEnds.length = 0;
      this.#clusterDigitCounts.length = 0;
      this.#clusterDotCounts.length = 0;
    }
    if (this.#tokens.length !== 0) this.#tokens.length = 0;
    if (this.#countries.length !== 0) this.#countries.length = 0;
  }

  /** Scans the newly arrived input: `text` holds absolute offsets [base, end). */
  scan(text: string, base: number, end: number): void {
    const clusterMin = this.#needs.clusterMinDigits;
    const tokenMin = this.#needs.tokenMinLength;
    const countryCodes = this.#needs.countryCodes;
    const tokens = this.#tokens;
    // Relative to `text` inside the loop, -1 for none. An open run that started before the
    // buffer (already emitted) keeps a clamped start: only its length and end still matter.
    let token = this.#token < 0 ? -1 : Math.max(this.#token - base, OPEN_BEFORE_BUFFER);
    let cluster = this.#cluster < 0 ? -1 : Math.max(this.#cluster - base, OPEN_BEFORE_BUFFER);
    let digits = this.#clusterDigits;
    let dots = this.#clusterDots;
    const stop = end - base;
    for (let i = this.#scanned - base; i < stop; i++) {
      const code = text.charCodeAt(i);
      const k = CLASSES[code] as number;
      if (k === TOKEN) {
        // Letters and most punctuation: the common case, one comparison when nothing is open.
        if (token === -1) token = i;
        if (cluster !== -1) {
          if (digits >= clusterMin) this.#pushCluster(base + cluster, base + i, digits, dots);
          cluster = -1;
        }
        continue;
      }
      if ((k & TOKEN) !== 0) {
        if (token === -1) token = i;
      } else if (token !== -1) {
        if (i - token >= tokenMin) tokens.push(base + token);
        token = -1;
      }
      if ((k & CLUSTER) !== 0) {
        if (cluster === -1) {
          if ((k & CLUSTER_START) === 0) continue;
          cluster = i;
          digits = 0;
          dots = 0;
          if (countryCodes && (k & DIGIT) !== 0) this.#countryCode(text, i, base);
        }
        if ((k & DIGIT) !== 0) digits++;
        else if (code === DOT) dots++;
      } else if (cluster !== -1) {
        if (digits >= clusterMin) this.#pushCluster(base + cluster, base + i, digits, dots);
        cluster = -1;
      }
    }
    this.#token = token === -1 ? -1 : base + token;
    this.#cluster = cluster === -1 ? -1 : base + cluster;
    this.#clusterDigits = digits;
    this.#clusterDots = dots;
    this.#scanned = end;
  }

  /** A digit at `i` starts a cluster: is it the check-digit pair of `AA00…` after a non-alphanumeric? */
  #countryCode(text: string, i: number, base: number): void {
    if (!isUpper(text.charCodeAt(i - 1)) || !isUpper(text.charCodeAt(i - 2)) || isAlnumCode(text.charCodeAt(i - 3))) return;
    // The second digit may not have arrived yet: propose the start then (over-approximation).
    if (i + 1 < text.length && !isDigitCode(text.charCodeAt(i + 1))) return;
    this.#countries.push(base + i - 2);
  }

  #pushCluster(start: number, end: number, digits: number, dots: number): void {
    this.#clusterStarts.push(start);
    this.#clusterEnds.push(end);
    this.#clusterDigitCounts.push(digits);
    this.#clusterDotCounts.push(dots);
  }

  /**
   * The first absolute offset ≥ `from` where `trigger` allows a candidate to start, or -1.
   * `text` holds absolute offsets [base, #scanned).
   */
  next(trigger: DetectorTrigger, from: number, text: string, base: number): number {
    switch (trigger.kind) {
      case 'numeric':
        return this.#nextNumeric(trigger.minDigits, trigger.minDots, trigger.startsAt, from, text, base);
      case 'token': {
        const i = lowerBound(this.#tokens, this.#tokenHead, from);
        if (i < this.#tokens.length) return this.#tokens[i] as number;
        return this.#token >= from ? this.#token : -1;
      }
      case 'country-code': {
        const i = lowerBound(this.#countries, this.#countryHead, from);
        return i < this.#countries.length ? (this.#countries[i] as number) : -1;
      }
    }
  }

  #nextNumeric(minDigits: number, minDots: number, startsAt: (text: string, index: number) => boolean, from: number, text: string, base: number): number {
    const starts = this.#clusterStarts;
    const ends = this.#clusterEnds;
    const digitCounts = this.#clusterDigitCounts;
    const dotCounts = this.#clusterDotCounts;
    // Clusters do not overlap, so ends are sorted too: skip those ending at or before `from`.
    for (let j = lowerBound(ends, this.#clusterHead, from + 1); j < starts.length; j++) {
      if ((digitCounts[j] as number) < minDigits || (dotCounts[j] as number) < minDots) continue;
      const end = ends[j] as number;
      for (let p = Math.max(from, starts[j] as number); p < end; p++) if (startsAt(text, p - base)) return p;
    }
    if (this.#cluster >= 0) {
      for (let p = Math.max(from, this.#cluster); p < this.#scanned; p++) if (startsAt(text, p - base)) return p;
    }
    return -1;
  }

  /** Forgets lane entries wholly before `pos` (no query starts before the emitted position). */
  forgetBefore(pos: number): void {
    this.#clusterHead = lowerBound(this.#clusterEnds, this.#clusterHead, pos + 1);
    this.#tokenHead = lowerBound(this.#tokens, this.#tokenHead, pos);
    this.#countryHead = lowerBound(this.#countries, this.#countryHead, pos);
    if (this.#clusterHead > 1024 && this.#clusterHead * 2 > this.#clusterStarts.length) {
      for (const lane of [this.#clusterStarts, this.#clusterEnds, this.#clusterDigitCounts, this.#clusterDotCounts]) lane.splice(0, this.#clusterHead);
      this.#clusterHead = 0;
    }
    if (this.#tokenHead > 1024 && this.#tokenHead * 2 > this.#tokens.length) {
      this.#tokens.splice(0, this.#tokenHead);
      this.#tokenHead = 0;
    }
    if (this.#countryHead > 1024 && this.#countryHead * 2 > this.#countries.length) {
      this.#countries.splice(0, this.#countryHead);
      this.#countryHead = 0;
    }
  }
}

const UPPER = 16;
/** Values up to this many bytes are searched for anchors in JS (a native call costs more). */
const SHORT_VALUE = 64;

/**
 * `mayProposeCandidate` on UTF-8 bytes, plus the anchors of detectors without a trigger, so a
 * value can be ruled out without decoding it. Sound on any bytes: ASCII bytes are the characters
 * they decode to (invalid UTF-8 never swallows an ASCII byte); every other byte breaks a numeric
 * cluster (no cluster character is outside ASCII) and extends a token run, and a character is
 * never fewer bytes than UTF-16 code units, so runs are only ever over-counted (non-ASCII white
 * space included).
 *
 * Fast on values with nothing to find: only the lanes some detector needs are in the byte table,
 * and every lane needs a run of at least `stride` bytes with a class (a cluster holds at least
 * `clusterMinDigits` digits, a token run `tokenMinLength` characters, a country code 4). Such a
 * run covers one of every `stride`-th byte, so only those are looked at; one with a class has its
 * whole run of classed bytes scanned as `mayProposeCandidate` would (runs of bytes without a
 * class reset every lane). Anchors are found with a native byte search.
 */
export class Utf8CandidateCheck {
  readonly #needs: PrefilterNeeds;
  readonly #numeric: readonly NumericNeed[];
  readonly #table = new Uint8Array(256);
  readonly #stride: number;
  /** Single-byte anchors as the byte (native memchr), longer ones as bytes. */
  readonly #anchors: readonly (number | Buffer)[];

  constructor(needs: PrefilterNeeds, numeric: readonly NumericNeed[], anchors: readonly string[]) {
    this.#needs = needs;
    this.#numeric = numeric;
    const table = this.#table;
    for (let byte = 0; byte < 256; byte++) {
      const k = byte < 128 ? (CLASSES[byte] as number) : TOKEN;
      let bits = 0;
      if (needs.tokenMinLength !== Infinity) bits |= k & TOKEN;
      if (needs.clusterMinDigits !== Infinity) bits |= k & (CLUSTER | DIGIT);
      if (needs.countryCodes) {
        if (isUpper(byte)) bits |= UPPER;
        // A country code's check digits must not read as a byte without a class.
        if (isDigitCode(byte)) bits |= DIGIT;
      }
      table[byte] = bits;
    }
    this.#stride = Math.min(needs.clusterMinDigits, needs.tokenMinLength, needs.countryCodes ? 4 : Infinity);
    this.#anchors = anchors.map((anchor) => {
      const bytes = Buffer.from(anchor, 'latin1');
      if (bytes.length === 0 || bytes.some((b) => b >= 128) || bytes.toString('latin1') !== anchor) throw new TypeError(`detector anchor must be non-empty ASCII: ${JSON.stringify(anchor)}`);
      return bytes.length === 1 ? (bytes[0] as number) : bytes;
    });
  }

  /** False proves that no lane proposes a start and no anchor occurs in bytes [start, end). */
  mayPropose(bytes: Uint8Array, start: number, end: number): boolean {
    const buffer = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    if (this.#anchors.length > 0 && this.#anchorIn(buffer, start, end)) return true;
    const stride = this.#stride;
    if (stride === Infinity) return false;
    const table = this.#table;
    for (let p = start + stride - 1; p < end; p += stride) {
      if (table[buffer[p] as number] === 0) continue;
      let from = p;
      while (from > start && table[buffer[from - 1] as number] !== 0) from--;
      let to = p + 1;
      while (to < end && table[buffer[to] as number] !== 0) to++;
      if (this.#runProposes(buffer, from, to)) return true;
      // The next sampled byte after the run (the run's end has no class, or is the end).
      p += stride * Math.floor((to - p) / stride);
    }
    return false;
  }

  /** `mayProposeCandidate` over a run of bytes that all have a class. */
  #runProposes(bytes: Buffer, from: number, to: number): boolean {
    const table = this.#table;
    const clusterMin = this.#needs.clusterMinDigits;
    const tokenMin = this.#needs.tokenMinLength;
    let clusterDigits = 0;
    let clusterDots = 0;
    let tokenRun = 0;
    for (let i = from; i < to; i++) {
      const byte = bytes[i] as number;
      const k = table[byte] as number;
      if ((k & CLUSTER) !== 0) {
        if ((k & DIGIT) !== 0) clusterDigits++;
        else if (byte === DOT) clusterDots++;
        if (clusterDigits >= clusterMin && this.#numericMet(clusterDigits, clusterDots)) return true;
      } else {
        clusterDigits = 0;
        clusterDots = 0;
      }
      if ((k & TOKEN) !== 0) {
        if (++tokenRun >= tokenMin) return true;
      } else tokenRun = 0;
      if ((k & UPPER) !== 0 && i + 3 < to && isUpper(bytes[i + 1] as number) && isDigitCode(bytes[i + 2] as number) && isDigitCode(bytes[i + 3] as number)) return true;
    }
    return false;
  }

  #numericMet(digits: number, dots: number): boolean {
    for (const need of this.#numeric) if (digits >= need.minDigits && dots >= need.minDots) return true;
    return false;
  }

  #anchorIn(bytes: Buffer, start: number, end: number): boolean {
    if (end - start <= SHORT_VALUE) {
      // A short value: a JS loop costs less than a native call.
      for (const anchor of this.#anchors) {
        if (typeof anchor === 'number') {
          for (let i = start; i < end; i++) if (bytes[i] === anchor) return true;
        } else {
          for (let i = start; i + anchor.length <= end; i++) {
            let j = 0;
            while (j < anchor.length && bytes[i + j] === anchor[j]) j++;
            if (j === anchor.length) return true;
          }
        }
      }
      return false;
    }
    // indexOf has no end: past a long tail (a wide row), search a view of the value only.
    const view = bytes.length - end > 256 ? bytes.subarray(start, end) : bytes;
    const from = view === bytes ? start : 0;
    const stop = view === bytes ? end : end - start;
    for (const anchor of this.#anchors) {
      const at = view.indexOf(anchor, from);
      if (at >= 0 && at + (typeof anchor === 'number' ? 1 : anchor.length) <= stop) return true;
    }
    return false;
  }
}
