import { MaskingError } from '../errors.js';
import { type Detector } from './detector.js';
import { emailDetector } from './email.js';
import { ibanDetector } from './iban.js';
import { ipv4Detector, ipv6Detector } from './ip-address.js';
import { jwtDetector } from './jwt.js';
import { paymentCardDetector } from './payment-card.js';
import { createPhoneDetector, type PhoneDetectorOptions } from './phone.js';
import { privateKeyDetector } from './private-key.js';
import { ssnDetector } from './ssn.js';
import { createSecretlintDetector } from './secretlint-secrets.js';

export * from './detector.js';
export { CARD_BRANDS, cardBrand, luhnValid, paymentCardDetector } from './payment-card.js';
export { IBAN_LENGTHS, ibanChecksumValid, ibanDetector } from './iban.js';
export { ssnDetector, ssnValid } from './ssn.js';
export { emailDetector } from './email.js';
export { createPhoneDetector, type PhoneDetectorOptions } from './phone.js';
export { ipv4Detector, ipv6Detector } from './ip-address.js';
export { jwtDetector } from './jwt.js';
export { PRIVATE_KEY_BODY_CAP, privateKeyDetector } from './private-key.js';
export { SECRET_TOKEN_MAX, createSecretlintDetector, secretRuleNames, type SecretlintDetectorOptions } from './secretlint-secrets.js';

/** Built-in detectors, in tie-break priority order (same start and length: earlier wins). */
export const DETECTOR_IDS = ['private-key', 'jwt', 'secret', 'card', 'iban', 'ssn', 'email', 'phone', 'ipv6', 'ipv4'] as const;
export type DetectorId = (typeof DETECTOR_IDS)[number];

export interface DetectorSetOptions {
  /** Defaults to all built-in detectors. */
  readonly enabled?: readonly DetectorId[];
  readonly phone?: PhoneDetectorOptions;
}

export function createDetectors(options: DetectorSetOptions = {}): Detector[] {
  const enabled = new Set<string>(options.enabled ?? DETECTOR_IDS);
  for (const id of enabled) {
    if (!(DETECTOR_IDS as readonly string[]).includes(id)) throw new MaskingError('MASKING_UNKNOWN_DETECTOR', `unknown detector: ${id}`);
  }
  const factories: Record<DetectorId, () => Detector> = {
    'private-key': () => privateKeyDetector,
    jwt: () => jwtDetector,
    secret: createSecretlintDetector,
    card: () => paymentCardDetector,
    iban: () => ibanDetector,
    ssn: () => ssnDetector,
    email: () => emailDetector,
    phone: () => createPhoneDetector(options.phone),
    ipv6: () => ipv6Detector,
    ipv4: () => ipv4Detector,
  };
  return DETECTOR_IDS.filter((id) => enabled.has(id)).map((id) => factories[id]());
}
