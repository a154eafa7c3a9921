// The demo issuer's human login: authorization code + PKCE (S256) for the dashboard's public
// client, exact redirect URIs, one-time codes, human identities only.
import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeJwt } from 'jose';
import { DEMO_IDENTITIES } from './demo-environment.js';
import { DEMO_LOGIN_CLIENT_ID, startDevOidcIssuer, type DevOidcIssuer } from './dev-oidc-issuer.js';

const REDIRECT = 'http://127.0.0.1:7403/auth/callback';
let issuer: DevOidcIssuer;

beforeAll(async () => {
  issuer = await startDevOidcIssuer({ audience: 'urn:test', identities: DEMO_IDENTITIES });
  issuer.allowRedirectUri(REDIRECT);
});

afterAll(async () => {
  await issuer?.stop();
});

function authorization(overrides: Record<string, string> = {}): { params: URLSearchParams; verifier: string } {
  const verifier = randomBytes(32).toString('base64url');
  const params = new URLSearchParams({
    client_id: DEMO_LOGIN_CLIENT_ID,
    redirect_uri: REDIRECT,
    response_type: 'code',
    scope: 'openid',
    state: 'state-1',
    nonce: 'nonce-1',
    code_challenge: createHash('sha256').update(verifier).digest('base64url'),
    code_challenge_method: 'S256',
    ...overrides,
  });
  return { params, verifier };
}

async function codeFor(params: URLSearchParams, identity: string): Promise<Response> {
  return fetch(`${issuer.issuer}/authorize`, { method: 'POST', redirect: 'manual', body: new URLSearchParams([...params, ['identity', identity]]) });
}

function token(form: Record<string, string>): Promise<Response> {
  return fetch(`${issuer.issuer}/token`, { method: 'POST', body: new URLSearchParams({ grant_type: 'authorization_code', client_id: DEMO_LOGIN_CLIENT_ID, redirect_uri: REDIRECT, ...form }) });
}

describe('demo issuer: authorization code + PKCE', () => {
  it('shows one button per human identity and refuses requests it must not serve', async () => {
    const page = await fetch(`${issuer.issuer}/authorize?${authorization().params}`);
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toContain('Sign in as demo-approver');
    expect(html).toContain('Sign in as demo-auditor');
    expect(html).not.toContain('Sign in as demo-agent');
    const refusals: Record<string, string>[] = [{ redirect_uri: 'http://evil.example/cb' }, { client_id: 'other' }, { code_challenge_method: 'plain' }, { response_type: 'token' }];
    for (const bad of refusals) {
      const refused = await fetch(`${issuer.issuer}/authorize?${authorization(bad).params}`, { redirect: 'manual' });
      expect(refused.status, JSON.stringify(bad)).toBe(400);
    }
    expect((await codeFor(authorization().params, 'demo-agent')).status).toBe(400);
  });

  it('issues an ID token for the code once, and only with the right verifier', async () => {
    const { params, verifier } = authorization();
    const redirect = await codeFor(params, 'demo-approver');
    expect(redirect.status).toBe(302);
    const location = new URL(redirect.headers.get('location') ?? '');
    expect(`${location.origin}${location.pathname}`).toBe(REDIRECT);
    expect(location.searchParams.get('state')).toBe('state-1');
    const code = location.searchParams.get('code') ?? '';
    expect((await token({ code, code_verifier: randomBytes(32).toString('base64url') })).status).toBe(400);
    // A failed exchange spends the code too.
    expect((await token({ code, code_verifier: verifier })).status).toBe(400);

    const second = authorization();
    const code2 = new URL((await codeFor(second.params, 'demo-approver')).headers.get('location') ?? '').searchParams.get('code') ?? '';
    const ok = await token({ code: code2, code_verifier: second.verifier });
    expect(ok.status).toBe(200);
    const body = (await ok.json()) as { id_token: string; access_token: string };
    expect(decodeJwt(body.id_token)).toMatchObject({ iss: issuer.issuer, sub: 'demo-approver', aud: DEMO_LOGIN_CLIENT_ID, nonce: 'nonce-1', groups: ['demo-approvers'] });
    expect(decodeJwt(body.access_token)).toMatchObject({ sub: 'demo-approver', aud: 'urn:test', custodian_kind: 'human' });
    expect((await token({ code: code2, code_verifier: second.verifier })).status).toBe(400);
  });
});
