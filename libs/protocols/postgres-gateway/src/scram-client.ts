// SCRAM-SHA-256 (RFC 5802 / RFC 7677) client side, as PostgreSQL speaks it: the user name in the
// exchange is empty (the server uses the startup user), no channel binding (gs2 header "n,,":
// the gateway terminates the client's TLS, so the client's channel cannot be bound through it).
// The server's signature is verified: an upstream that cannot prove it knows the verifier is refused.
import { createHash, createHmac, pbkdf2, randomBytes, timingSafeEqual } from 'node:crypto';
import { promisify } from 'node:util';

const pbkdf2Async = promisify(pbkdf2);

export class ScramError extends Error {
  override readonly name = 'ScramError';
  readonly code = 'UPSTREAM_SCRAM_FAILED';
}

const GS2_HEADER = 'n,,';

function hmac(key: Buffer, text: string): Buffer {
  return createHmac('sha256', key).update(text, 'utf8').digest();
}

function parseAttributes(message: string): Map<string, string> {
  const attributes = new Map<string, string>();
  for (const part of message.split(',')) {
    const eq = part.indexOf('=');
    if (eq !== 1) throw new ScramError('malformed SCRAM server message');
    attributes.set(part[0]!, part.slice(2));
  }
  return attributes;
}

/**
 * Salted passwords by (salt, iterations): PBKDF2 costs milliseconds (more if an upstream asks for
 * many iterations) and the held credential rarely changes. Computed in libuv's thread pool, never
 * on the event loop that carries every other session.
 */
const saltedCache = new Map<string, Buffer>();
const SALTED_CACHE_LIMIT = 64;

async function saltedPassword(password: string, salt: Buffer, iterations: number): Promise<Buffer> {
  const key = `${createHash('sha256').update(password).digest('base64')}:${salt.toString('base64')}:${iterations}`;
  let salted = saltedCache.get(key);
  if (!salted) {
    salted = await pbkdf2Async(password, salt, iterations, 32, 'sha256');
    if (saltedCache.size >= SALTED_CACHE_LIMIT) saltedCache.delete(saltedCache.keys().next().value!);
    saltedCache.set(key, salted);
  }
  return salted;
}

export class ScramSha256Client {
  private readonly clientNonce = randomBytes(18).toString('base64');
  private clientFirstBare = '';
  private expectedServerSignature: Buffer | undefined;

  constructor(private readonly password: string) {}

  /** client-first-message (the SASLInitialResponse data). */
  first(): Buffer {
    this.clientFirstBare = `n=,r=${this.clientNonce}`;
    return Buffer.from(GS2_HEADER + this.clientFirstBare, 'utf8');
  }

  /** client-final-message for the server-first-message (the SASLResponse data). */
  async final(serverFirstData: Buffer): Promise<Buffer> {
    const serverFirst = serverFirstData.toString('utf8');
    const attributes = parseAttributes(serverFirst);
    const nonce = attributes.get('r');
    const salt = attributes.get('s');
    const iterations = Number(attributes.get('i'));
    if (!nonce || !nonce.startsWith(this.clientNonce) || nonce.length === this.clientNonce.length) throw new ScramError('SCRAM server nonce does not extend the client nonce');
    if (!salt || !Number.isInteger(iterations) || iterations < 1 || iterations > 10_000_000) throw new ScramError('SCRAM salt or iteration count invalid');
    const salted = await saltedPassword(this.password, Buffer.from(salt, 'base64'), iterations);
    const clientKey = hmac(salted, 'Client Key');
    const storedKey = createHash('sha256').update(clientKey).digest();
    const finalWithoutProof = `c=${Buffer.from(GS2_HEADER).toString('base64')},r=${nonce}`;
    const authMessage = `${this.clientFirstBare},${serverFirst},${finalWithoutProof}`;
    const clientSignature = hmac(storedKey, authMessage);
    const proof = Buffer.alloc(clientKey.length);
    for (let i = 0; i < proof.length; i++) proof[i] = clientKey[i]! ^ clientSignature[i]!;
    this.expectedServerSignature = hmac(hmac(salted, 'Server Key'), authMessage);
    return Buffer.from(`${finalWithoutProof},p=${proof.toString('base64')}`, 'utf8');
  }

  /** Checks the server-final-message (mutual authentication). */
  verify(serverFinalData: Buffer): void {
    const attributes = parseAttributes(serverFinalData.toString('utf8'));
    if (attributes.has('e')) throw new ScramError(`SCRAM server error: ${attributes.get('e')}`);
    const signature = Buffer.from(attributes.get('v') ?? '', 'base64');
    const expected = this.expectedServerSignature;
    if (!expected || signature.length !== expected.length || !timingSafeEqual(signature, expected)) throw new ScramError('SCRAM server signature does not verify');
  }
}

/** PostgreSQL's md5 password response: "md5" + md5(md5(password + user) + salt). */
export function md5PasswordResponse(user: string, password: string, salt: Buffer): string {
  const inner = createHash('md5').update(password + user, 'utf8').digest('hex');
  return `md5${createHash('md5').update(Buffer.concat([Buffer.from(inner, 'utf8'), salt])).digest('hex')}`;
}
