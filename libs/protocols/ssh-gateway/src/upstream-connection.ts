// The gateway's login to the upstream SSH server: the host key is checked against the keys trusted
// in config (never skipped: nothing trusted → refused), then the held credential is used.
import ssh2 from 'ssh2';
import { SshGatewayError } from './gateway-errors.js';
import type { SshUpstreamTarget } from './gateway-options.js';
import { hostKeyAlgorithmsFor, knownHostsName, sshFingerprint, trustedHostKeys } from './known-hosts.js';

export interface UpstreamSsh {
  readonly client: ssh2.Client;
  readonly method: 'ssh-key' | 'ssh-password';
  /** The secret used (for the custody scan only; the caller drops it). */
  readonly secret: Buffer;
  /** Fingerprint of the verified upstream host key. */
  readonly hostKeyFingerprint: string;
}

export async function connectUpstream(target: SshUpstreamTarget, signal?: AbortSignal): Promise<UpstreamSsh> {
  const where = knownHostsName(target.host, target.port);
  const { trusted, revoked } = trustedHostKeys(await target.knownHosts(), target.host, target.port);
  if (trusted.length === 0) throw new SshGatewayError('UPSTREAM_HOST_KEY_UNKNOWN', `no trusted host key is configured for ${where}; the gateway does not connect to unverified hosts`);

  let secret: Buffer;
  let auth: Pick<ssh2.ConnectConfig, 'privateKey' | 'passphrase' | 'password'>;
  try {
    if (target.credential.kind === 'private-key') {
      secret = await target.credential.read();
      const passphrase = await target.credential.passphrase?.();
      auth = passphrase === undefined ? { privateKey: secret } : { privateKey: secret, passphrase };
      // The custody scan looks for the passphrase too: it unlocks the key.
      if (passphrase !== undefined) secret = Buffer.from(passphrase, 'utf8');
    } else {
      const password = await target.credential.read();
      secret = Buffer.from(password, 'utf8');
      auth = { password };
    }
  } catch (error) {
    throw new SshGatewayError('UPSTREAM_CREDENTIAL_UNAVAILABLE', `the credential for ${where} (${target.credentialRef}) could not be read: ${error instanceof Error && 'code' in error ? String((error as { code: unknown }).code) : 'unreadable'}`);
  }

  const client = new ssh2.Client();
  let hostKeyProblem: SshGatewayError | undefined;
  let fingerprint = '';
  return new Promise<UpstreamSsh>((resolve, reject) => {
    const fail = (error: SshGatewayError): void => {
      signal?.removeEventListener('abort', onAbort);
      client.removeAllListeners('ready');
      client.end();
      reject(error);
    };
    const onAbort = (): void => fail(new SshGatewayError('UPSTREAM_UNAVAILABLE', `login to ${where} was abandoned`));
    signal?.addEventListener('abort', onAbort, { once: true });
    client.once('ready', () => {
      client.setNoDelay(true); // see SshGateway.accept: interactive keys must not wait for Nagle
      signal?.removeEventListener('abort', onAbort);
      client.removeAllListeners('error');
      client.on('error', () => undefined);
      resolve({ client, method: target.credential.kind === 'private-key' ? 'ssh-key' : 'ssh-password', secret, hostKeyFingerprint: fingerprint });
    });
    client.once('error', (error: Error & { level?: string }) => {
      if (hostKeyProblem) fail(hostKeyProblem);
      else if (error.level === 'client-authentication') fail(new SshGatewayError('UPSTREAM_LOGIN_FAILED', `${where} refused the gateway's credential (${target.credentialRef})`));
      else if (error.level === 'client-timeout') fail(new SshGatewayError('UPSTREAM_UNAVAILABLE', `${where} did not answer in time`));
      else fail(new SshGatewayError('UPSTREAM_UNAVAILABLE', `${where} is unavailable: ${(error as NodeJS.ErrnoException).code ?? error.message}`));
    });
    client.connect({
      host: target.host,
      port: target.port,
      username: target.username,
      ...auth,
      readyTimeout: target.connectTimeoutMs ?? 20_000,
      keepaliveInterval: 15_000,
      algorithms: { serverHostKey: hostKeyAlgorithmsFor(trusted) as ssh2.ServerHostKeyAlgorithm[] },
      hostVerifier: (key: Buffer) => {
        fingerprint = sshFingerprint(key);
        if (revoked.some((k) => k.blob.equals(key))) {
          hostKeyProblem = new SshGatewayError('UPSTREAM_HOST_KEY_REVOKED', `the host key of ${where} (${fingerprint}) is revoked in the gateway's configuration`);
          return false;
        }
        if (trusted.some((k) => k.blob.equals(key))) return true;
        hostKeyProblem = new SshGatewayError(
          'UPSTREAM_HOST_KEY_MISMATCH',
          `the host key of ${where} (${fingerprint}) does not match the key configured for it: the server may have been replaced or the connection intercepted`,
        );
        return false;
      },
    });
  });
}
