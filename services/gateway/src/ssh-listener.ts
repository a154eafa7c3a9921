// The SSH listener, built from the `gateways.ssh` section over the gateway core (policy, approvals,
// evidence, masking key and identity are the core's, shared with every listener). The host key is
// read once at start (or generated once in <dataDir>/gateway/); upstream credentials and known_hosts
// are read by reference at each login, so a rotated secret applies to the next session.
import { join } from 'node:path';
import { CredentialError, CredentialReference, gatewayLogger } from '@custodian/gateway-kit';
import { ConfigError, type LoadedConfig, type SshConnectionConfig } from '@custodian/runtime-config';
import { readOrCreateSshHostKey, SSH_HOST_KEY_FILE, SshGateway, SshGatewayError, sshHostKeyFrom, type SshConnection, type SshHostKey, type SshUpstreamCredential } from '@custodian/ssh-gateway';
import type { GatewayCore } from './gateway-core.js';
import { createSessionPipeline } from './session-pipelines.js';

export interface RunningSshListener {
  readonly gateway: SshGateway;
  readonly port: number;
  /** `SHA256:…` of the gateway's host key, for clients' known_hosts. */
  readonly hostKeyFingerprint: string;
  /** `ssh-ed25519 AAAA…`. */
  readonly hostPublicKey: string;
  close(): Promise<void>;
}

function unusable(loaded: LoadedConfig, key: string, message: string): ConfigError {
  return new ConfigError('CONFIG_SECRET_UNRESOLVED', 'the SSH gateway cannot start', [loaded.issueAt(key, message)]);
}

async function hostKeyOf(loaded: LoadedConfig): Promise<SshHostKey> {
  const configured = loaded.config.gateways.ssh.hostKey;
  if (!configured) return readOrCreateSshHostKey(join(loaded.config.dataDir, 'gateway', SSH_HOST_KEY_FILE));
  const reference = CredentialReference.from(configured, { baseDir: loaded.baseDir });
  try {
    return sshHostKeyFrom(Buffer.from(await reference.readBytes()), reference.ref);
  } catch (error) {
    if (error instanceof CredentialError || error instanceof SshGatewayError) throw unusable(loaded, 'gateways.ssh.hostKey', error.message);
    throw error;
  }
}

function connectionOf(connection: SshConnectionConfig, index: number, loaded: LoadedConfig): SshConnection {
  const { upstream } = connection;
  const key = `gateways.ssh.connections.${index}.upstream`;
  const secret = CredentialReference.from(upstream.credential.secret, { baseDir: loaded.baseDir });
  const passphrase = upstream.credential.passphrase ? CredentialReference.from(upstream.credential.passphrase, { baseDir: loaded.baseDir }) : undefined;
  const credential: SshUpstreamCredential =
    upstream.credential.kind === 'password'
      ? { kind: 'password', read: () => secret.read() }
      : { kind: 'private-key', read: async () => Buffer.from(await secret.readBytes()), ...(passphrase ? { passphrase: () => passphrase.read() } : {}) };
  const knownHostsSource = upstream.knownHosts;
  const inline = 'inline' in knownHostsSource ? knownHostsSource.inline : undefined;
  const knownHostsReference = 'inline' in knownHostsSource ? undefined : CredentialReference.from(knownHostsSource, { baseDir: loaded.baseDir });
  if (inline !== undefined && inline.trim() === '') throw unusable(loaded, `${key}.knownHosts.inline`, 'must hold at least one host key');
  return {
    name: connection.name,
    upstream: {
      host: upstream.host,
      port: upstream.port,
      username: upstream.username,
      // Read at each login: an edited known_hosts file applies to the next session.
      knownHosts: knownHostsReference ? () => knownHostsReference.read() : () => inline ?? '',
      credential,
      credentialRef: secret.ref,
      connectTimeoutMs: upstream.connectTimeoutMs,
    },
  };
}

/** Starts the SSH listener as configured (throws ConfigError naming file, line and key on an unusable section). */
export async function startSshListener(core: GatewayCore): Promise<RunningSshListener> {
  const { loaded, logger } = core;
  const settings = loaded.config.gateways.ssh;
  const hostKey = await hostKeyOf(loaded);
  const connections = settings.connections.map((connection, index) => connectionOf(connection, index, loaded));
  const duplicate = settings.connections.findIndex((connection, index) => settings.connections.findIndex((other) => other.name === connection.name) !== index);
  if (duplicate >= 0) throw unusable(loaded, `gateways.ssh.connections.${duplicate}.name`, 'names a connection already configured');
  const gateway = new SshGateway({
    host: settings.listen.host,
    port: settings.listen.port,
    hostKey,
    connections,
    pipeline: createSessionPipeline(core, settings),
    unverifiableLines: settings.unverifiableLines,
    loginTimeoutMs: settings.loginTimeoutMs,
    maxChannels: settings.maxChannels,
    logger: gatewayLogger(logger, { listener: 'ssh' }),
  });
  // The gateway logs its address and host-key fingerprint when it listens.
  const port = await gateway.listen();
  if (hostKey.created) logger.info({ hostKeyFingerprint: hostKey.fingerprint }, `generated the SSH gateway host key in ${join(loaded.config.dataDir, 'gateway', SSH_HOST_KEY_FILE)}`);
  return { gateway, port, hostKeyFingerprint: hostKey.fingerprint, hostPublicKey: hostKey.publicKey, close: () => gateway.close() };
}
