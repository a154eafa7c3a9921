import { describe, expect, it } from 'vitest';
import { isSecretKey, scrubText } from './index.js';

describe('isSecretKey', () => {
  it.each(['password', 'dbPassword', 'DB_PASSWORD', 'token', 'accessToken', 'Authorization', 'x-api-key', 'apiKey', 'Set-Cookie', 'connectionString', 'client_secret', 'privateKey', 'credentials'])(
    '%s is secret',
    (key) => expect(isSecretKey(key)).toBe(true),
  );
  it.each(['inputTokens', 'tokenCount', 'user', 'host', 'sessionId', 'secretRef'])('%s is not secret', (key) => expect(isSecretKey(key)).toBe(false));
});

describe('scrubText', () => {
  it('leaves ordinary text alone', () => {
    const text = 'session s-1 opened by agent-7 on postgres://db:5432/app (inputTokens=512)';
    expect(scrubText(text)).toBe(text);
  });
  it('replaces a truncated PEM private key to the end', () => {
    expect(scrubText('key: -----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIB')).toBe('key: [REDACTED PRIVATE KEY]');
  });
  it('replaces well-known API key shapes', () => {
    expect(scrubText('using sk-ant-api03-abcdefghijklmnopqrstuvwxyz012345 and AKIAABCDEFGHIJKLMNOP')).toBe('using [REDACTED] and [REDACTED]');
  });
});
