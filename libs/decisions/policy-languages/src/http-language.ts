// HTTP requests through the policy-language interface: one unit per request, matched by host,
// method, path pattern, query, headers and JSON body paths. The path is matched after
// normalisation (percent-decoding, dot segments), so `/v1/orders/../admin` is `/v1/admin`.
import {
  FlagCriterion,
  NamePattern,
  protocolsOfLanguage,
  type HttpMatch,
  type PolicyLanguage,
  type PolicyUnit,
  type UnitMatcher,
} from '@custodian/policy';
import { JsonConditions, jsonShapeProblem, TextConditions } from './value-conditions.js';

/** What the gateway knows of the body: parsed JSON, none, or too large / not JSON to inspect. */
export type HttpBodyState = 'absent' | 'parsed' | 'too-large' | 'unparseable';

export interface HttpPolicyInput {
  /** Host the request is for (Host / :authority), with a port when not the default. */
  readonly host: string;
  readonly method: string;
  /** Request path as sent (percent-encoded); may carry `?query` when `query` is not given. */
  readonly path: string;
  /** Query string without `?`. */
  readonly query?: string;
  readonly headers?: Readonly<Record<string, string | readonly string[] | undefined>>;
  /** The parsed JSON body (`bodyState: parsed`). */
  readonly body?: unknown;
  /** Default: `parsed` when `body` is given, else `absent`. */
  readonly bodyState?: HttpBodyState;
}

export type HttpFlag =
  /** The body was larger than the gateway inspects: body conditions cannot see it. */
  | 'body-too-large'
  /** The body is not JSON (or not valid JSON): body conditions cannot see it. */
  | 'body-unparseable';

/** A body the gateway could not inspect can only be allowed by a rule that names the flag. */
export const GUARDED_HTTP_FLAGS: readonly HttpFlag[] = ['body-too-large', 'body-unparseable'];

/** The request as rules see it. */
export interface HttpRequestView {
  /** Lower case, port kept when given. */
  readonly host: string;
  /** `host` without the port. */
  readonly hostname: string;
  /** Upper case. */
  readonly method: string;
  /** Percent-decoded (except `%2F`, `%5C`, `%25`, kept encoded so a segment stays one segment), dot segments resolved. */
  readonly path: string;
  readonly query: ReadonlyMap<string, readonly string[]>;
  /** Names in lower case. */
  readonly headers: ReadonlyMap<string, readonly string[]>;
  /** The parsed body when bodyState is `parsed`. */
  readonly body: unknown;
  readonly bodyState: HttpBodyState;
}

export type HttpClassificationErrorCode =
  /** Missing or malformed host or method. */
  | 'HTTP_INVALID_REQUEST'
  /** The path is not an origin-form path, has a malformed escape, a NUL, a backslash or climbs above the root. */
  | 'HTTP_INVALID_PATH'
  /** The parsed body nests deeper or holds more values than conditions evaluate. */
  | 'HTTP_BODY_TOO_COMPLEX'
  | 'HTTP_CLASSIFICATION_FAILED';

export type HttpClassification =
  | { readonly ok: true; readonly request: HttpRequestView; readonly flags: readonly HttpFlag[] }
  | { readonly ok: false; readonly error: { readonly code: HttpClassificationErrorCode } };

export interface HttpUnit extends PolicyUnit {
  readonly request: HttpRequestView;
}

const METHOD = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,32}$/;
const HOST = /^(?:\[[0-9a-f:.]+\]|[a-z0-9._-]+)(?::\d{1,5})?$/;

class HttpClassificationFailure extends Error {
  constructor(readonly code: HttpClassificationErrorCode) {
    super(code);
  }
}

export function classifyHttp(input: HttpPolicyInput): HttpClassification {
  try {
    const host = typeof input.host === 'string' ? input.host.toLowerCase().replace(/\.(?=:|$)/, '') : '';
    if (!HOST.test(host)) throw new HttpClassificationFailure('HTTP_INVALID_REQUEST');
    if (typeof input.method !== 'string' || !METHOD.test(input.method)) throw new HttpClassificationFailure('HTTP_INVALID_REQUEST');
    if (typeof input.path !== 'string') throw new HttpClassificationFailure('HTTP_INVALID_PATH');
    const queryAt = input.path.indexOf('?');
    const rawPath = queryAt === -1 ? input.path : input.path.slice(0, queryAt);
    const rawQuery = input.query ?? (queryAt === -1 ? '' : input.path.slice(queryAt + 1));
    const bodyState: HttpBodyState = input.bodyState ?? (input.body === undefined ? 'absent' : 'parsed');
    if (bodyState === 'parsed' && jsonShapeProblem(input.body) !== undefined) throw new HttpClassificationFailure('HTTP_BODY_TOO_COMPLEX');
    const flags: HttpFlag[] = [];
    if (bodyState === 'too-large') flags.push('body-too-large');
    if (bodyState === 'unparseable') flags.push('body-unparseable');
    const request: HttpRequestView = {
      host,
      hostname: host.startsWith('[') ? host.slice(0, host.indexOf(']') + 1) : host.replace(/:\d+$/, ''),
      method: input.method.toUpperCase(),
      path: normaliseHttpPath(rawPath),
      query: multiMap(new URLSearchParams(rawQuery)),
      headers: headerMap(input.headers ?? {}),
      body: bodyState === 'parsed' ? input.body : undefined,
      bodyState,
    };
    return { ok: true, request, flags };
  } catch (error) {
    return { ok: false, error: { code: error instanceof HttpClassificationFailure ? error.code : 'HTTP_CLASSIFICATION_FAILED' } };
  }
}

/**
 * Percent-decodes each segment (keeping `%2F`, `%5C` and `%25` encoded, upper case) and resolves
 * `.` and `..` as the server would. Throws HTTP_INVALID_PATH for what a server could read
 * differently: not starting with `/`, malformed escapes, NUL, a literal backslash, `..` above the root.
 */
export function normaliseHttpPath(raw: string): string {
  if (!raw.startsWith('/') || raw.includes('\\') || raw.includes('#')) throw new HttpClassificationFailure('HTTP_INVALID_PATH');
  const out: string[] = [];
  const segments = raw.slice(1).split('/');
  segments.forEach((segment, index) => {
    let decoded: string;
    try {
      decoded = segment.replace(/(?:%[0-9A-Fa-f]{2})+/g, (run) => decodeKeepingSeparators(run));
    } catch {
      throw new HttpClassificationFailure('HTTP_INVALID_PATH');
    }
    if (/%(?![0-9A-Fa-f]{2})/.test(segment) || decoded.includes('\u0000') || decoded.includes('\\')) throw new HttpClassificationFailure('HTTP_INVALID_PATH');
    const last = index === segments.length - 1;
    if (decoded === '.') {
      if (last) out.push('');
    } else if (decoded === '..') {
      if (out.length === 0) throw new HttpClassificationFailure('HTTP_INVALID_PATH');
      out.pop();
      if (last) out.push('');
    } else {
      out.push(decoded);
    }
  });
  return `/${out.join('/')}`;
}

const KEPT_ENCODED = new Set(['2F', '5C', '25']);

/** Decodes a run of escapes (a multi-byte UTF-8 character spans several), keeping separators encoded. */
function decodeKeepingSeparators(run: string): string {
  const escapes = run.match(/%[0-9A-Fa-f]{2}/g) ?? [];
  let out = '';
  let pending = '';
  for (const escape of escapes) {
    const hex = escape.slice(1).toUpperCase();
    if (KEPT_ENCODED.has(hex)) {
      out += (pending === '' ? '' : decodeURIComponent(pending)) + `%${hex}`;
      pending = '';
    } else {
      pending += escape;
    }
  }
  return out + (pending === '' ? '' : decodeURIComponent(pending));
}

function multiMap(params: URLSearchParams): ReadonlyMap<string, readonly string[]> {
  const out = new Map<string, string[]>();
  for (const [name, value] of params) {
    const values = out.get(name);
    if (values === undefined) out.set(name, [value]);
    else values.push(value);
  }
  return out;
}

function headerMap(headers: Readonly<Record<string, string | readonly string[] | undefined>>): ReadonlyMap<string, readonly string[]> {
  const out = new Map<string, string[]>();
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    const key = name.toLowerCase();
    const values = out.get(key) ?? [];
    values.push(...(typeof value === 'string' ? [value] : value));
    out.set(key, values);
  }
  return out;
}

/**
 * The body as the HTTP language takes it, from the bytes the gateway buffered: `too-large` past
 * `maxBytes` (default 1 MiB), `unparseable` when not JSON, else `parsed`.
 */
export function httpBody(bytes: string | Uint8Array | undefined, options: { readonly maxBytes?: number } = {}): Pick<HttpPolicyInput, 'body' | 'bodyState'> {
  if (bytes === undefined || bytes.length === 0) return { bodyState: 'absent' };
  const size = typeof bytes === 'string' ? Buffer.byteLength(bytes, 'utf8') : bytes.byteLength;
  if (size > (options.maxBytes ?? 1024 * 1024)) return { bodyState: 'too-large' };
  try {
    const text = typeof bytes === 'string' ? bytes : new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    return { body: JSON.parse(text) as unknown, bodyState: 'parsed' };
  } catch {
    return { bodyState: 'unparseable' };
  }
}

/**
 * Path globs: `*` matches within one segment, `**` as a whole segment any number of segments
 * (`/v1/**` matches `/v1`, `/v1/` and `/v1/a/b`), `?` one character; the rest is literal.
 */
export class HttpPathPattern {
  private readonly regex: RegExp;

  constructor(readonly source: string) {
    let body = '';
    for (let i = 0; i < source.length; i++) {
      const char = source[i]!;
      if (char === '/' && source.startsWith('/**', i) && (i + 3 === source.length || source[i + 3] === '/')) {
        body += '(?:/[\\s\\S]*)?';
        i += 2;
      } else if (char === '*') body += '[^/]*';
      else if (char === '?') body += '[^/]';
      else body += char.replace(/[\\^$.*+?()[\]{}|]/g, '\\$&');
    }
    this.regex = new RegExp(`^${body}$`, 'u');
  }

  matches(path: string): boolean {
    return this.regex.test(path);
  }
}

class HttpMatcher implements UnitMatcher<HttpUnit> {
  private readonly hosts: readonly { readonly pattern: NamePattern; readonly withPort: boolean }[] | undefined;
  private readonly methods: ReadonlySet<string> | undefined;
  private readonly paths: readonly HttpPathPattern[] | undefined;
  private readonly query: TextConditions | undefined;
  private readonly headers: TextConditions | undefined;
  private readonly body: JsonConditions | undefined;
  private readonly flags: FlagCriterion | undefined;

  constructor(match: HttpMatch) {
    // Host globs are case-insensitive, `*` does not cross `.`; a glob without a port matches any port.
    this.hosts = match.hosts?.map((source) => ({ pattern: new NamePattern(source.toLowerCase(), '.'), withPort: /:\d+$/.test(source) }));
    this.methods = match.methods === undefined ? undefined : new Set(match.methods.map((method) => method.toUpperCase()));
    this.paths = match.paths?.map((source) => new HttpPathPattern(source));
    this.query = match.query === undefined ? undefined : new TextConditions(match.query);
    this.headers = match.headers === undefined ? undefined : new TextConditions(match.headers, (name) => name.toLowerCase());
    this.body = match.body === undefined ? undefined : new JsonConditions(match.body, 'body');
    this.flags = FlagCriterion.of(match.flags);
  }

  matches({ request, flags }: HttpUnit): boolean {
    if (this.hosts !== undefined && !this.hosts.some(({ pattern, withPort }) => pattern.matches(withPort ? request.host : request.hostname))) return false;
    if (this.methods !== undefined && !this.methods.has(request.method)) return false;
    if (this.paths !== undefined && !this.paths.some((pattern) => pattern.matches(request.path))) return false;
    if (this.query !== undefined && !this.query.matches(request.query)) return false;
    if (this.headers !== undefined && !this.headers.matches(request.headers)) return false;
    if (this.body !== undefined && !this.body.matches(request.body)) return false;
    return this.flags === undefined || this.flags.matches(flags);
  }

  names(flag: string): boolean {
    return this.flags?.names(flag) === true;
  }
}

export const httpLanguage: PolicyLanguage<'http', HttpPolicyInput, HttpClassification, HttpUnit> = {
  name: 'http',
  protocols: protocolsOfLanguage('http'),
  unitNoun: 'request',
  guardedFlags: GUARDED_HTTP_FLAGS,
  whenEmpty: { decision: 'deny', reason: 'no request to decide (default deny)' },
  ready: () => Promise.resolve(),
  classify: classifyHttp,
  units: (classification) =>
    classification.ok
      ? { ok: true, units: [{ command: `${classification.request.method} ${classification.request.path}`, flags: classification.flags, request: classification.request }] }
      : { ok: false, code: classification.error.code },
  compileMatch: (match) => new HttpMatcher(match),
  // Method, host and body state only: paths and queries can carry identifiers and tokens.
  summary: (classification) =>
    classification.ok
      ? { ok: true, method: classification.request.method, host: classification.request.host, bodyState: classification.request.bodyState, flags: classification.flags }
      : { ok: false, error: classification.error.code },
};
