// The demo database asks for a password like a real PostgreSQL server (SCRAM-SHA-256): the real
// psql and node-postgres are refused with a wrong one (FATAL 28P01) and log in with the right one;
// the gateway's own SCRAM client sees exactly one startup sequence; the demo environment writes
// the password to a 0600 file and gives the gateway only a reference to it.
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ScramSha256Client } from '@custodian/postgres-gateway';
import {
  BackendType,
  MessageFramer,
  decodeAuthentication,
  decodeDataRow,
  decodeNoticeFields,
  encodePasswordMessage,
  encodeQuery,
  encodeSaslInitialResponse,
  encodeSaslResponse,
  encodeStartupMessage,
  type Frame,
} from '@custodian/postgres-wire';
import { loadConfig } from '@custodian/runtime-config';
import { startDemoDatabase, type DemoDatabase } from './demo-database.js';
import { startDemoEnvironment } from './demo-environment.js';

const PSQL = '/usr/lib/postgresql/15/bin/psql';
const PASSWORD = 'demo-password-for-the-front-test-0123456789';
let database: DemoDatabase;

beforeAll(async () => {
  database = await startDemoDatabase({ password: PASSWORD });
});
afterAll(async () => {
  await database?.stop();
});

/** The real psql, with nothing from this process's PG* environment; never prompts (-w). */
function psql(password: string, sql: string, user = 'postgres'): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) if (!key.startsWith('PG')) env[key] = value;
  return new Promise((resolve) => {
    // sslmode=prefer: psql asks for TLS first and the front declines it, as a plain server does.
    const child = spawn(PSQL, ['-X', '-A', '-t', '-q', '-w', `host=${database.host} port=${database.port} dbname=postgres user=${user} sslmode=prefer`, '-c', sql], { env: { ...env, PGPASSWORD: password } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

async function pgConnect(password: string, user = 'postgres'): Promise<pg.Client> {
  return pgClientTo({ ...database, user }, password);
}

/** A raw wire client: every backend message, in order, exactly as the front sent it. */
class RawClient {
  private readonly framer = new MessageFramer({ side: 'backend', maxMessageBytes: 1 << 20 });
  private readonly frames: Frame[] = [];
  private waiting: (() => void) | undefined;
  closed = false;

  private constructor(private readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.framer.push(chunk);
      for (let frame = this.framer.next(); frame; frame = this.framer.next()) this.frames.push({ ...frame, raw: Buffer.from(frame.raw), body: Buffer.from(frame.body) });
      this.waiting?.();
    });
    socket.on('close', () => {
      this.closed = true;
      this.waiting?.();
    });
  }

  static async open(port: number): Promise<RawClient> {
    const socket = connect(port, '127.0.0.1');
    await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    return new RawClient(socket);
  }

  write(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  /** The next backend message (throws when the connection closed first). */
  async next(): Promise<Frame> {
    while (this.frames.length === 0) {
      if (this.closed) throw new Error('the front closed the connection');
      await new Promise<void>((resolve) => (this.waiting = resolve));
    }
    return this.frames.shift()!;
  }

  /** Waits until the front closes the connection; the messages still unread. */
  async untilClosed(): Promise<Frame[]> {
    while (!this.closed) await new Promise<void>((resolve) => (this.waiting = resolve));
    return this.frames.splice(0);
  }

  end(): void {
    this.socket.destroy();
  }
}

describe('the demo database front', () => {
  it('refuses the real psql with a wrong password and lets it in with the right one', async () => {
    const refused = await psql('not-the-password', 'SELECT 1');
    expect(refused.status).toBe(2);
    expect(refused.stderr).toContain('FATAL:  password authentication failed for user "postgres"');
    expect(refused.stdout).toBe('');

    const accepted = await psql(PASSWORD, 'SELECT name FROM customers WHERE id = 1');
    expect(accepted.stderr).toBe('');
    expect(accepted.status).toBe(0);
    expect(accepted.stdout.trim()).toBe('Ada Lovelace');
  });

  it('refuses node-postgres with a wrong password (FATAL 28P01) and lets it in with the right one', async () => {
    const refused = await pgConnect('not-the-password').then(
      () => undefined,
      (error: unknown) => error as { code?: string; severity?: string; message: string },
    );
    expect(refused).toMatchObject({ code: '28P01', severity: 'FATAL', message: 'password authentication failed for user "postgres"' });

    // node-postgres checks the server signature of SASLFinal: a front that does not know the verifier fails here.
    const client = await pgConnect(PASSWORD);
    try {
      const result = await client.query<{ id: number; status: string }>('SELECT id, status FROM orders WHERE id = $1', [102]);
      expect(result.rows).toEqual([{ id: 102, status: 'pending' }]);
    } finally {
      await client.end();
    }
  });

  it('refuses any other user, even with the right password', async () => {
    const refused = await pgConnect(PASSWORD, 'someone-else').then(
      () => undefined,
      (error: unknown) => error as { code?: string },
    );
    expect(refused?.code).toBe('28P01');
  });

  it('offers only SCRAM-SHA-256 (salt, 4096 iterations, a server signature the gateway\'s client verifies), then exactly one AuthenticationOk … ReadyForQuery', async () => {
    const client = await RawClient.open(database.port);
    try {
      client.write(encodeStartupMessage({ user: 'postgres', database: 'postgres', application_name: 'front-test' }));
      expect(decodeAuthentication(await client.next())).toEqual({ kind: 'sasl', mechanisms: ['SCRAM-SHA-256'] });
      const scram = new ScramSha256Client(PASSWORD);
      client.write(encodeSaslInitialResponse('SCRAM-SHA-256', scram.first()));
      const serverFirst = decodeAuthentication(await client.next());
      if (serverFirst.kind !== 'sasl-continue') throw new Error(`expected SASLContinue, got ${serverFirst.kind}`);
      expect(serverFirst.data.toString('utf8')).toMatch(/^r=[!-+\--~]+,s=[A-Za-z0-9+/]{22}==,i=4096$/);
      client.write(encodeSaslResponse(await scram.final(serverFirst.data)));
      const serverFinal = decodeAuthentication(await client.next());
      if (serverFinal.kind !== 'sasl-final') throw new Error(`expected SASLFinal, got ${serverFinal.kind}`);
      expect(() => scram.verify(serverFinal.data)).not.toThrow();

      // PGlite's own answer to the replayed StartupMessage completes the login: one AuthenticationOk, one ReadyForQuery.
      const login: Frame[] = [];
      for (let frame = await client.next(); ; frame = await client.next()) {
        login.push(frame);
        if (frame.type === BackendType.ReadyForQuery) break;
      }
      expect(login.filter((f) => f.type === BackendType.Authentication).map((f) => decodeAuthentication(f))).toEqual([{ kind: 'ok' }]);
      expect(decodeAuthentication(login[0]!)).toEqual({ kind: 'ok' });
      expect(login.filter((f) => f.type === BackendType.BackendKeyData)).toHaveLength(1);
      expect(login.filter((f) => f.type === BackendType.ReadyForQuery)).toHaveLength(1);
      expect(login.slice(1, -2).every((f) => f.type === BackendType.ParameterStatus)).toBe(true);

      // And the relay carries the session.
      client.write(encodeQuery('SELECT count(*) FROM customers'));
      const answer: Frame[] = [];
      for (let frame = await client.next(); ; frame = await client.next()) {
        answer.push(frame);
        if (frame.type === BackendType.ReadyForQuery) break;
      }
      // PGlite may report parameters (ParameterStatus) after a fresh database's first statement.
      const messages = answer.filter((f) => f.type !== BackendType.ParameterStatus);
      expect(messages.map((f) => String.fromCharCode(f.type)).join('')).toBe('TDCZ');
      expect(decodeDataRow(messages[1]!).map((v) => v?.toString())).toEqual(['4']);
    } finally {
      client.end();
    }
  });

  it('ends a login that breaks the SASL exchange with FATAL 08P01', async () => {
    const client = await RawClient.open(database.port);
    client.write(encodeStartupMessage({ user: 'postgres', database: 'postgres' }));
    expect(decodeAuthentication(await client.next()).kind).toBe('sasl');
    // A cleartext PasswordMessage where a SASLInitialResponse belongs.
    client.write(encodePasswordMessage(PASSWORD));
    const [error, ...rest] = await client.untilClosed();
    expect(error?.type).toBe(BackendType.ErrorResponse);
    expect(Object.fromEntries(decodeNoticeFields(error!))).toMatchObject({ S: 'FATAL', C: '08P01' });
    expect(rest).toEqual([]);
  });
});

describe('the demo environment', () => {
  let dataDir: string;
  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'custodian-demo-env-'));
  });
  afterAll(async () => {
    await rm(dataDir, { recursive: true, force: true });
  });

  it('writes a fresh password to <dataDir>/demo/db-password (0600) at each start and gives the gateway only a file reference', async () => {
    const first = await startDemoEnvironment({ dataDir });
    let password: string;
    try {
      expect(first.passwordFile).toBe(join(dataDir, 'demo', 'db-password'));
      expect((await stat(first.passwordFile)).mode & 0o777).toBe(0o600);
      password = await readFile(first.passwordFile, 'utf8');
      expect(Buffer.from(password, 'base64url').length).toBeGreaterThanOrEqual(24);

      const config = first.apply(loadConfig({ env: {}, cwd: dataDir }).config);
      const demo = config.gateways.postgres.connections.find((c) => c.name === 'demo')!;
      expect(demo.upstream).toMatchObject({ host: first.database.host, port: first.database.port, user: 'postgres', credential: { fromFile: first.passwordFile } });
      expect(JSON.stringify(config)).not.toContain(password);
      expect(await first.instructions({ host: '127.0.0.1', port: 7432 })).not.toContain(password);

      // The file holds the password the demo database asks for.
      const refused = await pgClientTo(first.database, 'not-the-password').catch((error: { code?: string }) => error.code);
      expect(refused).toBe('28P01');
      const client = await pgClientTo(first.database, password);
      expect((await client.query<{ n: number }>('SELECT count(*)::int AS n FROM orders')).rows).toEqual([{ n: 4 }]);
      await client.end();
    } finally {
      await first.stop();
    }
    await expect(stat(first.passwordFile)).rejects.toMatchObject({ code: 'ENOENT' });

    const second = await startDemoEnvironment({ dataDir });
    try {
      const next = await readFile(second.passwordFile, 'utf8');
      expect(next).not.toBe(password);
      expect((await stat(second.passwordFile)).mode & 0o777).toBe(0o600);
    } finally {
      await second.stop();
    }
  });
});

async function pgClientTo(target: DemoDatabase, password: string): Promise<pg.Client> {
  const client = new pg.Client({ host: target.host, port: target.port, user: target.user, database: target.database, password, ssl: false });
  await client.connect();
  return client;
}
