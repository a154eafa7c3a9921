import { describe, expect, it } from 'vitest';
import { generateLabelledCorpus, renderSample } from './corpus/labelled-corpus.js';
import { SeededRandom } from './corpus/seeded-random.js';
import { type Detector } from './detectors/detector.js';
import { createDetectors, DETECTOR_IDS, type DetectorId } from './detectors/index.js';
import { MaskingFindings } from './findings.js';
import { createStreamMasker, DetectionProfile, maskText } from './text-masker.js';

const PROFILES: readonly (readonly DetectorId[])[] = [
  DETECTOR_IDS,
  ['card', 'email'],
  ['iban'],
  ['email'],
  ['secret'],
  ['jwt', 'private-key', 'ipv6'],
  ['card', 'iban', 'ssn', 'email', 'ipv4'],
  ['phone', 'ipv4'],
];

/** Texts with and without candidates: the labelled corpus (samples, values, contexts), cells, and random text. */
function texts(): string[] {
  const corpus = generateLabelledCorpus();
  const out = [
    '',
    'x'.repeat(80),
    'user17@example.com',
    '4111 1111 1111 1111',
    '1234...',
    '1.2.3.4',
    '12.34.56.78',
    'GB82',
    'xGB82',
    'AB1',
    'Zürich 4111 1111 1111 1111 Straße',
    'eyJ',
    'ey',
    '-----BEGIN ',
    '-----BEGIN PRIVATE KEY-----',
    'a:b',
    '\u00a0'.repeat(20),
    'é'.repeat(40),
    '🔐'.repeat(10),
    ...corpus.samples.flatMap((sample) => [renderSample(sample), sample.value, sample.context.replace('{}', '')]),
  ];
  const rnd = new SeededRandom(7);
  const alphabet = ['0', '1', '9', ' ', '.', '-', '(', ')', '+', '@', ':', 'A', 'G', 'B', 'x', 'e', 'y', 'J', '_', '"', '\t', 'é', '€', '🔐', '\u00a0', '\u2028'];
  for (let n = 0; n < 3000; n++) {
    let text = '';
    const length = rnd.int(0, 90);
    for (let i = 0; i < length; i++) text += rnd.pick(alphabet);
    out.push(text);
  }
  return out;
}

describe('DetectionProfile.mayMatchUtf8: ruling a value out on its UTF-8 bytes', () => {
  const all = texts();

  it('is true wherever the text check is (never rules out what the scanner could find), for every profile', () => {
    let ruledOut = 0;
    for (const enabled of PROFILES) {
      const profile = new DetectionProfile({ enabled });
      for (const text of all) {
        const bytes = Buffer.from(text, 'utf8');
        const byBytes = profile.mayMatchUtf8(bytes);
        if (profile.mayMatch(text)) expect(byBytes, `${enabled.join(',')}: ${JSON.stringify(text)}`).toBe(true);
        if (!byBytes) {
          ruledOut++;
          expect(maskText(text, { profile }).text).toBe(text);
        }
      }
    }
    // The check does rule values out (else it would be pointless).
    expect(ruledOut).toBeGreaterThan(5000);
  });

  it('reads only bytes [start, end) of a larger buffer, whatever surrounds them', () => {
    const profile = new DetectionProfile({ enabled: ['card', 'email', 'iban', 'jwt', 'private-key'] });
    const around = ['$user@example.com 4111111111111111 GB82 eyJ -----BEGIN ', '$' + 'x'.repeat(300), '$' + '@'.repeat(300)];
    for (const text of all) {
      const expected = profile.mayMatchUtf8(Buffer.from(text, 'utf8'));
      for (const before of around) {
        for (const after of around) {
          const bytes = Buffer.from(before + text + after, 'utf8');
          const start = Buffer.byteLength(before);
          expect(profile.mayMatchUtf8(bytes, start, start + Buffer.byteLength(text)), JSON.stringify(text)).toBe(expected);
          // A plain Uint8Array view (not a Buffer), offset into its ArrayBuffer.
          const view = new Uint8Array(bytes.buffer, bytes.byteOffset + 1, bytes.length - 1);
          expect(profile.mayMatchUtf8(view, start - 1, start - 1 + Buffer.byteLength(text)), JSON.stringify(text)).toBe(expected);
        }
      }
    }
  });

  it('rules out plain values, and keeps every kind of candidate', () => {
    const profile = new DetectionProfile({ enabled: ['card', 'email'] });
    for (const cell of ['x'.repeat(80), 'Alice', '2026-11-21', '123456789012', 'a.b.c', 'Zürich']) expect(profile.mayMatchUtf8(Buffer.from(cell)), cell).toBe(false);
    for (const cell of ['a@b', '4111 1111 1111 1', '1234567890123']) expect(profile.mayMatchUtf8(Buffer.from(cell)), cell).toBe(true);
    const iban = new DetectionProfile({ enabled: ['iban'] });
    expect(iban.mayMatchUtf8(Buffer.from('x DE89 3704'))).toBe(true);
    expect(iban.mayMatchUtf8(Buffer.from('x DE8 93704'))).toBe(false);
  });

  it('decides nothing on bytes when a detector has neither a trigger nor an anchor (the text check then decides)', () => {
    const email = createDetectors({ enabled: ['email'] })[0] as Detector;
    const { anchor: _anchor, ...withoutAnchor } = email;
    const profile = new DetectionProfile({ detectors: [withoutAnchor as Detector] });
    expect(profile.mayMatchUtf8(Buffer.from('no candidate here'))).toBe(true);
    expect(profile.mayMatchUtf8(Buffer.alloc(0))).toBe(false);
  });

  it('treats invalid UTF-8 as the replacement characters it decodes to (never fewer token characters)', () => {
    const profile = new DetectionProfile();
    const rnd = new SeededRandom(11);
    for (let n = 0; n < 2000; n++) {
      const bytes = Buffer.from(Array.from({ length: rnd.int(0, 40) }, () => rnd.pick([0x80, 0xbf, 0xc3, 0xe2, 0xf0, 0xff, 0x30, 0x31, 0x20, 0x40, 0x2e, 0x41, 0x78])));
      if (profile.mayMatch(bytes.toString('utf8'))) expect(profile.mayMatchUtf8(bytes), bytes.toString('hex')).toBe(true);
    }
  });
});

describe('detector anchors', () => {
  it('every text in which an anchored detector’s candidate matches holds its anchor (corpus and near misses)', () => {
    const anchored = createDetectors().filter((d) => d.anchor !== undefined);
    expect(anchored.map((d) => d.id).sort()).toEqual(['email', 'ipv6', 'jwt', 'private-key']);
    let matched = 0;
    for (const text of texts()) {
      for (const detector of anchored) {
        const candidate = new RegExp(detector.candidate.source, detector.candidate.flags);
        if (!candidate.test(text)) continue;
        matched++;
        expect(text.includes(detector.anchor as string), `${detector.id}: ${JSON.stringify(text)}`).toBe(true);
      }
    }
    expect(matched).toBeGreaterThan(300);
  });
});

describe('mayValidateIn (whole-text conditions)', () => {
  it('secret: true for every text in which some token validates (corpus, near misses, URLs)', () => {
    const secret = createDetectors({ enabled: ['secret'] })[0] as Detector;
    const candidate = new RegExp(secret.candidate.source, 'g');
    let validated = 0;
    let ruledOut = 0;
    const extra = ['https://admin:hunter22@example.com/x', 'postgres://u:p@db:5432/app', 'AKIAIOSFODNN7EXAMPLE', 'x'.repeat(80), '9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08'];
    for (const text of [...texts(), ...extra, ...generateLabelledCorpus().samples.map((s) => `${s.value.slice(1)} x${s.value}y ${s.value.toLowerCase()} ${s.value.toUpperCase()}`)]) {
      const any = [...text.matchAll(candidate)].some((m) => secret.validate(m[0], '') !== null);
      if (any) validated++;
      if (!(secret.mayValidateIn as (t: string) => boolean)(text)) {
        ruledOut++;
        expect(any, JSON.stringify(text)).toBe(false);
      }
    }
    expect(validated).toBeGreaterThan(200);
    expect(ruledOut).toBeGreaterThan(1000);
  });

  it('maskCandidate gives maskText’s result for every text and profile', () => {
    for (const enabled of PROFILES) {
      const profile = new DetectionProfile({ enabled });
      for (const text of texts().slice(0, 1500)) {
        const findings = new MaskingFindings();
        const expected = new MaskingFindings();
        expect(profile.maskCandidate(text, 'cell', findings)).toBe(maskText(text, { profile, location: 'cell', findings: expected }).text);
        expect(findings.toArray()).toEqual(expected.toArray());
      }
    }
  });
});

describe('maskText through the profile’s reused scanner', () => {
  it('gives each text the result of a fresh stream masker, value after value (no state carried over)', () => {
    const profile = new DetectionProfile();
    const all = texts().slice(0, 2500);
    for (const [i, text] of all.entries()) {
      const findings = new MaskingFindings();
      const stream = createStreamMasker({ profile, location: 'cell' });
      const expected = stream.push(text) + stream.end();
      expect(maskText(text, { profile, location: 'cell', findings }).text, `${i}: ${JSON.stringify(text)}`).toBe(expected);
      expect(findings.toArray()).toEqual(stream.findings().toArray());
    }
  });

  it('masks correctly when a strategy masks another text with the same profile while the scanner is in use', () => {
    const inner: string[] = [];
    const profile: DetectionProfile = new DetectionProfile({
      enabled: ['email', 'card'],
      strategies: {
        email: { kind: 'redact', label: 'email' },
      },
      detectors: createDetectors({ enabled: ['email', 'card'] }).map((d) =>
        d.id !== 'email'
          ? d
          : {
              ...d,
              validate: (candidate: string, before: string) => {
                // Re-enters the profile mid-scan (once).
                if (inner.length === 0) {
                  inner.push('');
                  inner[0] = maskText(`card 4111 1111 1111 1111 in ${candidate}`, { profile }).text;
                }
                return d.validate(candidate, before);
              },
            },
      ),
    });
    expect(maskText('mail a@example.com and 4111 1111 1111 1111', { profile }).text).toBe('mail [REDACTED:email] and [REDACTED:card]');
    expect(inner).toEqual(['card [REDACTED:card] in [REDACTED:email]']);
  });
});
