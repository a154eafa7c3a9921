// Human login end to end against the real OIDC provider from the test harness: our client
// builds the authorization request; the provider's development login and consent pages are
// submitted over HTTP (standing in for the browser); our client completes the code exchange.
import { IdentityError, InMemoryHumanSessionStore, type IdentityErrorCode } from '@custodian/identity';
import { freePort, startOidcProvider, type StartedOidcProvider } from '@custodian/test-harness';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OidcAccessTokenVerifier } from './oidc-access-token-verifier.js';
import { OidcLoginClient, type OidcLoginClientOptions } from './oidc-login-client.js';

let idp: StartedOidcProvider;

beforeAll(async () => {
  idp = await startOidcProvider({ users: [{ subject: 'alice', groups: ['dba', 'oncall'] }, { subject: 'bob', groups: [] }] });
});
afterAll(async () => {
  await idp?.stop();
});

function loginClient(overrides: Partial<OidcLoginClientOptions> = {}): OidcLoginClient {
  return new OidcLoginClient({
    issuer: idp.issuer,
    clientId: idp.authorizationCodeClient.clientId,
    redirectUri: idp.authorizationCodeClient.redirectUri,
    scope: idp.authorizationCodeClient.scope,
    resource: idp.defaultAudience,
    ...overrides,
  });
}

/** Minimal browser: follows redirects with cookies and submits the dev login/consent forms. Returns the callback URL. */
async function actAsBrowser(authorizationUrl: URL, subject: string, redirectUri: string): Promise<URL> {
  const cookies = new Map<string, string>();
  let next: { url: string; init: RequestInit } = { url: authorizationUrl.toString(), init: { method: 'GET' } };
  for (let hop = 0; hop < 20; hop++) {
    const response = await fetch(next.url, {
      ...next.init,
      redirect: 'manual',
      headers: { ...(next.init.headers as Record<string, string> | undefined), cookie: [...cookies].map(([k, v]) => `${k}=${v}`).join('; ') },
    });
    for (const header of response.headers.getSetCookie()) {
      const pair = header.split(';')[0] ?? '';
      const eq = pair.indexOf('=');
      if (eq > 0) cookies.set(pair.slice(0, eq).trim(), pair.slice(eq + 1).trim());
    }
    const location = response.headers.get('location');
    if (response.status >= 300 && response.status < 400 && location) {
      const target = new URL(location, next.url);
      if (target.toString().startsWith(redirectUri)) return target;
      next = { url: target.toString(), init: { method: 'GET' } };
      continue;
    }
    const html = await response.text();
    const prompt = /name="prompt" value="(\w+)"/.exec(html)?.[1];
    if (response.status !== 200 || prompt === undefined) throw new Error(`login stopped at ${next.url} (${response.status})`);
    const form = new URLSearchParams({ prompt });
    if (prompt === 'login') {
      form.set('login', subject);
      form.set('password', 'unused-by-dev-interactions');
    }
    next = { url: next.url, init: { method: 'POST', body: form, headers: { 'content-type': 'application/x-www-form-urlencoded' } } };
  }
  throw new Error('login did not finish within 20 requests');
}

async function failureOf(promise: Promise<unknown>): Promise<IdentityError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(error instanceof IdentityError)) throw new Error(`expected an IdentityError, got ${String(error)}`);
  return error;
}
async function codeOf(promise: Promise<unknown>): Promise<IdentityErrorCode> {
  return (await failureOf(promise)).code;
}

describe('OidcLoginClient — authorization code + PKCE against the real provider', () => {
  it('logs a human in: identity from the verified ID token, kind human, into a server-side session', async () => {
    const client = loginClient();
    const started = await client.beginLogin({ returnTo: '/approvals' });
    const params = started.authorizationUrl.searchParams;
    expect(started.authorizationUrl.origin + started.authorizationUrl.pathname).toBe(idp.authorizationEndpoint);
    expect(params.get('response_type')).toBe('code');
    expect(params.get('code_challenge_method')).toBe('S256');
    expect(params.get('code_challenge')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(params.get('state')).toBe(started.state);
    expect(params.get('nonce')).toMatch(/^[A-Za-z0-9_-]{32}$/);
    expect(params.get('scope')?.split(' ')).toContain('openid');
    // The verifier never leaves the server.
    expect(started.authorizationUrl.toString()).not.toContain('code_verifier');

    const callback = await actAsBrowser(started.authorizationUrl, 'alice', idp.authorizationCodeClient.redirectUri);
    expect(callback.searchParams.get('code')).toBeTruthy();
    const login = await client.completeLogin(callback);
    expect(login.identity).toEqual({ subject: 'alice', issuer: idp.issuer, groups: ['dba', 'oncall'], kind: 'human' });
    expect(login.idToken).toMatchObject({ sub: 'alice', iss: idp.issuer, aud: [idp.authorizationCodeClient.clientId] });
    expect(login.expiresAt.getTime()).toBe(login.idToken.exp * 1000);
    expect(login.returnTo).toBe('/approvals');
    expect(JSON.stringify(login)).not.toMatch(/eyJ[A-Za-z0-9_-]+\.eyJ/);

    const sessions = new InMemoryHumanSessionStore();
    const session = await sessions.create(login.identity, login.expiresAt);
    expect((await sessions.get(session.id))?.identity.subject).toBe('alice');
    expect(client.pendingLogins).toBe(0);
  });

  it('refuses a replayed callback and a forged state (LOGIN_STATE_INVALID)', async () => {
    const client = loginClient();
    const started = await client.beginLogin();
    const callback = await actAsBrowser(started.authorizationUrl, 'alice', idp.authorizationCodeClient.redirectUri);
    expect((await client.completeLogin(callback)).identity.subject).toBe('alice');
    expect(await codeOf(client.completeLogin(callback))).toBe('LOGIN_STATE_INVALID');

    const forged = new URL(callback);
    forged.searchParams.set('state', 'attacker-chosen');
    expect(await codeOf(client.completeLogin(forged))).toBe('LOGIN_STATE_INVALID');
    const noState = new URL(callback);
    noState.searchParams.delete('state');
    expect(await codeOf(client.completeLogin(noState))).toBe('LOGIN_STATE_INVALID');
  });

  it("refuses a code injected into another login (PKCE binds the code to its verifier) — LOGIN_FAILED", async () => {
    const client = loginClient();
    const victim = await client.beginLogin();
    const attacker = await client.beginLogin();
    const attackerCallback = await actAsBrowser(attacker.authorizationUrl, 'bob', idp.authorizationCodeClient.redirectUri);
    const injected = new URL(attackerCallback);
    injected.searchParams.set('state', victim.state);
    const failure = await failureOf(client.completeLogin(injected));
    expect(failure.code).toBe('LOGIN_FAILED');
    expect(failure.message).toBe('the IdP refused the code exchange: invalid_grant');
  });

  it('turns an IdP error response (user denied) into LOGIN_FAILED', async () => {
    const client = loginClient();
    const started = await client.beginLogin();
    const denied = new URL(idp.authorizationCodeClient.redirectUri);
    denied.search = new URLSearchParams({ error: 'access_denied', state: started.state, iss: idp.issuer }).toString();
    const failure = await failureOf(client.completeLogin(denied));
    expect(failure.code).toBe('LOGIN_FAILED');
    expect(failure.message).toBe('the IdP refused the login: access_denied');
  });

  it('expires pending logins', async () => {
    let clock = Date.now();
    const client = loginClient({ now: () => clock, loginTtlMs: 60_000 });
    const started = await client.beginLogin();
    const callback = await actAsBrowser(started.authorizationUrl, 'alice', idp.authorizationCodeClient.redirectUri);
    clock += 61_000;
    expect(await codeOf(client.completeLogin(callback))).toBe('LOGIN_STATE_INVALID');
  });

  it('takes groups from the verified access token when the ID token has no groups claim', async () => {
    const verifier = new OidcAccessTokenVerifier({ issuers: [{ issuer: idp.issuer, audiences: [idp.defaultAudience] }] });
    const client = loginClient({ claims: { groupsClaim: 'realm_access.roles' }, accessTokenVerifier: verifier });
    const started = await client.beginLogin();
    const login = await client.completeLogin(await actAsBrowser(started.authorizationUrl, 'alice', idp.authorizationCodeClient.redirectUri));
    expect(login.identity).toEqual({ subject: 'alice', issuer: idp.issuer, groups: ['dba', 'oncall'], kind: 'human' });
  });

  it('fails closed with IDP_UNAVAILABLE when the IdP cannot be reached', async () => {
    const client = new OidcLoginClient({ issuer: `http://127.0.0.1:${await freePort()}`, clientId: 'custodian-cli', redirectUri: 'http://127.0.0.1/callback', httpTimeoutMs: 2_000 });
    expect(await codeOf(client.beginLogin())).toBe('IDP_UNAVAILABLE');
  });
});
