import { type Detector, type ValidatedMatch } from './detector.js';

const LOCAL_CHAR = new Uint8Array(128);
for (const ch of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._%+-') LOCAL_CHAR[ch.charCodeAt(0)] = 1;

/**
 * Addresses with a dotted domain and an alphabetic TLD. The regex bounds each part (local part
 * 64, at most 5 labels of 63, TLD 24), which also bounds the stream hold-back.
 */
export const emailDetector: Detector = {
  id: 'email',
  anchor: '@',
  candidate:
    /(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]{1,64}@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.){1,5}[A-Za-z]{2,24}(?![A-Za-z0-9-]|\.[A-Za-z0-9])/g,
  maxLength: 64 + 1 + 5 * 64 + 24,
  prefix: String.raw`(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]{1,64}(?:@[A-Za-z0-9.-]{0,345})?$`,
  validate(candidate): ValidatedMatch | null {
    const at = candidate.indexOf('@');
    const local = candidate.slice(0, at);
    if (candidate.length > 254) return null;
    if (local.startsWith('.') || local.endsWith('.') || local.includes('..')) return null;
    return { start: 0, end: candidate.length };
  },
  normalize: (value) => value.toLowerCase(),
  skipTo(text, from) {
    // A match's local part is exactly the run of local-part characters before its `@`.
    for (let at = text.indexOf('@', from); at >= 0; at = text.indexOf('@', at + 1)) {
      let start = at;
      while (start > 0 && at - start <= 64 && LOCAL_CHAR[text.charCodeAt(start - 1)] === 1) start--;
      if (start < at && at - start <= 64 && start >= from) return start;
    }
    return text.length;
  },
};
