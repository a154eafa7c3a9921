import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { AuthenticationFailed, CustodianEvent } from '@custodian/event-contracts';
import { SqliteEventStore } from '@custodian/event-store-sqlite';
import { createLogger } from '@custodian/observability';
import { AuthenticationEventRecorder, FAILURES_SUPPRESSED_CODE, type AuthenticationEventRecorderOptions } from './authentication-event-recorder.js';

let dir: string;
let store: SqliteEventStore;
const logger = createLogger({ service: 'api', level: 'silent' });

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'custodian-auth-events-'));
  store = await SqliteEventStore.open({ path: join(dir, 'events.sqlite') });
});
afterEach(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

function recorder(options: Partial<AuthenticationEventRecorderOptions> = {}): AuthenticationEventRecorder {
  return new AuthenticationEventRecorder({ eventStore: store, source: { service: 'api', instance: 'test' }, logger, ...options });
}

function failure(clientAddress: string, reasonCode = 'TOKEN_EXPIRED'): AuthenticationFailed {
  return { method: 'oidc-access-token', clientAddress, reasonCode, reason: 'token expired' };
}

async function stored(): Promise<CustodianEvent[]> {
  const events: CustodianEvent[] = [];
  for await (const recorded of store.readAll()) events.push(recorded.event);
  return events;
}

describe('AuthenticationEventRecorder', () => {
  it('writes each event to its own auth-<uuid> stream at sequence 0, concurrently without conflicts', async () => {
    const events = recorder();
    const identity = { subject: 'ci', issuer: 'https://idp.example', groups: [], kind: 'service' as const };
    await Promise.all([
      ...Array.from({ length: 5 }, () => events.succeeded(identity, { method: 'oidc-client-credentials', clientAddress: '10.0.0.1:1', tokenExpiresAt: '2030-01-01T00:00:00.000000Z' })),
      ...Array.from({ length: 5 }, (_, i) => events.failed(failure(`10.0.0.${i}:1`), `10.0.0.${i}`)),
    ]);
    await events.close();
    const all = await stored();
    expect(all).toHaveLength(10);
    expect(new Set(all.map((e) => e.stream)).size).toBe(10);
    expect(all.every((e) => /^auth-[0-9a-f-]{36}$/.test(e.stream) && e.sequence === 0 && e.source.service === 'api')).toBe(true);
  });

  it('records N failures per client and window, counts the rest, and summarises them when the window ends', async () => {
    let now = Date.parse('2030-01-01T00:00:00Z');
    const events = recorder({ failuresPerClient: 2, windowMs: 60_000, now: () => now });
    for (let i = 0; i < 7; i++) await events.failed(failure('203.0.113.9:4000', i % 2 === 0 ? 'TOKEN_EXPIRED' : 'TOKEN_MALFORMED'), '203.0.113.9');
    await events.failed(failure('198.51.100.1:4000'), '198.51.100.1');
    expect((await stored()).map((e) => (e.payload as AuthenticationFailed).clientAddress)).toEqual(['203.0.113.9:4000', '203.0.113.9:4000', '198.51.100.1:4000']);

    now += 60_000;
    await events.flushEnded();
    const summary = (await stored()).at(-1)!;
    expect(summary.type).toBe('authentication.failed');
    expect(summary.payload).toMatchObject({ reasonCode: FAILURES_SUPPRESSED_CODE, clientAddress: '203.0.113.9', method: 'oidc-access-token' });
    expect((summary.payload as AuthenticationFailed).reason).toMatch(/^5 further authentication failures from 203\.0\.113\.9 since 2030-01-01T00:00:00\.000Z .*\(TOKEN_EXPIRED×3, TOKEN_MALFORMED×2\)$/);

    // A new window: the client's failures are recorded again.
    await events.failed(failure('203.0.113.9:4001'), '203.0.113.9');
    await events.close();
    const all = await stored();
    expect(all).toHaveLength(5);
    expect((all[4]!.payload as AuthenticationFailed).clientAddress).toBe('203.0.113.9:4001');
  });

  it('caps failures across all clients, and shares one bucket beyond the tracked clients', async () => {
    const events = recorder({ failuresPerClient: 5, failuresTotal: 3, maxTrackedClients: 2, windowMs: 3_600_000 });
    for (let i = 0; i < 6; i++) await events.failed(failure(`192.0.2.${i}:1`), `192.0.2.${i}`);
    expect(await stored()).toHaveLength(3);
    await events.close();
    const summaries = (await stored()).slice(3).map((e) => e.payload as AuthenticationFailed);
    expect(summaries.every((p) => p.reasonCode === FAILURES_SUPPRESSED_CODE)).toBe(true);
    // Clients 0 and 1 are tracked; 2..5 share '*': 3 suppressed failures in all.
    expect(summaries.map((p) => p.clientAddress).sort()).toEqual(['*']);
    expect(summaries[0]!.reason).toMatch(/^3 further authentication failures from untracked clients/);
  });

  it('a store that refuses does not make failed() throw; succeeded() does (the caller denies)', async () => {
    const events = recorder();
    await store.close();
    await expect(events.failed(failure('192.0.2.1:1'), '192.0.2.1')).resolves.toBeUndefined();
    await expect(
      events.succeeded({ subject: 'ci', issuer: 'https://idp.example', groups: [], kind: 'service' }, { method: 'oidc-client-credentials', clientAddress: '192.0.2.1:1', tokenExpiresAt: '2030-01-01T00:00:00.000000Z' }),
    ).rejects.toMatchObject({ code: expect.stringMatching(/^EVENT_STORE_/) });
    await events.close();
    store = await SqliteEventStore.open({ path: join(dir, 'events.sqlite') });
  });
});
