import { DASH, isAsciiAlnum, isDigit, SPACE } from './ascii-classes.js';
import { type Detector, type ValidatedMatch } from './detector.js';

interface CardBrand {
  readonly name: string;
  readonly ranges: readonly (readonly [string, string])[];
  readonly lengths: readonly number[];
}

const range = (from: string, to: string = from): readonly [string, string] => [from, to];
const lengths = (min: number, max: number): number[] => Array.from({ length: max - min + 1 }, (_, i) => min + i);

/**
 * IIN prefixes and lengths of the major networks (ISO/IEC 7812 assignments as published by the
 * networks). A Luhn-valid number outside these is most likely an order id or a timestamp.
 */
export const CARD_BRANDS: readonly CardBrand[] = [
  { name: 'visa', ranges: [range('4')], lengths: [13, 16, 19] },
  { name: 'mastercard', ranges: [range('51', '55'), range('2221', '2720')], lengths: [16] },
  { name: 'amex', ranges: [range('34'), range('37')], lengths: [15] },
  { name: 'discover', ranges: [range('6011'), range('644', '649'), range('65'), range('622126', '622925')], lengths: lengths(16, 19) },
  { name: 'jcb', ranges: [range('3528', '3589')], lengths: lengths(16, 19) },
  { name: 'diners', ranges: [range('300', '305'), range('3095'), range('36'), range('38', '39')], lengths: lengths(14, 19) },
  { name: 'unionpay', ranges: [range('62')], lengths: lengths(16, 19) },
  { name: 'maestro', ranges: ['5018', '5020', '5038', '5893', '6304', '6759', '6761', '6762', '6763'].map((p) => range(p)), lengths: lengths(13, 19) },
  { name: 'mir', ranges: [range('2200', '2204')], lengths: lengths(16, 19) },
];

export function cardBrand(digits: string): string | undefined {
  for (const brand of CARD_BRANDS) {
    if (!brand.lengths.includes(digits.length)) continue;
    for (const [from, to] of brand.ranges) {
      const head = Number(digits.slice(0, from.length));
      if (head >= Number(from) && head <= Number(to)) return brand.name;
    }
  }
  return undefined;
}

export function luhnValid(digits: string): boolean {
  let sum = 0;
  let double = false;
  for (let i = digits.length - 1; i >= 0; i--) {
    let d = digits.charCodeAt(i) - 48;
    if (double) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    double = !double;
  }
  return sum % 10 === 0;
}

function digitsOf(value: string): string {
  return value.replace(/[^0-9]/g, '');
}

function digitCount(value: string, end: number): number {
  let n = 0;
  for (let i = 0; i < end; i++) if (isDigit(value.charCodeAt(i))) n++;
  return n;
}

function validCard(digits: string): boolean {
  return digits.length >= 13 && digits.length <= 19 && luhnValid(digits) && cardBrand(digits) !== undefined;
}

/**
 * 13–19 digits, optionally grouped by single spaces or dashes (one kind per number), Luhn-valid
 * and inside a known network's IIN range for that length. A greedy candidate that swallowed a
 * trailing group (`4111 1111 1111 1111 7`) is retried without its trailing groups.
 */
export const paymentCardDetector: Detector = {
  id: 'card',
  candidate: /(?<![0-9A-Za-z]|[0-9][ -])[0-9](?:[ -]?[0-9]){12,18}(?!-?[0-9])/g,
  maxLength: 37,
  prefix: String.raw`(?<![0-9A-Za-z]|[0-9][ -])[0-9](?:[ -]?[0-9]){0,18}[ -]?$`,
  trigger: {
    kind: 'numeric',
    minDigits: 13,
    minDots: 0,
    startsAt(text, i) {
      if (!isDigit(text.charCodeAt(i))) return false;
      const prev = text.charCodeAt(i - 1);
      return !isAsciiAlnum(prev) && !((prev === SPACE || prev === DASH) && isDigit(text.charCodeAt(i - 2)));
    },
  },
  validate(candidate): ValidatedMatch | null {
    if (candidate.includes(' ') && candidate.includes('-')) return null;
    let end = candidate.length;
    for (;;) {
      if (digitCount(candidate, end) < 13) return null;
      const digits = digitsOf(candidate.slice(0, end));
      if (validCard(digits)) return { start: 0, end };
      const lastSeparator = Math.max(candidate.lastIndexOf(' ', end - 1), candidate.lastIndexOf('-', end - 1));
      if (lastSeparator <= 0) return null;
      end = lastSeparator;
    }
  },
  normalize: digitsOf,
};
