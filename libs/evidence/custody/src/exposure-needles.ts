// The byte strings a credential takes in its obvious encodings: what the scanner looks for.
// Each is derived from the secret alone, so a match means the secret (or its encoding) is there.
import { CustodyError } from './errors.js';

export type ExposureEncoding =
  | 'raw'
  | 'hex-lower'
  | 'hex-upper'
  | 'base64'
  | 'base64url'
  | 'percent-upper'
  | 'percent-lower'
  | 'uri-component'
  | 'form-urlencoded'
  | 'json'
  | 'json-ascii';

export interface ExposureNeedle {
  readonly encoding: ExposureEncoding;
  /** Which of the scanner's secrets (index), never the value. */
  readonly secret: number;
  /** base64 / base64url: the secret's offset mod 3 in the encoded data. */
  readonly alignment?: 0 | 1 | 2;
  readonly bytes: Buffer;
}

/** Longest secret accepted: an SSH private key in PEM is ~3.4 KiB; the needles stay under ~50 KiB. */
export const MAX_SECRET_BYTES = 16 * 1024;
/**
 * Encoded needles shorter than this are not scanned: a few base64 or hex characters match unrelated
 * data far too often to mean anything. The raw secret is always scanned, whatever its length.
 */
export const MIN_ENCODED_NEEDLE_BYTES = 8;
/** A secret shorter than this is flagged (`shortSecret`): even a raw match may be chance. */
export const SHORT_SECRET_BYTES = 8;

const ALNUM = (b: number): boolean => (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a);
/** Bytes each URL encoder leaves as they are (everything else is %XX). */
const KEEP = {
  // RFC 3986 unreserved.
  rfc3986: (b: number) => ALNUM(b) || b === 0x2d || b === 0x2e || b === 0x5f || b === 0x7e,
  // ECMAScript encodeURIComponent: unreserved plus ! ' ( ) *.
  uriComponent: (b: number) => ALNUM(b) || '-_.!~*\'()'.includes(String.fromCharCode(b)),
  // WHATWG application/x-www-form-urlencoded (URLSearchParams): alnum and * - . _; space is '+'.
  form: (b: number) => ALNUM(b) || b === 0x2a || b === 0x2d || b === 0x2e || b === 0x5f,
};

function percentEncode(secret: Uint8Array, keep: (b: number) => boolean, upper: boolean, spaceAsPlus = false): Buffer {
  let out = '';
  for (const b of secret) {
    if (spaceAsPlus && b === 0x20) out += '+';
    else if (keep(b)) out += String.fromCharCode(b);
    else {
      const hex = b.toString(16).padStart(2, '0');
      out += `%${upper ? hex.toUpperCase() : hex}`;
    }
  }
  return Buffer.from(out, 'latin1');
}

/**
 * The base64 characters that depend on the secret alone when it sits at `alignment` (offset mod 3)
 * in the encoded data: the first and last characters also carry neighbouring bits and are trimmed.
 */
export function alignedBase64(secret: Uint8Array, alignment: 0 | 1 | 2): string {
  const encoded = Buffer.concat([Buffer.alloc(alignment), secret]).toString('base64').replace(/=+$/, '');
  const firstBit = 8 * alignment;
  const endBit = 8 * (alignment + secret.length);
  return encoded.slice(Math.ceil(firstBit / 6), Math.floor(endBit / 6));
}

function utf8(secret: Uint8Array): string | undefined {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(secret);
  } catch {
    return undefined;
  }
}

/** Checks a secret and returns its needles, each distinct byte string once (the first encoding that yields it names it). */
export function exposureNeedles(secrets: readonly Uint8Array[]): ExposureNeedle[] {
  if (secrets.length === 0) throw new CustodyError('CUSTODY_SECRET_INVALID', 'no secret to scan for');
  const needles: ExposureNeedle[] = [];
  const seen = new Set<string>();
  const add = (needle: ExposureNeedle): void => {
    if (needle.encoding !== 'raw' && needle.bytes.length < MIN_ENCODED_NEEDLE_BYTES) return;
    const key = needle.bytes.toString('latin1');
    if (seen.has(key)) return;
    seen.add(key);
    needles.push(needle);
  };
  secrets.forEach((secret, index) => {
    if (!(secret instanceof Uint8Array)) throw new CustodyError('CUSTODY_SECRET_INVALID', `secret ${index} is not bytes`);
    if (secret.length === 0) throw new CustodyError('CUSTODY_SECRET_INVALID', `secret ${index} is empty`);
    if (secret.length > MAX_SECRET_BYTES) throw new CustodyError('CUSTODY_SECRET_INVALID', `secret ${index} is ${secret.length} bytes, more than the ${MAX_SECRET_BYTES} scanned for`);
    const s = Buffer.from(secret);
    add({ encoding: 'raw', secret: index, bytes: Buffer.from(s) });
    const hex = s.toString('hex');
    add({ encoding: 'hex-lower', secret: index, bytes: Buffer.from(hex, 'latin1') });
    add({ encoding: 'hex-upper', secret: index, bytes: Buffer.from(hex.toUpperCase(), 'latin1') });
    for (const alignment of [0, 1, 2] as const) {
      const standard = alignedBase64(s, alignment);
      add({ encoding: 'base64', secret: index, alignment, bytes: Buffer.from(standard, 'latin1') });
      add({ encoding: 'base64url', secret: index, alignment, bytes: Buffer.from(standard.replace(/\+/g, '-').replace(/\//g, '_'), 'latin1') });
    }
    add({ encoding: 'percent-upper', secret: index, bytes: percentEncode(s, KEEP.rfc3986, true) });
    add({ encoding: 'percent-lower', secret: index, bytes: percentEncode(s, KEEP.rfc3986, false) });
    add({ encoding: 'uri-component', secret: index, bytes: percentEncode(s, KEEP.uriComponent, true) });
    add({ encoding: 'form-urlencoded', secret: index, bytes: percentEncode(s, KEEP.form, true, true) });
    const text = utf8(s);
    if (text !== undefined) {
      const json = JSON.stringify(text).slice(1, -1);
      add({ encoding: 'json', secret: index, bytes: Buffer.from(json, 'utf8') });
      // Other serializers (Python's json.dumps, Go's for some runes) write non-ASCII as \uXXXX.
      const ascii = json.replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
      add({ encoding: 'json-ascii', secret: index, bytes: Buffer.from(ascii, 'latin1') });
    }
  });
  return needles;
}
