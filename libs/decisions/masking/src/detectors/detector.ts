/**
 * A detector finds one kind of sensitive value in text. It is deliberately shaped so that a
 * streaming scanner can decide matches from a bounded window of text:
 *
 * - `candidate` (global regex) must never consume more than `maxLength` characters, may look
 *   behind at most {@link MAX_LOOKBEHIND} characters and ahead at most {@link MAX_LOOKAHEAD}.
 *   Whether it matches at position p is then a function of text[p-24, p+maxLength+2) only.
 * - `validate` decides on the candidate text (plus a little preceding context) alone.
 * - `prefix` (regex source ending in `$`) must match at p whenever text[p, end of what has
 *   arrived) could still grow into a match. It is only consulted for the undecided tail of a
 *   stream, and it only has to be sound (over-approximating costs hold-back, never a leak).
 */
export interface Detector {
  /** Stable id used in findings and `data.masked` events, e.g. `card`, `secret:github`. */
  readonly id: string;
  readonly candidate: RegExp;
  /** Upper bound on the length of any candidate match (excluding look-around). */
  readonly maxLength: number;
  /** Source of a regex that matches a possible (possibly truncated) start of a match, anchored with `$`. */
  readonly prefix: string;
  validate(candidate: string, before: string): ValidatedMatch | null;
  /**
   * Optional speed-up: a lower bound for the next candidate start at or after `from` (e.g. for
   * emails, where the local part before the next `@` starts), or `text.length` for none. The
   * candidate regex is then tried only at that position (sticky); if it fails there, `skipTo`
   * is asked again from the next position, so it should be tight. Must never skip past a
   * position where the candidate regex could match.
   */
  skipTo?(text: string, from: number): number;
  /**
   * Optional: the shared one-pass prefilter (see `candidate-prefilter.ts`) proposes candidate
   * starts for this detector, and the candidate regex is only tried there (sticky). Must be a
   * necessary condition: every position where `candidate` matches must be proposed.
   */
  readonly trigger?: DetectorTrigger;
  /**
   * Optional, for a detector without a `trigger`: an ASCII literal that every text in which
   * `candidate` matches contains (`@` for e-mail addresses). A value whose UTF-8 bytes contain no
   * anchor and propose no trigger is then passed without being decoded (see
   * `DetectionProfile.mayMatchUtf8`).
   */
  readonly anchor?: string;
  /**
   * Optional: false when no candidate anywhere in `text` could pass `validate` (a necessary
   * condition on the whole text, e.g. a literal every accepted candidate contains). Lets a whole
   * value be ruled out before it is scanned; the stream masker never consults it.
   */
  mayValidateIn?(text: string): boolean;
  /** Canonical form used for keyed tokenization, so `4111-1111…` and `4111 1111…` join. */
  normalize?(value: string): string;
}

/**
 * Where the shared prefilter looks for candidate starts.
 *
 * - `numeric`: the match lies inside one *numeric cluster* (a run of `[0-9 .()+-]` that begins
 *   at a digit, `+` or `(`) holding at least `minDigits` digits and `minDots` dots, and starts at
 *   a position where `startsAt` holds (the regex's first character and look-behind, as JS).
 * - `token`: the match starts a run of at least `minLength` characters of
 *   {@link SECRET_TOKEN_CLASS} not preceded by one.
 * - `country-code`: the match starts with two upper-case letters followed by two digits, not
 *   preceded by a letter or digit (IBAN).
 */
export type DetectorTrigger =
  | { readonly kind: 'numeric'; readonly minDigits: number; readonly minDots: number; readonly startsAt: (text: string, index: number) => boolean }
  | { readonly kind: 'token'; readonly minLength: number }
  | { readonly kind: 'country-code' };

/** Characters of a secret token: anything but whitespace and JSON/markup punctuation. */
export const SECRET_TOKEN_CLASS = String.raw`[^\s"'\x60<>{}\[\](),;|\\]`;

/** Offsets relative to the candidate; a validator may narrow the candidate (never widen it). */
export interface ValidatedMatch {
  readonly start: number;
  readonly end: number;
  /** Overrides the detector id, e.g. the secretlint rule that fired. */
  readonly detector?: string;
}

export const MAX_LOOKBEHIND = 24;
export const MAX_LOOKAHEAD = 2;

export function whole(candidate: string): ValidatedMatch {
  return { start: 0, end: candidate.length };
}
