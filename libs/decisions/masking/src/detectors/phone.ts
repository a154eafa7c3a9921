import { parsePhoneNumberFromString, type CountryCode } from 'libphonenumber-js/max';
import { DASH, DOT, isDigit, isWordChar, OPEN_PAREN, PLUS, SLASH, SPACE } from './ascii-classes.js';
import { type Detector, type ValidatedMatch } from './detector.js';

const DATE_OR_TIME = /^(?:\d{4}[-./]\d{1,2}[-./]\d{1,2}|\d{1,2}[-./]\d{1,2}[-./]\d{2,4}|\d{1,2}[:.]\d{2}(?:[:.]\d{2})?)$/;
const DOTTED_QUAD = /^\d{1,3}(?:\.\d{1,3}){3}$/;

export interface PhoneDetectorOptions {
  /** Country used to read numbers written without `+<country code>`. */
  readonly defaultCountry?: CountryCode;
}

/**
 * Phone numbers validated by libphonenumber (full metadata: number plans per country, not just
 * lengths). Candidates need a `+`, parentheses or separators between digit groups: a bare digit
 * run is an id far more often than a phone number.
 */
export function createPhoneDetector(options: PhoneDetectorOptions = {}): Detector {
  const defaultCountry = options.defaultCountry ?? 'US';
  const valid = (value: string): boolean => {
    let digits = 0;
    for (let i = 0; i < value.length; i++) if (isDigit(value.charCodeAt(i))) digits++;
    if (digits < 7 || digits > 15) return false;
    if (!value.startsWith('+') && !/[ ().-]/.test(value)) return false;
    if (DATE_OR_TIME.test(value) || DOTTED_QUAD.test(value)) return false;
    const parsed = parsePhoneNumberFromString(value, defaultCountry);
    return parsed !== undefined && parsed.isValid();
  };
  return {
    id: 'phone',
    candidate:
      /(?<![\w+./-]|[0-9] )(?:\+[0-9]{1,3}[ .-]?)?(?:\([0-9]{1,4}\)[ .-]?)?[0-9]{1,8}(?:[ .-][0-9]{1,8}){0,5}(?![\w]|[.-][0-9])/g,
    maxLength: 65,
    prefix: String.raw`(?<![\w+./-]|[0-9] )[+(0-9][0-9 ().+-]{0,64}$`,
    trigger: {
      kind: 'numeric',
      minDigits: 7,
      minDots: 0,
      startsAt(text, i) {
        const code = text.charCodeAt(i);
        if (!isDigit(code) && code !== PLUS && code !== OPEN_PAREN) return false;
        const prev = text.charCodeAt(i - 1);
        if (isWordChar(prev) || prev === PLUS || prev === DOT || prev === SLASH || prev === DASH) return false;
        return !(prev === SPACE && isDigit(text.charCodeAt(i - 2)));
      },
    },
    validate(candidate): ValidatedMatch | null {
      // A greedy candidate can swallow a following number ("… 0123 5 times"): drop trailing groups.
      let end = candidate.length;
      for (;;) {
        if (valid(candidate.slice(0, end))) return { start: 0, end };
        const cut = Math.max(candidate.lastIndexOf(' ', end - 1), candidate.lastIndexOf('-', end - 1), candidate.lastIndexOf('.', end - 1));
        if (cut <= 0) return null;
        end = cut;
      }
    },
    normalize: (value) => {
      const parsed = parsePhoneNumberFromString(value, defaultCountry);
      return parsed?.number ?? value.replace(/[^0-9+]/g, '');
    },
  };
}
