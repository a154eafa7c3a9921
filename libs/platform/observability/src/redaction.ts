// Secret scrubbing for anything that leaves the process as text: log lines, health reports,
// error messages. Two layers: keys that name a secret have their value replaced whatever
// it is, and string values are scanned for things that look like credentials.

export const REDACTED = '[REDACTED]';

/** A key names a secret if, lower-cased without separators, it ends with one of these. */
const SECRET_KEY_SUFFIXES = [
  'password',
  'passwd',
  'passphrase',
  'secret',
  'token',
  'apikey',
  'authorization',
  'cookie',
  'connectionstring',
  'privatekey',
  'credential',
  'credentials',
  'jwt',
] as const;

/** `dbPassword`, `x-api-key`, `Set-Cookie`, `connectionString` → true; `inputTokens`, `tokenCount` → false. */
export function isSecretKey(key: string): boolean {
  const normalised = key.toLowerCase().replace(/[^a-z0-9]/g, '');
  return SECRET_KEY_SUFFIXES.some((suffix) => normalised.endsWith(suffix));
}

interface TextRule {
  readonly pattern: RegExp;
  readonly replacement: string;
}

const TEXT_RULES: readonly TextRule[] = [
  // PEM private keys (PKCS#1/#8, EC, OpenSSH), also when truncated before the END line.
  { pattern: /-----BEGIN ((?:[A-Z0-9]+ )*)PRIVATE KEY-----[\s\S]*?(?:-----END \1PRIVATE KEY-----|$)/g, replacement: '[REDACTED PRIVATE KEY]' },
  // JWS/JWE compact serialisations: base64url JSON header starting `{"`.
  { pattern: /\beyJ[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]*\.[A-Za-z0-9_.-]*/g, replacement: '[REDACTED JWT]' },
  // HTTP credentials: `Bearer <token>`, `Basic <base64>`.
  { pattern: /\b(Bearer|Basic|Token)\s+[A-Za-z0-9._~+/=-]{6,}/gi, replacement: `$1 ${REDACTED}` },
  // Passwords in URLs: scheme://user:password@host.
  { pattern: /\b([a-z][a-z0-9+.-]*:\/\/[^\s:/@]*:)[^\s@/]+@/gi, replacement: `$1${REDACTED}@` },
  // key=value / key: value pairs whose key names a secret.
  {
    pattern: /\b([\w-]*(?:password|passwd|secret|token|api[_-]?key))(["']?\s*[=:]\s*["']?)[^\s"'&,;}]+/gi,
    replacement: `$1$2${REDACTED}`,
  },
  // Well-known API key shapes: Anthropic/OpenAI, AWS access key ids, GitHub, Slack.
  { pattern: /\b(?:sk-(?:ant-)?[A-Za-z0-9_-]{20,}|AKIA[0-9A-Z]{16}|gh[pousr]_[A-Za-z0-9]{30,}|xox[abprs]-[A-Za-z0-9-]{10,})\b/g, replacement: REDACTED },
];

/** Replaces credential-shaped substrings in free text. */
export function scrubText(text: string): string {
  let out = text;
  for (const rule of TEXT_RULES) out = out.replace(rule.pattern, rule.replacement);
  return out;
}

const MAX_DEPTH = 12;

function isPlainRecord(value: object): value is Record<string, unknown> {
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}

/** An Error as a plain, scrubbed object (message, stack, code, cause and own fields). */
export function scrubError(err: Error, seen: WeakSet<object> = new WeakSet(), depth = 0): Record<string, unknown> {
  seen.add(err);
  const out: Record<string, unknown> = { type: err.name, message: scrubText(err.message) };
  if (err.stack) out.stack = scrubText(err.stack);
  for (const [key, value] of Object.entries(err)) {
    out[key] = isSecretKey(key) ? REDACTED : scrubValue(value, seen, depth + 1);
  }
  if (err.cause !== undefined) out.cause = scrubValue(err.cause, seen, depth + 1);
  return out;
}

/**
 * A deep copy of a value safe to serialise: secret-named keys replaced at any depth,
 * strings scrubbed, errors flattened, cycles cut. The input is never mutated.
 */
export function scrubValue(value: unknown, seen: WeakSet<object> = new WeakSet(), depth = 0): unknown {
  if (typeof value === 'string') return scrubText(value);
  if (typeof value !== 'object' || value === null) return value;
  if (seen.has(value)) return '[Circular]';
  if (depth > MAX_DEPTH) return '[Truncated]';
  if (value instanceof Error) return scrubError(value, seen, depth);
  if (value instanceof Date) return value;
  if (ArrayBuffer.isView(value)) return `[binary ${value.byteLength} bytes]`;
  seen.add(value);
  if (Array.isArray(value)) return value.map((v) => scrubValue(v, seen, depth + 1));
  if (!isPlainRecord(value) && 'toJSON' in value && typeof value.toJSON === 'function') {
    return scrubValue((value.toJSON as () => unknown)(), seen, depth + 1);
  }
  if (value instanceof Map) {
    return Object.fromEntries([...value].map(([k, v]) => [String(k), isSecretKey(String(k)) ? REDACTED : scrubValue(v, seen, depth + 1)]));
  }
  const out: Record<string, unknown> = {};
  for (const [key, child] of Object.entries(value)) {
    out[key] = isSecretKey(key) ? REDACTED : scrubValue(child, seen, depth + 1);
  }
  return out;
}
