// The gateway's own keys: the masking key (HMAC tokens) and the custody-statement signing key.
// Each is configured by reference or generated once and kept in the data directory, so that HMAC
// tokens and statement signatures are the same across restarts and across listeners; never a
// random key per process. Files are created atomically (written under a temporary name, then
// hard-linked into place, which fails if another process got there first) with mode 0600, and
// read asynchronously: the gateway's event loop never waits on the disk.
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { chmod, link, mkdir, open, readFile, stat, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { CredentialError, CredentialReference } from '@custodian/gateway-kit';
import type { Logger } from '@custodian/observability';
import { ConfigError, type LoadedConfig } from '@custodian/runtime-config';

/** Signs custody statements (DSSE over in-toto): the key pair and how statements name it. */
export interface CustodySigner {
  /** Lowercase hex SHA-256 of the public key's SubjectPublicKeyInfo (DER): the DSSE `keyid`. */
  readonly keyId: string;
  /** Ed25519 private key; never logged, never in an event. */
  readonly privateKey: KeyObject;
  /** SPKI PEM, for verifiers (cosign `--key`, custodian verify). */
  readonly publicKeyPem: string;
}

export type GatewayKeyErrorCode = 'GATEWAY_KEY_INVALID' | 'GATEWAY_KEY_UNREADABLE';

/** A key file or reference that cannot be used. Messages name the file or reference, never key material. */
export class GatewayKeyError extends Error {
  override readonly name = 'GatewayKeyError';
  constructor(
    readonly code: GatewayKeyErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

const MIN_MASKING_KEY_BYTES = 16;

/** Where the gateway keeps its generated keys: `<dataDir>/gateway/`. */
export function gatewayKeyDirectory(loaded: LoadedConfig): string {
  return join(loaded.config.dataDir, 'gateway');
}

/**
 * The content of `path`, creating it with `generate()` when it does not exist. Two processes
 * starting at once agree on one content: whoever links first wins, the other reads the winner's.
 */
export async function readOrCreateKeyFile(path: string, generate: () => string, logger?: Logger): Promise<{ content: Buffer; created: boolean }> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const existing = await readExisting(path, logger);
  if (existing) return { content: existing, created: false };
  const temporary = `${path}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  const handle = await open(temporary, 'wx', 0o600);
  try {
    await handle.writeFile(generate());
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await link(temporary, path);
    return { content: await readFile(path), created: true };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    return { content: (await readExisting(path, logger))!, created: false };
  } finally {
    await unlink(temporary).catch(() => undefined);
  }
}

async function readExisting(path: string, logger?: Logger): Promise<Buffer | undefined> {
  let info;
  try {
    info = await stat(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new GatewayKeyError('GATEWAY_KEY_UNREADABLE', `gateway key file ${path} cannot be read (${(error as NodeJS.ErrnoException).code ?? 'EIO'})`, { cause: error });
  }
  if ((info.mode & 0o077) !== 0) {
    // Readable by others: tighten it rather than refuse (the key is still ours), and say so.
    logger?.warn({ path, mode: (info.mode & 0o777).toString(8) }, 'gateway key file was readable by other users; mode set to 0600');
    await chmod(path, 0o600);
  }
  return readFile(path);
}

/**
 * The masking key: `gateways.maskingKey` by reference (its bytes as written, at least 16), else
 * `<dataDir>/gateway/masking.key`, generated once (32 random bytes, base64url text). Copying that
 * file into a `maskingKey: { fromFile }` reference elsewhere gives the same key.
 */
export async function loadMaskingKey(loaded: LoadedConfig, logger?: Logger): Promise<{ key: Uint8Array; source: string }> {
  const configured = loaded.config.gateways.maskingKey;
  if (configured) {
    const reference = CredentialReference.from(configured, { baseDir: loaded.baseDir });
    let key: Uint8Array;
    try {
      key = await reference.readBytes();
    } catch (error) {
      if (error instanceof CredentialError) throw new ConfigError('CONFIG_SECRET_UNRESOLVED', `gateways.maskingKey: ${error.message}`);
      throw error;
    }
    if (key.length < MIN_MASKING_KEY_BYTES) throw new ConfigError('CONFIG_INVALID', `gateways.maskingKey (${reference.ref}) must be at least ${MIN_MASKING_KEY_BYTES} bytes`);
    return { key, source: reference.ref };
  }
  const path = join(gatewayKeyDirectory(loaded), 'masking.key');
  const { content, created } = await readOrCreateKeyFile(path, () => `${randomBytes(32).toString('base64url')}\n`, logger);
  const text = content.toString('utf8').replace(/\r?\n$/, '');
  if (Buffer.byteLength(text) < MIN_MASKING_KEY_BYTES) throw new GatewayKeyError('GATEWAY_KEY_INVALID', `the masking key in ${path} is shorter than ${MIN_MASKING_KEY_BYTES} bytes`);
  if (created) logger?.info({ path }, 'gateway: generated the masking key (kept for later starts and every listener)');
  return { key: Buffer.from(text, 'utf8'), source: `file:${path}` };
}

/** The custody-statement signing key: `<dataDir>/gateway/custody-signing.key` (Ed25519, PKCS#8 PEM), generated once. */
export async function loadCustodySigner(loaded: LoadedConfig, logger?: Logger): Promise<CustodySigner> {
  const path = join(gatewayKeyDirectory(loaded), 'custody-signing.key');
  const { content, created } = await readOrCreateKeyFile(path, () => generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), logger);
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey({ key: content, format: 'pem' });
  } catch (error) {
    throw new GatewayKeyError('GATEWAY_KEY_INVALID', `the custody signing key in ${path} is not a PEM private key`, { cause: error });
  }
  if (privateKey.asymmetricKeyType !== 'ed25519') throw new GatewayKeyError('GATEWAY_KEY_INVALID', `the custody signing key in ${path} must be Ed25519, not ${privateKey.asymmetricKeyType ?? 'unknown'}`);
  const publicKey = createPublicKey(privateKey);
  const keyId = createHash('sha256').update(publicKey.export({ type: 'spki', format: 'der' })).digest('hex');
  const signer: CustodySigner = { keyId, privateKey, publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString() };
  if (created) logger?.info({ path, keyId }, 'gateway: generated the custody statement signing key');
  return signer;
}
