import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { assertValidEvent, EventFactory } from '@custodian/event-contracts';
import {
  loadPolicyFile,
  PolicyError,
  policyStream,
  PolicyStore,
  PolicyWatcher,
  toPolicyActivatedPayload,
  type PolicyActivation,
} from './index.js';
import { ANALYST_AGENT, SAMPLE_POLICY_PATH } from './testing/sample-policy.js';

const dir = mkdtempSync(join(tmpdir(), 'custodian-policy-store-'));
const watchers: PolicyWatcher[] = [];
afterEach(() => {
  for (const watcher of watchers.splice(0)) watcher.close();
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const policyText = (rules: string, header = 'name: hot\n'): string => `${header}rules:\n${rules}`;
const ALLOW_READS = '  - { id: reads, match: { sql: { kinds: [read] } }, decision: allow }\n';
const BLOCK_ALL = '  - { id: nothing, match: {}, decision: block }\n';

/** Waits for a callback-driven condition (file-system events arrive asynchronously). */
async function until<T>(what: string, probe: () => T | undefined): Promise<T> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const value = probe();
    if (value !== undefined) return value;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('PolicyStore', () => {
  it('numbers versions without a declaration, skips unchanged bytes, refuses invalid ones', () => {
    const activations: PolicyActivation[] = [];
    const rejections: PolicyError[] = [];
    const store = new PolicyStore({ onActivated: (a) => activations.push(a), onRejected: (e) => rejections.push(e) });
    expect(store.current).toBeUndefined();
    expect(store.activateBytes(Buffer.from(policyText(ALLOW_READS)), '/p.yaml').status).toBe('activated');
    expect(store.activateBytes(Buffer.from(policyText(ALLOW_READS)), '/p.yaml').status).toBe('unchanged');
    const rejected = store.activateBytes(Buffer.from('name: hot\nrules: [ { id: x } ]\n'), '/p.yaml');
    expect(rejected.status).toBe('rejected');
    expect(store.activateBytes(Buffer.from(policyText(BLOCK_ALL)), '/p.yaml').status).toBe('activated');
    expect(activations.map((a) => [a.version, a.rules, a.source])).toEqual([
      [1, 1, '/p.yaml'],
      [2, 1, '/p.yaml'],
    ]);
    expect(rejections.map((e) => e.code)).toEqual(['POLICY_INVALID']);
    expect(store.current?.rules[0]?.id).toBe('nothing');
  });

  it('a declared version must increase; undeclared ones continue after the highest', () => {
    const store = new PolicyStore();
    expect(store.activateBytes(Buffer.from(policyText(ALLOW_READS, 'name: hot\nversion: 5\n')), '/p.yaml').status).toBe('activated');
    const lower = store.activateBytes(Buffer.from(policyText(BLOCK_ALL, 'name: hot\nversion: 5\n')), '/p.yaml');
    expect(lower.status).toBe('rejected');
    if (lower.status === 'rejected') {
      expect(lower.error.code).toBe('POLICY_VERSION_NOT_INCREASED');
      expect(lower.error.issues[0]).toMatchObject({ file: '/p.yaml', line: 2, key: 'version' });
    }
    const next = store.activateBytes(Buffer.from(policyText(BLOCK_ALL)), '/p.yaml');
    expect(next.status === 'activated' && next.activation.version).toBe(6);
  });
});

describe('PolicyWatcher (hot reload)', () => {
  it('activates valid new versions, keeps the previous one when a new version is invalid', async () => {
    const file = join(dir, 'policy.yaml');
    writeFileSync(file, policyText(ALLOW_READS));
    const activations: PolicyActivation[] = [];
    const rejections: PolicyError[] = [];
    const watcher = PolicyWatcher.start(file, { debounceMs: 50, onActivated: (a) => activations.push(a), onRejected: (e) => rejections.push(e) });
    watchers.push(watcher);
    expect(activations.map((a) => a.version)).toEqual([1]);
    // The reads rule lets the analyst use the connection; the block-all version does not.
    expect(watcher.policy.authorizeConnection(ANALYST_AGENT).permitted).toBe(true);

    // An invalid edit: reported with file, line and key; version 1 stays active.
    writeFileSync(file, policyText('  - { id: reads, match: { sql: { kinds: [read] } }, decision: maybe }\n'));
    const rejection = await until('rejection', () => rejections[0]);
    expect(rejection.code).toBe('POLICY_INVALID');
    expect(rejection.issues[0]).toMatchObject({ file, line: 3, key: 'rules[0].decision' });
    expect(watcher.policy.version).toBe(1);
    expect(watcher.policy.authorizeConnection(ANALYST_AGENT).permitted).toBe(true);

    // A valid edit, written the way editors do (new file renamed over the old one).
    const temporary = join(dir, 'policy.yaml.tmp');
    writeFileSync(temporary, policyText(BLOCK_ALL));
    renameSync(temporary, file);
    const second = await until('second activation', () => activations[1]);
    expect(second).toMatchObject({ name: 'hot', version: 2, source: file, rules: 1 });
    expect(second.digest).not.toBe(activations[0]!.digest);
    expect(watcher.policy.version).toBe(2);
    expect(watcher.policy.authorizeConnection(ANALYST_AGENT).permitted).toBe(false);
  });

  it('refuses to start on an invalid first version', () => {
    const file = join(dir, 'broken.yaml');
    writeFileSync(file, 'name: [\n');
    expect(() => PolicyWatcher.start(file)).toThrow(PolicyError);
  });

  it('reload() re-reads on demand and reports a missing file without losing the active policy', () => {
    const file = join(dir, 'manual.yaml');
    writeFileSync(file, policyText(ALLOW_READS));
    const watcher = PolicyWatcher.start(file);
    watchers.push(watcher);
    rmSync(file);
    const result = watcher.reload();
    expect(result.status === 'rejected' && result.error.code).toBe('POLICY_FILE_UNREADABLE');
    expect(watcher.policy.rules[0]?.id).toBe('reads');
  });
});

describe('event payloads', () => {
  const factory = new EventFactory({ service: 'gateway', instance: 'policy-test' });

  it('builds a valid policy.activated event from an activation', () => {
    const policy = loadPolicyFile(SAMPLE_POLICY_PATH);
    const payload = toPolicyActivatedPayload(policy);
    expect(payload).toEqual({ policyName: 'orders-analysts', version: 1, digest: policy.digest, source: SAMPLE_POLICY_PATH, rules: 13 });
    const event = factory.create({ type: 'policy.activated', stream: policyStream(policy.name), sequence: 0, identity: null, payload });
    expect(event.stream).toBe('policy-orders-analysts');
    expect(() => assertValidEvent(event)).not.toThrow();
  });

  it('stream names keep to the allowed characters', () => {
    expect(policyStream('Orders / Analysts (EU)')).toBe('policy-Orders-Analysts-EU');
    expect(policyStream('***')).toBe('policy-unnamed');
  });
});
