import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { processAlive, processGroupAlive, runCommand } from './service.js';
import { startSshd, type StartedSshd } from './sshd.js';

describe('startSshd (real OpenSSH server and client)', () => {
  let sshd: StartedSshd;

  beforeAll(async () => {
    sshd = await startSshd();
  });

  afterAll(async () => {
    await sshd?.stop();
  });

  it('runs a command over ssh with key auth and a checked host key', async () => {
    const result = await sshd.exec('echo hello');
    expect(result.stderr).toBe('');
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toBe('hello\n');
  });

  it('reports the remote exit code', async () => {
    const result = await sshd.exec('exit 3');
    expect(result.exitCode).toBe(3);
  });

  it('publishes the host key in known_hosts for the loopback port', () => {
    expect(sshd.hostPublicKey).toMatch(/^ssh-ed25519 \S+$/);
    expect(readFileSync(sshd.knownHostsPath, 'utf8')).toBe(`[127.0.0.1]:${sshd.port} ${sshd.hostPublicKey}\n`);
  });

  it('refuses to connect when the known host key does not match', async () => {
    const wrongKnownHosts = `${sshd.dir}/wrong_known_hosts`;
    await runCommand('/usr/bin/ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', `${sshd.dir}/other_host_key`]);
    const otherKey = readFileSync(`${sshd.dir}/other_host_key.pub`, 'utf8').split(' ').slice(0, 2).join(' ');
    writeFileSync(wrongKnownHosts, `[127.0.0.1]:${sshd.port} ${otherKey}\n`);
    const args = sshd.clientArgs({ options: { UserKnownHostsFile: wrongKnownHosts } });
    const result = await runCommand('/usr/bin/ssh', [...args, 'echo', 'should-not-run'], { allowFailure: true });
    expect(result.exitCode).toBe(255);
    expect(result.stdout).toBe('');
  });

  it('rejects a client key that is not authorized', async () => {
    await runCommand('/usr/bin/ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', `${sshd.dir}/stranger_key`]);
    const args = sshd.clientArgs().map((arg) => (arg === sshd.clientPrivateKeyPath ? `${sshd.dir}/stranger_key` : arg));
    const result = await runCommand('/usr/bin/ssh', [...args, 'echo', 'should-not-run'], { allowFailure: true });
    expect(result.exitCode).toBe(255);
    expect(result.stderr).toContain('Permission denied');
  });
});

describe('sshd stop()', () => {
  it('leaves no process behind and removes the temp dir', async () => {
    const sshd = await startSshd();
    expect(processAlive(sshd.pid)).toBe(true);
    await sshd.stop();
    expect(processAlive(sshd.pid)).toBe(false);
    expect(processGroupAlive(sshd.pid)).toBe(false);
    expect(existsSync(sshd.dir)).toBe(false);
  });
});
