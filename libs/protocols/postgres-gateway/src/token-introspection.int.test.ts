// Issue 19 §5, token introspection for long sessions: an opaque access token (node-oidc-provider
// issues one for an audience configured so) is accepted through the issuer's introspection
// endpoint (RFC 7662), and the session asks again every second (the interval is configurable):
// revoked at the issuer mid-session, the session ends with a clear FATAL and a session.closed
// event, as at the token's expiry; an issuer that cannot be asked ends it too (fail closed).
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CustodianEvent } from '@custodian/event-contracts';
import { SqliteEventStore } from '@custodian/event-store-sqlite';
import { StoreEvidencePipeline } from '@custodian/evidence-pipeline';
import { OidcAccessTokenVerifier } from '@custodian/identity-oidc';
import { loadPolicyFile } from '@custodian/policy';
import { SessionPipeline } from '@custodian/session-pipeline';
import { startOidcProvider, startPostgres, type StartedOidcProvider, type StartedPostgres } from '@custodian/test-harness';
import { PostgresGateway } from './postgres-gateway.js';

const OPAQUE = 'https://opaque.custodian.test';
const GATEWAY_SECRET = randomBytes(18).toString('base64url');
const POLICY = `
name: introspection-test
rules:
  - id: agents-read
    match: { identity: { groups: [analysts] }, sql: { kinds: [read] } }
    decision: allow
`;

let dir: string;
let postgres: StartedPostgres;
let idp: StartedOidcProvider;
let store: SqliteEventStore;
let evidence: StoreEvidencePipeline;
let gateway: PostgresGateway;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'custodian-pg-introspection-'));
  postgres = await startPostgres();
  idp = await startOidcProvider({
    opaqueAudiences: [OPAQUE],
    clients: [
      { clientId: 'agent-opaque', kind: 'agent', groups: ['analysts'], accessTokenTtlSeconds: 600 },
      { clientId: 'custodian-gateway', clientSecret: GATEWAY_SECRET, kind: 'service' },
    ],
  });
  store = await SqliteEventStore.open({ path: join(dir, 'events.sqlite') });
  evidence = new StoreEvidencePipeline({ store, instance: 'introspection' });
  writeFileSync(join(dir, 'policy.yaml'), POLICY);
  gateway = new PostgresGateway({
    host: '127.0.0.1',
    port: 0,
    requireTls: 'never',
    pipeline: new SessionPipeline({
      verifier: new OidcAccessTokenVerifier({
        issuers: [
          {
            issuer: idp.issuer,
            audiences: [OPAQUE],
            introspection: { clientId: 'custodian-gateway', clientSecret: () => GATEWAY_SECRET, recheckIntervalSeconds: 1 },
          },
        ],
        // Generous: a slow answer under load must not read as an unreachable issuer.
        httpTimeoutMs: 15_000,
      }),
      policy: { policy: loadPolicyFile(join(dir, 'policy.yaml')) },
      evidence,
      strict: true,
      source: { service: 'gateway', instance: 'introspection' },
      maskingKey: randomBytes(32),
    }),
    connections: [
      {
        name: 'db',
        upstream: { host: postgres.host, port: postgres.port, database: postgres.database, user: postgres.user, password: () => postgres.password, credentialRef: 'env:PG_PASSWORD', tls: { mode: 'disable' } },
      },
    ],
  });
  await gateway.listen();
});

afterAll(async () => {
  await gateway?.close();
  await evidence?.close();
  await store?.close();
  await Promise.all([postgres?.stop(), idp?.stop()]);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function events(): Promise<CustodianEvent[]> {
  const out: CustodianEvent[] = [];
  for await (const recorded of store.readAll()) out.push(recorded.event);
  return out;
}

async function until<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = await check();
    if (found !== undefined) return found;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** A node-postgres client logged in with `token`, and the error that ends its connection (if one does). */
async function connect(token: string, application: string): Promise<{ client: pg.Client; ended: Promise<Error> }> {
  const client = new pg.Client({ host: '127.0.0.1', port: gateway.port, user: 'agent-opaque', database: 'db', password: token, ssl: false, application_name: application });
  const ended = new Promise<Error>((resolve) => client.on('error', resolve));
  await client.connect();
  return { client, ended };
}

async function closedSession(application: string): Promise<Extract<CustodianEvent, { type: 'session.closed' }>> {
  return until(`session ${application} to close`, async () => {
    const all = await events();
    const opened = all.find((e): e is Extract<CustodianEvent, { type: 'session.opened' }> => e.type === 'session.opened' && e.payload.client.application === application);
    if (!opened) return undefined;
    return all.find((e): e is Extract<CustodianEvent, { type: 'session.closed' }> => e.type === 'session.closed' && e.payload.sessionId === opened.payload.sessionId);
  });
}

describe('opaque tokens at the PostgreSQL gateway', () => {
  it('logs in with an opaque token and keeps the session while the token stays active', async () => {
    const { accessToken } = await idp.issueToken({ clientId: 'agent-opaque', audience: OPAQUE });
    expect(accessToken).not.toContain('.');
    const { client } = await connect(accessToken, 'introspection-active');
    try {
      expect((await client.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
      // Several re-checks (one a second) pass while the token is active.
      await new Promise((resolve) => setTimeout(resolve, 2_500));
      expect((await client.query('SELECT 2 AS two')).rows).toEqual([{ two: 2 }]);
    } finally {
      await client.end();
    }
    expect((await closedSession('introspection-active')).payload.reason).toBe('client-closed');
  });

  it('a token revoked at the issuer mid-session ends the session with a clear error and an event', async () => {
    const { accessToken } = await idp.issueToken({ clientId: 'agent-opaque', audience: OPAQUE });
    const { client, ended } = await connect(accessToken, 'introspection-revoked');
    expect((await client.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    await idp.revokeToken({ clientId: 'agent-opaque', token: accessToken });
    const error = (await ended) as Error & { code?: string };
    expect(error.message).toContain('no longer active (revoked at the issuer)');
    expect(error.code).toBe('28000');
    await client.end().catch(() => undefined);
    const closed = await closedSession('introspection-revoked');
    expect(closed.payload.reason).toBe('error');
    expect(closed.payload.errorCode).toBe('TOKEN_INACTIVE');
    // The revoked token no longer logs in.
    await expect(connect(accessToken, 'introspection-after-revocation')).rejects.toThrow(/TOKEN_INACTIVE/);
    expect(JSON.stringify(await events())).not.toContain(accessToken);
  });

  it('an issuer that can no longer be asked ends the session (fail closed)', async () => {
    const { accessToken } = await idp.issueToken({ clientId: 'agent-opaque', audience: OPAQUE });
    const { client, ended } = await connect(accessToken, 'introspection-unreachable');
    expect((await client.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    await idp.stop();
    const error = await ended;
    expect(error.message).toContain('could not confirm that the access token of this session is still active');
    await client.end().catch(() => undefined);
    const closed = await closedSession('introspection-unreachable');
    expect(closed.payload.errorCode).toBe('TOKEN_INTROSPECTION_UNAVAILABLE');
    expect(JSON.stringify(await events())).not.toContain(GATEWAY_SECRET);
  });
});
