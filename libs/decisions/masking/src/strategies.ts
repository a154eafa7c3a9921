import { createHmac, createSecretKey, type KeyObject } from 'node:crypto';
import { MaskingError } from './errors.js';

/** How a sensitive value is replaced. */
export type StrategySpec =
  | { readonly kind: 'redact'; /** Defaults to the detector or rule id. */ readonly label?: string }
  | { readonly kind: 'partial'; readonly keepLast?: number; readonly keepFirst?: number; readonly maskChar?: string }
  | { readonly kind: 'hmac' };

export interface MaskContext {
  /** Detector id or rule id; used as the redaction label. */
  readonly label: string;
  /** Canonicalises the value before keyed tokenization (e.g. card digits only). */
  readonly normalize?: (value: string) => string;
}

export type MaskFunction = (value: string, context: MaskContext) => string;

const BASE32_ALPHABET = 'abcdefghijklmnopqrstuvwxyz234567';

/** RFC 4648 base32 (lower case, no padding). */
export function base32(bytes: Uint8Array): string {
  let out = '';
  let buffer = 0;
  let bits = 0;
  for (const byte of bytes) {
    buffer = (buffer << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += BASE32_ALPHABET[(buffer >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += BASE32_ALPHABET[(buffer << (5 - bits)) & 31];
  return out;
}

/** Minimum key length for tokenization: HMAC-SHA256 keys shorter than 128 bits are refused. */
export const MIN_HMAC_KEY_BYTES = 16;

/**
 * Keyed tokenizer: `tok_` + base32 of the first 10 bytes of HMAC-SHA256(key, value). Deterministic
 * per key, so tokenized columns still join; different keys (tenants) give unrelated tokens.
 * The key is held as a KeyObject and never exposed by this object (nor by its JSON/inspect form).
 */
export class HmacTokenizer {
  readonly #key: KeyObject;

  constructor(key: Uint8Array | KeyObject) {
    const keyObject = key instanceof Uint8Array ? createSecretKey(key) : key;
    if (keyObject.type !== 'secret' || (keyObject.symmetricKeySize ?? 0) < MIN_HMAC_KEY_BYTES) {
      throw new MaskingError('MASKING_INVALID_KEY', `HMAC key must be a secret key of at least ${MIN_HMAC_KEY_BYTES} bytes`);
    }
    this.#key = keyObject;
  }

  tokenize(value: string): string {
    const digest = createHmac('sha256', this.#key).update(value, 'utf8').digest();
    return `tok_${base32(digest.subarray(0, 10))}`;
  }

  toJSON(): string {
    return '[HmacTokenizer]';
  }
}

function maskPartially(value: string, keepFirst: number, keepLast: number, maskChar: string): string {
  const significant = [...value].filter((ch) => /[\p{L}\p{N}]/u.test(ch)).length;
  // Too short to reveal anything safely: mask every character that carries information.
  if (significant <= (keepFirst + keepLast) * 2) return value.replace(/[\p{L}\p{N}]/gu, maskChar);
  let index = 0;
  return value.replace(/[\p{L}\p{N}]/gu, (ch) => {
    const position = index++;
    return position < keepFirst || position >= significant - keepLast ? ch : maskChar;
  });
}

/** Turns a strategy spec into a function; `hmac` needs the caller's tokenizer. */
export function compileStrategy(spec: StrategySpec, tokenizer?: HmacTokenizer): MaskFunction {
  switch (spec.kind) {
    case 'redact':
      return (_value, context) => `[REDACTED:${spec.label ?? context.label}]`;
    case 'partial': {
      const keepFirst = spec.keepFirst ?? 0;
      const keepLast = spec.keepLast ?? 4;
      const maskChar = spec.maskChar ?? '*';
      if (keepFirst < 0 || keepLast < 0 || [...maskChar].length !== 1) {
        throw new MaskingError('MASKING_INVALID_OPTION', 'partial strategy needs non-negative keepFirst/keepLast and a one-character maskChar');
      }
      return (value) => maskPartially(value, keepFirst, keepLast, maskChar);
    }
    case 'hmac': {
      if (!tokenizer) throw new MaskingError('MASKING_INVALID_KEY', 'hmac strategy needs an HMAC key');
      return (value, context) => tokenizer.tokenize(context.normalize ? context.normalize(value) : value);
    }
  }
}
