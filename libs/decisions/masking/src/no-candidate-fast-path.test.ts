import { describe, expect, it } from 'vitest';
import { generateLabelledCorpus, renderSample } from './corpus/labelled-corpus.js';
import { MaskingFindings } from './findings.js';
import { createStreamMasker, DetectionProfile, maskText } from './text-masker.js';

/** The scanner's result, never taking the no-candidate shortcut (a stream masker always scans). */
function scanned(text: string, profile: DetectionProfile): { text: string; findings: unknown[] } {
  const masker = createStreamMasker({ profile, location: 'cell' });
  const out = masker.push(text) + masker.end();
  return { text: out, findings: masker.findings().toArray() };
}

function shortcut(text: string, profile: DetectionProfile): { text: string; findings: unknown[] } {
  const result = maskText(text, { profile, location: 'cell' });
  return { text: result.text, findings: result.findings.toArray() };
}

const CELLS = [
  '',
  '1',
  '-2834',
  '42',
  '100000',
  '2026-11-21',
  '2026-11-21 18:00:00.123456+00',
  'true',
  'Alice',
  'orders-prod',
  'a short sentence with words in it.',
  '3.14159',
  '{"a":1}',
  'NULL',
  '                                                                                    ',
  'SELECT aid FROM pgbench_accounts',
];

describe('maskText: a text with no detector candidate is returned without a scanner', () => {
  const profiles = [new DetectionProfile(), new DetectionProfile({ enabled: ['card', 'iban', 'ssn', 'email', 'ipv4'] })];
  const corpus = generateLabelledCorpus();

  it('gives the scanner’s exact output and findings for every corpus sample, value and context', () => {
    let skipped = 0;
    let compared = 0;
    for (const profile of profiles) {
      const texts = [...CELLS, ...corpus.samples.flatMap((sample) => [renderSample(sample), sample.value, sample.context.replace('{}', '')])];
      for (const text of texts) {
        if (!profile.mayMatch(text)) skipped++;
        expect(shortcut(text, profile), text).toEqual(scanned(text, profile));
        compared++;
      }
    }
    // Both paths were exercised: many texts skipped the scanner, many did not.
    expect(skipped).toBeGreaterThan(100);
    expect(compared - skipped).toBeGreaterThan(1000);
  });

  it('proves plain cells candidate-free and keeps anything that might match', () => {
    const profile = new DetectionProfile();
    // (A date is a phone candidate: 8 digits in one cluster; the scanner decides it.)
    for (const cell of ['1', '-2834', '100000', '3.14159', 'Alice', 'true', 'orders-prod']) expect(profile.mayMatch(cell), cell).toBe(false);
    for (const cell of ['alice@example.com', '4111 1111 1111 1111', '10.0.0.1', 'fe80::1', 'DE89370400440532013000', 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig', '-----BEGIN PRIVATE KEY-----']) {
      expect(profile.mayMatch(cell), cell).toBe(true);
    }
  });

  it('adds to the caller’s findings as before (nothing, when there was nothing)', () => {
    const profile = new DetectionProfile();
    const findings = new MaskingFindings();
    expect(maskText('12345', { profile, findings }).findings).toBe(findings);
    expect(findings.isEmpty).toBe(true);
  });
});
