import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '@custodian/runtime-config';
import { Ed25519NoteSigner } from '@custodian/transparency-log';
import { afterAll, describe, expect, it } from 'vitest';
import { configuredEvidence } from './configured-evidence.js';

const dir = mkdtempSync(join(tmpdir(), 'custodian-evidence-host-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const config = (yaml: string, file = join(dir, 'custodian.yaml')) => parseConfig(`dataDir: ${join(dir, 'data')}\n${yaml}`, { file, env: {}, cwd: dir });

describe('configuredEvidence', () => {
  it('reads the signing key from an environment variable or a file, never printing it', () => {
    const { signer, skey } = Ed25519NoteSigner.generate('host.test/evidence');
    const fromEnv = configuredEvidence(config('evidence:\n  origin: host.test/evidence\n  signingKey: { fromEnv: EVIDENCE_KEY }\n'), { EVIDENCE_KEY: skey.reveal() }).loadSigner();
    expect(fromEnv.signer.keyId).toBe(signer.keyId);
    expect(fromEnv.source).toBe('environment variable EVIDENCE_KEY');
    writeFileSync(join(dir, 'log.skey'), `${skey.reveal()}\n`);
    const fromFile = configuredEvidence(config('evidence:\n  origin: host.test/evidence\n  signingKey: { fromFile: log.skey }\n'), {}).loadSigner();
    expect(fromFile.signer.vkey).toBe(signer.vkey);
    let message = '';
    try {
      configuredEvidence(config('evidence:\n  signingKey: { fromEnv: EVIDENCE_KEY }\n'), { EVIDENCE_KEY: `${skey.reveal()}x` }).loadSigner();
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toContain('not a valid Ed25519 skey');
    expect(message).not.toContain(skey.reveal().split('+').slice(4).join('+'));
  });

  it('creates the default key file only for the projector, and resolves paths against dataDir', async () => {
    const evidence = configuredEvidence(config(''), {});
    expect(evidence.statePath).toBe(join(dir, 'data', 'evidence.sqlite'));
    expect(evidence.policy).toEqual({ everyEvents: 1000, everySeconds: 60 });
    expect(() => evidence.loadSigner()).toThrow(expect.objectContaining({ code: 'EVIDENCE_KEY_INVALID' }));
    const created = evidence.loadSigner({ create: true });
    expect(created.created).toBe(true);
    expect(created.signer.name).toBe('custodian.local/evidence');
    expect(evidence.loadSigner().signer.keyId).toBe(created.signer.keyId);
    const state = await evidence.openState();
    await state.recordKey(created.signer.vkey);
    expect((await evidence.verifiers(state)).map((v) => v.keyId)).toEqual([created.signer.keyId]);
    await state.close();
  });

  it('keeps the pack attestation key apart from the log key (issue 20, item 2)', () => {
    const evidence = configuredEvidence(config(''), {});
    expect(() => evidence.loadAttestationSigner()).toThrow(expect.objectContaining({ code: 'EVIDENCE_KEY_INVALID' }));
    const created = evidence.loadAttestationSigner({ create: true });
    expect(created.created).toBe(true);
    expect(created.signer.name).toBe('custodian.local/evidence/packs');
    expect(created.source).toBe(`file ${join(dir, 'data', 'evidence-attestation.skey')}`);
    expect(evidence.loadAttestationSigner().signer.keyId).toBe(created.signer.keyId);
    const log = Ed25519NoteSigner.generate('host.test/evidence');
    const packs = Ed25519NoteSigner.generate('host.test/evidence/packs');
    const configured = configuredEvidence(config('evidence:\n  origin: host.test/evidence\n  attestationKey: { fromEnv: PACK_KEY }\n'), { PACK_KEY: packs.skey.reveal() }).loadAttestationSigner();
    expect(configured).toMatchObject({ created: false, source: 'environment variable PACK_KEY' });
    expect(configured.signer.vkey).toBe(packs.vkey);
    // The log key configured as the attestation key: refused, so an exporter never holds a key that signs checkpoints.
    expect(() => configuredEvidence(config('evidence:\n  origin: host.test/evidence\n  attestationKey: { fromEnv: PACK_KEY }\n'), { PACK_KEY: log.skey.reveal() }).loadAttestationSigner()).toThrow(/named host\.test\/evidence, the log's origin/);
  });

  it('puts the log in PostgreSQL with evidence.store (file or environment), its URL only by reference when it carries a password', async () => {
    const env = { CUSTODIAN_EVIDENCE__STORE__KIND: 'postgres', CUSTODIAN_EVIDENCE__STORE__CONNECTION_STRING__FROM_ENV: 'EVIDENCE_DB_URL' };
    const loaded = parseConfig(`dataDir: ${join(dir, 'data')}\n`, { env, cwd: dir });
    expect(loaded.config.evidence.store).toEqual({ kind: 'postgres', connectionString: { fromEnv: 'EVIDENCE_DB_URL' }, schema: 'custodian_evidence', migrate: true });
    const password = 'evidence-host-test-secret';
    // Port 1 on loopback: nothing listens, so the open fails fast, naming the schema and not the URL.
    const evidence = configuredEvidence(loaded, { EVIDENCE_DB_URL: `postgres://custodian:${password}@127.0.0.1:1/custodian` });
    expect(evidence.store).toBe('postgres (schema custodian_evidence)');
    const opening = evidence.openState();
    await expect(opening).rejects.toMatchObject({ code: 'EVIDENCE_LOG_UNAVAILABLE', message: expect.stringContaining('schema "custodian_evidence"') });
    await expect(opening).rejects.not.toThrow(password);
    expect(() => config(`evidence:\n  store: { kind: postgres, connectionString: "postgres://u:${password}@db/custodian" }\n`)).toThrow(/evidence\.store/);
    expect(configuredEvidence(config(''), {}).store).toBe(`sqlite ${join(dir, 'data', 'evidence.sqlite')}`);
  });

  it('refuses a vkey-shaped previous key that is not one', () => {
    expect(() => config('evidence:\n  previousKeys: ["not a key"]\n')).toThrow(/evidence\.previousKeys\.0/);
  });
});
