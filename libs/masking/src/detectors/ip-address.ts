import { isIP } from 'node:net';
import { type Detector, type ValidatedMatch } from './detector.js';

/** Words that, right before a dotted quad, mark it as a version or build number. */
const VERSION_CONTEXT = /(?:version|ver\.?|release|build|firmware|v)\s*[:=]?\s*$/i;

export const ipv4Detector: Detector = {
  id: 'ipv4',
  candidate: /(?<![\w./:-])(?:[0-9]{1,3}\.){3}[0-9]{1,3}(?![\w]|\.[0-9])/g,
  maxLength: 15,
  prefix: String.raw`(?<![\w./:-])[0-9]{1,3}(?:\.[0-9]{0,3}){0,3}$`,
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
  candidate: /(?<![\w:.])(?=[0-9A-Fa-f]{0,4}:[0-9A-Fa-f]{0,4}:)[0-9A-Fa-f:.]{2,45}(?![\w:])/g,
  maxLength: 45,
  prefix: String.raw`(?<![\w:.])[0-9A-Fa-f:.]{1,45}$`,
  validate(candidate): ValidatedMatch | null {
    // A sentence may end right after the address.
    const value = candidate.endsWith('.') ? candidate.slice(0, -1) : candidate;
    if (isIP(value) !== 6) return null;
    if ((value.match(/[0-9A-Fa-f]/g) ?? []).length < 2) return null;
    return { start: 0, end: value.length };
  },
  normalize: (value) => value.toLowerCase(),
};
