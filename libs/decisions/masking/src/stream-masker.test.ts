import v8 from 'node:v8';
import vm from 'node:vm';
import { describe, expect, it } from 'vitest';
import { generateLabelledCorpus, renderSample } from './corpus/labelled-corpus.js';
import { SeededRandom } from './corpus/seeded-random.js';
import { MAX_LOOKBEHIND, type Detector } from './detectors/detector.js';
import { createDetectors, PRIVATE_KEY_BODY_CAP } from './detectors/index.js';
import { createByteStreamMasker, createStreamMasker, DetectionProfile, maskText, type StreamMasker } from './text-masker.js';

const profile = new DetectionProfile();

const PEM = `-----BEGIN RSA PRIVATE KEY-----\nMIIBOgIBAAJBAKj34GkxFhD90vcNLYLInFEX6Ppy1tPf9Cnzj4p4WGeKLs1Pt8Qu\nKUpRKfFLfRYC9AIKjbJTWit+CqvjWYzvQwECAwEAAQJAIJLixBy2qpFoS4DSmoEm\n-----END RSA PRIVATE KEY-----`;
const JWT = 'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c';

/** Every detector, near misses, adjacent matches, multi-byte characters and a PEM block. */
const MIXED = [
  'Order 4111 1111 1111 1111 shipped; card 4111-1111-1111-1111 and 4111 1111 1111 1111 7 (extra group).',
  'IBAN GB82 WEST 1234 5698 7654 32 or DE89370400440532013000, bad GB00 WEST 1234 5698 7654 32.',
  'SSN 219-45-6789, not 000-12-3456 nor 666-12-3456. 🔐 Ünïcödé ✓ 𝔘𝔫𝔦 mail: maria.rossi+x@mail.example.org.',
  'Call +1 212 555 0123, (415) 555-2671 or +44 20 7946 0958; ids 2024-01-15 and v1.2.3.4, version 1.2.3.4.',
  'Hosts 10.0.0.1,192.168.1.254 and 2001:db8::1 / fe80::1. Not 999.1.1.1 nor 12:30:45.',
  `Bearer ${JWT} then token=ghp_a1B2a1B2a1B2a1B2a1B2a1B2a1B2a1B2a1B2 and https://admin:hunter22@example.com/x`,
  `key:\n${PEM}\nafter key; lone header -----BEGIN PRIVATE KEY----- without end`,
  'tail-ends-with-partial 4111 1111',
].join('\n');

/** Independent reference: leftmost match, then longest, then detector order; no caching, no windows. */
function referenceMask(text: string, detectors: readonly Detector[]): string {
  let pos = 0;
  let out = '';
  for (;;) {
    let best: { start: number; end: number; id: string } | undefined;
    for (const d of detectors) {
      const re = new RegExp(d.candidate.source, d.candidate.flags);
      re.lastIndex = pos;
      let m: RegExpExecArray | null;
      while ((m = re.exec(text))) {
        const v = d.validate(m[0], text.slice(Math.max(0, m.index - MAX_LOOKBEHIND), m.index));
        if (v) {
          const hit = { start: m.index + v.start, end: m.index + v.end, id: v.detector ?? d.id };
          if (!best || hit.start < best.start || (hit.start === best.start && hit.end - hit.start > best.end - best.start)) best = hit;
          break;
        }
        re.lastIndex = m.index + 1;
      }
    }
    if (!best) return out + text.slice(pos);
    out += `${text.slice(pos, best.start)}[REDACTED:${best.id}]`;
    pos = best.end;
  }
}

function runChunks(masker: StreamMasker, chunks: readonly string[], onPush?: (m: StreamMasker, emitted: string) => void): string {
  let out = '';
  for (const c of chunks) {
    const emitted = masker.push(c);
    out += emitted;
    onPush?.(masker, out);
  }
  return out + masker.end();
}

function splitAt(text: string, ...cuts: number[]): string[] {
  const points = [0, ...cuts, text.length];
  return points.slice(1).map((p, i) => text.slice(points[i], p));
}

describe('whole-text masking', () => {
  it('masks every detector kind and matches the independent reference', () => {
    const { text, findings } = maskText(MIXED, { profile });
    expect(text).toBe(referenceMask(MIXED, createDetectors()));
    for (const id of ['card', 'iban', 'ssn', 'email', 'phone', 'ipv4', 'ipv6', 'jwt', 'secret:github', 'secret:basicauth', 'private-key']) {
      expect(text, id).toContain(`[REDACTED:${id}]`);
    }
    expect(text).not.toContain('4111 1111 1111 1111 shipped');
    expect(text).toContain('000-12-3456');
    expect(text).toContain('version 1.2.3.4');
    expect(text).not.toContain('hunter22');
    expect(text).not.toContain('MIIBOgIBAAJBAKj34');
    expect(findings.toArray().find((f) => f.detector === 'card')?.count).toBe(3);
    expect(JSON.stringify(findings.toArray())).not.toMatch(/4111|hunter|ghp_/);
  });
});

describe('streaming equals whole-text masking', () => {
  const expected = maskText(MIXED, { profile }).text;

  it('for a split at every character boundary', () => {
    for (let cut = 0; cut <= MIXED.length; cut++) {
      const out = runChunks(createStreamMasker({ profile }), splitAt(MIXED, cut));
      if (out !== expected) expect.fail(`split at ${cut} differs`);
    }
  });

  it('for one character at a time, with hold-back bounded throughout', () => {
    const masker = createStreamMasker({ profile });
    let maxHeld = 0;
    const out = runChunks(masker, [...MIXED], (m) => {
      const { consumed, emittedInput } = m.stats;
      maxHeld = Math.max(maxHeld, consumed - emittedInput);
      expect(emittedInput).toBeGreaterThanOrEqual(consumed - m.maxHoldBack);
    });
    expect(out).toBe(expected);
    // The PEM block is the longest pending match; text after it flows with little delay.
    expect(maxHeld).toBeLessThanOrEqual(masker.maxHoldBack);
    expect(maxHeld).toBeGreaterThan(PEM.length - 1);
  });

  it('for 300 random chunkings', () => {
    const rnd = new SeededRandom(7);
    for (let run = 0; run < 300; run++) {
      const chunks: string[] = [];
      for (let i = 0; i < MIXED.length; ) {
        const n = rnd.int(1, run % 3 === 0 ? 4 : 200);
        chunks.push(MIXED.slice(i, i + n));
        i += n;
      }
      const out = runChunks(createStreamMasker({ profile }), chunks);
      if (out !== expected) expect.fail(`random chunking ${run} differs`);
    }
  });

  it('emits text without matches immediately, holding back only a possible match start', () => {
    const masker = createStreamMasker({ profile });
    expect(masker.push('Hello, this is plain prose. ')).toBe('Hello, this is plain prose. ');
    // "card 4111 11" could still become a card number: only that part is held.
    expect(masker.push('card 4111 11')).toBe('card ');
    expect(masker.push('11 1111 1111 and more')).toBe('');
    // Released once no detector (phone has the widest window here, 67) could still start at it.
    expect(masker.push(' words to pass the windows of the card and phone detectors, in plain prose. ')).toContain('[REDACTED:card] and more');
  });

  it('bounds output against input when nothing is masked (output so far ≥ input − maxHoldBack)', () => {
    const masker = createStreamMasker({ profile });
    const rnd = new SeededRandom(3);
    let out = '';
    let consumed = 0;
    for (let i = 0; i < 2000; i++) {
      const chunk = `${rnd.pick(['lorem', 'ipsum', 'dolor', 'sit', 'amet'])}${rnd.pick([' ', ', ', '. ', '\n'])}`;
      consumed += chunk.length;
      out += masker.push(chunk);
      expect(out.length).toBeGreaterThanOrEqual(consumed - masker.maxHoldBack);
    }
    expect(out + masker.end()).toHaveLength(consumed);
  });

  it('caps a private key block: no END within the cap masks header and body, hold-back stays bounded', () => {
    const body = 'A'.repeat(PRIVATE_KEY_BODY_CAP + 5000);
    const text = `x -----BEGIN PRIVATE KEY-----\n${body}\n-----END PRIVATE KEY----- y`;
    const masker = createStreamMasker({ profile });
    const out = runChunks(masker, text.match(/[\s\S]{1,333}/g) ?? [], (m) => {
      expect(m.stats.consumed - m.stats.emittedInput).toBeLessThanOrEqual(m.maxHoldBack);
    });
    expect(out).toBe(maskText(text, { profile }).text);
    expect(out.startsWith('x [REDACTED:private-key]')).toBe(true);
    expect(profile.maxHoldBack).toBeLessThan(PRIVATE_KEY_BODY_CAP + 1024);
  });

  it('never splits a surrogate pair across chunks', () => {
    const text = 'emoji 😀😀 and 𝔘 end';
    const masker = createStreamMasker({ profile });
    for (const unit of text.split('')) {
      const out = masker.push(unit);
      if (out.length > 0) expect(/[\uD800-\uDBFF]$/.test(out)).toBe(false);
    }
  });
});

describe('prefilter soundness: dense mixed text equals the reference', () => {
  // Corpus values (every detector and every hard negative) run together with separators that
  // glue, split or extend clusters and tokens: the prefilter lanes and the outranking shortcut
  // must never hide a candidate the plain regex scan of the reference finds.
  const samples = generateLabelledCorpus().samples;
  const rnd = new SeededRandom(99);
  const separators = [' ', '', '\n', ', ', '-', '.', '\t', '"', ' 12 ', 'x', '+', '(', ':', '@', 'GB', '--'];
  const texts = Array.from({ length: 40 }, () => {
    let text = '';
    while (text.length < 2500) text += renderSample(rnd.pick(samples)) + rnd.pick(separators);
    return text;
  });
  const detectors = createDetectors();

  it('for whole texts', () => {
    for (const [i, text] of texts.entries()) {
      if (maskText(text, { profile }).text !== referenceMask(text, detectors)) expect.fail(`text ${i} differs from the reference`);
    }
  });

  it('for random chunkings', () => {
    for (const [i, text] of texts.entries()) {
      const expected = maskText(text, { profile }).text;
      const chunks: string[] = [];
      for (let at = 0; at < text.length; ) {
        const n = rnd.int(1, i % 2 === 0 ? 7 : 300);
        chunks.push(text.slice(at, at + n));
        at += n;
      }
      if (runChunks(createStreamMasker({ profile }), chunks) !== expected) expect.fail(`chunking of text ${i} differs`);
    }
  });
});

describe('byte-level streaming', () => {
  const bytes = new TextEncoder().encode(MIXED);
  const expected = maskText(MIXED, { profile }).text;
  const decode = (parts: Uint8Array[]): string => new TextDecoder().decode(Buffer.concat(parts));

  it('gives the same output for a split at every byte boundary (mid-character included)', () => {
    for (let cut = 0; cut <= bytes.length; cut++) {
      const masker = createByteStreamMasker({ profile });
      const out = decode([masker.push(bytes.subarray(0, cut)), masker.push(bytes.subarray(cut)), masker.end()]);
      if (out !== expected) expect.fail(`byte split at ${cut} differs`);
    }
  });

  it('gives the same output one byte at a time', () => {
    const masker = createByteStreamMasker({ profile });
    const parts: Uint8Array[] = [];
    for (let i = 0; i < bytes.length; i++) parts.push(masker.push(bytes.subarray(i, i + 1)));
    parts.push(masker.end());
    expect(decode(parts)).toBe(expected);
  });
});

describe('memory', () => {
  // 50 MB through every detector: about 20 s on a quiet machine, minutes on a loaded one (what is
  // asserted is memory, never time).
  it('processes a 50 MB stream with bounded heap growth', { timeout: 300_000 }, () => {
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as () => void;
    const rnd = new SeededRandom(11);
    // 64 KiB chunks mixing prose, JSON-ish rows and sensitive values.
    const pieces = ['The quick brown fox jumps over the lazy dog. ', '{"id":12345,"email":"john.smith@example.com","ip":"10.1.2.3"} ', 'card 4111 1111 1111 1111 ', 'token ghp_a1B2a1B2a1B2a1B2a1B2a1B2a1B2a1B2a1B2 ', 'call +1 212 555 0123\n'];
    const chunkOf = (): string => {
      let s = '';
      while (s.length < 64 * 1024) s += rnd.pick(pieces);
      return s;
    };
    const chunks = Array.from({ length: 8 }, chunkOf);
    const total = 50 * 1024 * 1024;
    const masker = createStreamMasker({ profile });
    gc();
    const before = process.memoryUsage().heapUsed;
    let consumed = 0;
    let outputLength = 0;
    let peak = 0;
    for (let i = 0; consumed < total; i++) {
      const chunk = chunks[i % chunks.length] as string;
      consumed += chunk.length;
      outputLength += masker.push(chunk).length;
      if (i % 64 === 0) {
        gc();
        peak = Math.max(peak, process.memoryUsage().heapUsed - before);
      }
    }
    outputLength += masker.end().length;
    expect(consumed).toBeGreaterThanOrEqual(total);
    expect(outputLength).toBeGreaterThan(total / 2);
    expect(masker.findings().total).toBeGreaterThan(100_000);
    // Retaining the input would need ≥ 50 MB; the masker keeps one chunk plus its hold-back.
    expect(peak).toBeLessThan(16 * 1024 * 1024);
  });
});
