// Independent client implementations through the gateway: pgbench (libpq, many connections) and
// the PostgreSQL JDBC driver from Maven Central (its own protocol implementation, extended
// protocol with server-prepared statements).
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
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
    try (Connection c = DriverManager.getConnection("jdbc:postgresql://127.0.0.1:" + args[0] + "/orders-prod", props)) {
      try (PreparedStatement ps = c.prepareStatement("SELECT name, email, notes FROM customers WHERE id = ?")) {
        for (int round = 0; round < 3; round++) {
          ps.setInt(1, 1);
          try (ResultSet rs = ps.executeQuery()) { while (rs.next()) System.out.println("row|" + rs.getString(1) + "|" + rs.getString(2) + "|" + rs.getString(3)); }
        }
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
    expect(lines).toContain('blocked|42501|ERROR: DELETE and UPDATE without WHERE are blocked. (rule block-delete-without-where)');
    expect(lines.at(-1)).toBe('count|20');
  }, 120_000);
});
