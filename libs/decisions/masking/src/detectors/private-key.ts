import { type Detector, type ValidatedMatch } from './detector.js';

/**
 * Upper bound on a PEM/PGP private key block body. RSA-4096 PEM is ~3.3 KiB, RSA-8192 ~6.4 KiB,
 * PGP secret keys with subkeys ~7–10 KiB. A block longer than this is still masked from its
 * header through the first 16 KiB of base64 body (the fallback branch), so a stream never holds
 * back more than this plus the armour lines.
 */
export const PRIVATE_KEY_BODY_CAP = 16 * 1024;

const LABEL = String.raw`(?:[A-Z0-9]{1,12} ){0,3}PRIVATE KEY(?: BLOCK)?`;

export const privateKeyDetector: Detector = {
  id: 'private-key',
  anchor: '-----BEGIN ',
  candidate: new RegExp(
    String.raw`-----BEGIN ${LABEL}-----(?:[\s\S]{0,${PRIVATE_KEY_BODY_CAP}}?-----END ${LABEL}-----|[A-Za-z0-9+/=\s\\]{0,${PRIVATE_KEY_BODY_CAP}})`,
    'g',
  ),
  maxLength: 2 * 80 + PRIVATE_KEY_BODY_CAP,
  prefix: String.raw`-{1,5}(?:B(?:E(?:G(?:I(?:N(?: [A-Z0-9 ]{0,45}-{0,5})?)?)?)?)?)?$`,
  skipTo(text, from) {
    const at = text.indexOf('-----BEGIN ', from);
    return at < 0 ? text.length : at;
  },
  validate(candidate): ValidatedMatch | null {
    return { start: 0, end: candidate.length };
  },
};
