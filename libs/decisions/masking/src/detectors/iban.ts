import { type Detector, type ValidatedMatch } from './detector.js';

/** IBAN lengths per country (SWIFT IBAN registry). */
export const IBAN_LENGTHS: Readonly<Record<string, number>> = {
  AD: 24, AE: 23, AL: 28, AT: 20, AZ: 28, BA: 20, BE: 16, BG: 22, BH: 22, BI: 27, BR: 29, BY: 28,
  CH: 21, CR: 22, CY: 28, CZ: 24, DE: 22, DJ: 27, DK: 18, DO: 28, EE: 20, EG: 29, ES: 24, FI: 18,
  FK: 18, FO: 18, FR: 27, GB: 22, GE: 22, GI: 23, GL: 18, GR: 27, GT: 28, HN: 28, HR: 21, HU: 28,
  IE: 22, IL: 23, IQ: 23, IS: 26, IT: 27, JO: 30, KW: 30, KZ: 20, LB: 28, LC: 32, LI: 21, LT: 20,
  LU: 20, LV: 21, LY: 25, MC: 27, MD: 24, ME: 22, MK: 19, MN: 20, MR: 27, MT: 31, MU: 30, NI: 28,
  NL: 18, NO: 15, OM: 23, PK: 24, PL: 28, PS: 29, PT: 25, QA: 29, RO: 24, RS: 22, RU: 33, SA: 24,
  SC: 31, SD: 18, SE: 24, SI: 19, SK: 24, SM: 27, SO: 23, ST: 25, SV: 28, TL: 23, TN: 24, TR: 26,
  UA: 29, VA: 22, VG: 24, XK: 20, YE: 30,
};

/** ISO 7064 MOD 97-10 over the rearranged IBAN, computed in chunks to stay within doubles. */
export function ibanChecksumValid(iban: string): boolean {
  const rearranged = iban.slice(4) + iban.slice(0, 4);
  let remainder = 0;
  for (const ch of rearranged) {
    const code = ch.charCodeAt(0);
    const value = code >= 65 ? code - 55 : code - 48;
    remainder = (value >= 10 ? remainder * 100 + value : remainder * 10 + value) % 97;
  }
  return remainder === 1;
}

/**
 * Upper-case IBANs, compact or grouped by single spaces. The candidate may run into following
 * upper-case words, so the validator cuts it at the country's registered length.
 */
export const ibanDetector: Detector = {
  id: 'iban',
  candidate: /(?<![A-Za-z0-9])[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]){11,30}(?![A-Za-z0-9])/g,
  maxLength: 64,
  prefix: String.raw`(?<![A-Za-z0-9])[A-Z][A-Z0-9 ]{0,63}$`,
  trigger: { kind: 'country-code' },
  validate(candidate): ValidatedMatch | null {
    const length = IBAN_LENGTHS[candidate.slice(0, 2)];
    if (length === undefined) return null;
    let seen = 0;
    let end = 0;
    while (end < candidate.length && seen < length) {
      if (candidate[end] !== ' ') seen++;
      end++;
    }
    if (seen < length) return null;
    // The cut must fall on a boundary: the rest is a separate word, not more account digits.
    if (end < candidate.length && candidate[end] !== ' ') return null;
    const compact = candidate.slice(0, end).replace(/ /g, '');
    return ibanChecksumValid(compact) ? { start: 0, end } : null;
  },
  normalize: (value) => value.replace(/ /g, ''),
};
