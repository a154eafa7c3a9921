// Test-only: the SSH side of the gateway conformance suite (@custodian/gateway-conformance). A real
// OpenSSH server whose ForceCommand appends each command to a log before running it (the
// observation point for "did it reach the upstream"); the gateway logs in with an Ed25519 key
// encrypted with the suite's credential as passphrase (authorized on that sshd, so the key is
// useless without it); ssh2 as the client.
import { randomBytes } from 'node:crypto';
import { appendFile, chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ConformanceClient, ConformanceEnvironment, ConformanceGateway, GatewayConformanceFixture } from '@custodian/gateway-conformance';
import { OidcAccessTokenVerifier } from '@custodian/identity-oidc';
import { parsePolicy } from '@custodian/policy';
import { SessionPipeline } from '@custodian/session-pipeline';
import { runCommand, startSshd, type StartedSshd } from '@custodian/test-harness';
import { readOrCreateSshHostKey } from '../host-key.js';
import { SshGateway } from '../ssh-gateway.js';
import { GatewaySshClient } from './ssh-client.js';

const CONNECTION = 'conformance';

export function sshConformanceFixture(): GatewayConformanceFixture {
  let sshd: StartedSshd | undefined;
  let dir = '';
  let credential = '';
  const upstream = (): StartedSshd => {
    if (!sshd) throw new Error('the upstream sshd is not started');
    return sshd;
  };
  return {
    protocol: 'ssh',
    // command.issued of kind shell maps to OCSF SSH Activity (4007, Traffic) in @custodian/siem-ocsf.
    ocsfClassUid: 4007,
    policy: {
      allowed: { shell: { programs: ['echo', 'cat'] } },
      blocked: { shell: { programs: ['rm'] } },
      held: { shell: { programs: ['mkdir'] } },
    },
    commands: {
      allowed: (marker) => `echo ${marker}`,
      blocked: (marker) => `rm -f /nonexistent/${marker}`,
      held: (marker) => `mkdir -p ${dir}/held/${marker}`,
      pii: () => `cat ${dir}/pii.txt`,
    },

    async startUpstream(setup) {
      dir = await mkdtemp(join(tmpdir(), 'custodian-ssh-conformance-'));
      credential = setup.credential;
      const log = join(dir, 'commands.log');
      const wrapper = join(dir, 'log-and-run.sh');
      await writeFile(wrapper, `#!/bin/sh\nprintf '%s\\n' "$SSH_ORIGINAL_COMMAND" >> ${log}\nexec /bin/sh -c "$SSH_ORIGINAL_COMMAND"\n`);
      await chmod(wrapper, 0o755);
      await writeFile(join(dir, 'pii.txt'), `contact: ${setup.piiValue}\n`);
      await writeFile(log, '');
      sshd = await startSshd({ extraConfig: [`ForceCommand ${wrapper}`] });
      const key = join(dir, 'gateway_ed25519');
      await runCommand('/usr/bin/ssh-keygen', ['-q', '-t', 'ed25519', '-N', setup.credential, '-C', 'custodian-gateway', '-f', key]);
      await appendFile(join(sshd.dir, 'authorized_keys'), await readFile(`${key}.pub`, 'utf8'));
    },

    async startGateway(environment: ConformanceEnvironment): Promise<ConformanceGateway> {
      const target = upstream();
      const pipeline = new SessionPipeline({
        verifier: new OidcAccessTokenVerifier({ issuers: [{ issuer: environment.issuer.issuer, audiences: [environment.issuer.audience] }] }),
        policy: { policy: parsePolicy(environment.policyYaml, 'conformance-policy.yaml') },
        evidence: environment.evidence,
        strict: environment.strict,
        approvals: environment.approvals,
        approvalWaitSeconds: environment.approvalWaitSeconds,
        source: environment.source,
        maskingKey: randomBytes(32),
        custodyKey: environment.custodyKey,
      });
      const hostKey = await readOrCreateSshHostKey(join(dir, `gateway-${environment.strict ? 'strict' : 'relaxed'}`, 'ssh-host-ed25519.key'));
      const gateway = new SshGateway({
        host: '127.0.0.1',
        port: 0,
        hostKey,
        pipeline,
        logger: environment.logger,
        connections: [
          {
            name: CONNECTION,
            upstream: {
              host: target.host,
              port: target.port,
              username: target.user,
              knownHosts: () => readFile(target.knownHostsPath, 'utf8'),
              credential: { kind: 'private-key', read: () => readFile(join(dir, 'gateway_ed25519')), passphrase: async () => credential },
              credentialRef: environment.credentialRef,
            },
          },
        ],
      });
      await gateway.listen();
      return {
        connect: async (token): Promise<ConformanceClient> => {
          const client = await GatewaySshClient.connect({ host: gateway.host, port: gateway.port, connection: CONNECTION, token, gatewayHostKey: hostKey.publicKey });
          return {
            async run(command) {
              try {
                const result = await client.exec(command);
                return { ok: result.code === 0, output: `${result.stdout}${result.stderr}${result.code === null ? '' : ` (exit ${result.code})`}` };
              } catch (error) {
                return { ok: false, output: error instanceof Error ? error.message : String(error) };
              }
            },
            clientBound: () => client.clientBound(),
            close: () => client.close(),
            disconnect: () => client.disconnect(),
          };
        },
        stop: () => gateway.close(),
      };
    },

    async reachedUpstream(marker) {
      const target = upstream();
      // A command of our own after everything the gateway sent: once it is in the log, so is all that came before.
      const barrier = `barrier_${randomBytes(6).toString('hex')}`;
      await target.exec(`true ${barrier}`);
      const log = await readFile(join(dir, 'commands.log'), 'utf8');
      if (!log.includes(barrier)) throw new Error('the upstream command log does not show commands: is ForceCommand in effect?');
      return log.includes(marker);
    },

    async stop() {
      await sshd?.stop();
      if (dir) await rm(dir, { recursive: true, force: true });
    },
  };
}
