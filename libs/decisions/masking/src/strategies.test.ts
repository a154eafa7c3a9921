import { randomBytes } from 'node:crypto';
import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { base32, compileStrategy, HmacTokenizer } from './strategies.js';
import { DetectionProfile, maskText } from './text-masker.js';

const key = Buffer.from('0123456789abcdef0123456789abcdef');

describe('hmac tokenization', () => {
  it('is deterministic for one key and formats tok_<16 base32 chars>', () => {
    const a = new HmacTokenizer(key).tokenize('john@example.com');
    expect(a).toMatch(/^tok_[a-z2-7]{16}$/);
    expect(new HmacTokenizer(Buffer.from(key)).tokenize('john@example.com')).toBe(a);
  });

  it('separates keys: the same value under another key gives an unrelated token', () => {
    const other = new HmacTokenizer(randomBytes(32));
    expect(other.tokenize('john@example.com')).not.toBe(new HmacTokenizer(key).tokenize('john@example.com'));
  });

  it('joins formatting variants through detector normalisation', () => {
    const profile = new DetectionProfile({ strategy: { kind: 'hmac' }, hmacKey: key });
    const a = maskText('card 4111 1111 1111 1111', { profile }).text;
    const b = maskText('card 4111-1111-1111-1111', { profile }).text;
    expect(a).toBe(b);
    expect(a).toMatch(/^card tok_[a-z2-7]{16}$/);
  });

  it('refuses short keys and never exposes the key', () => {
    expect(() => new HmacTokenizer(Buffer.from('short'))).toThrow(expect.objectContaining({ code: 'MASKING_INVALID_KEY' }));
    expect(() => compileStrategy({ kind: 'hmac' })).toThrow(expect.objectContaining({ code: 'MASKING_INVALID_KEY' }));
    const t = new HmacTokenizer(key);
    expect(JSON.stringify({ t })).not.toContain('0123456789abcdef');
    expect(inspect(t, { showHidden: true, depth: 5 })).not.toContain('0123456789abcdef');
  });

  it('encodes RFC 4648 base32 test vectors', () => {
    expect(base32(Buffer.from('foobar'))).toBe('mzxw6ytboi');
    expect(base32(Buffer.from('f'))).toBe('my');
  });
});

describe('redact and partial', () => {
  it('redacts with the detector id or a fixed label', () => {
    expect(compileStrategy({ kind: 'redact' })('x', { label: 'card' })).toBe('[REDACTED:card]');
    expect(compileStrategy({ kind: 'redact', label: 'pii' })('x', { label: 'card' })).toBe('[REDACTED:pii]');
  });

  it('keeps the last four (and optionally first) characters, preserving separators', () => {
    const partial = compileStrategy({ kind: 'partial' });
    expect(partial('4111 1111 1111 1234', { label: 'card' })).toBe('**** **** **** 1234');
    expect(compileStrategy({ kind: 'partial', keepFirst: 1, keepLast: 0 })('john@example.com', { label: 'email' })).toBe('j***@*******.***');
    // Too short to reveal anything: masked fully.
    expect(partial('12-34', { label: 'x' })).toBe('**-**');
  });
});
