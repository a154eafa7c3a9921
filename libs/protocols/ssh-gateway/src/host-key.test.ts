import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ssh2 from 'ssh2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readOrCreateSshHostKey } from './host-key.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'custodian-host-key-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('readOrCreateSshHostKey', () => {
  it('generates keys ssh2 can read, every time (ssh2 mis-writes about one Ed25519 key in 256; 1,000 fresh keys)', async () => {
    const fingerprints = new Set<string>();
    for (let i = 0; i < 1_000; i++) {
      const path = join(dir, `key-${i}`, 'ssh-host-ed25519.key');
      const key = await readOrCreateSshHostKey(path);
      expect(key.created).toBe(true);
      expect(ssh2.utils.parseKey(await readFile(path))).not.toBeInstanceOf(Error);
      fingerprints.add(key.fingerprint);
    }
    expect(fingerprints.size).toBe(1_000);
  });

  it('reads the key it generated on the next start, unchanged', async () => {
    const path = join(dir, 'again', 'ssh-host-ed25519.key');
    const first = await readOrCreateSshHostKey(path);
    const second = await readOrCreateSshHostKey(path);
    expect(second.created).toBe(false);
    expect(second.fingerprint).toBe(first.fingerprint);
  });
});
