import { type KeyObject } from 'node:crypto';
import { CandidatePrefilter, mayProposeCandidate, prefilterNeeds, Utf8CandidateCheck, type NumericNeed, type PrefilterNeeds } from './candidate-prefilter.js';
import { createDetectors, type DetectorSetOptions } from './detectors/index.js';
import { MAX_LOOKAHEAD, MAX_LOOKBEHIND, type Detector, type DetectorTrigger } from './detectors/detector.js';
import { MaskingError } from './errors.js';
import { MaskingFindings } from './findings.js';
import { compileStrategy, HmacTokenizer, type MaskContext, type MaskFunction, type StrategySpec } from './strategies.js';

/** How detector hits are masked: one strategy for all, optionally overridden per detector. */
export interface DetectionOptions extends DetectorSetOptions {
  /** Prebuilt detectors (custom or configured); overrides `enabled`/`phone`. */
  readonly detectors?: readonly Detector[];
  /** Defaults to `redact`. */
  readonly strategy?: StrategySpec;
  /** Per detector id (the base id: `card`, `secret`, …). */
  readonly strategies?: Readonly<Partial<Record<string, StrategySpec>>>;
  /** Rule id reported per detector id; default `detector:<id>`. */
  readonly ruleIds?: Readonly<Partial<Record<string, string>>>;
  /** Needed for `hmac` strategies. Held as a KeyObject, never logged. */
  readonly hmacKey?: Uint8Array | KeyObject;
  /** Alternatively a shared tokenizer (one per tenant key). */
  readonly tokenizer?: HmacTokenizer;
}

interface CompiledDetector {
  readonly detector: Detector;
  /** The candidate regex anchored (`y`), tried at the starts the prefilter or `skipTo` proposes. */
  readonly sticky: RegExp;
  readonly partial: RegExp;
  readonly window: number;
  readonly mask: MaskFunction;
  // The detector's trigger and skip, on this one object shape (detectors differ in shape).
  readonly trigger: DetectorTrigger | undefined;
  readonly skipTo: ((text: string, from: number) => number) | undefined;
  /** What `mask` is given for a match reported under the detector's own id (made once). */
  readonly context: MaskContext;
  readonly rule: string;
}

function maskContext(detector: Detector, label: string): MaskContext {
  const normalize = detector.normalize;
  return normalize ? { label, normalize } : { label };
}

/**
 * Detectors with their strategies compiled once; share one profile across many values and
 * streams (building the secretlint rules is the expensive part).
 */
export class DetectionProfile {
  readonly compiled: readonly CompiledDetector[];
  /** The most input characters a stream masker using this profile may hold back. */
  readonly maxHoldBack: number;
  readonly prefilterNeeds: PrefilterNeeds;
  readonly #numericNeeds: readonly NumericNeed[];
  /** The prefilter needs of the detectors without `mayValidateIn`. */
  readonly #ungatedNeeds: PrefilterNeeds;
  readonly #ungatedNumericNeeds: readonly NumericNeed[];
  /** Detectors with `mayValidateIn`, with their own prefilter needs. */
  readonly #gated: readonly { readonly detector: Detector; readonly needs: PrefilterNeeds; readonly numeric: readonly NumericNeed[] }[];
  /** Undefined when some detector has neither a trigger nor an anchor (bytes cannot rule it out). */
  readonly #utf8Check: Utf8CandidateCheck | undefined;
  readonly #wholeScanner: MaskingScanner | undefined;
  #wholeScannerBusy = false;

  constructor(options: DetectionOptions = {}) {
    const detectors = options.detectors ?? createDetectors(options);
    const tokenizer = options.tokenizer ?? (options.hmacKey ? new HmacTokenizer(options.hmacKey) : undefined);
    const defaultStrategy = options.strategy ?? { kind: 'redact' };
    this.compiled = detectors.map((detector) => {
      if (!detector.candidate.global) throw new MaskingError('MASKING_INVALID_PATTERN', `detector ${detector.id}: candidate regex must be global`);
      return {
        detector,
        sticky: new RegExp(detector.candidate.source, `${detector.candidate.flags.replace('g', '')}y`),
        partial: new RegExp(`(?:${detector.candidate.source})|(?:${detector.prefix})`, detector.candidate.flags),
        window: detector.maxLength + MAX_LOOKAHEAD,
        mask: compileStrategy(options.strategies?.[detector.id] ?? defaultStrategy, tokenizer),
        context: maskContext(detector, detector.id),
        trigger: detector.trigger,
        skipTo: detector.skipTo?.bind(detector),
        rule: options.ruleIds?.[detector.id] ?? `detector:${detector.id}`,
      };
    });
    // +1: a trailing high surrogate is held so a chunk never ends in half a character.
    this.maxHoldBack = Math.max(0, ...this.compiled.map((c) => c.window)) + 1;
    this.prefilterNeeds = prefilterNeeds(detectors.map((d) => d.trigger));
    const numericNeeds = (of: readonly Detector[]): NumericNeed[] => of.flatMap((d) => (d.trigger?.kind === 'numeric' ? [{ minDigits: d.trigger.minDigits, minDots: d.trigger.minDots }] : []));
    this.#numericNeeds = numericNeeds(detectors);
    const ungated = detectors.filter((d) => d.mayValidateIn === undefined);
    this.#ungatedNeeds = prefilterNeeds(ungated.map((d) => d.trigger));
    this.#ungatedNumericNeeds = numericNeeds(ungated);
    this.#gated = detectors.filter((d) => d.mayValidateIn !== undefined).map((detector) => ({ detector, needs: prefilterNeeds([detector.trigger]), numeric: numericNeeds([detector]) }));
    const byteDecidable = detectors.every((d) => d.trigger !== undefined || d.anchor !== undefined);
    this.#utf8Check = byteDecidable ? new Utf8CandidateCheck(this.prefilterNeeds, this.#numericNeeds, detectors.flatMap((d) => (d.trigger === undefined && d.anchor !== undefined ? [d.anchor] : []))) : undefined;
    this.#wholeScanner = new MaskingScanner({ profile: this });
  }

  /**
   * `mayMatch` for the text that UTF-8 bytes [start, end) decode to, decided on the bytes (no
   * string is made): false proves that no detector finds anything there, so the value is kept
   * byte for byte. True when one might, or when a detector has neither a trigger nor an anchor
   * (decode and ask `mayMatch`).
   */
  mayMatchUtf8(bytes: Uint8Array, start = 0, end = bytes.length): boolean {
    if (end <= start) return false;
    return this.#utf8Check === undefined || this.#utf8Check.mayPropose(bytes, start, end);
  }

  /**
   * The scanner's result for a whole text (as `maskText`, without the no-candidate check). One
   * scanner per profile is reused value after value; a nested call (never made by the built-in
   * strategies) gets its own.
   */
  maskWhole(text: string, location: string, findings: MaskingFindings): string {
    const scanner = this.#wholeScanner;
    if (scanner === undefined || this.#wholeScannerBusy) return new MaskingScanner({ profile: this }).maskWhole(text, location, findings);
    this.#wholeScannerBusy = true;
    try {
      return scanner.maskWhole(text, location, findings);
    } finally {
      this.#wholeScannerBusy = false;
    }
  }

  /**
   * False when no detector of this profile could find a candidate anywhere in `text` (checked
   * without allocating a scanner): the text is then masked to itself with no findings. True
   * when one might (the scanner decides). Every check is a necessary condition of a detector's
   * candidate: the prefilter lanes over-approximated, `skipTo` from 0, else the candidate regex.
   */
  mayMatch(text: string): boolean {
    if (text.length === 0) return false;
    if (mayProposeCandidate(text, this.#ungatedNeeds, this.#ungatedNumericNeeds)) return true;
    for (const { detector } of this.compiled) {
      if (detector.trigger !== undefined || detector.mayValidateIn !== undefined) continue;
      if (untriggeredMayMatch(detector, text)) return true;
    }
    // A detector with a whole-text condition: that first (a regex test), then its own lane.
    for (const { detector, needs, numeric } of this.#gated) {
      if (!(detector.mayValidateIn as (text: string) => boolean)(text)) continue;
      if (detector.trigger !== undefined ? mayProposeCandidate(text, needs, numeric) : untriggeredMayMatch(detector, text)) return true;
    }
    return false;
  }

  /**
   * Masks a text whose bytes `mayMatchUtf8` did not rule out: the whole-text conditions bytes
   * cannot check (`mayValidateIn`) are checked first, when a detector has one; then the scanner.
   */
  maskCandidate(text: string, location: string, findings: MaskingFindings): string {
    if (this.#gated.length > 0 && !this.mayMatch(text)) return text;
    return this.maskWhole(text, location, findings);
  }
}

/** Whether a detector without a trigger could find a candidate in `text`: its `skipTo` from 0, else its regex. */
function untriggeredMayMatch(detector: Detector, text: string): boolean {
  if (detector.skipTo !== undefined) return detector.skipTo(text, 0) < text.length;
  detector.candidate.lastIndex = 0;
  return detector.candidate.test(text);
}

/** Matches the empty string at 0; running it flattens a concatenated string in place. */
const FLATTEN = /(?:)/y;

const NONE = 0;
const PENDING = 1;
const MATCH = 2;

interface DetectorState {
  kind: number;
  /** Positions in [pos, from) are known never to start a match. */
  from: number;
  candidateStart: number;
  start: number;
  end: number;
  detectorId: string;
  /** Input length and end flag the state was computed for (pending/none depend on them). */
  seenEnd: number;
  seenEnded: boolean;
}

export interface StreamMaskerStats {
  /** Input characters pushed so far. */
  readonly consumed: number;
  /** Input characters whose output has been emitted (the rest is held back). */
  readonly emittedInput: number;
  /** Output characters emitted. */
  readonly emittedOutput: number;
}

export interface StreamMasker {
  /** Returns the output that is now final; never text that could still start a match. */
  push(chunk: string): string;
  /** Flushes the held-back tail. */
  end(): string;
  readonly maxHoldBack: number;
  readonly stats: StreamMaskerStats;
  /** Counts so far (also complete after `end()`). */
  findings(): MaskingFindings;
}

export interface StreamMaskerOptions extends DetectionOptions {
  readonly profile?: DetectionProfile;
  /** Field/location reported in findings, e.g. `response.body` or `content[0].text`. Default `stream`. */
  readonly location?: string;
  /** Accumulate into an existing summary (e.g. one per response). */
  readonly findings?: MaskingFindings;
}

/**
 * Leftmost-first masking over all detectors: at each position the earliest match wins, ties
 * go to the longest, then to detector priority. A stream is masked with exactly the same
 * result as the whole text, whatever the chunking: a match at p is only taken once the text
 * up to p + window is present (or the stream ended), and text is only emitted up to the first
 * position where some detector's match could still start.
 */
class MaskingScanner implements StreamMasker {
  readonly maxHoldBack: number;
  readonly #profile: DetectionProfile;
  readonly #states: DetectorState[];
  #location: string;
  #findings: MaskingFindings;
  readonly #prefilter: CandidatePrefilter;
  #buffer = '';
  /** Absolute input offset of #buffer[0]. */
  #base = 0;
  /** Absolute input offset up to which output has been emitted. */
  #pos = 0;
  #emittedOutput = 0;
  #ended = false;

  constructor(options: StreamMaskerOptions) {
    this.#profile = options.profile ?? new DetectionProfile(options);
    this.maxHoldBack = this.#profile.maxHoldBack;
    this.#location = options.location ?? 'stream';
    this.#findings = options.findings ?? new MaskingFindings();
    this.#prefilter = new CandidatePrefilter(this.#profile.prefilterNeeds);
    this.#states = this.#profile.compiled.map(() => ({ kind: NONE, from: 0, candidateStart: 0, start: 0, end: 0, detectorId: '', seenEnd: -1, seenEnded: false }));
  }

  get stats(): StreamMaskerStats {
    return { consumed: this.#base + this.#buffer.length, emittedInput: this.#pos, emittedOutput: this.#emittedOutput };
  }

  findings(): MaskingFindings {
    return this.#findings;
  }

  push(chunk: string): string {
    if (this.#ended) throw new MaskingError('MASKING_STREAM_ENDED', 'push() after end()');
    if (chunk.length === 0) return '';
    this.#buffer += chunk;
    // Flatten the concatenation once (a regex run does), so the scan reads a flat string.
    FLATTEN.test(this.#buffer);
    this.#prefilter.scan(this.#buffer, this.#base, this.#base + this.#buffer.length);
    const out = this.#drain(false);
    this.#trim();
    return out;
  }

  end(): string {
    if (this.#ended) throw new MaskingError('MASKING_STREAM_ENDED', 'end() called twice');
    this.#ended = true;
    const out = this.#drain(true);
    this.#buffer = '';
    this.#base = this.#pos;
    return out;
  }

  /**
   * Masks a whole text as `push(text) + end()` would, in one ended pass: with the end known, every
   * candidate is decided at once, so no hold-back tail is probed (no `prefix` regex runs). Resets
   * the scanner first, so one scanner serves value after value without allocating its state again.
   */
  maskWhole(text: string, location: string, findings: MaskingFindings): string {
    this.#location = location;
    this.#findings = findings;
    for (const state of this.#states) {
      state.kind = NONE;
      state.from = 0;
      state.candidateStart = 0;
      state.start = 0;
      state.end = 0;
      state.detectorId = '';
      state.seenEnd = -1;
      state.seenEnded = false;
    }
    this.#prefilter.reset();
    this.#buffer = text;
    FLATTEN.test(text);
    this.#base = 0;
    this.#pos = 0;
    this.#emittedOutput = 0;
    this.#ended = true;
    try {
      this.#prefilter.scan(text, 0, text.length);
      return this.#drain(true);
    } finally {
      // Holds no value between calls.
      this.#buffer = '';
    }
  }

  #drain(ended: boolean): string {
    const buffer = this.#buffer;
    const base = this.#base;
    const inputEnd = base + buffer.length;
    const parts: string[] = [];
    const compiled = this.#profile.compiled;
    for (;;) {
      const pos = this.#pos;
      let eventStart = Infinity;
      let blocked = false;
      let best: DetectorState | undefined;
      let bestIndex = -1;
      for (let i = 0; i < compiled.length; i++) {
        const state = this.#states[i] as DetectorState;
        this.#refresh(compiled[i] as CompiledDetector, state, i, inputEnd, ended);
        if (state.kind === NONE) continue;
        const s = state.kind === MATCH ? state.start : state.candidateStart;
        if (s < eventStart) {
          eventStart = s;
          blocked = state.kind === PENDING;
          best = state.kind === MATCH ? state : undefined;
          bestIndex = i;
        } else if (s === eventStart) {
          if (state.kind === PENDING) blocked = true;
          else if (!best || state.end - state.start > best.end - best.start) {
            best = state;
            bestIndex = i;
          }
        }
      }
      if (eventStart === Infinity) {
        let stop = inputEnd;
        // Never end a chunk between the two halves of a surrogate pair.
        if (!ended && stop > pos && isHighSurrogate(buffer.charCodeAt(stop - 1 - base))) stop--;
        this.#emit(parts, buffer.slice(pos - base, stop - base));
        this.#pos = stop;
        break;
      }
      if (blocked || !best) {
        this.#emit(parts, buffer.slice(pos - base, eventStart - base));
        this.#pos = eventStart;
        break;
      }
      const chosen = compiled[bestIndex] as CompiledDetector;
      const value = buffer.slice(best.start - base, best.end - base);
      this.#emit(parts, buffer.slice(pos - base, best.start - base));
      this.#emit(parts, chosen.mask(value, best.detectorId === chosen.detector.id ? chosen.context : maskContext(chosen.detector, best.detectorId)));
      this.#findings.add(this.#location, chosen.rule, best.detectorId);
      this.#pos = best.end;
    }
    return parts.join('');
  }

  #emit(parts: string[], text: string): void {
    if (text.length === 0) return;
    parts.push(text);
    this.#emittedOutput += text.length;
  }

  #refresh(c: CompiledDetector, state: DetectorState, index: number, inputEnd: number, ended: boolean): void {
    const pos = this.#pos;
    if (state.kind === MATCH && state.candidateStart >= pos) return;
    const sameInput = state.seenEnd === inputEnd && state.seenEnded === ended;
    if (state.kind === PENDING && sameInput && state.candidateStart >= pos) return;
    if (state.kind === NONE && sameInput && state.seenEnd >= 0) return;
    this.#compute(c, state, index, Math.max(pos, state.from), inputEnd, ended);
  }

  /** Sets `state` to detector `index`'s first valid match at or after `scanFrom`, or pending/none. */
  #compute(c: CompiledDetector, state: DetectorState, index: number, scanFrom: number, inputEnd: number, ended: boolean): void {
    const buffer = this.#buffer;
    const base = this.#base;
    state.seenEnd = inputEnd;
    state.seenEnded = ended;
    const decidedEnd = ended ? inputEnd : inputEnd - c.window;
    const { trigger, skipTo } = c;
    if (trigger !== undefined || skipTo !== undefined) {
      // Only at proposed starts: the prefilter's lanes, or the detector's own skip.
      const sticky = c.sticky;
      for (let from = scanFrom; ; ) {
        const p = trigger !== undefined ? this.#prefilter.next(trigger, from, buffer, base) : base + (skipTo as NonNullable<typeof skipTo>)(buffer, from - base);
        if (p < 0 || p >= decidedEnd) break;
        sticky.lastIndex = p - base;
        const m = sticky.exec(buffer);
        if (m !== null && !this.#outranked(index, p, m[0].length) && this.#accept(c, state, m, p)) return;
        from = p + 1;
      }
    } else {
      const regex = c.detector.candidate;
      regex.lastIndex = scanFrom - base;
      for (;;) {
        const m = regex.exec(buffer);
        if (!m) break;
        const candidateStart = base + m.index;
        if (candidateStart >= decidedEnd) break;
        if (!this.#outranked(index, candidateStart, m[0].length) && this.#accept(c, state, m, candidateStart)) return;
        regex.lastIndex = m.index + 1;
      }
    }
    if (!ended) {
      c.partial.lastIndex = Math.max(scanFrom, decidedEnd) - base;
      const p = c.partial.exec(buffer);
      if (p) {
        state.kind = PENDING;
        state.candidateStart = state.from = base + p.index;
        return;
      }
    }
    state.kind = NONE;
    state.from = inputEnd;
  }

  /** Validates a candidate at absolute `candidateStart`; on success `state` becomes that match. */
  #accept(c: CompiledDetector, state: DetectorState, m: RegExpExecArray, candidateStart: number): boolean {
    const before = this.#buffer.slice(Math.max(0, m.index - MAX_LOOKBEHIND), m.index);
    const valid = c.detector.validate(m[0], before);
    if (!valid) return false;
    state.kind = MATCH;
    state.from = candidateStart;
    state.candidateStart = candidateStart;
    state.start = candidateStart + valid.start;
    state.end = candidateStart + valid.end;
    state.detectorId = valid.detector ?? c.detector.id;
    return true;
  }

  /**
   * Whether a candidate of detector `index` at `start` cannot win, so validating it (e.g. a card
   * number parsed as a phone number) is wasted: another detector already holds a decided match
   * whose candidate and match both start there and that covers the whole candidate (ties go to
   * the lower index). Its state stays while the emitted position is ≤ start; once the position
   * passes start, the skipped candidate could not be taken anyway.
   */
  #outranked(index: number, start: number, length: number): boolean {
    const states = this.#states;
    for (let j = 0; j < states.length; j++) {
      if (j === index) continue;
      const s = states[j] as DetectorState;
      if (s.kind !== MATCH || s.candidateStart !== start || s.start !== start || s.candidateStart < this.#pos) continue;
      const covered = s.end - start;
      if (j < index ? covered >= length : covered > length) return true;
    }
    return false;
  }

  /** Drops input that is emitted and beyond the look-behind context, in large steps. */
  #trim(): void {
    this.#prefilter.forgetBefore(this.#pos);
    const keepFrom = this.#pos - MAX_LOOKBEHIND;
    const drop = keepFrom - this.#base;
    if (drop > 4096 && drop * 2 > this.#buffer.length) {
      this.#buffer = this.#buffer.slice(drop);
      this.#base = keepFrom;
    }
  }
}

function isHighSurrogate(code: number): boolean {
  return code >= 0xd800 && code <= 0xdbff;
}

export function createStreamMasker(options: StreamMaskerOptions = {}): StreamMasker {
  return new MaskingScanner(options);
}

export interface MaskTextResult {
  readonly text: string;
  readonly findings: MaskingFindings;
}

/** Masks a whole string (the reference result every chunking of a stream reproduces). */
export function maskText(text: string, options: StreamMaskerOptions = {}): MaskTextResult {
  const findings = options.findings ?? new MaskingFindings();
  const profile = options.profile;
  if (profile === undefined) return { text: new MaskingScanner(options).maskWhole(text, options.location ?? 'stream', findings), findings };
  // Most cells (ids, dates, names) hold no candidate at all: no scanner, no buffers.
  if (!profile.mayMatch(text)) return { text, findings };
  return { text: profile.maskWhole(text, options.location ?? 'stream', findings), findings };
}

/**
 * UTF-8 byte streams: chunks may split a multi-byte character anywhere; a streaming TextDecoder
 * keeps the partial bytes until the character completes. Invalid UTF-8 becomes U+FFFD (this is
 * for text bodies; binary bodies are not masked).
 */
export interface ByteStreamMasker {
  push(chunk: Uint8Array): Uint8Array;
  end(): Uint8Array;
  readonly maxHoldBack: number;
  findings(): MaskingFindings;
}

export function createByteStreamMasker(options: StreamMaskerOptions = {}): ByteStreamMasker {
  const masker = new MaskingScanner(options);
  const decoder = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });
  const encoder = new TextEncoder();
  return {
    maxHoldBack: masker.maxHoldBack,
    push: (chunk) => encoder.encode(masker.push(decoder.decode(chunk, { stream: true }))),
    end: () => {
      const tail = decoder.decode();
      return encoder.encode((tail ? masker.push(tail) : '') + masker.end());
    },
    findings: () => masker.findings(),
  };
}
