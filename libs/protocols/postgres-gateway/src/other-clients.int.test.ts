// Independent client implementations through the gateway: pgbench (libpq, many connections),
// the PostgreSQL JDBC driver from Maven Central and postgres.js from npm (each its own protocol
// implementation: extended protocol with typed parameters, server-prepared statements, binary
// results where the driver asks for them, a refusal surfacing as the driver's error with SQLSTATE).
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCommand } from '@custodian/test-harness';
import { startGatewayFixture, type GatewayFixture } from './testing/gateway-fixture.js';

const JDBC_VERSION = '42.7.4';
const JDBC_JAR = join(homedir(), '.m2/repository/org/postgresql/postgresql', JDBC_VERSION, `postgresql-${JDBC_VERSION}.jar`);

let fixture: GatewayFixture;
let dir: string;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'custodian-clients-'));
  fixture = await startGatewayFixture();
});
afterAll(async () => {
  await fixture?.stop();
  rmSync(dir, { recursive: true, force: true });
});

function run(command: string, args: readonly string[], env: NodeJS.ProcessEnv): Promise<{ stdout: string; stderr: string; code: number | null }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env, cwd: dir });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ stdout, stderr, code }));
  });
}

function libpqEnv(password: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) if (!key.startsWith('PG')) env[key] = value;
  return { ...env, PGPASSWORD: password, PGSSLMODE: 'disable' };
}

describe('pgbench through the gateway', () => {
  it('runs a select-only workload over 4 connections without a failed transaction', async () => {
    const pgbench = join(fixture.postgres.binDir, 'pgbench');
    // Initialised directly: pgbench -i creates tables, which the policy blocks (as it should).
    await runCommand(pgbench, ['-i', '-q', '-s', '1', '-h', fixture.postgres.host, '-p', String(fixture.postgres.port), '-U', fixture.postgres.user, fixture.postgres.database], { env: libpqEnv(fixture.postgres.password), timeoutMs: 120_000 });
    await fixture.postgres.psql('GRANT SELECT ON ALL TABLES IN SCHEMA public TO gateway_svc');
    const token = await fixture.token('agent');
    const result = await run(pgbench, ['-n', '-S', '-c', '4', '-j', '2', '-t', '100', '-h', '127.0.0.1', '-p', String(fixture.gateway.port), '-U', 'agent-7', 'orders-prod'], libpqEnv(token));
    expect(result.stderr).not.toMatch(/error/i);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('number of transactions actually processed: 400/400');
    expect(result.stdout).toMatch(/number of failed transactions: 0/);
  });
});

describe('the PostgreSQL JDBC driver through the gateway', () => {
  let available = existsSync(JDBC_JAR);
  beforeAll(async () => {
    if (available) return;
    // From Maven Central with the ordinary client; no network or no Maven → the test says so and skips.
    const fetched = await runCommand('mvn', ['-q', '-B', 'dependency:get', `-Dartifact=org.postgresql:postgresql:${JDBC_VERSION}`], { timeoutMs: 240_000, allowFailure: true }).catch(() => undefined);
    available = fetched?.exitCode === 0 && existsSync(JDBC_JAR);
    if (!available) console.warn(`JDBC test skipped: org.postgresql:postgresql:${JDBC_VERSION} could not be fetched from Maven Central with mvn`);
  }, 300_000);

  it('connects with the token, reads masked values with server-prepared statements, gets 42501 for a block', async (context) => {
    if (!available) {
      context.skip();
      return;
    }
    const source = join(dir, 'JdbcProbe.java');
    writeFileSync(
      source,
      `import java.sql.*;
public class JdbcProbe {
  public static void main(String[] args) throws Exception {
    java.util.Properties props = new java.util.Properties();
    props.setProperty("user", "agent-7");
    props.setProperty("password", System.getenv("TOKEN"));
    props.setProperty("sslmode", "disable");
    props.setProperty("prepareThreshold", "1");
    props.setProperty("binaryTransfer", "true");
    try (Connection c = DriverManager.getConnection("jdbc:postgresql://127.0.0.1:" + args[0] + "/orders-prod", props)) {
      try (PreparedStatement ps = c.prepareStatement("SELECT name, email, notes FROM customers WHERE id = ?")) {
        for (int round = 0; round < 3; round++) {
          ps.setInt(1, 1);
          try (ResultSet rs = ps.executeQuery()) { while (rs.next()) System.out.println("row|" + rs.getString(1) + "|" + rs.getString(2) + "|" + rs.getString(3)); }
        }
      }
      // Typed parameters (sent with their type OIDs, several in binary) and binary results, server-prepared after the first run.
      try (PreparedStatement ps = c.prepareStatement("SELECT ?::timestamptz AS t, ?::numeric AS n, ?::uuid AS u, ?::jsonb AS j, ?::float8 AS f, ?::int4[] AS a, id, email FROM customers WHERE id = ?")) {
        for (int round = 0; round < 3; round++) {
          ps.setObject(1, java.time.OffsetDateTime.parse("2026-12-07T10:00:00Z"));
          ps.setBigDecimal(2, new java.math.BigDecimal("12345.678"));
          ps.setObject(3, java.util.UUID.fromString("0190c1d2-0000-7000-8000-000000000001"));
          ps.setObject(4, "{\\"k\\": [1, 2]}", Types.OTHER);
          ps.setDouble(5, 2.5);
          ps.setArray(6, c.createArrayOf("int4", new Integer[] { 1, 2, 3 }));
          ps.setInt(7, 1);
          try (ResultSet rs = ps.executeQuery()) {
            while (rs.next()) System.out.println("typed|" + rs.getObject(1, java.time.OffsetDateTime.class).toInstant() + "|" + rs.getBigDecimal(2) + "|" + rs.getObject(3) + "|" + rs.getString(4) + "|" + rs.getDouble(5) + "|" + java.util.Arrays.toString((Integer[]) rs.getArray(6).getArray()) + "|" + rs.getInt(7) + "|" + rs.getString(8));
          }
        }
      }
      // A refusal at Parse of a prepared statement: the driver's SQLException with the SQLSTATE; the connection goes on.
      try (PreparedStatement ps = c.prepareStatement("UPDATE orders SET amount = ?")) {
        ps.setBigDecimal(1, java.math.BigDecimal.ONE);
        ps.executeUpdate();
        System.out.println("not blocked");
      } catch (SQLException e) {
        System.out.println("blocked-prepared|" + e.getSQLState());
      }
      try (Statement s = c.createStatement()) {
        s.execute("DELETE FROM orders");
        System.out.println("not blocked");
      } catch (SQLException e) {
        System.out.println("blocked|" + e.getSQLState() + "|" + e.getMessage().split("\\n")[0]);
      }
      try (Statement s = c.createStatement(); ResultSet rs = s.executeQuery("SELECT count(*) FROM orders")) { rs.next(); System.out.println("count|" + rs.getLong(1)); }
    }
  }
}
`,
    );
    const result = await run('java', ['-cp', JDBC_JAR, source, String(fixture.gateway.port)], { ...process.env, TOKEN: await fixture.token('agent') });
    expect(result.stderr).toBe('');
    const lines = result.stdout.trim().split('\n');
    expect(lines.filter((l) => l.startsWith('row|'))).toEqual(Array(3).fill('row|Alice|*****@******e.com|paid with [REDACTED:pii-detectors], contact [REDACTED:pii-detectors]'));
    expect(lines.filter((l) => l.startsWith('typed|'))).toEqual(Array(3).fill('typed|2026-12-07T10:00:00Z|12345.678|0190c1d2-0000-7000-8000-000000000001|{"k": [1, 2]}|2.5|[1, 2, 3]|1|*****@******e.com'));
    expect(lines).toContain('blocked-prepared|42501');
    expect(lines).toContain('blocked|42501|ERROR: DELETE and UPDATE without WHERE are blocked. (rule block-delete-without-where)');
    expect(lines.at(-1)).toBe('count|20');
  }, 120_000);
});

describe('postgres.js (npm postgres) through the gateway', () => {
  it('typed parameters, prepared statements, masked values; a refusal is a PostgresError with SQLSTATE 42501 and the connection goes on', async () => {
    const sql = postgres({
      host: '127.0.0.1',
      port: fixture.gateway.port,
      database: 'orders-prod',
      username: 'agent-7',
      password: await fixture.token('agent'),
      ssl: false,
      max: 1,
      prepare: true,
      connection: { application_name: 'postgres-js' },
      onnotice: () => undefined,
    });
    try {
      for (let round = 0; round < 3; round += 1) {
        const rows = await sql`SELECT name, email, notes FROM customers WHERE id = ${1}`;
        expect(rows).toEqual([{ name: 'Alice', email: '*****@******e.com', notes: 'paid with [REDACTED:pii-detectors], contact [REDACTED:pii-detectors]' }]);
      }
      const at = new Date('2026-12-07T10:00:00Z');
      for (let round = 0; round < 3; round += 1) {
        const [typed] = await sql`SELECT ${at}::timestamptz AS t, ${'12345.678'}::numeric AS n, ${sql.json({ k: [1, 2] })}::jsonb AS j, ${2.5}::float8 AS f, ${[1, 2, 3]}::int4[] AS a, ${'0190c1d2-0000-7000-8000-000000000001'}::uuid AS u`;
        expect(typed).toEqual({ t: at, n: '12345.678', j: { k: [1, 2] }, f: 2.5, a: [1, 2, 3], u: '0190c1d2-0000-7000-8000-000000000001' });
      }
      await expect(sql`DELETE FROM orders`).rejects.toMatchObject({ name: 'PostgresError', code: '42501', message: 'DELETE and UPDATE without WHERE are blocked. (rule block-delete-without-where)' });
      await expect(sql`UPDATE orders SET amount = ${1}`).rejects.toMatchObject({ code: '42501' });
      await expect(sql.unsafe('SELECT * FROM customers WHERE')).rejects.toMatchObject({ code: '42601' });
      expect(await sql`SELECT count(*)::int AS n FROM orders`).toEqual([{ n: 20 }]);
    } finally {
      await sql.end({ timeout: 5 });
    }
    expect(await fixture.postgres.psql('SELECT count(*) FROM orders')).toBe('20');
  }, 120_000);
});
