// A real OpenSSH server (Debian package) on a free loopback port with throw-away host and
// client keys. Local-process backend only.
//
// Login user: as root we allow `root` itself, restricted by `AllowUsers root`,
// `PermitRootLogin prohibit-password` and public-key-only authentication on 127.0.0.1. This
// avoids creating OS accounts on the machine; the server is reachable only from loopback and
// only with the generated key. When not root, the current user logs in.
import { mkdirSync, readFileSync, writeFileSync, chmodSync } from 'node:fs';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import { startProcessService } from './process-service.js';
import {
  currentIdentity,
  freePort,
  isRoot,
  requireBinary,
  runCommand,
  type CommandResult,
  type StartedService,
} from './service.js';

export interface StartSshdOptions {
  /** Allow `ssh -L/-R` forwarding (default false). */
  readonly allowTcpForwarding?: boolean;
  /** Extra sshd_config lines, appended verbatim. */
  readonly extraConfig?: readonly string[];
  readonly startTimeoutMs?: number;
  readonly sshdBin?: string;
}

export interface SshClientOptions {
  readonly host?: string;
  readonly port?: number;
  readonly user?: string;
  /** Additional `-o` options, e.g. `{ ConnectTimeout: '5' }`. */
  readonly options?: Readonly<Record<string, string>>;
}

export interface StartedSshd extends StartedService {
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly clientPrivateKeyPath: string;
  readonly clientPublicKey: string;
  readonly knownHostsPath: string;
  /** `ssh-ed25519 AAAA…` of the server. */
  readonly hostPublicKey: string;
  readonly pid: number;
  readonly dir: string;
  readonly configPath: string;
  readonly logPath: string;
  /**
   * Runs `command` remotely with the real OpenSSH client (host key checked against
   * knownHostsPath). Resolves with the exit code; ssh's own failures are exit code 255.
   */
  exec(command: string): Promise<CommandResult>;
  /** Arguments for `ssh` up to (and including) the destination, for tests that drive ssh themselves. */
  clientArgs(options?: SshClientOptions): string[];
}

const SSH = '/usr/bin/ssh';
const SSH_KEYGEN = '/usr/bin/ssh-keygen';

function bannerReceived(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host, port });
    let data = '';
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1_000, () => done(false));
    socket.on('data', (chunk: Buffer) => {
      data += chunk.toString('latin1');
      if (data.includes('\n')) done(data.startsWith('SSH-2.0-'));
    });
    socket.once('error', () => done(false));
    socket.once('close', () => done(false));
  });
}

export async function startSshd(options: StartSshdOptions = {}): Promise<StartedSshd> {
  const sshdBin = requireBinary(options.sshdBin ?? '/usr/sbin/sshd', 'openssh-server');
  requireBinary(SSH, 'openssh-client');
  requireBinary(SSH_KEYGEN, 'openssh-client');
  const host = '127.0.0.1';
  const identity = currentIdentity();
  const user = identity.user;
  return startProcessService({ name: 'sshd', runAs: identity }, async (service) => {
    const { dir } = service;
    const hostKeyPath = join(dir, 'ssh_host_ed25519_key');
    const clientPrivateKeyPath = join(dir, 'client_ed25519');
    const authorizedKeysPath = join(dir, 'authorized_keys');
    const knownHostsPath = join(dir, 'known_hosts');
    const configPath = join(dir, 'sshd_config');
    const logPath = join(dir, 'sshd.log');

    await runCommand(SSH_KEYGEN, ['-q', '-t', 'ed25519', '-N', '', '-C', 'custodian-test-host', '-f', hostKeyPath]);
    await runCommand(SSH_KEYGEN, ['-q', '-t', 'ed25519', '-N', '', '-C', 'custodian-test-client', '-f', clientPrivateKeyPath]);
    const hostPublicKey = readFileSync(`${hostKeyPath}.pub`, 'utf8').trim().split(' ').slice(0, 2).join(' ');
    const clientPublicKey = readFileSync(`${clientPrivateKeyPath}.pub`, 'utf8').trim();
    writeFileSync(authorizedKeysPath, `${clientPublicKey}\n`, { mode: 0o600 });

    // Privilege separation needs this (empty, root-owned) dir when sshd runs as root.
    if (isRoot()) {
      mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
      chmodSync('/run/sshd', 0o755);
    }

    const port = await freePort();
    const config = [
      `ListenAddress ${host}`,
      `Port ${port}`,
      `HostKey ${hostKeyPath}`,
      `PidFile ${join(dir, 'sshd.pid')}`,
      `AuthorizedKeysFile ${authorizedKeysPath}`,
      // The key files live under /tmp (world-writable, sticky), which StrictModes rejects.
      'StrictModes no',
      'PubkeyAuthentication yes',
      'AuthenticationMethods publickey',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'UsePAM no',
      'PermitRootLogin prohibit-password',
      `AllowUsers ${user}`,
      `AllowTcpForwarding ${options.allowTcpForwarding ? 'yes' : 'no'}`,
      'X11Forwarding no',
      'PermitUserEnvironment no',
      'PrintMotd no',
      'PrintLastLog no',
      'UseDNS no',
      'LogLevel VERBOSE',
      'Subsystem sftp internal-sftp',
      ...(options.extraConfig ?? []),
      '',
    ].join('\n');
    writeFileSync(configPath, config, { mode: 0o600 });
    writeFileSync(knownHostsPath, `[${host}]:${port} ${hostPublicKey}\n`, { mode: 0o600 });

    // Validate the config first so a bad option fails with sshd's own message.
    await runCommand(sshdBin, ['-t', '-f', configPath]);
    // -D: stay in the foreground; -e: log to stderr (captured in the log file).
    const started = service.spawn(sshdBin, ['-D', '-e', '-f', configPath], { logPath });
    await service.waitUntilReady(() => bannerReceived(port, host), {
      timeoutMs: options.startTimeoutMs ?? 30_000,
      what: `sshd on ${host}:${port}`,
    });

    const clientArgs = (client: SshClientOptions = {}): string[] => {
      const extra = Object.entries(client.options ?? {}).flatMap(([k, v]) => ['-o', `${k}=${v}`]);
      return [
        // Ignore ~/.ssh/config and the global known_hosts: only what the harness set up counts.
        '-F', '/dev/null',
        // ssh keeps the first value of an option, so overrides go before the defaults.
        ...extra,
        '-i', clientPrivateKeyPath,
        '-o', 'IdentitiesOnly=yes',
        '-o', `UserKnownHostsFile=${knownHostsPath}`,
        '-o', 'GlobalKnownHostsFile=/dev/null',
        '-o', 'StrictHostKeyChecking=yes',
        '-o', 'BatchMode=yes',
        '-o', 'ConnectTimeout=10',
        '-o', 'LogLevel=ERROR',
        '-p', String(client.port ?? port),
        `${client.user ?? user}@${client.host ?? host}`,
      ];
    };

    return service.publish<StartedSshd>({
      name: 'sshd',
      backend: 'process',
      host,
      port,
      user,
      clientPrivateKeyPath,
      clientPublicKey,
      knownHostsPath,
      hostPublicKey,
      pid: started.pid,
      dir,
      configPath,
      logPath,
      exec: (command) => runCommand(SSH, [...clientArgs(), '--', command], { allowFailure: true, timeoutMs: 60_000 }),
      clientArgs,
    });
  });
}
