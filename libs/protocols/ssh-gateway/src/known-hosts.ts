// Upstream host keys the gateway trusts, from config: bare public-key lines (`ssh-ed25519 AAAA…`,
// pinned for this connection) or OpenSSH known_hosts entries (plain or hashed host names,
// wildcards, negation, `@revoked`). `@cert-authority` lines are not supported and are ignored, so
// a host known only through a CA is refused as unknown (fail closed).
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

export interface TrustedHostKey {
  /** Key type as on the wire, e.g. `ssh-ed25519`. */
  readonly type: string;
  /** The SSH wire-format public key blob. */
  readonly blob: Buffer;
}

export interface TrustedHostKeys {
  readonly trusted: readonly TrustedHostKey[];
  readonly revoked: readonly TrustedHostKey[];
}

const KEY_TYPE = /^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp256|ecdsa-sha2-nistp384|ecdsa-sha2-nistp521|sk-ssh-ed25519@openssh\.com|sk-ecdsa-sha2-nistp256@openssh\.com)$/;

/** The name known_hosts uses for a host: `host` on port 22, else `[host]:port`. */
export function knownHostsName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

function globToRegExp(pattern: string): RegExp {
  const escaped = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${escaped}$`, 'i');
}

function hashedMatches(entry: string, name: string): boolean {
  // |1|base64(salt)|base64(HMAC-SHA1(salt, name))
  const parts = entry.split('|');
  if (parts.length !== 4 || parts[1] !== '1') return false;
  const salt = Buffer.from(parts[2]!, 'base64');
  const expected = Buffer.from(parts[3]!, 'base64');
  const actual = createHmac('sha1', salt).update(name).digest();
  return expected.length === actual.length && timingSafeEqual(expected, actual);
}

function hostsMatch(field: string, names: readonly string[]): boolean {
  if (field.startsWith('|')) return names.some((name) => hashedMatches(field, name));
  let matched = false;
  for (const raw of field.split(',')) {
    const negated = raw.startsWith('!');
    const pattern = globToRegExp(negated ? raw.slice(1) : raw);
    if (names.some((name) => pattern.test(name))) {
      if (negated) return false;
      matched = true;
    }
  }
  return matched;
}

function keyOf(type: string, base64: string): TrustedHostKey | undefined {
  if (!KEY_TYPE.test(type) || !/^[A-Za-z0-9+/]+={0,2}$/.test(base64)) return undefined;
  const blob = Buffer.from(base64, 'base64');
  // The blob starts with its own type name (uint32 length + name): a key pasted under the wrong type is no key.
  if (blob.length < 4) return undefined;
  const length = blob.readUInt32BE(0);
  if (blob.subarray(4, 4 + length).toString('latin1') !== type) return undefined;
  return { type, blob };
}

/**
 * The keys `text` trusts (and revokes) for `host:port`. Lines that are neither a key nor a
 * known_hosts entry for this host are skipped; the caller refuses when nothing is trusted.
 */
export function trustedHostKeys(text: string, host: string, port: number): TrustedHostKeys {
  const names = [knownHostsName(host, port)];
  const trusted: TrustedHostKey[] = [];
  const revoked: TrustedHostKey[] = [];
  for (const rawLine of text.split(/\r?\n/)) {
    const line = rawLine.trim();
    if (line === '' || line.startsWith('#')) continue;
    const fields = line.split(/\s+/);
    if (KEY_TYPE.test(fields[0]!)) {
      const key = keyOf(fields[0]!, fields[1] ?? '');
      if (key) trusted.push(key);
      continue;
    }
    let marker: string | undefined;
    if (fields[0]!.startsWith('@')) marker = fields.shift();
    if (fields.length < 3 || !hostsMatch(fields[0]!, names)) continue;
    const key = keyOf(fields[1]!, fields[2]!);
    if (!key) continue;
    if (marker === '@revoked') revoked.push(key);
    else if (marker === undefined) trusted.push(key);
  }
  return { trusted, revoked };
}

/** Host-key algorithms to offer upstream so the server presents a key of a trusted type. */
export function hostKeyAlgorithmsFor(keys: readonly TrustedHostKey[]): string[] {
  const algorithms = new Set<string>();
  for (const { type } of keys) {
    if (type === 'ssh-rsa') for (const a of ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa']) algorithms.add(a);
    else algorithms.add(type);
  }
  return [...algorithms];
}

/** `SHA256:…` as OpenSSH prints a key's fingerprint. */
export function sshFingerprint(blob: Uint8Array): string {
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}
