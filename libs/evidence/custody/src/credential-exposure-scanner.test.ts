import { randomBytes } from 'node:crypto';
import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { CredentialExposureScanner } from './credential-exposure-scanner.js';
import { CustodyError } from './errors.js';
import { alignedBase64, exposureNeedles } from './exposure-needles.js';

const SECRET = Buffer.from('s3cr3t+/pa ss~wörd"\\!(', 'utf8');
const filler = (n: number, seed = 1): Buffer => {
  // Printable bytes that cannot form the secret (no 's', digits or symbols used by it).
  const alphabet = Buffer.from('ABCDEFGHIJKLMNOPQRabcdefghijklmnopqr');
  return Buffer.from(Array.from({ length: n }, (_, i) => alphabet[(i * 7 + seed) % alphabet.length]!));
};

/** Every byte but RFC 3986 unreserved ones percent-encoded. */
const rfc3986 = (s: Buffer): string => encodeURIComponent(s.toString('utf8')).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

function scanOnce(data: Uint8Array, secret: Uint8Array = SECRET) {
  const scanner = new CredentialExposureScanner([secret]);
  scanner.scanClientBytes(data);
  return scanner.finish();
}

describe('CredentialExposureScanner: encodings', () => {
  const cases: [string, (s: Buffer) => Buffer, string][] = [
    ['raw', (s) => s, 'raw'],
    ['hex lower', (s) => Buffer.from(s.toString('hex')), 'hex-lower'],
    ['hex upper', (s) => Buffer.from(s.toString('hex').toUpperCase()), 'hex-upper'],
    ['percent-encoded (RFC 3986, upper hex)', (s) => Buffer.from(rfc3986(s)), 'percent-upper'],
    ['percent-encoded (lower hex)', (s) => Buffer.from(rfc3986(s).replace(/%[0-9A-F]{2}/g, (m) => m.toLowerCase())), 'percent-lower'],
    ['encodeURIComponent', (s) => Buffer.from(encodeURIComponent(s.toString('utf8'))), 'uri-component'],
    ['form-urlencoded (URLSearchParams)', (s) => Buffer.from(new URLSearchParams({ p: s.toString('utf8') }).toString().slice(2)), 'form-urlencoded'],
    ['a JSON string', (s) => Buffer.from(JSON.stringify({ password: s.toString('utf8') })), 'json'],
    ['a JSON string with \\u escapes', (s) => Buffer.from(`{"p":"${JSON.stringify(s.toString('utf8')).slice(1, -1).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)}"}`), 'json-ascii'],
  ];
  it.each(cases)('finds the secret %s', (_name, encode, encoding) => {
    const data = Buffer.concat([filler(37), encode(SECRET), filler(23)]);
    const result = scanOnce(data);
    expect(result.exposed).toBe(true);
    expect(result.detections.map((d) => d.encoding)).toContain(encoding);
    expect(result.detections.find((d) => d.encoding === encoding)!.offset).toBeGreaterThanOrEqual(37);
  });

  it.each([0, 1, 2])('finds the secret base64-encoded at offset %i mod 3, standard and URL-safe', (offset) => {
    for (const secret of [SECRET, randomBytes(24), randomBytes(31)]) {
      const plain = Buffer.concat([randomBytes(offset), secret, randomBytes(5)]);
      for (const [text, encoding] of [
        [plain.toString('base64'), 'base64'],
        [plain.toString('base64url'), 'base64url'],
      ] as const) {
        const result = scanOnce(Buffer.from(`data: ${text} end`), secret);
        const hit = result.detections.find((d) => d.alignment === offset && (d.encoding === encoding || d.encoding === 'base64'));
        expect(hit, `${encoding} at offset ${offset}`).toBeDefined();
      }
    }
  });

  it('trims base64 to the characters the secret alone determines', () => {
    const secret = Buffer.from('0123456789');
    expect(alignedBase64(secret, 0)).toBe(secret.toString('base64').slice(0, Math.floor(80 / 6)));
    for (const alignment of [0, 1, 2] as const) {
      const needle = alignedBase64(secret, alignment);
      // Whatever bytes surround the secret, the trimmed needle appears in the encoding.
      for (let i = 0; i < 20; i++) expect(Buffer.concat([randomBytes(alignment + 3 * i), secret, randomBytes(i % 3)]).toString('base64')).toContain(needle);
    }
  });

  it('finds the secret in an event (a base64 frame, a JSON field)', () => {
    const scanner = new CredentialExposureScanner([SECRET]);
    scanner.scanEvent(JSON.stringify({ type: 'session.opened', payload: { sessionId: 'x' } }));
    scanner.scanEvent(Buffer.from(JSON.stringify({ type: 'frame.recorded', payload: { data: Buffer.concat([Buffer.from('DataRow'), SECRET]).toString('base64') } })));
    scanner.scanEvent(JSON.stringify({ type: 'command.issued', payload: { text: `ALTER USER app PASSWORD '${SECRET.toString('utf8')}'` } }));
    const result = scanner.finish();
    expect(result.eventsScanned).toBe(3);
    expect(result.exposed).toBe(true);
    expect(result.detections.filter((d) => d.where === 'events').map((d) => [d.event, d.encoding])).toEqual(expect.arrayContaining([[1, 'base64'], [2, 'json']]));
    expect(result.detections.some((d) => d.event === 0)).toBe(false);
    expect(result.clientBytes.length).toBe(0);
  });
});

describe('CredentialExposureScanner: streaming', () => {
  it('finds a needle split across two chunks at every position, with the right offset, once', () => {
    const scanner0 = new CredentialExposureScanner([SECRET]);
    const needles = exposureNeedles([SECRET]);
    for (const needle of needles) {
      const data = Buffer.concat([filler(11), needle.bytes, filler(13)]);
      for (let cut = 0; cut <= data.length; cut++) {
        const scanner = new CredentialExposureScanner([SECRET]);
        scanner.scanClientBytes(data.subarray(0, cut));
        scanner.scanClientBytes(data.subarray(cut));
        const result = scanner.finish();
        const own = result.detections.filter((d) => d.encoding === needle.encoding && d.offset === 11);
        expect(own, `${needle.encoding} cut at ${cut}`).toHaveLength(1);
        expect(result.clientBytes.length).toBe(data.length);
      }
    }
    expect(scanner0.maxNeedleBytes).toBe(Math.max(...needles.map((n) => n.bytes.length)));
  });

  it('finds a needle fed one byte at a time, and the digest is the stream\'s', async () => {
    const { createHash } = await import('node:crypto');
    const data = Buffer.concat([filler(50), Buffer.from(SECRET.toString('hex')), filler(50), SECRET]);
    const scanner = new CredentialExposureScanner([SECRET]);
    for (const byte of data) scanner.scanClientBytes(Buffer.from([byte]));
    const result = scanner.finish();
    expect(result.detections.map((d) => [d.encoding, d.offset])).toEqual([
      ['hex-lower', 50],
      ['raw', 50 + SECRET.length * 2 + 50],
    ]);
    expect(result.clientBytes).toEqual({ sha256: createHash('sha256').update(data).digest('hex'), length: data.length });
  });

  it('retains at most (longest needle − 1) bytes between chunks, whatever the chunk sizes', () => {
    const scanner = new CredentialExposureScanner([SECRET]);
    let max = 0;
    for (const size of [1, 5, 1000, 3, 65_536, 2, 70, 1]) {
      scanner.scanClientBytes(filler(size, size));
      max = Math.max(max, scanner.retainedBytes);
      expect(scanner.retainedBytes).toBeLessThan(scanner.maxNeedleBytes);
    }
    expect(max).toBe(scanner.maxNeedleBytes - 1);
  });

  it('does not keep the caller\'s chunk alive (the tail is a copy)', () => {
    const scanner = new CredentialExposureScanner([SECRET]);
    const chunk = filler(1 << 20);
    scanner.scanClientBytes(chunk);
    chunk.fill(0x73); // rewriting the caller's buffer must not change what the scanner holds
    scanner.scanClientBytes(Buffer.from(SECRET.subarray(1)));
    expect(scanner.finish().exposed).toBe(false);
  });

  it('reports no exposure on unrelated data: random bytes, text, base64 and hex of other secrets', () => {
    const secret = randomBytes(32);
    const scanner = new CredentialExposureScanner([secret]);
    for (let i = 0; i < 64; i++) {
      const other = randomBytes(4096);
      scanner.scanClientBytes(other);
      scanner.scanClientBytes(Buffer.from(other.toString('base64')));
      scanner.scanClientBytes(Buffer.from(other.toString('hex')));
      scanner.scanEvent(JSON.stringify({ data: other.toString('base64url') }));
    }
    const result = scanner.finish();
    expect(result.exposed).toBe(false);
    expect(result.detections).toEqual([]);
    expect(result.detectionCount.total).toBe(0);
    expect(result.clientBytes.length).toBe(64 * (4096 + 5464 + 8192));
  });

  it('counts every detection but keeps a bounded list', () => {
    const scanner = new CredentialExposureScanner([SECRET], { maxDetections: 3 });
    for (let i = 0; i < 10; i++) scanner.scanClientBytes(Buffer.concat([filler(5), SECRET]));
    const result = scanner.finish();
    expect(result.detections).toHaveLength(3);
    expect(result.detectionCount).toEqual({ total: 10, clientBytes: 10, events: 0 });
  });
});

describe('CredentialExposureScanner: secrets', () => {
  it('refuses an empty secret, no secret, or one over 16 KiB, with a typed error', () => {
    for (const secrets of [[Buffer.alloc(0)], [], [Buffer.alloc(16 * 1024 + 1, 1)]]) {
      let error: unknown;
      try {
        new CredentialExposureScanner(secrets);
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(CustodyError);
      expect((error as CustodyError).code).toBe('CUSTODY_SECRET_INVALID');
    }
  });

  it('scans a short secret raw, flags it, and skips encodings too short to mean anything', () => {
    const short = Buffer.from('pw1');
    const needles = exposureNeedles([short]);
    expect(needles.map((n) => n.encoding)).toEqual(['raw']);
    const scanner = new CredentialExposureScanner([short]);
    scanner.scanClientBytes(Buffer.from('xx pw1 yy'));
    const result = scanner.finish();
    expect(result).toMatchObject({ exposed: true, shortSecret: true });
    expect(new CredentialExposureScanner([Buffer.from('longer-secret')]).result().shortSecret).toBe(false);
  });

  it('never shows the secret: not in JSON, inspect, results, or errors; finish() wipes it', () => {
    const scanner = new CredentialExposureScanner([SECRET]);
    scanner.scanClientBytes(Buffer.concat([filler(3), SECRET]));
    const shown = [JSON.stringify(scanner), inspect(scanner, { showHidden: true, depth: 10 }), JSON.stringify(scanner.result())];
    for (const text of shown) {
      expect(text).not.toContain('s3cr3t');
      expect(text).not.toContain(SECRET.toString('hex'));
    }
    scanner.finish();
    expect(() => scanner.scanClientBytes(Buffer.from('x'))).toThrow(expect.objectContaining({ code: 'CUSTODY_SCANNER_FINISHED' }));
  });

  it('looks for several secrets and says which matched', () => {
    const scanner = new CredentialExposureScanner([Buffer.from('first-secret-value'), Buffer.from('second-secret-value')]);
    scanner.scanClientBytes(Buffer.from('... second-secret-value ...'));
    expect(scanner.finish().detections).toEqual([{ where: 'client-bytes', encoding: 'raw', offset: 4, secret: 1 }]);
  });
});
