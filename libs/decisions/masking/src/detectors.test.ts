import { describe, expect, it } from 'vitest';
import { generateLabelledCorpus, makeIban, renderSample } from './corpus/labelled-corpus.js';
import { createDetectors, createSecretlintDetector, type DetectorId } from './detectors/index.js';
import { ibanChecksumValid } from './detectors/iban.js';
import { cardBrand, luhnValid } from './detectors/payment-card.js';
import { DetectionProfile, maskText } from './text-masker.js';

const profile = new DetectionProfile();
/** The detector ids (with secret rule suffix) that fired on `text` in context. */
const fired = (text: string): string[] => maskText(`before ${text} after`, { profile }).findings.toArray().map((f) => f.detector ?? '');
const detects = (id: DetectorId | string, text: string): boolean => fired(text).some((d) => d === id);

const cases: Record<string, { positives: string[]; negatives: string[] }> = {
  card: {
    positives: ['4111 1111 1111 1111', '4111-1111-1111-1111', '5500005555555559', '378282246310005', '3566 0020 2036 0505', '6011111111111117', '4222222222222'],
    negatives: ['4111 1111 1111 1112', '1712345678905', '9111111111111111', '41111111111111111', '4111 1111-1111 1111', '2024 0115 1030 0000'],
  },
  iban: {
    positives: ['GB82 WEST 1234 5698 7654 32', 'DE89370400440532013000', 'FR1420041010050500013M02606', 'NL91ABNA0417164300', 'CH9300762011623852957'],
    negatives: ['GB83 WEST 1234 5698 7654 32', 'DE8937040044053201300', 'XX89370400440532013000', 'de89370400440532013000'],
  },
  ssn: { positives: ['219-45-6789', '078-05-1121', '536 90 4399'], negatives: ['000-45-6789', '666-45-6789', '912-45-6789', '219-00-6789', '219-45-0000', '219456789', '078-05-1120', '219-45 6789'] },
  email: { positives: ['john.doe@example.com', 'a+b@mail.example.co.uk', 'X_Y@sub.example.io'], negatives: ['john@localhost', '.john@example.com', 'john..doe@example.com', 'john@example', '@example.com'] },
  phone: { positives: ['+1 212 555 0123', '(212) 555-0123', '+44 20 7946 0958', '+49 30 901820', '+33 1 42 68 53 00', '+81 3-1234-5678'], negatives: ['2024-01-15', '555-0123', '12.34.56.78', '1,234,567', '(555) 0123', '10:30:45'] },
  ipv4: { positives: ['192.168.1.10', '10.0.0.1', '8.8.8.8'], negatives: ['256.1.1.1', '1.2.3', 'version 1.2.3.4', 'v1.2.3.4', 'Chrome/120.0.6099.109', '01.2.3.4'] },
  ipv6: { positives: ['2001:db8::1', 'fe80::1ff:fe23:4567:890a', '::ffff:192.0.2.1', '2001:0db8:0000:0000:0000:ff00:0042:8329'], negatives: ['12:30:45', '00:1A:2B:3C:4D:5E', 'std::vector', '::', 'a:b'] },
  jwt: {
    positives: ['eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c'],
    negatives: ['eyJhbGciOi.eyJzdWIi.abc', `${Buffer.from('{"typ":"JWT"}').toString('base64url')}.${Buffer.from('{"a":1}').toString('base64url')}.sig`, 'eyJub3QiOiJqc29u.bm90IGpzb24.x'],
  },
};

describe.each(Object.entries(cases))('%s detector', (id, { positives, negatives }) => {
  it.each(positives)('detects %s', (value) => expect(detects(id, value), fired(value).join()).toBe(true));
  it.each(negatives)('ignores %s', (value) => expect(detects(id, value), fired(value).join()).toBe(false));
});

describe('secrets via secretlint rules', () => {
  const positives: [string, string][] = [
    ['secret:github', `ghp_${'a1B2'.repeat(9)}`],
    ['secret:aws', 'AKIAQ3ZT7WJ2LMXP4RVC'],
    ['secret:slack', 'xoxb-123456789012-1234567890123-abcdefghijklmnopqrstuvwx'],
    ['secret:anthropic', `sk-ant-api03-${'a'.repeat(93)}AA`],
    ['secret:npm', `npm_${'a1B2'.repeat(9)}`],
    ['secret:basicauth', 'https://admin:hunter22@example.com/path'],
    ['secret:database-connection-string', 'postgres://app:s3cretpass@db.example.internal:5432/prod'],
  ];
  it.each(positives)('%s detects %s', (id, value) => expect(fired(value)).toContain(id));
  it.each(['ghp_short', 'sk-ant-short', 'AKIAIOSFODNN7EXAMPLE', 'https://example.com/no/credentials/here', 'supercalifragilisticexpialidocious'])('ignores %s', (value) =>
    expect(fired(value).filter((d) => d.startsWith('secret'))).toEqual([]),
  );
  it('masks from the key to the end of its token', () => {
    expect(maskText(`OPENAI_KEY=ghp_${'a1B2'.repeat(9)} next`, { profile }).text).toBe('OPENAI_KEY=[REDACTED:secret:github] next');
  });
});

describe('secret rule gating', () => {
  it('running only the rules whose literal a token contains changes no result on the corpus and near misses', () => {
    const gated = createSecretlintDetector();
    const ungated = createSecretlintDetector({ gateByRuleLiterals: false });
    const tokens = new Set<string>();
    const addTokens = (text: string): void => {
      for (const m of text.matchAll(new RegExp(ungated.candidate.source, 'g'))) tokens.add(m[0]);
    };
    for (const sample of generateLabelledCorpus().samples) {
      addTokens(renderSample(sample));
      // Near misses: the value cut, extended and with its case flipped.
      addTokens(`${sample.value.slice(1)} ${sample.value.slice(0, -1)} x${sample.value}y ${sample.value.toLowerCase()} ${sample.value.toUpperCase()}`);
    }
    addTokens('AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEZ aws_account_id=1234-5678-9012 https://x:y@github.com/ npm_authToken=abc');
    let fired = 0;
    for (const token of tokens) {
      const expected = ungated.validate(token, '');
      if (expected) fired++;
      expect(gated.validate(token, ''), token.slice(0, 12)).toEqual(expected);
    }
    expect(tokens.size).toBeGreaterThan(2000);
    expect(fired).toBeGreaterThan(300);
  });
});

describe('private keys', () => {
  it('masks a multi-line PEM block including armour lines, but not public keys', () => {
    const pem = '-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n-----END OPENSSH PRIVATE KEY-----';
    expect(maskText(`a\n${pem}\nb`, { profile }).text).toBe('a\n[REDACTED:private-key]\nb');
    const pub = '-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----';
    expect(maskText(pub, { profile }).text).toBe(pub);
  });
});

describe('checksums', () => {
  it('Luhn, IIN ranges and IBAN mod-97 agree with known values', () => {
    expect(luhnValid('79927398713')).toBe(true);
    expect(luhnValid('79927398710')).toBe(false);
    expect(cardBrand('4111111111111111')).toBe('visa');
    expect(cardBrand('2221000000000009')).toBe('mastercard');
    expect(cardBrand('1111111111111111')).toBeUndefined();
    expect(ibanChecksumValid('GB82WEST12345698765432')).toBe(true);
    expect(ibanChecksumValid(makeIban('DE', '370400440532013000'))).toBe(true);
    expect(makeIban('DE', '370400440532013000')).toBe('DE89370400440532013000');
  });

  it('rejects unknown detector ids', () => {
    expect(() => createDetectors({ enabled: ['nope' as DetectorId] })).toThrow(expect.objectContaining({ code: 'MASKING_UNKNOWN_DETECTOR' }));
  });
});
