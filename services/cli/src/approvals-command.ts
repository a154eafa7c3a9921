// `custodian approvals list | show | approve | deny`: the approver API (services/api, /v1/approvals)
// from a terminal, with the approver's own bearer access token.
import { parseArgs } from 'node:util';
import type { ApprovalListResponse, ApprovalResponse, ApprovalView } from '@custodian/api-service';
import { loadConfig } from '@custodian/runtime-config';
import type { CliIo } from './cli.js';

export const APPROVALS_USAGE = `Usage: custodian approvals <command> [options]

Commands:
  list [--status STATUS] [--limit N]   Approvals you may decide or see (default: pending)
  show APPROVAL_ID                     The held command, its requester, decisions so far and
                                       the session it belongs to
  approve APPROVAL_ID -j TEXT          Approve (one of N); the justification is recorded
  deny APPROVAL_ID -j TEXT             Deny; one denial ends the approval

Options:
  --api URL                 API base URL (default: $CUSTODIAN_API_URL, else services.api.http
                            of the configuration)
  --token TOKEN             Your OIDC access token (default: $CUSTODIAN_TOKEN; prefer the
                            variable: command-line flags are visible to other local users)
  -j, --justification TEXT  Why (approve and deny; required)
  --status STATUS           pending, granted, denied, expired, cancelled or all (list)
  --limit N                 At most N approvals (list; default 100)
  --json                    Print the API's JSON answer
  -c, --config FILE         Configuration file (for the default API URL)
  -h, --help                Show this help

Exit codes: 0 done, 1 the API could not be reached or failed, 2 bad usage,
3 the API refused (not an approver, your own request, already decided, expired, ...).
`;

export const APPROVALS_EXIT = { ok: 0, failure: 1, usage: 2, refused: 3 } as const;

const STATUSES = ['pending', 'granted', 'denied', 'expired', 'cancelled', 'all'];
const REQUEST_TIMEOUT_MS = 30_000;

class ApprovalsUsageError extends Error {
  override readonly name = 'ApprovalsUsageError';
  readonly code = 'CLI_USAGE';
}

interface ParsedApprovals {
  readonly command: 'list' | 'show' | 'approve' | 'deny';
  readonly approvalId?: string;
  readonly justification?: string;
  readonly status?: string;
  readonly limit?: string;
  readonly json: boolean;
  readonly api?: string;
  readonly token?: string;
  readonly config?: string;
}

function parse(argv: readonly string[]): ParsedApprovals | 'help' {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      allowPositionals: true,
      strict: true,
      options: {
        api: { type: 'string' },
        token: { type: 'string' },
        justification: { type: 'string', short: 'j' },
        status: { type: 'string' },
        limit: { type: 'string' },
        json: { type: 'boolean' },
        config: { type: 'string', short: 'c' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (error) {
    throw new ApprovalsUsageError(error instanceof Error ? error.message : String(error));
  }
  const { values, positionals } = parsed;
  if (values.help === true) return 'help';
  const [command, approvalId, ...extra] = positionals;
  if (command !== 'list' && command !== 'show' && command !== 'approve' && command !== 'deny') {
    throw new ApprovalsUsageError(command === undefined ? 'approvals: missing command (list, show, approve, deny)' : `unknown command: approvals ${command}`);
  }
  if (command === 'list') {
    if (approvalId !== undefined) throw new ApprovalsUsageError(`approvals list: unexpected argument ${approvalId}`);
    if (values.status !== undefined && !STATUSES.includes(values.status)) throw new ApprovalsUsageError(`approvals list: --status must be one of ${STATUSES.join(', ')}`);
    if (values.limit !== undefined && !/^\d{1,4}$/.test(values.limit)) throw new ApprovalsUsageError('approvals list: --limit must be a number between 1 and 1000');
  } else {
    if (approvalId === undefined) throw new ApprovalsUsageError(`approvals ${command}: missing APPROVAL_ID`);
    if (extra.length > 0) throw new ApprovalsUsageError(`approvals ${command}: unexpected argument ${extra[0]}`);
    if ((command === 'approve' || command === 'deny') && (values.justification ?? '').trim() === '') {
      throw new ApprovalsUsageError(`approvals ${command}: --justification is required`);
    }
  }
  return {
    command,
    ...(approvalId !== undefined ? { approvalId } : {}),
    ...(values.justification !== undefined ? { justification: values.justification } : {}),
    ...(values.status !== undefined ? { status: values.status } : {}),
    ...(values.limit !== undefined ? { limit: values.limit } : {}),
    json: values.json ?? false,
    ...(values.api !== undefined ? { api: values.api } : {}),
    ...(values.token !== undefined ? { token: values.token } : {}),
    ...(values.config !== undefined ? { config: values.config } : {}),
  };
}

/** The API base URL: --api, else $CUSTODIAN_API_URL, else services.api.http of the configuration. */
export function apiBase(parsed: { readonly api?: string; readonly config?: string }, io: CliIo): string {
  const explicit = parsed.api ?? io.env.CUSTODIAN_API_URL;
  if (explicit) {
    try {
      const url = new URL(explicit);
      if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error('not http(s)');
    } catch {
      throw new ApprovalsUsageError('approvals: --api / CUSTODIAN_API_URL must be an http(s) URL');
    }
    return explicit.replace(/\/+$/, '');
  }
  const { http } = loadConfig({ file: parsed.config, env: io.env, cwd: io.cwd }).config.services.api;
  const host = http.host === '0.0.0.0' || http.host === '::' ? '127.0.0.1' : http.host.includes(':') ? `[${http.host}]` : http.host;
  return `http://${host}:${http.port}`;
}

export interface ApiAnswer {
  readonly status: number;
  readonly body: unknown;
}

export async function callApi(base: string, token: string, method: 'GET' | 'POST', path: string, body?: unknown): Promise<ApiAnswer> {
  const response = await fetch(`${base}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, accept: 'application/json', ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    redirect: 'error',
    signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
  });
  const text = await response.text();
  let parsed: unknown = text;
  try {
    parsed = text === '' ? undefined : JSON.parse(text);
  } catch {
    // Not JSON (a proxy's error page): reported by status.
  }
  return { status: response.status, body: parsed };
}

export function refusal(answer: ApiAnswer): { code: string; message: string } {
  const error = (answer.body as { error?: { code?: unknown; message?: unknown } } | undefined)?.error;
  if (error && typeof error.code === 'string') return { code: error.code, message: typeof error.message === 'string' ? error.message : '' };
  const message = (answer.body as { message?: unknown } | undefined)?.message;
  return { code: `HTTP_${answer.status}`, message: typeof message === 'string' ? message : '' };
}

function oneLine(text: string, width: number): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > width ? `${flat.slice(0, width - 1)}…` : flat;
}

export function table(rows: readonly (readonly string[])[]): string {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => r[i]?.length ?? 0))) ?? [];
  return rows.map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i] ?? 0))).join('  ')).join('\n') + '\n';
}

/** `$1 = 'value'` per bound parameter (NULL for null), quoted as SQL literals so spaces and quotes show. */
function parameterLines(parameters: readonly (string | null)[] | undefined): string[] {
  return (parameters ?? []).map((value, i) => `$${i + 1} = ${value === null ? 'NULL' : `'${value.replace(/'/g, "''")}'`}`);
}

function formatList(approvals: readonly ApprovalView[]): string {
  if (approvals.length === 0) return 'No approvals.\n';
  const rows = [
    ['ID', 'STATUS', 'REQUESTER', 'CONNECTION', 'RULE', 'APPROVALS', 'EXPIRES', 'YOU', 'COMMAND'],
    ...approvals.map((a) => [
      a.approvalId,
      a.status,
      a.requester.subject,
      a.connection.name,
      a.ruleId,
      `${a.approvals}/${a.required}`,
      a.expiresAt.replace(/\.\d+Z$/, 'Z'),
      a.canDecide ? 'can decide' : '-',
      oneLine([a.command, ...parameterLines(a.parameters)].join('; '), 160),
    ]),
  ];
  return table(rows);
}

function sessionLine(entry: NonNullable<ApprovalResponse['session']>['events'][number]): string {
  const e = entry.event;
  const payload = e.payload as unknown as Record<string, unknown>;
  const text = typeof payload.text === 'string' ? payload.text : typeof payload.command === 'string' ? payload.command : typeof payload.decision === 'string' ? payload.decision : '';
  return `  #${entry.revision}  ${e.occurredAt}  ${e.type}${text ? `  ${oneLine(text, 100)}` : ''}`;
}

function formatShow(answer: ApprovalResponse): string {
  const a = answer.approval;
  const lines = [
    `Approval ${a.approvalId}: ${a.status}${a.canDecide ? ' (you can decide)' : ''}`,
    `  requester   ${a.requester.subject} (${a.requester.kind}, ${a.requester.issuer})`,
    `  connection  ${a.connection.name} (${a.connection.protocol})`,
    `  rule        ${a.ruleId}`,
    `  approvers   ${a.approvals} of ${a.required} from ${a.approverGroups.join(', ')}`,
    `  grant       ${a.grantScope.kind === 'window' ? `window of ${a.grantScope.windowSeconds ?? 0}s for this identity on this connection under this rule${a.policy ? ` and policy ${a.policy.name} v${a.policy.version}` : ''}` : 'this command once'}`,
    ...(a.policy ? [`  policy      ${a.policy.name} v${a.policy.version} (sha256 ${a.policy.digest})`] : []),
    `  requested   ${a.requestedAt} by ${a.requestedBy.service}/${a.requestedBy.instance}`,
    `  expires     ${a.expiresAt}`,
    `  language    ${a.language}`,
    `  digest      ${a.commandDigest ?? '(none: recorded before approvals were bound to a digest)'}`,
    '',
    'Command (as the gateway recorded it: literal values, masked where a detector or column rule says so):',
    ...a.command.split('\n').map((line) => `  ${line}`),
  ];
  if (a.parameters && a.parameters.length > 0) {
    lines.push('', 'Parameters:');
    for (const line of parameterLines(a.parameters)) lines.push(`  ${line}`);
  }
  if (a.decisions.length > 0) {
    lines.push('', 'Approvals:');
    for (const d of a.decisions) lines.push(`  ${d.at}  ${d.approver.subject}: ${d.justification}`);
  }
  const r = a.resolution;
  if (r) {
    const detail =
      r.status === 'denied' ? `by ${r.approver.subject}: ${r.justification}` : r.status === 'cancelled' ? `(${r.reason})` : r.status === 'granted' && r.grant?.expiresAt ? `(window until ${r.grant.expiresAt})` : '';
    lines.push('', `Outcome: ${r.status} at ${r.at}${detail ? ` ${detail}` : ''}`);
  }
  if (answer.session) {
    lines.push('', `Session ${answer.session.sessionId}${answer.session.truncated ? ' (most recent events)' : ''}:`);
    for (const entry of answer.session.events) lines.push(sessionLine(entry));
  }
  return lines.join('\n') + '\n';
}

function formatDecision(command: 'approve' | 'deny', answer: ApprovalResponse): string {
  const a = answer.approval;
  if (command === 'deny') return `Denied ${a.approvalId}.\n`;
  if (a.status === 'granted') return `Approved ${a.approvalId}: granted (${a.approvals} of ${a.required}).\n`;
  return `Approval recorded for ${a.approvalId}: ${a.approvals} of ${a.required}; waiting for ${a.required - a.approvals} more.\n`;
}

/** Runs `custodian approvals …`; resolves with the exit code. Never prints the token. */
export async function runApprovalsCommand(argv: readonly string[], io: CliIo): Promise<number> {
  let parsed: ParsedApprovals | 'help';
  let base: string;
  let token: string;
  try {
    parsed = parse(argv);
    if (parsed === 'help') {
      io.stdout(APPROVALS_USAGE);
      return APPROVALS_EXIT.ok;
    }
    token = parsed.token ?? io.env.CUSTODIAN_TOKEN ?? '';
    if (token.trim() === '') throw new ApprovalsUsageError('approvals: no access token: set CUSTODIAN_TOKEN (or pass --token)');
    base = apiBase(parsed, io);
  } catch (error) {
    if (error instanceof ApprovalsUsageError) {
      io.stderr(`custodian: ${error.message}\n\n${APPROVALS_USAGE}`);
      return APPROVALS_EXIT.usage;
    }
    io.stderr(`custodian: ${error instanceof Error ? error.message : String(error)}\n`);
    return APPROVALS_EXIT.usage;
  }

  const { command } = parsed;
  const id = encodeURIComponent(parsed.approvalId ?? '');
  let answer: ApiAnswer;
  try {
    if (command === 'list') {
      const query = new URLSearchParams({ status: parsed.status ?? 'pending', ...(parsed.limit ? { limit: parsed.limit } : {}) });
      answer = await callApi(base, token, 'GET', `/v1/approvals?${query}`);
    } else if (command === 'show') {
      answer = await callApi(base, token, 'GET', `/v1/approvals/${id}`);
    } else {
      answer = await callApi(base, token, 'POST', `/v1/approvals/${id}/${command}`, { justification: parsed.justification });
    }
  } catch (error) {
    const cause = error instanceof Error && error.cause instanceof Error ? ` (${(error.cause as NodeJS.ErrnoException).code ?? error.cause.message})` : '';
    io.stderr(`custodian: cannot reach the API at ${base}: ${error instanceof Error ? error.message : String(error)}${cause}\n`);
    return APPROVALS_EXIT.failure;
  }
  if (answer.status < 200 || answer.status >= 300) {
    const { code, message } = refusal(answer);
    io.stderr(`custodian: approvals ${command} refused: ${answer.status} ${code}${message ? `: ${message}` : ''}\n`);
    return answer.status >= 500 ? APPROVALS_EXIT.failure : APPROVALS_EXIT.refused;
  }
  if (parsed.json) {
    io.stdout(`${JSON.stringify(answer.body, null, 2)}\n`);
    return APPROVALS_EXIT.ok;
  }
  if (command === 'list') io.stdout(formatList((answer.body as ApprovalListResponse).approvals));
  else if (command === 'show') io.stdout(formatShow(answer.body as ApprovalResponse));
  else io.stdout(formatDecision(command, answer.body as ApprovalResponse));
  return APPROVALS_EXIT.ok;
}
