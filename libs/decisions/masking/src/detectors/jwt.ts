import { DASH, isWordChar } from './ascii-classes.js';
import { type Detector, type ValidatedMatch } from './detector.js';

function decodeJsonSegment(segment: string): unknown {
  try {
    return JSON.parse(Buffer.from(segment, 'base64url').toString('utf8')) as unknown;
  } catch {
    return undefined;
  }
}

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

/**
 * JWS compact serialization: header.payload.signature in base64url, header a JSON object with a
 * string `alg`, payload a JSON object. Bounds: header 2 KiB, payload 6 KiB, signature 1 KiB
 * (RSA-8192 signatures are 1366 chars in base64url; larger tokens are not matched).
 */
export const jwtDetector: Detector = {
  id: 'jwt',
  anchor: 'eyJ',
  candidate: /(?<![\w-])eyJ[A-Za-z0-9_-]{5,2045}\.[A-Za-z0-9_-]{2,6144}\.[A-Za-z0-9_-]{0,1400}(?![\w-])/g,
  maxLength: 2048 + 1 + 6144 + 1 + 1400,
  prefix: String.raw`(?<![\w-])e(?:y(?:J[A-Za-z0-9_.-]{0,9593})?)?$`,
  skipTo(text, from) {
    for (let at = text.indexOf('eyJ', from); at >= 0; at = text.indexOf('eyJ', at + 1)) {
      const prev = text.charCodeAt(at - 1);
      if (!isWordChar(prev) && prev !== DASH) return at;
    }
    return text.length;
  },
  validate(candidate): ValidatedMatch | null {
    const [header, payload] = candidate.split('.');
    if (header === undefined || payload === undefined) return null;
    const decodedHeader = decodeJsonSegment(header);
    if (!isObject(decodedHeader) || typeof decodedHeader['alg'] !== 'string') return null;
    if (!isObject(decodeJsonSegment(payload))) return null;
    return { start: 0, end: candidate.length };
  },
};
