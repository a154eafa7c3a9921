import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, type LoadedConfig } from '@custodian/runtime-config';
import { NO_ISSUER_NOTICE, configuredIdentity } from './configured-identity.js';

const dir = mkdtempSync(join(tmpdir(), 'custodian-identity-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function load(identity: unknown): LoadedConfig {
  const file = join(dir, `custodian-${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(file, JSON.stringify({ identity }));
  return loadConfig({ file, env: {}, cwd: dir });
}

function configError(build: () => unknown): ConfigError {
  try {
    build();
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

const issuer = { issuer: 'https://idp.example.com', audiences: ['https://api.custodian.example'] };
const login = { issuer: 'https://idp.example.com', clientId: 'custodian-api', redirectUri: 'https://custodian.example/auth/callback' };

describe('configuredIdentity', () => {
  it('with no issuer: no verifier, no login (even if configured), and a notice that everything is refused', () => {
    const identity = configuredIdentity(load({ login }));
    expect(identity.verifier).toBeUndefined();
    expect(identity.login).toBeUndefined();
    expect(identity.issuers).toEqual([]);
    expect(identity.notices).toEqual([NO_ISSUER_NOTICE]);
  });

  it('builds the verifier and the login client; the client secret is resolved from its reference', () => {
    const identity = configuredIdentity(load({ issuers: [issuer], login: { ...login, clientSecret: { fromEnv: 'TEST_LOGIN_SECRET' } } }), { env: { TEST_LOGIN_SECRET: 's3cret-value' } });
    expect(identity.verifier).toBeDefined();
    expect(identity.issuers).toEqual(['https://idp.example.com']);
    expect(identity.login).toMatchObject({ redirectUri: login.redirectUri, loginTtlMs: 600_000 });
    expect(identity.notices).toEqual([]);
  });

  it('an unresolvable client secret is a ConfigError naming the variable, not a value', () => {
    const error = configError(() => configuredIdentity(load({ issuers: [issuer], login: { ...login, clientSecret: { fromEnv: 'MISSING_LOGIN_SECRET' } } }), { env: {} }));
    expect(error.code).toBe('CONFIG_SECRET_UNRESOLVED');
    expect(error.message).toContain('MISSING_LOGIN_SECRET');
  });

  it('token introspection: the client secret is a reference checked at start-up; unresolvable, a ConfigError naming the key and variable', () => {
    const introspection = { clientId: 'custodian-gateway', clientSecret: { fromEnv: 'TEST_INTROSPECTION_SECRET' }, recheckIntervalSeconds: 30 };
    const identity = configuredIdentity(load({ issuers: [{ ...issuer, introspection }] }), { env: { TEST_INTROSPECTION_SECRET: 'introspect-value' } });
    expect(identity.verifier?.stillActive).toBeTypeOf('function');
    const error = configError(() => configuredIdentity(load({ issuers: [{ ...issuer, introspection }] }), { env: {} }));
    expect(error.code).toBe('CONFIG_SECRET_UNRESOLVED');
    expect(error.message).toContain('identity.issuers[0].introspection.clientSecret');
    expect(error.message).toContain('TEST_INTROSPECTION_SECRET');
    const inline = configError(() => configuredIdentity(load({ issuers: [{ ...issuer, introspection: { ...introspection, clientSecret: 'inline-secret' } }] })));
    expect(inline.message).not.toContain('inline-secret');
  });

  it('an issuer the identity policy refuses (plain http off loopback) is a ConfigError', () => {
    const error = configError(() => configuredIdentity(load({ issuers: [{ ...issuer, issuer: 'http://idp.example.com' }] })));
    expect(error.code).toBe('CONFIG_INVALID');
    expect(error.message).toMatch(/^identity\.issuers: /);
  });

  it('notices a redirect URI that does not point at /auth/callback', () => {
    const identity = configuredIdentity(load({ issuers: [issuer], login: { ...login, redirectUri: 'https://custodian.example/callback' } }));
    expect(identity.notices).toEqual([expect.stringContaining('/auth/callback')]);
  });
});
