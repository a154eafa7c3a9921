// The Kubernetes API paths the gateway answers, parsed and validated: the pods/exec subresource
// (`/api/v1/namespaces/{ns}/pods/{pod}/exec?command=…&container=…&stdin=…&stdout=…&stderr=…&tty=…`),
// the other pod subresources (refused, by name) and the discovery documents clients read first.

export type ApiRequestErrorCode = 'REQUEST_INVALID' | 'COMMAND_MISSING' | 'COMMAND_TOO_LARGE';

export class ApiRequestError extends Error {
  constructor(
    readonly code: ApiRequestErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'ApiRequestError';
  }
}

export interface ExecRequest {
  readonly namespace: string;
  readonly pod: string;
  /** Absent: the pod's only container; the gateway names it (reading the pod) before deciding. */
  readonly container?: string;
  readonly command: readonly string[];
  readonly stdin: boolean;
  readonly stdout: boolean;
  readonly stderr: boolean;
  readonly tty: boolean;
}

export type ApiRoute =
  | { readonly kind: 'exec'; readonly namespace: string; readonly pod: string }
  | { readonly kind: 'pod-subresource'; readonly namespace: string; readonly pod: string; readonly subresource: string }
  | { readonly kind: 'pod'; readonly namespace: string; readonly pod: string }
  | { readonly kind: 'discovery'; readonly path: string }
  | { readonly kind: 'other'; readonly path: string };

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;
const POD_PATH = /^\/api\/v1\/namespaces\/([^/]+)\/pods\/([^/]+)(?:\/([^/]+))?\/?$/;
const DISCOVERY = new Set(['/version', '/api', '/apis', '/api/v1']);

/** Where a request goes (path only; the query is read by parseExecRequest). */
export function routeOf(pathname: string): ApiRoute {
  if (DISCOVERY.has(pathname)) return { kind: 'discovery', path: pathname };
  const match = POD_PATH.exec(pathname);
  if (!match) return { kind: 'other', path: pathname };
  const namespace = decodeURIComponent(match[1]!);
  const pod = decodeURIComponent(match[2]!);
  const subresource = match[3];
  if (subresource === undefined) return { kind: 'pod', namespace, pod };
  if (subresource === 'exec') return { kind: 'exec', namespace, pod };
  return { kind: 'pod-subresource', namespace, pod, subresource };
}

const MAX_COMMAND_BYTES = 64 * 1024;
const MAX_ARGS = 4096;

/** `true`/`1` (any case) are true, absent or anything else false, as the API server's query decoder reads booleans. */
function flag(query: URLSearchParams, name: string): boolean {
  const value = query.get(name);
  return value !== null && (value.toLowerCase() === 'true' || value === '1');
}

/** Validates the exec request's names and command; refusals say what is wrong. */
export function parseExecRequest(namespace: string, pod: string, query: URLSearchParams): ExecRequest {
  if (!DNS_LABEL.test(namespace)) throw new ApiRequestError('REQUEST_INVALID', `namespace ${JSON.stringify(namespace.slice(0, 80))} is not a valid namespace name`);
  if (!DNS_SUBDOMAIN.test(pod)) throw new ApiRequestError('REQUEST_INVALID', `pod ${JSON.stringify(pod.slice(0, 80))} is not a valid pod name`);
  const container = query.get('container') ?? undefined;
  if (container !== undefined && container !== '' && !DNS_LABEL.test(container)) throw new ApiRequestError('REQUEST_INVALID', `container ${JSON.stringify(container.slice(0, 80))} is not a valid container name`);
  const command = query.getAll('command');
  if (command.length === 0 || command[0] === '') throw new ApiRequestError('COMMAND_MISSING', 'exec needs a command (query parameter command, one per argument)');
  if (command.length > MAX_ARGS) throw new ApiRequestError('COMMAND_TOO_LARGE', `exec commands are limited to ${MAX_ARGS} arguments`);
  const bytes = command.reduce((n, arg) => n + Buffer.byteLength(arg, 'utf8') + 1, 0);
  if (bytes > MAX_COMMAND_BYTES) throw new ApiRequestError('COMMAND_TOO_LARGE', `the exec command is ${bytes} bytes; the limit is ${MAX_COMMAND_BYTES}`);
  if (command.some((arg) => arg.includes('\u0000'))) throw new ApiRequestError('REQUEST_INVALID', 'an exec argument contains a NUL character');
  const request = {
    namespace,
    pod,
    ...(container ? { container } : {}),
    command,
    stdin: flag(query, 'stdin'),
    stdout: flag(query, 'stdout'),
    stderr: flag(query, 'stderr'),
    tty: flag(query, 'tty'),
  };
  if (!request.stdin && !request.stdout && !request.stderr) throw new ApiRequestError('REQUEST_INVALID', 'you must specify at least one of stdin, stdout, stderr');
  return request;
}

/** The query string the upstream API server gets: the request's parameters, nothing else the client sent. */
export function execQuery(request: ExecRequest): string {
  const query = new URLSearchParams();
  for (const arg of request.command) query.append('command', arg);
  if (request.container) query.set('container', request.container);
  query.set('stdin', String(request.stdin));
  query.set('stdout', String(request.stdout));
  query.set('stderr', String(request.stderr));
  query.set('tty', String(request.tty));
  return query.toString();
}

const SAFE_WORD = /^[A-Za-z0-9_@%+=:,./-]+$/;

/**
 * The argv as one shell command line that a POSIX shell would split back into exactly these
 * words: safe words as they are, anything else single-quoted (`'` as `'\''`). The shell language
 * decides this line, so `sh -c '<script>'` has its script decided as shell text too.
 */
export function argvToShellText(argv: readonly string[]): string {
  return argv.map((arg) => (SAFE_WORD.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`)).join(' ');
}
