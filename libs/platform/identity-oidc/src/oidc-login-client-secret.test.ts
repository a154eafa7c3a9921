import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { OidcLoginClient } from './oidc-login-client.js';

describe('OidcLoginClient secret handling', () => {
  it('never reveals the client secret through JSON, inspection or enumeration', () => {
    const secret = 'client-secret-that-must-not-leak-7f3a';
    const client = new OidcLoginClient({
      issuer: 'http://127.0.0.1:9/issuer',
      clientId: 'dashboard',
      clientSecret: secret,
      redirectUri: 'http://127.0.0.1:7403/auth/callback',
      scope: 'openid',
    });
    expect(JSON.stringify(client)).not.toContain(secret);
    expect(inspect(client, { depth: 10, showHidden: true })).not.toContain(secret);
    expect(Object.values(client).map(String).join(' ')).not.toContain(secret);
  });
});
