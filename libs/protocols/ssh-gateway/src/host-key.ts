// The gateway's own SSH host key: from config, or generated once (Ed25519, OpenSSH format) and
// kept in the data directory, created atomically with mode 0600 (written to a temporary file,
// then hard-linked into place, which fails if another process got there first).
import { randomBytes } from 'node:crypto';
import { chmod, link, mkdir, open, readFile, stat, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import ssh2 from 'ssh2';
import { SshGatewayError } from './gateway-errors.js';
import { sshFingerprint } from './known-hosts.js';

export interface SshHostKey {
  /** The private key (OpenSSH or PEM) as ssh2's server takes it. */
  readonly privateKey: Buffer;
  /** `ssh-ed25519 AAAA…`, for clients' known_hosts. */
  readonly publicKey: string;
  /** `SHA256:…`, as `ssh-keygen -lf` prints it. */
  readonly fingerprint: string;
  /** Whether this call generated it. */
  readonly created: boolean;
}

/** Default file name under `<dataDir>/gateway/`. */
export const SSH_HOST_KEY_FILE = 'ssh-host-ed25519.key';

function describe(privateKey: Buffer, created: boolean, where: string): SshHostKey {
  const parsed = ssh2.utils.parseKey(privateKey);
  if (parsed instanceof Error || Array.isArray(parsed)) throw new SshGatewayError('HOST_KEY_INVALID', `${where} is not a usable SSH private key${parsed instanceof Error ? `: ${parsed.message}` : ''}`);
  if (!parsed.isPrivateKey()) throw new SshGatewayError('HOST_KEY_INVALID', `${where} holds a public key; the gateway needs the private key`);
  const blob = parsed.getPublicSSH();
  return { privateKey, publicKey: `${parsed.type} ${blob.toString('base64')}`, fingerprint: sshFingerprint(blob), created };
}

/** Parses a configured host key (e.g. read from a file the operator manages). */
export function sshHostKeyFrom(privateKey: Buffer | string, where = 'the configured SSH host key'): SshHostKey {
  return describe(Buffer.isBuffer(privateKey) ? privateKey : Buffer.from(privateKey), false, where);
}

function generateOnce(): Promise<string> {
  return new Promise((resolve, reject) => {
    ssh2.utils.generateKeyPair('ed25519', { comment: 'custodian-ssh-gateway' }, (error, keys) => (error ? reject(error) : resolve(keys.private)));
  });
}

/**
 * ssh2 writes an Ed25519 public key whose first byte is 0 without that byte (as if it were an
 * mpint), about one key in 256, and then cannot parse the key it wrote ("Malformed OpenSSH
 * private key"). Such a key is drawn again; the one kept is one ssh2 parses.
 */
async function generateEd25519(): Promise<string> {
  for (let attempt = 0; attempt < 16; attempt++) {
    const key = await generateOnce();
    if (!(ssh2.utils.parseKey(key) instanceof Error)) return key;
  }
  throw new SshGatewayError('HOST_KEY_INVALID', 'could not generate an SSH host key that ssh2 can read (16 attempts)');
}

/** Reads `path`, or generates an Ed25519 host key there once (mode 0600; a looser mode is tightened). */
export async function readOrCreateSshHostKey(path: string): Promise<SshHostKey> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  let created = false;
  try {
    await stat(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    const temporary = join(dirname(path), `.${SSH_HOST_KEY_FILE}.${randomBytes(6).toString('hex')}.tmp`);
    const handle = await open(temporary, 'wx', 0o600);
    try {
      await handle.writeFile(await generateEd25519());
      await handle.sync();
    } finally {
      await handle.close();
    }
    try {
      await link(temporary, path);
      created = true;
    } catch (linkError) {
      if ((linkError as NodeJS.ErrnoException).code !== 'EEXIST') throw linkError;
    } finally {
      await unlink(temporary).catch(() => undefined);
    }
  }
  const info = await stat(path);
  if ((info.mode & 0o077) !== 0) await chmod(path, 0o600);
  return describe(await readFile(path), created, path);
}
