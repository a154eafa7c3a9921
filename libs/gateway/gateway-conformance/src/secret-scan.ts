// Looks for a secret in bytes under its obvious encodings, so that a leak is found whether it went
// out raw, inside base64 (a frame's data, a basic-auth header), as hex or URL-encoded.

/** How a secret was found. */
export type SecretEncoding = 'raw' | 'base64' | 'base64url' | 'hex-lower' | 'hex-upper' | 'url-encoded';

export interface SecretFinding {
  readonly encoding: SecretEncoding;
  /** Where it was found (the caller's label, e.g. `event 42 (frame.recorded)`). */
  readonly where: string;
}

/**
 * The stretches of base64 that only the secret's bytes determine, for each of the three alignments
 * the secret can have inside a longer base64 text (so a secret in the middle of an encoded frame
 * is found too).
 */
function base64Needles(secret: Buffer, alphabet: 'base64' | 'base64url'): string[] {
  const needles: string[] = [];
  for (let offset = 0; offset < 3; offset++) {
    const encoded = Buffer.concat([Buffer.alloc(offset), secret]).toString(alphabet);
    // Character i carries bits [6i, 6i + 6); keep those entirely inside the secret's bits.
    const start = Math.ceil((8 * offset) / 6);
    const end = Math.floor((8 * (offset + secret.length)) / 6);
    const needle = encoded.slice(start, end);
    if (needle.length >= 8) needles.push(needle);
  }
  return needles;
}

/** The encoded forms to look for, each with its name. */
export function secretNeedles(secret: string): readonly { readonly encoding: SecretEncoding; readonly needle: string }[] {
  const bytes = Buffer.from(secret, 'utf8');
  const needles: { encoding: SecretEncoding; needle: string }[] = [{ encoding: 'raw', needle: secret }];
  for (const needle of base64Needles(bytes, 'base64')) needles.push({ encoding: 'base64', needle });
  for (const needle of base64Needles(bytes, 'base64url')) needles.push({ encoding: 'base64url', needle });
  needles.push({ encoding: 'hex-lower', needle: bytes.toString('hex') }, { encoding: 'hex-upper', needle: bytes.toString('hex').toUpperCase() });
  const url = encodeURIComponent(secret);
  if (url !== secret) needles.push({ encoding: 'url-encoded', needle: url });
  return needles;
}

/** Every encoding under which `secret` occurs in `haystack` (latin1, so arbitrary bytes compare byte for byte). */
export function findSecret(haystack: Buffer | string, secret: string, where: string): SecretFinding[] {
  if (secret.length < 8) throw new Error(`refusing to scan for a secret of ${secret.length} characters: too short to mean anything`);
  const text = typeof haystack === 'string' ? haystack : haystack.toString('latin1');
  const found: SecretFinding[] = [];
  for (const { encoding, needle } of secretNeedles(secret)) {
    const latin1Needle = Buffer.from(needle, 'utf8').toString('latin1');
    if (text.includes(latin1Needle) && !found.some((f) => f.encoding === encoding)) found.push({ encoding, where });
  }
  return found;
}

/** Scans many labelled haystacks for many secrets; returns every finding (empty: nothing leaked). */
export function scanForSecrets(haystacks: Iterable<{ readonly where: string; readonly data: Buffer | string }>, secrets: readonly { readonly name: string; readonly value: string }[]): string[] {
  const findings: string[] = [];
  for (const { where, data } of haystacks) {
    for (const secret of secrets) for (const f of findSecret(data, secret.value, where)) findings.push(`${secret.name} (${f.encoding}) in ${f.where}`);
  }
  return findings;
}
