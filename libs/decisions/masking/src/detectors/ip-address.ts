import { isIP } from 'node:net';
import { COLON, DASH, DOT, isDigit, isWordChar, SLASH } from './ascii-classes.js';
import { type Detector, type ValidatedMatch } from './detector.js';

const isHexDigit = (code: number): boolean => isDigit(code) || (code >= 65 && code <= 70) || (code >= 97 && code <= 102);

/** Words that, right before a dotted quad, mark it as a version or build number. */
const VERSION_CONTEXT = /(?:version|ver\.?|release|build|firmware|v)\s*[:=]?\s*$/i;

export const ipv4Detector: Detector = {
  id: 'ipv4',
  candidate: /(?<![\w./:-])(?:[0-9]{1,3}\.){3}[0-9]{1,3}(?![\w]|\.[0-9])/g,
  maxLength: 15,
  prefix: String.raw`(?<![\w./:-])[0-9]{1,3}(?:\.[0-9]{0,3}){0,3}$`,
  trigger: {
    kind: 'numeric',
    minDigits: 4,
    minDots: 3,
    startsAt(text, i) {
      if (!isDigit(text.charCodeAt(i))) return false;
      const prev = text.charCodeAt(i - 1);
      return !isWordChar(prev) && prev !== DOT && prev !== SLASH && prev !== COLON && prev !== DASH;
    },
  },
  validate(candidate, before): ValidatedMatch | null {
    if (isIP(candidate) !== 4) return null;
    if (VERSION_CONTEXT.test(before)) return null;
    return { start: 0, end: candidate.length };
  },
};

/**
 * IPv6 in any textual form node:net accepts (compressed, IPv4-suffixed). `::` alone and
 * strings with fewer than two hex digits are ignored (C++ scopes, emoticons).
 */
export const ipv6Detector: Detector = {
  id: 'ipv6',
  anchor: ':',
  candidate: /(?<![\w:.])(?=[0-9A-Fa-f]{0,4}:[0-9A-Fa-f]{0,4}:)[0-9A-Fa-f:.]{2,45}(?![\w:])/g,
  maxLength: 45,
  prefix: String.raw`(?<![\w:.])[0-9A-Fa-f:.]{1,45}$`,
  skipTo(text, from) {
    // A match has a colon within its first five characters, after a run of at most four hex
    // digits that starts the match (the look-behind rules out starting inside a word).
    for (let colon = text.indexOf(':', from); colon >= 0; colon = text.indexOf(':', colon + 1)) {
      let start = colon;
      while (start > colon - 5 && isHexDigit(text.charCodeAt(start - 1))) start--;
      if (start < from || colon - start > 4) continue;
      const prev = text.charCodeAt(start - 1);
      if (isWordChar(prev) || prev === COLON || prev === DOT) continue;
      let second = colon + 1;
      while (second < colon + 5 && isHexDigit(text.charCodeAt(second))) second++;
      // Not arrived yet: propose it (the regex decides, the stream waits).
      if (second >= text.length || text.charCodeAt(second) === COLON) return start;
    }
    return text.length;
  },
  validate(candidate): ValidatedMatch | null {
    // A sentence may end right after the address.
    const value = candidate.endsWith('.') ? candidate.slice(0, -1) : candidate;
    if (isIP(value) !== 6) return null;
    if ((value.match(/[0-9A-Fa-f]/g) ?? []).length < 2) return null;
    return { start: 0, end: value.length };
  },
  normalize: (value) => value.toLowerCase(),
};
