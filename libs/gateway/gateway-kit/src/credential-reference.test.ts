// Held credentials are read at each use from their reference: a rotated file or variable applies
// to the next read; errors name the reference, never a value.
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CredentialError, CredentialReference } from './credential-reference.js';

const dir = mkdtempSync(join(tmpdir(), 'gateway-kit-credential-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function refusal(promise: Promise<unknown>): Promise<CredentialError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(CredentialError);
  return error as CredentialError;
}

describe('CredentialReference', () => {
  it('a file reference is re-read at each read: rotation applies to the next login', async () => {
    writeFileSync(join(dir, 'db-password'), 'first-secret\n');
    const credential = CredentialReference.from({ fromFile: 'db-password' }, { baseDir: dir });
    expect(credential.ref).toBe(`file:${join(dir, 'db-password')}`);
    expect(await credential.read()).toBe('first-secret');
    writeFileSync(join(dir, 'db-password'), 'rotated-secret\r\n');
    expect(await credential.read()).toBe('rotated-secret');
    expect(Buffer.from(await credential.readBytes()).toString()).toBe('rotated-secret');
  });

  it('an environment reference is read when used, not when built', async () => {
    const env: Record<string, string | undefined> = {};
    const credential = CredentialReference.from({ fromEnv: 'UPSTREAM_PASSWORD' }, { env });
    expect(credential.ref).toBe('env:UPSTREAM_PASSWORD');
    expect(String(credential)).toBe('env:UPSTREAM_PASSWORD');
    const unset = await refusal(credential.read());
    expect(unset.code).toBe('CREDENTIAL_UNSET');
    env['UPSTREAM_PASSWORD'] = 'v1';
    expect(await credential.read()).toBe('v1');
    env['UPSTREAM_PASSWORD'] = 'v2';
    expect(await credential.read()).toBe('v2');
  });

  it('keeps binary file content as bytes (only one trailing newline is dropped)', async () => {
    writeFileSync(join(dir, 'key.bin'), Buffer.from([0x00, 0xff, 0x0a, 0x10, 0x0a]));
    const bytes = await CredentialReference.from({ fromFile: join(dir, 'key.bin') }).readBytes();
    expect([...bytes]).toEqual([0x00, 0xff, 0x0a, 0x10]);
  });

  it('missing, empty, unreadable and oversized files are typed errors naming the reference only', async () => {
    const missing = await refusal(CredentialReference.from({ fromFile: join(dir, 'absent') }).read());
    expect(missing.code).toBe('CREDENTIAL_UNREADABLE');
    expect(missing.message).toContain('ENOENT');
    writeFileSync(join(dir, 'empty'), '\n');
    expect((await refusal(CredentialReference.from({ fromFile: join(dir, 'empty') }).read())).code).toBe('CREDENTIAL_EMPTY');
    writeFileSync(join(dir, 'big'), 'x'.repeat(100));
    const big = await refusal(CredentialReference.from({ fromFile: join(dir, 'big') }, { maxBytes: 64 }).read());
    expect(big.code).toBe('CREDENTIAL_TOO_LARGE');
    writeFileSync(join(dir, 'locked'), 'do-not-print-me');
    chmodSync(join(dir, 'locked'), 0o000);
    // root reads any file: the permission case only means something for other users.
    if (process.getuid?.() !== 0) {
      const locked = await refusal(CredentialReference.from({ fromFile: join(dir, 'locked') }).read());
      expect(locked.code).toBe('CREDENTIAL_UNREADABLE');
    }
    for (const error of [missing, big]) expect(error.message).not.toContain('x'.repeat(10));
  });
});
