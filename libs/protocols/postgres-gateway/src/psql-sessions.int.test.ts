// The real psql client through the gateway to a real PostgreSQL: OIDC token login, reads,
// masking, blocks, COPY, cancel, TLS on both sides, refused logins, and the held credential
// never reaching the client or the evidence.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CustodianEvent } from '@custodian/event-contracts';
import { BackendType, MessageFramer, decodeNoticeFields, encodePasswordMessage, encodeQuery, encodeStartupMessage, encodeTerminate } from '@custodian/postgres-wire';
import { PostgresGateway } from './postgres-gateway.js';
import { PSQL, psql, sessionEvents, startGatewayFixture, type GatewayFixture } from './testing/gateway-fixture.js';

let fixture: GatewayFixture;
beforeAll(async () => {
  fixture = await startGatewayFixture();
});
afterAll(async () => {
  await fixture?.stop();
});

function ofType<T extends CustodianEvent['type']>(events: readonly CustodianEvent[], type: T): Extract<CustodianEvent, { type: T }>[] {
  return events.filter((e): e is Extract<CustodianEvent, { type: T }> => e.type === type);
}

/** The session opened most recently for this application name. */
async function lastSession(application: string): Promise<{ id: string; events: CustodianEvent[] }> {
  const events = await fixture.events();
  const opened = ofType(events, 'session.opened').filter((e) => e.payload.client.application === application).at(-1);
  if (!opened) throw new Error(`no session for ${application}`);
  return { id: opened.payload.sessionId, events: sessionEvents(events, opened.payload.sessionId) };
}

describe('psql through the gateway', () => {
  it('logs in with an OIDC token, reads, and records the session', async () => {
    const token = await fixture.token('agent');
    const result = await psql(fixture, token, 'SELECT id, name FROM customers ORDER BY id;\nSELECT count(*) FROM orders;\n', { env: { PGAPPNAME: 'read-test' } });
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toBe('1|Alice\n2|Bob\n3|Carol\n20\n');
    const { events } = await lastSession('read-test');
    const types = events.map((e) => e.type);
    // The bytes sent before the session existed (the password request) are its first frame.
    expect(types.slice(0, 4)).toEqual(['authentication.succeeded', 'session.opened', 'frame.recorded', 'credential.injected']);
    expect(types.slice(-2)).toEqual(['session.closed', 'custody.attested']);
    const custody = ofType(events, 'custody.attested')[0]!;
    expect(custody.payload).toMatchObject({ exposed: false, credentialRef: 'env:GATEWAY_SVC_PASSWORD', keyId: 'test-gateway' });
    expect(ofType(events, 'command.issued').map((e) => e.payload.text)).toEqual(['SELECT id, name FROM customers ORDER BY id;', 'SELECT count(*) FROM orders;']);
    expect(ofType(events, 'policy.decided').map((e) => [e.payload.decision, e.payload.ruleId])).toEqual([
      ['allow', 'analysts-read'],
      ['allow', 'analysts-read'],
    ]);
    const frames = ofType(events, 'frame.recorded');
    expect(frames.some((f) => f.payload.direction === 'client-to-upstream' && f.payload.messageType === 'Query')).toBe(true);
    expect(frames.some((f) => f.payload.direction === 'upstream-to-client' && f.payload.messageType?.includes('DataRow*3'))).toBe(true);
    expect(frames.every((f, i) => i === 0 || f.payload.offsetMicros >= frames[i - 1]!.payload.offsetMicros)).toBe(true);
    expect(events.every((e) => e.identity?.subject === 'agent-7')).toBe(true);
    const closed = ofType(events, 'session.closed')[0]!;
    expect(closed.payload.reason).toBe('client-closed');
    expect(closed.payload.frames.upstreamToClient).toBeGreaterThanOrEqual(2);
  });

  it('masks a column by rule and card numbers and e-mail addresses by detectors, and counts them', async () => {
    const token = await fixture.token('agent');
    const result = await psql(fixture, token, 'SELECT email, notes FROM customers ORDER BY id;\n', { env: { PGAPPNAME: 'mask-test' } });
    expect(result.exitCode).toBe(0);
    const lines = result.stdout.trim().split('\n');
    expect(lines[0]).toBe('*****@******e.com|paid with [REDACTED:pii-detectors], contact [REDACTED:pii-detectors]');
    expect(lines[1]).toMatch(/^\*+@\*+e\.net\|no card on file$/);
    expect(lines[2]).toBe('|');
    for (const secret of ['alice@example.com', '4111', 'alice.backup', 'bob@example.net']) expect(result.all).not.toContain(secret);
    const { events } = await lastSession('mask-test');
    const masked = ofType(events, 'data.masked');
    expect(masked).toHaveLength(1);
    expect(masked[0]!.payload.maskings).toEqual([
      { field: 'public.customers.email', rule: 'customer-email', count: 2 },
      { field: 'public.customers.notes', rule: 'pii-detectors', detector: 'card', count: 1 },
      { field: 'public.customers.notes', rule: 'pii-detectors', detector: 'email', count: 1 },
    ]);
    // Frames are recorded after masking: the recorded rows carry the masked values only.
    const recorded = ofType(events, 'frame.recorded').map((f) => Buffer.from(f.payload.data, 'base64').toString('utf8')).join('');
    expect(recorded).toContain('[REDACTED:pii-detectors]');
    expect(recorded).not.toContain('alice@example.com');
    expect(recorded).not.toContain('4111 1111');
  });

  it('blocks a DELETE without WHERE with SQLSTATE 42501 naming the rule; the session stays usable', async () => {
    const token = await fixture.token('agent');
    const result = await psql(fixture, token, '\\set VERBOSITY verbose\nDELETE FROM orders;\nSELECT count(*) FROM orders;\n', { env: { PGAPPNAME: 'block-test' } });
    expect(result.stderr).toContain('ERROR:  42501: DELETE and UPDATE without WHERE are blocked. (rule block-delete-without-where)');
    expect(result.stdout.trim()).toBe('20');
    expect(await fixture.postgres.psql('SELECT count(*) FROM orders')).toBe('20');
    const { events } = await lastSession('block-test');
    const decided = ofType(events, 'policy.decided');
    expect(decided.map((e) => e.payload.decision)).toEqual(['block', 'allow']);
    expect(decided[0]!.payload.ruleId).toBe('block-delete-without-where');
    // The blocked statement never went upstream.
    const queries = ofType(events, 'frame.recorded').filter((f) => f.payload.direction === 'client-to-upstream' && f.payload.messageType === 'Query');
    expect(queries.map((f) => Buffer.from(f.payload.data, 'base64').toString('utf8'))).not.toContain(expect.stringContaining('DELETE'));
  });

  it('a block inside a transaction aborts it, as a PostgreSQL permission error would', async () => {
    const token = await fixture.token('agent');
    const result = await psql(fixture, token, 'BEGIN;\nSELECT 1;\nDROP TABLE orders;\nSELECT 2;\nROLLBACK;\nSELECT 3;\n', { extraArgs: ['-q'] });
    expect(result.stdout).toBe('1\n3\n');
    expect(result.stderr).toContain('Schema and privilege changes are not allowed. (rule block-ddl)');
    expect(result.stderr).toContain('current transaction is aborted');
    expect(await fixture.postgres.psql("SELECT to_regclass('public.orders') IS NOT NULL")).toBe('t');
  });

  it('COPY out is masked by the detectors; COPY out of a table with a masked column is refused; COPY in is forwarded', async () => {
    const token = await fixture.token('agent');
    const out = await psql(fixture, token, "COPY (SELECT 1, 'card 4111 1111 1111 1111, mail x@example.com') TO STDOUT;\nCOPY orders TO STDOUT;\nCOPY customers TO STDOUT;\nCOPY (SELECT id, notes FROM customers) TO STDOUT;\n");
    const lines = out.stdout.split('\n');
    expect(lines[0]).toBe('1\tcard [REDACTED:pii-detectors], mail [REDACTED:pii-detectors]');
    expect(lines.slice(1).filter((l) => l !== '')).toHaveLength(20);
    // Without a RowDescription column rules cannot apply: COPY out of a relation with a masked column is refused, even through a query.
    expect(out.stderr.match(/COPY TO is refused for public.customers: column email is masked \(rule customer-email\)/g)).toHaveLength(2);
    const before = Number(await fixture.postgres.psql('SELECT count(*) FROM scratch'));
    const into = await psql(fixture, token, 'COPY scratch FROM STDIN;\n1\tfirst\n2\tcard 4111-1111-1111-1111\n\\.\nSELECT count(*) FROM scratch;\n', { env: { PGAPPNAME: 'copy-in-test' }, extraArgs: ['-q'] });
    expect(into.stderr).toBe('');
    expect(Number(into.stdout.trim())).toBe(before + 2);
    const { events } = await lastSession('copy-in-test');
    const recorded = ofType(events, 'frame.recorded')
      .filter((f) => f.payload.direction === 'client-to-upstream')
      .map((f) => Buffer.from(f.payload.data, 'base64').toString('utf8'))
      .join('');
    expect(recorded).toContain('first');
    expect(recorded).not.toContain('4111-1111');
  });

  it('cancels a running query: psql sends CancelRequest with the gateway key, upstream gets its own', async () => {
    const token = await fixture.token('agent');
    const env: NodeJS.ProcessEnv = {};
    for (const [key, value] of Object.entries(process.env)) if (!key.startsWith('PG')) env[key] = value;
    Object.assign(env, { PGPASSWORD: token, PGSSLMODE: 'disable', PGAPPNAME: 'cancel-test' });
    const child = spawn(PSQL, ['-X', '-A', '-t', '-h', '127.0.0.1', '-p', String(fixture.gateway.port), '-U', 'agent-7', '-d', 'orders-prod', '-c', 'SELECT pg_sleep(30)'], { env });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const started = Date.now();
    // Wait until the sleep runs upstream, then interrupt psql, which sends the cancel.
    for (let attempt = 0; ; attempt++) {
      const running = await fixture.postgres.psql("SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'custodian/%/cancel-test' AND state = 'active' AND query LIKE '%pg_sleep%'");
      if (running === '1') break;
      if (attempt > 100) throw new Error(`the sleep never started upstream: ${stderr}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    child.kill('SIGINT');
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect(stderr).toContain('canceling statement due to user request');
    expect(code).not.toBe(0);
    expect(Date.now() - started).toBeLessThan(25_000);
    const { events } = await lastSession('cancel-test');
    expect(ofType(events, 'frame.recorded').some((f) => f.payload.messageType === 'CancelRequest')).toBe(true);
  });
});

describe('TLS', () => {
  it('psql with sslmode=verify-full reaches the gateway over TLS with its certificate', async () => {
    const token = await fixture.token('agent');
    const caPath = fixture.certPath.replace(/server\.crt$/, 'ca.crt');
    const result = await psql(fixture, token, 'SELECT 1;\n', { sslmode: 'verify-full', sslrootcert: caPath, env: { PGAPPNAME: 'tls-test', PGHOST: '127.0.0.1' } });
    expect(result.stdout).toBe('1\n');
    const { events } = await lastSession('tls-test');
    expect(ofType(events, 'session.opened')[0]!.payload.client.tls).toBe(true);
  });

  it('a gateway that requires TLS refuses a plaintext client with 28000', async () => {
    const strictGateway = new PostgresGateway({ host: '127.0.0.1', port: 0, requireTls: 'always', pipeline: fixture.pipeline, connections: [] });
    await strictGateway.listen();
    try {
      const result = await psql({ gateway: strictGateway }, await fixture.token('agent'), 'SELECT 1;\n', { sslmode: 'disable' });
      expect(result.exitCode).toBe(2);
      expect(result.stderr).toContain('requires TLS');
      const events = await fixture.events();
      expect(ofType(events, 'authentication.failed').some((e) => e.payload.reasonCode === 'TLS_REQUIRED')).toBe(true);
    } finally {
      await strictGateway.close();
    }
  });

  it('sessions outlive the connect and TLS-handshake deadlines (they cover connecting only)', async () => {
    const token = await fixture.token('agent');
    const caPath = fixture.certPath.replace(/server\.crt$/, 'ca.crt');
    const shortStartup = new PostgresGateway({
      host: '127.0.0.1',
      port: 0,
      tls: { cert: readFileSync(fixture.certPath), key: readFileSync(fixture.certPath.replace(/server\.crt$/, 'server.key')) },
      requireTls: 'always',
      startupTimeoutMs: 3000,
      pipeline: fixture.pipeline,
      connections: [{ name: 'orders-prod', upstream: { host: fixture.postgres.host, port: fixture.postgres.port, database: fixture.postgres.database, user: fixture.postgres.user, password: () => fixture.postgres.password, credentialRef: 'env:X', tls: { mode: 'require' }, connectTimeoutMs: 1000 } }],
    });
    await shortStartup.listen();
    try {
      const viaShortUpstream = await psql(fixture, token, 'SELECT pg_sleep(1.5);\nSELECT 1;\n', { database: 'orders-short-deadline', extraArgs: ['-q'] });
      expect(viaShortUpstream.stderr).toBe('');
      expect(viaShortUpstream.stdout.trim().split('\n').at(-1)).toBe('1');
      const viaShortStartup = await psql({ gateway: shortStartup }, token, 'SELECT pg_sleep(3.5);\nSELECT 2;\n', { sslmode: 'verify-full', sslrootcert: caPath, extraArgs: ['-q'] });
      expect(viaShortStartup.stderr).toBe('');
      expect(viaShortStartup.stdout.trim().split('\n').at(-1)).toBe('2');
    } finally {
      await shortStartup.close();
    }
  });

  it('logs in upstream over TLS verified against the configured CA, and refuses an upstream it cannot verify', async () => {
    const token = await fixture.token('agent');
    const ok = await psql(fixture, token, 'SELECT 1;\n', { database: 'orders-tls' });
    expect(ok.stdout).toBe('1\n');
    const activity = await fixture.postgres.psql("SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE s.ssl AND a.usename = 'gateway_svc'");
    expect(Number(activity)).toBeGreaterThanOrEqual(0);
    const refused = await psql(fixture, token, 'SELECT 1;\n', { database: 'orders-untrusted-tls' });
    expect(refused.exitCode).toBe(2);
    expect(refused.stderr).toContain('Custodian could not open connection orders-untrusted-tls: TLS to the upstream database failed');
  });
});

describe('refused logins', () => {
  it('a malformed token: 28P01 and authentication.failed with the reason, never the token', async () => {
    const result = await psql(fixture, 'not-a-jwt-but-a-secret-guess', 'SELECT 1;\n');
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toContain('authentication failed');
    expect(result.stderr).toContain('TOKEN_MALFORMED');
    const events = await fixture.events();
    const failed = ofType(events, 'authentication.failed').filter((e) => e.payload.reasonCode === 'TOKEN_MALFORMED');
    expect(failed.length).toBeGreaterThanOrEqual(1);
    expect(failed.at(-1)!.payload).toMatchObject({ protocol: 'postgres', method: 'oidc-access-token', claimedSubject: 'agent-7' });
    expect(JSON.stringify(events)).not.toContain('not-a-jwt-but-a-secret-guess');
  });

  it('a token for another audience: 28P01 TOKEN_AUDIENCE_INVALID', async () => {
    const token = await fixture.token('agent', { audience: 'https://elsewhere.example' });
    const result = await psql(fixture, token, 'SELECT 1;\n');
    expect(result.stderr).toContain('TOKEN_AUDIENCE_INVALID');
    expect(result.stderr).toMatch(/FATAL/);
  });

  it('an identity no rule lets use the connection, and an unknown connection: both 28000 with the same message', async () => {
    const outsider = await psql(fixture, await fixture.token('outsider'), 'SELECT 1;\n', { user: 'outsider' });
    expect(outsider.exitCode).toBe(2);
    expect(outsider.stderr).toContain('may not use connection "orders-prod" (or it does not exist)');
    const unknown = await psql(fixture, await fixture.token('agent'), 'SELECT 1;\n', { database: 'orders-nowhere' });
    expect(unknown.stderr).toContain('may not use connection "orders-nowhere" (or it does not exist)');
    const events = await fixture.events();
    expect(ofType(events, 'authentication.failed').filter((e) => e.payload.reasonCode === 'CONNECTION_NOT_PERMITTED').length).toBeGreaterThanOrEqual(2);
  });
});

describe('the held credential', () => {
  it('logs in upstream with md5 as well as SCRAM, naming only the reference', async () => {
    const result = await psql(fixture, await fixture.token('agent'), 'SELECT current_user;\n', { database: 'orders-legacy', env: { PGAPPNAME: 'md5-test' } });
    expect(result.stdout).toBe('legacy_svc\n');
    const { events } = await lastSession('md5-test');
    expect(ofType(events, 'credential.injected')[0]!.payload).toMatchObject({ credentialRef: 'env:LEGACY_SVC_PASSWORD', method: 'md5' });
  });

  it('never appears in any byte a client receives nor in any event', async () => {
    const token = await fixture.token('agent');
    // A raw client records every byte it gets: login, results, errors, a parameter dump, the goodbye.
    const received: Buffer[] = [];
    await new Promise<void>((resolve, reject) => {
      const socket = connect(fixture.gateway.port, '127.0.0.1');
      const framer = new MessageFramer({ side: 'backend', maxMessageBytes: 1 << 24 });
      let phase = 0;
      socket.on('error', reject);
      socket.on('data', (chunk: Buffer) => {
        received.push(chunk);
        framer.push(chunk);
        for (let frame = framer.next(); frame; frame = framer.next()) {
          if (frame.type === BackendType.Authentication && phase === 0) {
            phase = 1;
            socket.write(encodePasswordMessage(token));
          } else if (frame.type === BackendType.ReadyForQuery) {
            phase += 1;
            if (phase === 2) socket.write(encodeQuery("SELECT name, setting FROM pg_settings; SELECT current_user, session_user; SELECT 1/0; SHOW ALL;"));
            else {
              socket.end(encodeTerminate());
              resolve();
            }
          } else if (frame.type === BackendType.ErrorResponse && phase < 2) {
            reject(new Error(decodeNoticeFields(frame).get('M')));
          }
        }
      });
      socket.write(encodeStartupMessage({ user: 'agent-7', database: 'orders-prod' }));
    });
    const clientBytes = Buffer.concat(received);
    expect(clientBytes.length).toBeGreaterThan(1000);
    const events = await fixture.events();
    const eventText = JSON.stringify(events);
    const frameBytes = Buffer.concat(ofType(events, 'frame.recorded').map((f) => Buffer.from(f.payload.data, 'base64')));
    for (const secret of fixture.upstreamSecrets) {
      expect(clientBytes.includes(Buffer.from(secret))).toBe(false);
      expect(eventText).not.toContain(secret);
      expect(frameBytes.includes(Buffer.from(secret))).toBe(false);
    }
    // Nor the agent's token.
    expect(eventText).not.toContain(token);
    expect(frameBytes.includes(Buffer.from(token))).toBe(false);
  });
});
