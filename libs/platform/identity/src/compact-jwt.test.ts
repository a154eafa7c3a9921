import { describe, expect, it } from 'vitest';
import { decodeUnverifiedJwt } from './compact-jwt.js';
import { IdentityError } from './identity-error.js';

const b64 = (value: unknown) => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');
const payload = b64({ iss: 'https://idp.example.com', sub: 'x' });

function codeOf(token: unknown, max?: number): string {
  try {
    decodeUnverifiedJwt(token, max);
    return 'NO_ERROR';
  } catch (error) {
    if (error instanceof IdentityError) return error.code;
    throw error;
  }
}

describe('decodeUnverifiedJwt', () => {
  it('decodes header and claims of a compact JWS', () => {
    const decoded = decodeUnverifiedJwt(`${b64({ alg: 'RS256', kid: 'k' })}.${payload}.c2ln`);
    expect(decoded.header).toEqual({ alg: 'RS256', kid: 'k' });
    expect(decoded.claims['iss']).toBe('https://idp.example.com');
  });

  it.each([
    ['empty', ''],
    ['not a string', 42],
    ['one segment', 'abc'],
    ['two segments', 'abc.def'],
    ['four segments', 'a.b.c.d'],
    ['dots only', '..'],
    ['bearer prefix', `Bearer ${b64({ alg: 'RS256' })}.${payload}.c2ln`],
    ['header not base64url', `@@@.${payload}.c2ln`],
    ['header not JSON', `${b64('not json')}.${payload}.c2ln`],
    ['header an array', `${b64([1])}.${payload}.c2ln`],
    ['header without alg', `${b64({ typ: 'JWT' })}.${payload}.c2ln`],
    ['payload not JSON', `${b64({ alg: 'RS256' })}.${b64('x')}.c2ln`],
    ['payload null', `${b64({ alg: 'RS256' })}.${b64('null')}.c2ln`],
    ['no signature', `${b64({ alg: 'RS256' })}.${payload}.`],
    ['kid not a string', `${b64({ alg: 'RS256', kid: 1 })}.${payload}.c2ln`],
    ['unencoded payload', `${b64({ alg: 'RS256', b64: false, crit: ['b64'] })}.${payload}.c2ln`],
    ['JWE', 'a.b.c.d.e'],
    ['unicode', 'ťóķéñ.ťóķéñ.ťóķéñ'],
  ])('refuses %s as TOKEN_MALFORMED', (_name, token) => {
    expect(codeOf(token)).toBe('TOKEN_MALFORMED');
  });

  it.each(['none', 'NONE', 'None'])('refuses alg %s as TOKEN_ALG_NOT_ALLOWED', (alg) => {
    expect(codeOf(`${b64({ alg })}.${payload}.c2ln`)).toBe('TOKEN_ALG_NOT_ALLOWED');
    expect(codeOf(`${b64({ alg })}.${payload}.`)).toBe('TOKEN_ALG_NOT_ALLOWED');
  });

  it('refuses oversized input before parsing it', () => {
    expect(codeOf(`${b64({ alg: 'RS256' })}.${'A'.repeat(16 * 1024)}.c2ln`)).toBe('TOKEN_TOO_LARGE');
    expect(codeOf('x'.repeat(17_000))).toBe('TOKEN_TOO_LARGE');
    expect(codeOf(`${b64({ alg: 'RS256' })}.${payload}.c2ln`, 10)).toBe('TOKEN_TOO_LARGE');
  });
});
