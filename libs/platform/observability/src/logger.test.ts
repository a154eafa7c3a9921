import { describe, expect, it } from 'vitest';
import { createLogger, type LogLevel } from './index.js';

/** Captures exactly the bytes the logger writes. */
function capture(level: LogLevel = 'trace') {
  const chunks: string[] = [];
  const logger = createLogger({ service: 'test', instance: 'i-1', level, destination: { write: (s: string) => void chunks.push(s) } });
  return {
    logger,
    bytes: () => chunks.join(''),
    lines: () => chunks.join('').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

const JWT = 'eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhZ2VudC0xIiwiaXNzIjoiaHR0cHM6Ly9pZHAifQ.c2lnbmF0dXJlLWJ5dGVzLWhlcmU';
const PASSWORD = 'pw-Zq8#no-leak-77';
const PEM = ['-----BEGIN PRIVATE KEY-----', 'MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj', '-----END PRIVATE KEY-----'].join('\n');
const PEM_BODY = 'MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj';

describe('createLogger', () => {
  it('writes one JSON object per line with service, instance, level label and message', () => {
    const { logger, lines } = capture();
    logger.info({ inputTokens: 42, stream: 'session-1' }, 'hello');
    expect(lines()).toEqual([
      expect.objectContaining({ service: 'test', instance: 'i-1', level: 'info', msg: 'hello', inputTokens: 42, stream: 'session-1', time: expect.any(String) }),
    ]);
  });

  it('respects the level', () => {
    const { logger, lines } = capture('warn');
    logger.info('quiet');
    logger.warn('loud');
    expect(lines().map((l) => l.msg)).toEqual(['loud']);
  });

  it('redacts secret-named keys at any depth, in any case or spelling', () => {
    const { logger, bytes, lines } = capture();
    const fields = {
      password: PASSWORD,
      request: { headers: { Authorization: `Bearer ${PASSWORD}`, 'x-api-key': PASSWORD, cookie: `sid=${PASSWORD}` } },
      a: { b: { c: { d: { e: { dbPassword: PASSWORD, connectionString: `esdb://admin:${PASSWORD}@db:2113`, clientSecret: PASSWORD } } } } },
      list: [{ token: PASSWORD }, { privateKey: PASSWORD }],
    };
    logger.info(fields, 'request received');
    expect(bytes()).not.toContain(PASSWORD);
    const [line] = lines();
    expect(line?.password).toBe('[REDACTED]');
    expect(line).toMatchObject({ a: { b: { c: { d: { e: { dbPassword: '[REDACTED]', connectionString: '[REDACTED]' } } } } }, list: [{ token: '[REDACTED]' }, {}] });
    // The caller's object is untouched.
    expect(fields.a.b.c.d.e.dbPassword).toBe(PASSWORD);
  });

  it('scrubs bearer tokens, JWTs, URL passwords and PEM private keys out of messages and free-text fields', () => {
    const { logger, bytes } = capture();
    logger.info(`upstream said: Authorization: Bearer ${JWT}`);
    logger.info({ note: `token is ${JWT}`, header: `Basic ${Buffer.from(`admin:${PASSWORD}`).toString('base64')}` }, 'headers');
    logger.info('connecting to %s', `postgres://custodian:${PASSWORD}@db:5432/app`);
    logger.warn({ detail: `key material follows ${PEM}` }, 'loaded key');
    logger.info(`config: password=${PASSWORD} and api_key: "${PASSWORD}"`);
    const out = bytes();
    for (const secret of [JWT, PASSWORD, PEM_BODY, Buffer.from(`admin:${PASSWORD}`).toString('base64'), JWT.split('.')[1]!]) {
      expect(out).not.toContain(secret);
    }
    expect(out).toContain('postgres://custodian:[REDACTED]@db:5432/app');
    expect(out).toContain('[REDACTED PRIVATE KEY]');
  });

  it('scrubs errors: message, stack, own fields and cause', () => {
    const { logger, bytes, lines } = capture();
    const cause = new Error(`auth failed for Bearer ${PASSWORD}`);
    const err = Object.assign(new Error(`cannot connect to esdb://admin:${PASSWORD}@db:2113`, { cause }), { code: 'ECONNREFUSED', password: PASSWORD });
    logger.error(err);
    logger.error({ err }, 'store unreachable');
    expect(bytes()).not.toContain(PASSWORD);
    const [first, second] = lines();
    expect(first).toMatchObject({ err: { type: 'Error', code: 'ECONNREFUSED', password: '[REDACTED]' } });
    expect(String(first?.msg)).toContain('esdb://admin:[REDACTED]@db:2113');
    expect(second).toMatchObject({ msg: 'store unreachable', err: { code: 'ECONNREFUSED' } });
  });

  it('scrubs child logger bindings', () => {
    const { logger, bytes, lines } = capture();
    logger.child({ session: 's-1', accessToken: PASSWORD }).info('child line');
    expect(bytes()).not.toContain(PASSWORD);
    expect(lines()[0]).toMatchObject({ session: 's-1', msg: 'child line' });
  });

  it('survives cycles', () => {
    const { logger, lines } = capture();
    const a: Record<string, unknown> = { name: 'a' };
    a.self = a;
    logger.info({ a }, 'cyclic');
    expect(lines()[0]).toMatchObject({ a: { name: 'a', self: '[Circular]' } });
  });
});
