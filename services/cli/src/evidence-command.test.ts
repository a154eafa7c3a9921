// `custodian log verify`, `log keygen`, `evidence export`, `evidence verify` / `verify`, in process,
// against a real SQLite event store and evidence log in a temp data directory.
import 'reflect-metadata';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import BetterSqlite3 from 'better-sqlite3';
import { generateKeyPairSync } from 'node:crypto';
import { CredentialExposureScanner, attestCustody, type CustodySigningKey } from '@custodian/custody';
import { EventFactory, ManualClock, type CustodianEvent } from '@custodian/event-contracts';
import { SqliteEventStore } from '@custodian/event-store-sqlite';
import { MerkleLogProjection } from '@custodian/evidence';
import { configuredEvidence } from '@custodian/evidence-host';
import { loadConfig } from '@custodian/runtime-config';
import { EXIT, runCli, type CliIo } from './index.js';
import { EVIDENCE_EXIT } from './evidence-command.js';

const dir = mkdtempSync(join(tmpdir(), 'custodian-cli-evidence-'));
const configFile = join(dir, 'custodian.yaml');
let vkey = '';
const custodySessionId = '01890a5d-ac96-774b-bcce-b302099a8057';

function gatewayKey(keyId: string): CustodySigningKey {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return { keyId, privateKey, publicKeyPem: publicKey.export({ format: 'pem', type: 'spki' }).toString() };
}
const gateway = gatewayKey('gw-cli-test');

function io() {
  const out: string[] = [];
  const err: string[] = [];
  const value: CliIo = { stdout: (t) => void out.push(t), stderr: (t) => void err.push(t), env: {}, cwd: dir, waitForStop: () => new Promise(() => undefined) };
  return { io: value, stdout: () => out.join(''), stderr: () => err.join('') };
}

beforeAll(async () => {
  writeFileSync(configFile, `dataDir: ${join(dir, 'data')}\nevidence:\n  origin: cli.test/evidence\n`);
  const loaded = loadConfig({ file: configFile, env: {}, cwd: dir });
  const evidence = configuredEvidence(loaded, {});
  mkdirSync(loaded.config.dataDir, { recursive: true });
  const store = await SqliteEventStore.open({ path: loaded.config.eventStore.kind === 'sqlite' ? loaded.config.eventStore.path : '', pollIntervalMs: 20 });
  const clock = new ManualClock(new Date('2026-03-01T00:00:00Z'), 1000n);
  const factory = new EventFactory({ service: 'gateway', instance: 'test' }, clock);
  for (let i = 0; i < 12; i++) {
    const stream = `policy-p${i}`;
    await store.append(stream, [factory.create({ type: 'policy.activated', stream, sequence: 0, identity: { subject: i % 2 ? 'alice' : 'bob', issuer: 'https://idp', groups: [], kind: 'human' }, payload: { policyName: `p${i}`, version: 1, digest: 'a'.repeat(64), source: 'p.yaml', rules: i } }) as CustodianEvent], { expectedRevision: 'no-stream' });
  }
  // One session's custody statement, signed by the gateway key (after the policy events: their positions stay 1..12).
  const scanner = new CredentialExposureScanner([Buffer.from('cli-test-password')]);
  scanner.scanClientBytes(Buffer.from('hello'));
  const custody = attestCustody(
    {
      sessionId: custodySessionId,
      identity: { subject: 'carol', issuer: 'https://idp', kind: 'agent' },
      connection: { name: 'orders', protocol: 'postgres' },
      credentialRef: 'env:PGPASSWORD',
      method: 'scram-sha-256',
      scan: scanner.finish(),
      window: { openedAt: '2026-03-01T00:00:00.000000Z', closedAt: '2026-03-01T00:00:01.000000Z' },
      gateway: { instance: 'test' },
    },
    gateway,
  );
  const custodyStream = `session-${custodySessionId}`;
  await store.append(custodyStream, [factory.create({ type: 'custody.attested', stream: custodyStream, sequence: 0, identity: { subject: 'carol', issuer: 'https://idp', groups: [], kind: 'agent' }, payload: custody.payload }) as CustodianEvent], { expectedRevision: 'no-stream' });
  writeFileSync(join(dir, 'gateway-custody.pem'), gateway.publicKeyPem);
  writeFileSync(join(dir, 'other-custody.pem'), gatewayKey('other').publicKeyPem);
  const { signer } = evidence.loadSigner({ create: true });
  vkey = signer.vkey;
  const projection = await MerkleLogProjection.open({ eventStore: store, state: await evidence.openState(), signer, policy: evidence.policy, instance: 'test', clock });
  projection.start();
  await projection.caughtUp();
  await projection.checkpointNow();
  await projection.caughtUp();
  await projection.close();
  await store.close();
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The pack attestation key's vkey, as the operator publishes it (the first export created it). */
function packKey(): string {
  return configuredEvidence(loadConfig({ file: configFile, env: {}, cwd: dir }), {}).loadAttestationSigner().signer.vkey;
}

describe('custodian evidence export / verify', () => {
  it('exports a pack, records the export, and verifies it offline with the pinned key', async () => {
    const exported = io();
    expect(await runCli(['evidence', 'export', '--config', configFile, '--from', '2026-03-01T00:00:00Z', '--to', '2026-03-02T00:00:00Z', '--identity', 'alice', '--out', 'pack.tar.gz'], exported.io)).toBe(EXIT.ok);
    expect(exported.stderr()).toMatch(/6 events/);
    const pack = join(dir, 'pack.tar.gz');
    expect(statSync(pack).size).toBeGreaterThan(0);

    // Keys split by duty (issue 20, item 2): the export used the attestation key (created now), never the log key.
    expect(exported.stderr()).toMatch(/attested with cli\.test\/evidence\/packs\+[0-9a-f]{8}\+\S+ \(created just now: file .*evidence-attestation\.skey\)/);
    expect(packKey()).not.toBe(vkey);
    const verified = io();
    expect(await runCli(['evidence', 'verify', 'pack.tar.gz', '--key', vkey, '--attestation-key', packKey()], verified.io)).toBe(EXIT.ok);
    expect(verified.stdout()).toContain('✓ leaf-set proof');
    expect(verified.stdout()).toContain('OK: every signature, digest and proof holds');
    // An identity's pack of a log of header leaves (issue 20, item 1): nothing it selects was left out.
    expect(verified.stdout()).toContain('completeness: proven for its filter');
    expect(verified.stdout()).toMatch(/✓ attestation signature +DSSE \(in-toto Statement v1\) signed by cli\.test\/evidence\/packs\+[0-9a-f]{8} \(pinned\)/);
    expect(verified.stdout()).toMatch(/✓ checkpoints +1 checkpoint\(s\) signed by cli\.test\/evidence\+[0-9a-f]{8} \(pinned\)/);
    // The log key pinned but not the attestation key: not verified (whoever exports could attest anything).
    const logOnly = io();
    expect(await runCli(['verify', 'pack.tar.gz', '--key', vkey], logOnly.io)).toBe(3);
    expect(logOnly.stdout()).toContain('pin it with --attestation-key');
    // The log key given as the attestation key does not verify the attestation: the duties are split.
    const swapped = io();
    expect(await runCli(['verify', 'pack.tar.gz', '--key', vkey, '--attestation-key', vkey], swapped.io)).toBe(1);
    expect(swapped.stdout()).toContain('FAILED: attestation signature: the attestation signature does not verify');
    // Unpinned (issue 20, item 3): never exit 0 and never "OK" unless --trust-pack-keys says self-consistency is all that is wanted.
    const unpinned = io();
    expect(await runCli(['verify', 'pack.tar.gz'], unpinned.io)).toBe(3);
    expect(unpinned.stdout()).toContain('taken from the pack itself');
    expect(unpinned.stdout()).toContain('NOT VERIFIED: every check holds, but only against keys the pack carries');
    expect(unpinned.stdout()).not.toContain('OK:');
    const unpinnedJson = io();
    expect(await runCli(['verify', 'pack.tar.gz', '--json'], unpinnedJson.io)).toBe(3);
    expect(JSON.parse(unpinnedJson.stdout())).toMatchObject({ ok: false, verdict: 'self-consistent', keysPinned: false });
    const trusting = io();
    expect(await runCli(['verify', 'pack.tar.gz', '--trust-pack-keys'], trusting.io)).toBe(EXIT.ok);
    expect(trusting.stdout()).toContain('SELF-CONSISTENT ONLY (--trust-pack-keys)');

    const store = await SqliteEventStore.open({ path: join(dir, 'data', 'events.sqlite') });
    const events: CustodianEvent[] = [];
    for await (const r of store.readAll()) if (r.event.type === 'evidence-pack.exported') events.push(r.event);
    await store.close();
    expect(events).toHaveLength(1);
    expect(events[0]!.source.service).toBe('cli');
    expect(events[0]!.payload).toMatchObject({ eventCount: 6, filter: { identity: 'alice' } });

    const bytes = readFileSync(pack);
    bytes[bytes.length - 12]! ^= 0xff;
    writeFileSync(join(dir, 'broken.tar.gz'), bytes);
    const broken = io();
    expect(await runCli(['verify', 'broken.tar.gz', '--key', vkey], broken.io)).toBe(1);
    expect(broken.stdout()).toMatch(/FAILED: archive: /);
  });

  it('verifies the custody statements in a pack, against a pinned gateway key with --custody-key', async () => {
    expect(await runCli(['evidence', 'export', '--config', configFile, '--from', '2026-03-01T00:00:00Z', '--to', '2026-03-02T00:00:00Z', '--identity', 'carol', '--out', 'carol.tar.gz'], io().io)).toBe(EXIT.ok);
    const unpinned = io();
    expect(await runCli(['verify', 'carol.tar.gz', '--key', vkey, '--attestation-key', packKey()], unpinned.io)).toBe(EXIT.ok);
    expect(unpinned.stdout()).toMatch(/✓ custody statements +1 custody statement\(s\) verified, signed by key id\(s\) gw-cli-test, the key\(s\) each event carries/);
    expect(unpinned.stdout()).toContain('pin the gateway key with --custody-key');
    const pinned = io();
    expect(await runCli(['verify', 'carol.tar.gz', '--key', vkey, '--attestation-key', packKey(), '--custody-key', 'gateway-custody.pem'], pinned.io)).toBe(EXIT.ok);
    expect(pinned.stdout()).toMatch(/✓ custody statements +1 custody statement\(s\) verified, signed by pinned key\(s\) gw-cli-test; none states an exposure/);
    const json = io();
    expect(await runCli(['verify', 'carol.tar.gz', '--key', vkey, '--attestation-key', packKey(), '--custody-key', 'gateway-custody.pem', '--json'], json.io)).toBe(EXIT.ok);
    expect((JSON.parse(json.stdout()) as { custody: unknown }).custody).toEqual({ statements: 1, exposed: 0, keyIds: ['gw-cli-test'], pinned: true });
    const wrong = io();
    expect(await runCli(['verify', 'carol.tar.gz', '--key', vkey, '--attestation-key', packKey(), '--custody-key', 'other-custody.pem'], wrong.io)).toBe(1);
    expect(wrong.stdout()).toMatch(/FAILED: custody statements: event 1: the custody statement does not verify: session 01890a5d-ac96-774b-bcce-b302099a8057: signed by key gw-cli-test, which is not one of the 1 trusted custody key\(s\)/);
    const notAKey = io();
    expect(await runCli(['verify', 'carol.tar.gz', '--custody-key', 'custodian.yaml'], notAKey.io)).toBe(EXIT.usage);
    expect(notAKey.stderr()).toContain('not a PEM public key');
    expect(await runCli(['verify', 'carol.tar.gz', '--custody-key', 'missing.pem'], io().io)).toBe(EXIT.usage);
  });

  it('refuses a pack that does not prove its completeness unless --allow-incomplete accepts it, and says so (issue 20)', async () => {
    // The test vector of a plain filtered pack issued instead of the headers pack its log allows.
    const vectors = join(import.meta.dirname, '../../../schemas/evidence/test-vectors');
    const index = JSON.parse(readFileSync(join(vectors, 'index.json'), 'utf8')) as { keys: { log: string[]; attestation: string } };
    const pack = join(vectors, 'item2-filtered-instead-of-headers.tar.gz');
    const pinned = ['--key', index.keys.log[0]!, '--attestation-key', index.keys.attestation];
    const refused = io();
    expect(await runCli(['verify', pack, ...pinned], refused.io)).toBe(EVIDENCE_EXIT.failed);
    expect(refused.stdout()).toContain('✗ completeness');
    expect(refused.stdout()).toContain('FAILED: completeness: NOT proven');
    const accepted = io();
    expect(await runCli(['verify', pack, ...pinned, '--allow-incomplete'], accepted.io)).toBe(EXIT.ok);
    expect(accepted.stdout()).toContain('completeness: NOT proven');
    expect(accepted.stdout()).toContain('OK, COMPLETENESS NOT PROVEN (--allow-incomplete)');
    // A genuine pack that proves completeness is unaffected by the flag.
    const genuine = io();
    expect(await runCli(['verify', join(vectors, 'genuine-identity.tar.gz'), ...pinned, '--allow-incomplete'], genuine.io)).toBe(EXIT.ok);
    expect(genuine.stdout()).toContain('OK: every signature, digest and proof holds');
  });

  it('refuses bad usage with exit 2', async () => {
    const missing = io();
    expect(await runCli(['evidence', 'export', '--config', configFile, '--from', '2026-03-01T00:00:00Z'], missing.io)).toBe(EXIT.usage);
    expect(missing.stderr()).toContain('export needs --from, --to and --out');
    const badTime = io();
    expect(await runCli(['evidence', 'export', '--config', configFile, '--from', 'yesterday', '--to', '2026-03-02T00:00:00Z', '--out', 'x.tar.gz'], badTime.io)).toBe(EXIT.usage);
    expect(badTime.stderr()).toContain('EVIDENCE_SCOPE_INVALID');
    expect(await runCli(['verify'], io().io)).toBe(EXIT.usage);
  });
});

describe('custodian log', () => {
  it('keygen writes a 0600 skey and prints its vkey', async () => {
    const run = io();
    expect(await runCli(['log', 'keygen', '--origin', 'custodian.example/evidence', '--out', 'keys/next.skey'], run.io)).toBe(EXIT.ok);
    expect(run.stdout()).toMatch(/^custodian\.example\/evidence\+[0-9a-f]{8}\+/);
    expect(statSync(join(dir, 'keys/next.skey')).mode & 0o777).toBe(0o600);
    expect(run.stdout()).not.toContain('PRIVATE');
  });

  it('verify passes on the untouched store, then names a modified event and its position', async () => {
    // The exports above were recorded after the last checkpoint: nothing wrong, but not verified yet (exit 3).
    const pending = io();
    expect(await runCli(['log', 'verify', '--config', configFile], pending.io)).toBe(EVIDENCE_EXIT.unpinned);
    expect(pending.stdout()).toMatch(/NOT VERIFIED: \d+ event\(s\) after the last checkpoint are not covered by a signature yet/);
    const loaded = loadConfig({ file: configFile, env: {}, cwd: dir });
    const evidence = configuredEvidence(loaded, {});
    const store = await SqliteEventStore.open({ path: loaded.config.eventStore.kind === 'sqlite' ? loaded.config.eventStore.path : '', pollIntervalMs: 20 });
    const projection = await MerkleLogProjection.open({ eventStore: store, state: await evidence.openState(), signer: evidence.loadSigner().signer, policy: evidence.policy, instance: 'test', clock: new ManualClock(new Date('2026-03-02T00:00:00Z'), 1000n) });
    projection.start();
    await projection.caughtUp();
    await projection.checkpointNow();
    await projection.caughtUp();
    await projection.close();
    await store.close();

    const ok = io();
    expect(await runCli(['log', 'verify', '--config', configFile], ok.io)).toBe(EXIT.ok);
    expect(ok.stdout()).toContain('OK: the event store matches every signed checkpoint');

    const db = new BetterSqlite3(join(dir, 'data', 'events.sqlite'));
    db.exec('DROP TRIGGER events_refuse_update');
    db.prepare("UPDATE events SET json = json_set(json, '$.payload.rules', 99) WHERE position = 5").run();
    db.close();
    const tampered = io();
    expect(await runCli(['log', 'verify', '--config', configFile, '--key', vkey], tampered.io)).toBe(1);
    expect(tampered.stdout()).toMatch(/✗ event-modified at C5\/P5 \(leaf 4\)/);
    expect(tampered.stdout()).toContain('checkpoint-root-mismatch');
  });
});
