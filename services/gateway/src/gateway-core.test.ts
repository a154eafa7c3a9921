// The gateway core over a real SQLite event store: one policy watcher whose activations are
// recorded as policy.activated (at start and on hot reload), one masking key and one custody
// signing key generated once in the data directory and kept across restarts, audiences per listener.
import { createPublicKey, sign, verify } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CustodianEvent } from '@custodian/event-contracts';
import { StoreEvidencePipeline } from '@custodian/evidence-pipeline';
import { SqliteEventStore } from '@custodian/event-store-sqlite';
import { createLogger } from '@custodian/observability';
import { ConfigError, parseConfig, type LoadedConfig } from '@custodian/runtime-config';
import { openGatewayCore, type GatewayCore } from './gateway-core.js';
import { readOrCreateKeyFile } from './gateway-keys.js';

let dir: string;
let store: SqliteEventStore;
let pipeline: StoreEvidencePipeline;
const logger = createLogger({ service: 'gateway', level: 'silent' });

const POLICY_V1 = 'name: core-test\nrules:\n  - id: read\n    match: { sql: { kinds: [read] } }\n    decision: allow\n';
const POLICY_V2 = `${POLICY_V1}  - id: no-ddl\n    match: { sql: { kinds: [ddl] } }\n    decision: block\n`;

function configIn(dataDir: string, extra = ''): LoadedConfig {
  return parseConfig(`dataDir: ${dataDir}\ngateways:\n  instance: gw-core-test\n  policyFile: policy.yaml\n  audiences: [urn:custodian:gateway]\n${extra}`, { file: join(dir, 'custodian.yaml'), env: {}, cwd: dir });
}

async function open(loaded: LoadedConfig): Promise<GatewayCore> {
  return openGatewayCore({ loaded, eventStore: store, logger, evidence: { pipeline, strict: true } });
}

async function activations(): Promise<CustodianEvent[]> {
  const out: CustodianEvent[] = [];
  for await (const recorded of store.readAll()) if (recorded.event.type === 'policy.activated') out.push(recorded.event);
  return out;
}

async function until<T>(probe: () => Promise<T | undefined>, timeoutMs = 5_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'custodian-gateway-core-'));
  writeFileSync(join(dir, 'policy.yaml'), POLICY_V1);
  store = await SqliteEventStore.open({ path: join(dir, 'events.sqlite') });
  pipeline = new StoreEvidencePipeline({ store, instance: 'gw-core-test' });
});

afterAll(async () => {
  await pipeline?.close();
  await store?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('gateway core', () => {
  it('records policy.activated for the first version and for each hot-reloaded one', async () => {
    const core = await open(configIn(join(dir, 'data-policy')));
    try {
      const first = await until(async () => ((await activations()).length >= 1 ? activations() : undefined));
      expect(first[0]).toMatchObject({ type: 'policy.activated', sequence: 0, identity: null, source: { service: 'gateway', instance: 'gw-core-test' }, payload: { policyName: 'core-test', version: 1, rules: 1, source: join(dir, 'policy.yaml') } });
      expect(first[0]!.stream).toMatch(/^policy-core-test-[0-9a-f-]{36}$/);
      writeFileSync(join(dir, 'policy.yaml'), POLICY_V2);
      const both = await until(async () => {
        const found = await activations();
        return found.length >= 2 ? found : undefined;
      });
      expect(both[1]).toMatchObject({ payload: { policyName: 'core-test', version: 2, rules: 2 } });
      expect(core.policy.policy.version).toBe(2);
    } finally {
      await core.close();
    }
  });

  it('generates the masking key and the custody signing key once (mode 0600) and keeps them across restarts', async () => {
    const dataDir = join(dir, 'data-keys');
    const first = await open(configIn(dataDir));
    await first.close();
    const second = await open(configIn(dataDir));
    await second.close();
    const maskingFile = join(dataDir, 'gateway', 'masking.key');
    const signingFile = join(dataDir, 'gateway', 'custody-signing.key');
    for (const file of [maskingFile, signingFile]) expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(Buffer.from(second.maskingKey)).toEqual(Buffer.from(first.maskingKey));
    expect(first.maskingKey.length).toBeGreaterThanOrEqual(32);
    expect(second.custodySigner.keyId).toBe(first.custodySigner.keyId);
    expect(first.custodySigner.keyId).toMatch(/^[0-9a-f]{64}$/);
    expect(first.custodySigner.privateKey.asymmetricKeyType).toBe('ed25519');
    expect(readFileSync(signingFile, 'utf8')).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
    // What a statement signed by one start verifies with the public key of the next.
    const message = Buffer.from('DSSEv1 28 application/vnd.in-toto+json 2 {}');
    const signature = sign(null, message, first.custodySigner.privateKey);
    expect(verify(null, message, createPublicKey(second.custodySigner.publicKeyPem), signature)).toBe(true);
    // A different data directory is a different gateway: different keys.
    const other = await open(configIn(join(dir, 'data-other')));
    await other.close();
    expect(Buffer.from(other.maskingKey)).not.toEqual(Buffer.from(first.maskingKey));
    // The generated masking key file, used as a configured reference, is the same key.
    const configured = await open(configIn(join(dir, 'data-configured'), `  maskingKey: { fromFile: ${maskingFile} }\n`));
    await configured.close();
    expect(Buffer.from(configured.maskingKey)).toEqual(Buffer.from(first.maskingKey));
  });

  it('two processes creating a key file at once agree on one content', async () => {
    const path = join(dir, 'race', 'masking.key');
    let n = 0;
    const results = await Promise.all(Array.from({ length: 8 }, () => readOrCreateKeyFile(path, () => `candidate-${n++}\n`)));
    const contents = new Set(results.map((r) => r.content.toString()));
    expect(contents.size).toBe(1);
    expect(results.filter((r) => r.created)).toHaveLength(1);
  });

  it('a configured masking key that is too short or unset is a config error naming gateways.maskingKey', async () => {
    writeFileSync(join(dir, 'short.key'), 'short\n');
    const short = await open(configIn(join(dir, 'data-short'), '  maskingKey: { fromFile: short.key }\n')).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(short).toBeInstanceOf(ConfigError);
    expect((short as ConfigError).message).toContain('gateways.maskingKey');
    expect((short as ConfigError).message).not.toContain('short\n');
    const unset = await open(configIn(join(dir, 'data-unset'), '  maskingKey: { fromEnv: CUSTODIAN_TEST_UNSET_MASKING_KEY }\n')).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(unset).toMatchObject({ code: 'CONFIG_SECRET_UNRESOLVED', message: expect.stringContaining('env:CUSTODIAN_TEST_UNSET_MASKING_KEY') });
  });

  it("audiences: a listener's own, else the gateway's", async () => {
    const core = await open(configIn(join(dir, 'data-audiences')));
    await core.close();
    expect(core.audiencesFor({ audiences: ['urn:custodian:pg'] })).toEqual(['urn:custodian:pg']);
    expect(core.audiencesFor({})).toEqual(['urn:custodian:gateway']);
  });
});
