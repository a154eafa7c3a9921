import { describe, expect, it } from 'vitest';
import type { PostgresConnection } from './gateway-options.js';
import { sessionApplicationName, upstreamTargetFor } from './postgres-gateway.js';

const SESSION = '0190c1d2-0000-7000-8000-000000000001';

describe('sessionApplicationName', () => {
  it('is custodian/<session id>, then the client’s name as far as 63 bytes allow, cut at a character boundary', () => {
    expect(sessionApplicationName(SESSION)).toBe(`custodian/${SESSION}`);
    expect(sessionApplicationName(SESSION, '')).toBe(`custodian/${SESSION}`);
    expect(sessionApplicationName(SESSION, 'psql')).toBe(`custodian/${SESSION}/psql`);
    const long = sessionApplicationName(SESSION, 'a-very-long-client-application-name');
    expect(Buffer.byteLength(long)).toBe(63);
    expect(long).toBe(`custodian/${SESSION}/a-very-long-clie`);
    // 15 ASCII bytes left after the prefix and '/'… then a 3-byte character that no longer fits.
    const multibyte = sessionApplicationName(SESSION, `${'x'.repeat(15)}€€`);
    expect(multibyte).toBe(`custodian/${SESSION}/${'x'.repeat(15)}`);
    expect(Buffer.byteLength(multibyte)).toBeLessThanOrEqual(63);
  });
});

describe('upstreamTargetFor', () => {
  const connection: PostgresConnection = {
    name: 'orders',
    upstream: { host: 'db', port: 5432, database: 'orders', user: 'shared', password: () => 'shared-secret', credentialRef: 'env:SHARED', tls: { mode: 'disable' } },
    roles: [
      { subjects: ['agent-7'], user: 'agent7_role', password: () => 'a7', credentialRef: 'env:AGENT7' },
      { groups: ['analysts'], user: 'analyst_role', password: () => 'an', credentialRef: 'env:ANALYSTS' },
    ],
  };

  it('takes the first mapping naming the subject or one of the groups, else the connection’s own login', () => {
    expect(upstreamTargetFor(connection, 'agent-7', ['analysts'])).toMatchObject({ user: 'agent7_role', credentialRef: 'env:AGENT7', host: 'db' });
    expect(upstreamTargetFor(connection, 'agent-8', ['analysts'])).toMatchObject({ user: 'analyst_role', credentialRef: 'env:ANALYSTS' });
    expect(upstreamTargetFor(connection, 'agent-9', ['marketing'])).toBe(connection.upstream);
    expect(upstreamTargetFor({ name: 'plain', upstream: connection.upstream }, 'agent-7', [])).toBe(connection.upstream);
  });
});
