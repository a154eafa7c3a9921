// The API against the real OIDC provider of the test harness: bearer tokens from client
// credentials, refusals (each an authentication.failed event), and the full human login through
// the provider's login and consent pages back to /auth/callback.
import 'reflect-metadata';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventFactory, streamName, type CustodianEvent } from '@custodian/event-contracts';
import { SqliteEventStore } from '@custodian/event-store-sqlite';
import { createLogger } from '@custodian/observability';
import { startNestService, type RunningNestService } from '@custodian/observability/nest';
import { loadConfig } from '@custodian/runtime-config';
import { configuredIdentity } from '@custodian/service-host';
import { freePort, startOidcProvider, type StartedOidcProvider } from '@custodian/test-harness';
import { ApiModule, SESSION_COOKIE, type ApiErrorBody, type MeResponse, type StreamEventsResponse } from './index.js';
import { TestBrowser } from './testing/test-browser.js';

const dir = mkdtempSync(join(tmpdir(), 'custodian-api-'));
let idp: StartedOidcProvider;
let store: SqliteEventStore;
let service: RunningNestService;
let api: string;
let ciToken: string;
const sessionId = randomUUID();
const stream = streamName('session', sessionId);

beforeAll(async () => {
  idp = await startOidcProvider({
    clients: [{ clientId: 'ci-pipeline', kind: 'service', groups: ['ci'] }],
    users: [{ subject: 'alice', groups: ['dba', 'approvers'] }],
  });
  const port = await freePort();
  api = `http://127.0.0.1:${port}`;
  idp.registerPublicClient({ clientId: 'custodian-api', redirectUris: [`${api}/auth/callback`] });
  // JSON is YAML: the identity section exactly as an operator would write it.
  const configFile = join(dir, 'custodian.yaml');
  writeFileSync(
    configFile,
    JSON.stringify({
      dataDir: join(dir, 'data'),
      identity: {
        // No clock skew, so that a one-second token is expired a second later.
        issuers: [{ issuer: idp.issuer, audiences: [idp.defaultAudience], clockSkewSeconds: 0 }],
        login: { issuer: idp.issuer, clientId: 'custodian-api', redirectUri: `${api}/auth/callback`, scope: `openid ${idp.scopes.join(' ')}`, resource: idp.defaultAudience },
      },
    }),
  );
  const loaded = loadConfig({ file: configFile, env: {}, cwd: dir });
  store = await SqliteEventStore.open({ path: join(dir, 'events.sqlite') });
  const events = new EventFactory({ service: 'gateway', instance: 'test' });
  // The CI job's own session: a stream is read by its owner (or an auditor; streams.controller.int.test.ts).
  const identity = { subject: 'ci-pipeline', issuer: idp.issuer, groups: ['ci'], kind: 'service' as const };
  await store.append(
    stream,
    [events.create({ type: 'session.opened', stream, sequence: 0, identity, payload: { sessionId, connection: { name: 'orders', protocol: 'postgres' }, client: { address: '127.0.0.1:5000' } } })],
    { expectedRevision: 'no-stream' },
  );
  const logger = createLogger({ service: 'api', level: 'warn', destination: { write: () => undefined } });
  service = await startNestService({
    module: ApiModule.register({
      eventStore: store,
      logger,
      identity: configuredIdentity(loaded, { logger }),
      listenHost: '127.0.0.1',
      instance: 'api-test',
      version: { name: 'custodian', version: '9.9.9-test' },
      // Every refusal of this file must be its own event; rate limiting has its own test.
      failureEvents: { failuresPerClient: 10_000, failuresTotal: 10_000 },
    }),
    logger,
    listen: { host: '127.0.0.1', port },
    shutdownHooks: false,
  });
  ciToken = (await idp.issueToken({ clientId: 'ci-pipeline' })).accessToken;
});

afterAll(async () => {
  await service?.close();
  await store?.close();
  await idp?.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function authEvents(): Promise<CustodianEvent[]> {
  const found: CustodianEvent[] = [];
  for await (const recorded of store.readAll()) if (recorded.event.type.startsWith('authentication.')) found.push(recorded.event);
  return found;
}

/** Runs `action` and returns the authentication events it added. */
async function newAuthEvents(action: () => Promise<unknown>): Promise<CustodianEvent[]> {
  const before = new Set((await authEvents()).map((e) => e.id));
  await action();
  return (await authEvents()).filter((e) => !before.has(e.id));
}

async function expectRefused(response: Response, status: number, code: string): Promise<ApiErrorBody> {
  const text = await response.text();
  expect(response.status, text).toBe(status);
  const body = JSON.parse(text) as ApiErrorBody;
  expect(body.error.code).toBe(code);
  expect(typeof body.error.message).toBe('string');
  return body;
}

describe('bearer tokens (agents and CI through the same verification path)', () => {
  it('health stays unauthenticated', async () => {
    expect((await fetch(`${api}/health/live`)).status).toBe(200);
    expect((await fetch(`${api}/health/ready`)).status).toBe(200);
  });

  it('a client-credentials token reads /v1/version and its own session stream; authentication.succeeded recorded once per token', async () => {
    const added = await newAuthEvents(async () => {
      const version = await fetch(`${api}/v1/version`, { headers: { authorization: `Bearer ${ciToken}` } });
      expect(version.status).toBe(200);
      expect(await version.json()).toEqual({ name: 'custodian', version: '9.9.9-test', node: process.versions.node });
      const events = await fetch(`${api}/v1/streams/${encodeURIComponent(stream)}/events`, { headers: { authorization: `bearer ${ciToken}` } });
      expect(events.status).toBe(200);
      const body = (await events.json()) as StreamEventsResponse;
      expect(body.events).toHaveLength(1);
      expect(body.events[0]).toMatchObject({ revision: 0, position: expect.stringMatching(/^C\d+\/P\d+$/), event: { type: 'session.opened', stream, payload: { sessionId } } });
    });
    expect(added).toHaveLength(1);
    expect(added[0]).toMatchObject({
      type: 'authentication.succeeded',
      sequence: 0,
      stream: expect.stringMatching(/^auth-[0-9a-f-]{36}$/),
      identity: { subject: 'ci-pipeline', issuer: idp.issuer, groups: ['ci'], kind: 'service' },
      source: { service: 'api', instance: 'api-test' },
      payload: { method: 'oidc-client-credentials', clientAddress: expect.stringMatching(/^127\.0\.0\.1:\d+$/) },
    });
    expect(JSON.stringify(added)).not.toContain(ciToken);
  });

  it('/auth/me with a bearer token names the machine identity', async () => {
    const me = await fetch(`${api}/auth/me`, { headers: { authorization: `Bearer ${ciToken}` } });
    expect(me.status).toBe(200);
    expect(await me.json()).toMatchObject({ identity: { subject: 'ci-pipeline', issuer: idp.issuer, kind: 'service', groups: ['ci'] }, authenticatedBy: 'bearer' } satisfies Partial<MeResponse>);
  });

  it('bad paging parameters are 400 once authenticated', async () => {
    const auth = { headers: { authorization: `Bearer ${ciToken}` } };
    expect((await fetch(`${api}/v1/streams/${stream}/events?maxCount=-1`, auth)).status).toBe(400);
    expect((await fetch(`${api}/v1/streams/%24all/events`, auth)).status).toBe(400);
  });

  const refusals: { readonly name: string; readonly code: string; readonly authorization: () => Promise<string | undefined> }[] = [
    { name: 'no token', code: 'AUTHENTICATION_REQUIRED', authorization: async () => undefined },
    { name: 'garbage', code: 'TOKEN_MALFORMED', authorization: async () => 'Bearer not-a-jwt-but-secret-looking-0123456789' },
    { name: 'another scheme', code: 'AUTHENTICATION_SCHEME_UNSUPPORTED', authorization: async () => 'Basic YWxpY2U6aHVudGVyMg==' },
    {
      name: 'a tampered signature',
      code: 'TOKEN_SIGNATURE_INVALID',
      authorization: async () => {
        const [header, payload] = ciToken.split('.');
        return `Bearer ${header}.${payload}.${'A'.repeat(342)}`;
      },
    },
    {
      name: 'an expired token',
      code: 'TOKEN_EXPIRED',
      authorization: async () => {
        const { accessToken } = await idp.issueToken({ clientId: 'ci-pipeline', ttlSeconds: 1 });
        await new Promise((resolve) => setTimeout(resolve, 2_100));
        return `Bearer ${accessToken}`;
      },
    },
    {
      name: 'a token for another audience',
      code: 'TOKEN_AUDIENCE_INVALID',
      authorization: async () => `Bearer ${(await idp.issueToken({ clientId: 'ci-pipeline', audience: 'https://other-service.custodian.test' })).accessToken}`,
    },
  ];

  for (const refusal of refusals) {
    it(`${refusal.name} → 401 ${refusal.code}, WWW-Authenticate: Bearer, authentication.failed recorded, token never echoed`, async () => {
      const authorization = await refusal.authorization();
      const token = authorization?.split(' ')[1];
      let responseText = '';
      const added = await newAuthEvents(async () => {
        const response = await fetch(`${api}/v1/version`, { headers: authorization ? { authorization } : {} });
        expect(response.headers.get('www-authenticate')).toMatch(/^Bearer realm="custodian"/);
        responseText = JSON.stringify(await expectRefused(response, 401, refusal.code));
      });
      expect(added).toHaveLength(1);
      expect(added[0]).toMatchObject({
        type: 'authentication.failed',
        identity: null,
        payload: { method: 'oidc-access-token', reasonCode: refusal.code, clientAddress: expect.stringMatching(/^127\.0\.0\.1:\d+$/) },
      });
      if (token !== undefined) {
        expect(responseText).not.toContain(token);
        expect(JSON.stringify(added)).not.toContain(token);
        // Not even the signature or the payload segment.
        for (const segment of token.split('.').slice(1)) if (segment.length > 8) expect(JSON.stringify(added)).not.toContain(segment);
      }
    });
  }

  it('no spelling of a route gets past the guard (case, trailing slash, unknown routes)', async () => {
    await expectRefused(await fetch(`${api}/V1/VERSION`), 401, 'AUTHENTICATION_REQUIRED');
    await expectRefused(await fetch(`${api}/v1/version/`), 401, 'AUTHENTICATION_REQUIRED');
    await expectRefused(await fetch(`${api}/v1/streams/${stream}/events`), 401, 'AUTHENTICATION_REQUIRED');
  });
});

describe('human login (authorization code + PKCE, server-side session)', () => {
  const callbackPrefix = (): string => `${api}/auth/callback`;

  it('logs in through the provider, uses the session cookie, and logs out', async () => {
    const browser = new TestBrowser();
    const start = await browser.request(`${api}/auth/login?returnTo=${encodeURIComponent('/approvals?tab=pending')}`);
    expect(start.status).toBe(302);
    expect(`${start.location?.origin}${start.location?.pathname}`).toBe(idp.authorizationEndpoint);
    expect(start.location?.searchParams.get('code_challenge_method')).toBe('S256');
    expect(start.location?.searchParams.get('redirect_uri')).toBe(callbackPrefix());

    const callback = await browser.loginAtProvider(start.location!, 'alice', callbackPrefix());
    let landed!: Awaited<ReturnType<TestBrowser['request']>>;
    const added = await newAuthEvents(async () => {
      landed = await browser.request(callback);
    });
    expect(landed.status, landed.text).toBe(302);
    expect(landed.headers.get('location')).toBe('/approvals?tab=pending');
    const sessionCookie = browser.setCookieHeaders.find((h) => h.startsWith(`${SESSION_COOKIE}=`) && !/max-age=0\b/i.test(h));
    expect(sessionCookie).toMatch(/; Path=\/; HttpOnly; SameSite=Lax; Max-Age=\d+$/);
    expect(sessionCookie).not.toContain('Secure'); // plain http on loopback only
    expect(browser.cookies.get(SESSION_COOKIE)).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(added).toHaveLength(1);
    expect(added[0]).toMatchObject({
      type: 'authentication.succeeded',
      identity: { subject: 'alice', issuer: idp.issuer, groups: ['dba', 'approvers'], kind: 'human' },
      payload: { method: 'oidc-authorization-code' },
    });

    const me = await browser.request(`${api}/auth/me`);
    expect(me.status).toBe(200);
    const body = JSON.parse(me.text) as MeResponse;
    expect(body).toMatchObject({ identity: { subject: 'alice', issuer: idp.issuer, groups: ['dba', 'approvers'], kind: 'human' }, authenticatedBy: 'session' });
    expect(new Date(body.expiresAt).getTime()).toBeGreaterThan(Date.now());
    expect((await browser.request(`${api}/v1/version`)).status).toBe(200);

    // The callback cannot be replayed: its state was consumed (the login cookie is gone too, so put it back).
    const replay = new TestBrowser();
    replay.cookies.set('custodian_login', callback.searchParams.get('state')!);
    const replayed = await replay.request(callback);
    expect(replayed.status).toBe(401);
    expect(JSON.parse(replayed.text)).toMatchObject({ error: { code: 'LOGIN_STATE_INVALID' } });

    // Logout is same-origin only.
    await expectRefusedBrowser(await browser.request(`${api}/auth/logout`, { method: 'POST' }), 403, 'CSRF_CHECK_FAILED');
    await expectRefusedBrowser(await browser.request(`${api}/auth/logout`, { method: 'POST', headers: { origin: 'https://evil.example' } }), 403, 'CSRF_CHECK_FAILED');
    await expectRefusedBrowser(await browser.request(`${api}/auth/logout`, { method: 'POST', headers: { 'sec-fetch-site': 'cross-site', origin: api } }), 403, 'CSRF_CHECK_FAILED');
    const stolen = browser.cookies.get(SESSION_COOKIE)!;
    const logout = await browser.request(`${api}/auth/logout`, { method: 'POST', headers: { origin: api } });
    expect(logout.status).toBe(204);
    expect(browser.cookies.has(SESSION_COOKIE)).toBe(false);
    // The session is gone server-side, not just in this browser.
    const after = await fetch(`${api}/v1/version`, { headers: { cookie: `${SESSION_COOKIE}=${stolen}` } });
    expect(after.headers.get('www-authenticate')).toMatch(/^Bearer/);
    await expectRefused(after, 401, 'SESSION_INVALID');
  });

  it('refuses open redirects: returnTo must be a local path', async () => {
    for (const returnTo of ['https://evil.example/', '//evil.example/x', '/\\evil.example', '/\t/evil.example', 'javascript:alert(1)', 'approvals']) {
      const response = await fetch(`${api}/auth/login?returnTo=${encodeURIComponent(returnTo)}`, { redirect: 'manual' });
      expect(response.headers.get('location'), returnTo).toBeNull();
      await expectRefused(response, 400, 'RETURN_TO_INVALID');
    }
  });

  it('refuses a callback in a browser that did not start the login (login CSRF), and records it', async () => {
    const attacker = new TestBrowser();
    const start = await attacker.request(`${api}/auth/login`);
    const callback = await attacker.loginAtProvider(start.location!, 'alice', callbackPrefix());
    const victim = new TestBrowser();
    let response!: Awaited<ReturnType<TestBrowser['request']>>;
    const added = await newAuthEvents(async () => {
      response = await victim.request(callback);
    });
    expect(response.status).toBe(401);
    expect(JSON.parse(response.text)).toMatchObject({ error: { code: 'LOGIN_STATE_INVALID' } });
    expect(victim.cookies.has(SESSION_COOKIE)).toBe(false);
    expect(added).toMatchObject([{ type: 'authentication.failed', payload: { method: 'oidc-authorization-code', reasonCode: 'LOGIN_STATE_INVALID' } }]);
    // The attacker's own browser can still complete it (the state was not consumed by the refusal).
    expect((await attacker.request(callback)).status).toBe(302);
  });

  it('an IdP refusal (user denied consent) is 401 LOGIN_FAILED', async () => {
    const browser = new TestBrowser();
    const start = await browser.request(`${api}/auth/login`);
    const state = start.location!.searchParams.get('state')!;
    const denied = await browser.request(`${api}/auth/callback?error=access_denied&state=${state}&iss=${encodeURIComponent(idp.issuer)}`);
    expect(denied.status).toBe(401);
    expect(JSON.parse(denied.text)).toMatchObject({ error: { code: 'LOGIN_FAILED' } });
  });
});

describe('with the event store gone', () => {
  it('ready is 503 naming the check; a new token cannot be recorded, so it is refused (503)', async () => {
    const fresh = (await idp.issueToken({ clientId: 'ci-pipeline' })).accessToken;
    await store.close();
    const ready = await fetch(`${api}/health/ready`);
    expect(ready.status).toBe(503);
    expect(await ready.json()).toMatchObject({ failing: ['event-store'] });
    await expectRefused(await fetch(`${api}/v1/version`, { headers: { authorization: `Bearer ${fresh}` } }), 503, 'AUDIT_UNAVAILABLE');
    // A token recorded earlier still authenticates; the read itself then fails.
    expect((await fetch(`${api}/v1/streams/${stream}/events`, { headers: { authorization: `Bearer ${ciToken}` } })).status).toBe(503);
  });
});

async function expectRefusedBrowser(response: { status: number; text: string }, status: number, code: string): Promise<void> {
  expect(response.status, response.text).toBe(status);
  expect(JSON.parse(response.text)).toMatchObject({ error: { code } });
}
