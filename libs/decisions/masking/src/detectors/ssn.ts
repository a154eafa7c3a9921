import { DASH, isDigit, SPACE } from './ascii-classes.js';
import { type Detector, type ValidatedMatch } from './detector.js';

/** Numbers the SSA has published or that were famously misused; never issued to a person. */
const RETIRED = new Set(['078051120', '219099999', '123456789']);

export function ssnValid(digits: string): boolean {
  const area = Number(digits.slice(0, 3));
  const group = Number(digits.slice(3, 5));
  const serial = Number(digits.slice(5));
  return area !== 0 && area !== 666 && area < 900 && group !== 0 && serial !== 0 && !RETIRED.has(digits);
}

/**
 * US SSNs written with separators (`123-45-6789`, `123 45 6789`). Undelimited 9-digit runs are
 * not matched: too many ids and amounts share that shape; map SSN columns with a field rule.
 */
export const ssnDetector: Detector = {
  id: 'ssn',
  candidate: /(?<![0-9]|[0-9][- ])[0-9]{3}([- ])[0-9]{2}\1[0-9]{4}(?![0-9]|[- ][0-9])/g,
  maxLength: 11,
  prefix: String.raw`(?<![0-9]|[0-9][- ])[0-9][0-9 -]{0,10}$`,
  trigger: {
    kind: 'numeric',
    minDigits: 9,
    minDots: 0,
    startsAt(text, i) {
      if (!isDigit(text.charCodeAt(i))) return false;
      const prev = text.charCodeAt(i - 1);
      if (isDigit(prev) || ((prev === SPACE || prev === DASH) && isDigit(text.charCodeAt(i - 2)))) return false;
      // The separator after the area number (when it has arrived).
      const separator = text.charCodeAt(i + 3);
      return i + 3 >= text.length || separator === SPACE || separator === DASH;
    },
  },
  validate(candidate): ValidatedMatch | null {
    return ssnValid(candidate.replace(/[- ]/g, '')) ? { start: 0, end: candidate.length } : null;
  },
  normalize: (value) => value.replace(/[- ]/g, ''),
};
