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
   * emails, 64 characters before the next `@`), so the regex is not tried at every position.
   * Must never skip past a position where the candidate regex could match.
   */
  skipTo?(text: string, from: number): number;
  /** Canonical form used for keyed tokenization, so `4111-1111…` and `4111 1111…` join. */
  normalize?(value: string): string;
}

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
