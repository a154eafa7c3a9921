// The gateway service with `gateways.ssh` enabled, built from a YAML config exactly as the embedded
// host and the standalone process build it: OpenSSH `ssh` (token as the password, via sshpass) runs
// an allowed command and gets a block (126); the host key is generated in <dataDir>/gateway/; the
// upstream key and known_hosts come by reference; readiness includes the listener; an unusable
// host-key reference stops the start with an error naming file, line and key.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SqliteEventStore } from '@custodian/event-store-sqlite';
import { createLogger } from '@custodian/observability';
import { startNestService, type RunningNestService } from '@custodian/observability/nest';
import { ConfigError, parseConfig } from '@custodian/runtime-config';
import { readOrCreateSshHostKey } from '@custodian/ssh-gateway';
import { startOidcProvider, startSshd, type StartedOidcProvider, type StartedSshd } from '@custodian/test-harness';
import { GatewayModule } from './index.js';

let dir: string;
let sshd: StartedSshd;
let oidc: StartedOidcProvider;
let store: SqliteEventStore;
let service: RunningNestService;
let port = 0;

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return typeof address === 'object' && address ? address.port : 0;
}

function configText(sshSection: string): string {
  return `
identity:
  issuers:
    - issuer: ${oidc.issuer}
      audiences: [${oidc.defaultAudience}]
dataDir: data
gateways:
  policyFile: policy.yaml
  ssh:
    enabled: true
${sshSection}`;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'custodian-gateway-ssh-'));
  [sshd, oidc] = await Promise.all([startSshd(), startOidcProvider({ clients: [{ clientId: 'agent-1', groups: ['ops'], kind: 'agent' }] })]);
  port = await freePort();
  writeFileSync(
    join(dir, 'policy.yaml'),
    `name: ssh-service-test
rules:
  - id: no-rm
    match: { shell: { programs: [rm] } }
    decision: block
  - id: plain-tools
    match: { identity: { groups: [ops] }, shell: { programs: [echo, 'true'] } }
    decision: allow
`,
  );
  const loaded = parseConfig(
    configText(`    listen: { host: 127.0.0.1, port: ${port} }
    connections:
      - name: bastion
        upstream:
          host: ${sshd.host}
          port: ${sshd.port}
          username: ${sshd.user}
          credential: { kind: private-key, secret: { fromEnv: BASTION_SSH_KEY } }
          knownHosts: { fromFile: ${sshd.knownHostsPath} }
`),
    { file: join(dir, 'custodian.yaml'), env: {}, cwd: dir },
  );
  process.env['BASTION_SSH_KEY'] = await readFile(sshd.clientPrivateKeyPath, 'utf8');
  store = await SqliteEventStore.open({ path: join(dir, 'events.sqlite') });
  const logger = createLogger({ service: 'gateway', level: 'silent' });
  service = await startNestService({ module: GatewayModule.register({ eventStore: store, logger, loaded }), logger, listen: { host: '127.0.0.1', port: 0 }, shutdownHooks: false });
}, 120_000);

afterAll(async () => {
  await service?.close();
  await store?.close();
  await Promise.all([sshd?.stop(), oidc?.stop()]);
  delete process.env['BASTION_SSH_KEY'];
  rmSync(dir, { recursive: true, force: true });
});

async function ssh(token: string, command: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const hostKey = await readOrCreateSshHostKey(join(dir, 'data', 'gateway', 'ssh-host-ed25519.key'));
  const knownHosts = join(dir, 'gateway_known_hosts');
  writeFileSync(knownHosts, `[127.0.0.1]:${port} ${hostKey.publicKey}\n`);
  const args = ['-e', '/usr/bin/ssh', '-p', String(port), '-o', `UserKnownHostsFile=${knownHosts}`, '-o', 'StrictHostKeyChecking=yes', '-o', 'PreferredAuthentications=password', '-o', 'PubkeyAuthentication=no', 'bastion@127.0.0.1', ...command];
  try {
    const { stdout, stderr } = await promisify(execFile)('sshpass', args, { env: { ...process.env, SSHPASS: token }, timeout: 30_000 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

describe('gateway service: gateways.ssh', () => {
  it('serves OpenSSH clients as configured (host key generated in the data dir) and reports ready', async () => {
    const ready = await fetch(`${service.url}/health/ready`);
    expect(ready.status).toBe(200);
    const token = (await oidc.issueToken({ clientId: 'agent-1' })).accessToken;
    const allowed = await ssh(token, ['echo', 'through-the-service']);
    expect(allowed).toMatchObject({ code: 0, stdout: 'through-the-service\n' });
    const blocked = await ssh(token, ['rm', '-rf', '/tmp/nothing-here']);
    expect(blocked.code).toBe(126);
    expect(blocked.stderr).toContain('(rule no-rm)');
    const types: string[] = [];
    const injected: unknown[] = [];
    for await (const recorded of store.readAll()) {
      types.push(recorded.event.type);
      if (recorded.event.type === 'credential.injected') injected.push(recorded.event.payload);
    }
    expect(types).toEqual(expect.arrayContaining(['policy.activated', 'session.opened', 'credential.injected', 'command.issued', 'policy.decided', 'frame.recorded', 'session.closed']));
    expect(injected[0]).toMatchObject({ credentialRef: 'env:BASTION_SSH_KEY' });
  });

  it('an unusable host-key reference stops the start with an error naming file, line and key', async () => {
    const file = join(dir, 'bad.yaml');
    const loaded = parseConfig(configText(`    listen: { host: 127.0.0.1, port: 0 }\n    hostKey: { fromEnv: CUSTODIAN_TEST_UNSET_HOST_KEY }\n`), { file, env: {}, cwd: dir });
    const logger = createLogger({ service: 'gateway', level: 'silent' });
    const badStore = await SqliteEventStore.open({ path: join(dir, 'bad-events.sqlite') });
    try {
      const error = await startNestService({ module: GatewayModule.register({ eventStore: badStore, logger, loaded }), logger, listen: { host: '127.0.0.1', port: 0 }, shutdownHooks: false }).then(
        async (started) => {
          await started.close();
          return undefined;
        },
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).message).toContain(`${file}:12:5: gateways.ssh.hostKey`);
      expect((error as ConfigError).message).toContain('CUSTODIAN_TEST_UNSET_HOST_KEY');
    } finally {
      await badStore.close();
    }
  });
});
