// `custodian log verify`, `evidence export` and `evidence verify` against an evidence log held in
// PostgreSQL (evidence.store.kind: postgres) over the PostgreSQL event store, both on a real server:
// the projection writes the log with one handle, the CLI reads it with its own (as the api would on
// another host), the pack verifies offline, and an altered tree node or event is found.
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EventFactory, ManualClock, type CustodianEvent } from '@custodian/event-contracts';
import { PostgresEventStore } from '@custodian/event-store-postgres';
import { MerkleLogProjection } from '@custodian/evidence';
import { configuredEvidence } from '@custodian/evidence-host';
import { loadConfig } from '@custodian/runtime-config';
import { startPostgres, type StartedPostgres } from '@custodian/test-harness';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EVIDENCE_EXIT } from './evidence-command.js';
import { EXIT, runCli, type CliIo } from './index.js';

const dir = mkdtempSync(join(tmpdir(), 'custodian-cli-evidence-pg-'));
const configFile = join(dir, 'custodian.yaml');
const ORIGIN = 'cli-pg.test/evidence';
let server: StartedPostgres;
let env: Record<string, string>;
let logVkey = '';

function io() {
  const out: string[] = [];
  const err: string[] = [];
  const value: CliIo = { stdout: (t) => void out.push(t), stderr: (t) => void err.push(t), env, cwd: dir, waitForStop: () => new Promise(() => undefined) };
  return { io: value, stdout: () => out.join(''), stderr: () => err.join('') };
}

beforeAll(async () => {
  server = await startPostgres();
  env = { EVENT_STORE_URL: server.connectionString() };
  // The event store's reference is resolved from the process environment where the store is opened.
  process.env['EVENT_STORE_URL'] = env['EVENT_STORE_URL'];
  writeFileSync(
    configFile,
    [
      `dataDir: ${join(dir, 'data')}`,
      'eventStore: { kind: postgres, connectionString: { fromEnv: EVENT_STORE_URL } }',
      'evidence:',
      `  origin: ${ORIGIN}`,
      '  store: { kind: postgres, connectionString: { fromEnv: EVENT_STORE_URL } }',
      '',
    ].join('\n'),
  );
  const evidence = configuredEvidence(loadConfig({ file: configFile, env, cwd: dir }), env);
  const store = await PostgresEventStore.open({ connectionString: server.connectionString(), pollIntervalMs: 50 });
  const clock = new ManualClock(new Date('2026-03-01T00:00:00Z'), 1000n);
  const factory = new EventFactory({ service: 'gateway', instance: 'test' }, clock);
  for (let i = 0; i < 12; i++) {
    const stream = `policy-p${i}`;
    const identity = { subject: i % 2 ? 'alice' : 'bob', issuer: 'https://idp', groups: [], kind: 'human' as const };
    await store.append(stream, [factory.create({ type: 'policy.activated', stream, sequence: 0, identity, payload: { policyName: `p${i}`, version: 1, digest: 'a'.repeat(64), source: 'p.yaml', rules: i } }) as CustodianEvent], {
      expectedRevision: 'no-stream',
    });
  }
  const { signer } = evidence.loadSigner({ create: true });
  logVkey = signer.vkey;
  const projection = await MerkleLogProjection.open({ eventStore: store, state: await evidence.openState(), signer, policy: evidence.policy, instance: 'test', clock });
  projection.start();
  await projection.caughtUp();
  await projection.checkpointNow();
  await projection.caughtUp();
  await projection.close();
  await store.close();
}, 120_000);

afterAll(async () => {
  delete process.env['EVENT_STORE_URL'];
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('a PostgreSQL-backed evidence log through the CLI', () => {
  it('log verify passes; a pack exported from it verifies offline with pinned keys; the log is in PostgreSQL, not in dataDir', async () => {
    const verified = io();
    expect(await runCli(['log', 'verify', '--config', configFile, '--key', logVkey], verified.io), verified.stdout() + verified.stderr()).toBe(EVIDENCE_EXIT.ok);
    expect(verified.stdout()).toMatch(new RegExp(`evidence log ${ORIGIN.replace(/\./g, '\\.')}: 13 events, \\d+ checkpoints checked`));
    expect(verified.stdout()).toContain('OK: the event store matches every signed checkpoint');

    const exported = io();
    expect(await runCli(['evidence', 'export', '--config', configFile, '--from', '2026-03-01T00:00:00Z', '--to', '2026-03-02T00:00:00Z', '--identity', 'alice', '--out', 'pack.tar.gz'], exported.io), exported.stderr()).toBe(EXIT.ok);
    expect(exported.stderr()).toMatch(/6 events/);
    const packKey = configuredEvidence(loadConfig({ file: configFile, env, cwd: dir }), env).loadAttestationSigner().signer.vkey;
    const pack = io();
    expect(await runCli(['evidence', 'verify', 'pack.tar.gz', '--key', logVkey, '--attestation-key', packKey], pack.io), pack.stdout()).toBe(EXIT.ok);
    expect(pack.stdout()).toContain('✓ leaf-set proof');
    expect(pack.stdout()).toContain('OK: every signature, digest and proof holds');

    const tables = await server.psql("SELECT string_agg(table_name, ',' ORDER BY table_name) FROM information_schema.tables WHERE table_schema = 'custodian_evidence'");
    expect(tables.split(',')).toEqual(expect.arrayContaining(['checkpoints', 'leaves', 'tlog_nodes']));
    // The 12 policy events at least (the checkpoint event may or may not be a leaf yet when the projection closed).
    expect(Number(await server.psql('SELECT count(*) FROM custodian_evidence.leaves'))).toBeGreaterThanOrEqual(12);
    expect(existsSync(join(dir, 'data', 'evidence.sqlite'))).toBe(false);
  });

  it('log verify finds an interior node of the stored tree altered by the owner (triggers disabled), and an event altered in the store', async () => {
    await server.psql(
      'ALTER TABLE custodian_evidence.tlog_nodes DISABLE TRIGGER USER; UPDATE custodian_evidence.tlog_nodes SET hash = decode(repeat(\'07\', 32), \'hex\') WHERE level = 2 AND idx = 1; ALTER TABLE custodian_evidence.tlog_nodes ENABLE TRIGGER USER;',
    );
    const node = io();
    expect(await runCli(['log', 'verify', '--config', configFile, '--key', logVkey], node.io)).toBe(EVIDENCE_EXIT.failed);
    expect(node.stdout()).toContain('the log database was altered');
    expect(node.stdout()).toMatch(/FAILED: \d+ problem\(s\)/);

    await server.psql(
      "ALTER TABLE custodian.events DISABLE TRIGGER USER; UPDATE custodian.events SET json = replace(json, '\"rules\":3', '\"rules\":4') WHERE stream = 'policy-p3'; ALTER TABLE custodian.events ENABLE TRIGGER USER;",
    );
    const event = io();
    expect(await runCli(['log', 'verify', '--config', configFile, '--key', logVkey], event.io)).toBe(EVIDENCE_EXIT.failed);
    expect(event.stdout()).toMatch(/event-modified.*was modified/);
  });
});
