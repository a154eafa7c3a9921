import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { loadPolicyFile, PolicyError, protocolsOfLanguage, type PolicyContext, type PolicyDecision, type PolicyIdentity, type PolicyLanguageName } from '@custodian/policy';
import {
  ALL_POLICY_LANGUAGES,
  POLICY_LANGUAGES,
  decideHttp,
  decideLlm,
  decideMcp,
  decideShell,
  decideSql,
  httpBody,
  type HttpPolicyInput,
  type McpPolicyInput,
} from '@custodian/policy-languages';
import type { CliIo } from './cli.js';

export const POLICY_USAGE = `Usage: custodian policy test <policy.yaml> --identity SUBJECT --connection NAME
                             (--sql TEXT | --shell TEXT | --http 'METHOD URL' | --mcp JSON | --llm JSON) [options]

Decides one command under a policy file, as the gateway would, and prints the decision, the
matching rule and the reason (per statement or program when there are several).

Options:
  --identity SUBJECT    Subject (sub) of the caller                           (required)
  --issuer ISSUER       Issuer (iss) of the caller                  (default: custodian-cli)
  --groups A,B          Groups of the caller, comma-separated             (default: none)
  --kind KIND           human, agent or service                         (default: agent)
  --connection NAME     Connection (target) name, e.g. orders-prod            (required)
  --protocol PROTOCOL   postgres, ssh, http, anthropic, mcp, kubernetes   (default: the
                        language's: postgres for --sql, ssh for --shell, http for --http,
                        mcp for --mcp, anthropic for --llm)
  --sql TEXT            SQL to decide (may hold several statements)
  --shell TEXT          Shell command line to decide
  --http 'METHOD URL'   HTTP request to decide, e.g. 'POST https://api.example/v1/orders?dry=1'
    --header 'N: V'     A request header (repeatable)
    --body JSON|@FILE   The request body (JSON; anything else is decided as unparseable)
  --mcp JSON|@FILE      MCP request: {"server":"files","method":"tools/call","tool":"write_file",
                        "arguments":{…},"annotations":{"readOnlyHint":false}} (method defaults
                        to tools/call)
  --llm JSON|@FILE      Anthropic Messages API request body (model, max_tokens, system,
                        messages, tools)
  --json                Print the decision as JSON
  -h, --help            Show this help

Exit codes: 0 allowed, 3 blocked or held for approval, 2 bad usage or an invalid policy file
(reported as file:line:column: key: problem).
`;

/** Exit codes of `custodian policy test`. */
export const POLICY_EXIT = { allowed: 0, usage: 2, notAllowed: 3 } as const;

const KINDS: readonly PolicyIdentity['kind'][] = ['human', 'agent', 'service'];
const PROTOCOLS: readonly PolicyContext['protocol'][] = ['postgres', 'ssh', 'http', 'anthropic', 'mcp', 'kubernetes'];
/** Most bytes of an HTTP body the CLI inspects, like the gateway's default. */
const MAX_HTTP_BODY_BYTES = 1024 * 1024;

class PolicyUsageError extends Error {
  override readonly name = 'PolicyUsageError';
  readonly code = 'CLI_USAGE';
}

/** The command to decide, as its language takes it. */
type PolicyTestCommand =
  | { readonly language: 'sql'; readonly input: string }
  | { readonly language: 'shell'; readonly input: string }
  | { readonly language: 'http'; readonly input: HttpPolicyInput }
  | { readonly language: 'mcp'; readonly input: McpPolicyInput }
  | { readonly language: 'llm'; readonly input: unknown };

interface PolicyTestRequest {
  readonly file: string;
  readonly context: PolicyContext;
  readonly command: PolicyTestCommand;
  readonly json: boolean;
}

const LANGUAGE_OPTIONS: readonly PolicyLanguageName[] = ['sql', 'shell', 'http', 'mcp', 'llm'];

function parsePolicyTest(argv: readonly string[], cwd: string): PolicyTestRequest | 'help' {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      allowPositionals: true,
      strict: true,
      options: {
        identity: { type: 'string' },
        issuer: { type: 'string' },
        groups: { type: 'string' },
        kind: { type: 'string' },
        connection: { type: 'string' },
        protocol: { type: 'string' },
        sql: { type: 'string' },
        shell: { type: 'string' },
        http: { type: 'string' },
        header: { type: 'string', multiple: true },
        body: { type: 'string' },
        mcp: { type: 'string' },
        llm: { type: 'string' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (error) {
    throw new PolicyUsageError(error instanceof Error ? error.message : String(error));
  }
  const { values, positionals } = parsed;
  if (values.help === true) return 'help';
  const [sub, file, ...extra] = positionals;
  if (sub !== 'test') throw new PolicyUsageError(sub === undefined ? 'policy: missing subcommand (test)' : `unknown command: policy ${sub}`);
  if (file === undefined) throw new PolicyUsageError('policy test: missing <policy.yaml>');
  if (extra.length > 0) throw new PolicyUsageError(`policy test: unexpected argument ${extra[0]}`);
  if (values.identity === undefined || values.identity === '') throw new PolicyUsageError('policy test: --identity is required');
  if (values.connection === undefined || values.connection === '') throw new PolicyUsageError('policy test: --connection is required');
  const given = LANGUAGE_OPTIONS.filter((language) => values[language] !== undefined);
  if (given.length !== 1) throw new PolicyUsageError(`policy test: give exactly one of ${LANGUAGE_OPTIONS.map((language) => `--${language}`).join(', ')}`);
  const language = given[0]!;
  if (language !== 'http' && (values.header !== undefined || values.body !== undefined)) throw new PolicyUsageError('policy test: --header and --body go with --http');
  const kind = values.kind ?? 'agent';
  if (!isOneOf(kind, KINDS)) throw new PolicyUsageError(`policy test: --kind must be one of ${KINDS.join(', ')}`);
  const protocol = values.protocol ?? protocolsOfLanguage(language)[0]!;
  if (!isOneOf(protocol, PROTOCOLS)) throw new PolicyUsageError(`policy test: --protocol must be one of ${PROTOCOLS.join(', ')}`);
  const groups = (values.groups ?? '')
    .split(',')
    .map((group) => group.trim())
    .filter((group) => group !== '');
  const text = values[language]!;
  let command: PolicyTestCommand;
  switch (language) {
    case 'sql':
    case 'shell':
      command = { language, input: text };
      break;
    case 'http':
      command = { language, input: httpRequest(text, values.header ?? [], values.body, cwd) };
      break;
    case 'mcp': {
      const call = jsonArgument('--mcp', text, cwd);
      if (typeof call !== 'object' || call === null || Array.isArray(call)) throw new PolicyUsageError('policy test: --mcp must be a JSON object');
      command = { language, input: { method: 'tools/call', ...(call as Partial<McpPolicyInput>) } as McpPolicyInput };
      break;
    }
    case 'llm':
      command = { language, input: jsonArgument('--llm', text, cwd) };
      break;
  }
  return {
    file: resolve(cwd, file),
    context: { identity: { subject: values.identity, issuer: values.issuer ?? 'custodian-cli', groups, kind }, connection: values.connection, protocol },
    command,
    json: values.json ?? false,
  };
}

/** `TEXT` or `@FILE` (relative to the working directory). */
function argumentText(option: string, value: string, cwd: string): string {
  if (!value.startsWith('@')) return value;
  try {
    return readFileSync(resolve(cwd, value.slice(1)), 'utf8');
  } catch (error) {
    throw new PolicyUsageError(`policy test: ${option} ${value}: cannot be read (${(error as NodeJS.ErrnoException).code ?? 'EIO'})`);
  }
}

function jsonArgument(option: string, value: string, cwd: string): unknown {
  try {
    return JSON.parse(argumentText(option, value, cwd)) as unknown;
  } catch (error) {
    if (error instanceof PolicyUsageError) throw error;
    throw new PolicyUsageError(`policy test: ${option} must be JSON (or @FILE holding JSON)`);
  }
}

/** `'METHOD URL'` plus `--header` and `--body` → the HTTP language's input. */
function httpRequest(line: string, headers: readonly string[], body: string | undefined, cwd: string): HttpPolicyInput {
  const [method, target, ...rest] = line.trim().split(/\s+/);
  let url: URL;
  try {
    if (method === undefined || target === undefined || rest.length > 0) throw new TypeError('shape');
    url = new URL(target);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new TypeError('scheme');
  } catch {
    throw new PolicyUsageError("policy test: --http must be 'METHOD URL' with an absolute http(s) URL, e.g. 'GET https://api.example/v1/orders'");
  }
  const headerMap: Record<string, string[]> = {};
  for (const header of headers) {
    const colon = header.indexOf(':');
    if (colon <= 0) throw new PolicyUsageError("policy test: --header must be 'Name: value'");
    (headerMap[header.slice(0, colon).trim().toLowerCase()] ??= []).push(header.slice(colon + 1).trim());
  }
  return {
    host: url.host,
    method,
    path: url.pathname,
    query: url.search.replace(/^\?/, ''),
    headers: headerMap,
    ...httpBody(body === undefined ? undefined : argumentText('--body', body, cwd), { maxBytes: MAX_HTTP_BODY_BYTES }),
  };
}

function isOneOf<T extends string>(value: string, allowed: readonly T[]): value is T {
  return (allowed as readonly string[]).includes(value);
}

/** `custodian policy …`; `argv` starts after `policy`. Resolves with the exit code. */
export async function runPolicyCommand(argv: readonly string[], io: Pick<CliIo, 'stdout' | 'stderr' | 'cwd'>): Promise<number> {
  let request: PolicyTestRequest | 'help';
  try {
    request = parsePolicyTest(argv, io.cwd);
  } catch (error) {
    if (!(error instanceof PolicyUsageError)) throw error;
    io.stderr(`custodian: ${error.message}\n\n${POLICY_USAGE}`);
    return POLICY_EXIT.usage;
  }
  if (request === 'help') {
    io.stdout(POLICY_USAGE);
    return POLICY_EXIT.allowed;
  }
  let decision: PolicyDecision;
  try {
    // Every language's match blocks are compiled at load, so a bad criterion is a file:line: key error.
    const policy = loadPolicyFile(request.file, { languages: ALL_POLICY_LANGUAGES });
    decision = await decide(policy, request.context, request.command);
  } catch (error) {
    if (!(error instanceof PolicyError)) throw error;
    io.stderr(`custodian: ${error.message}\n`);
    return POLICY_EXIT.usage;
  }
  io.stdout(request.json ? `${JSON.stringify(decisionJson(decision), null, 2)}\n` : formatDecision(decision, request.file));
  return decision.decision === 'allow' ? POLICY_EXIT.allowed : POLICY_EXIT.notAllowed;
}

async function decide(policy: ReturnType<typeof loadPolicyFile>, context: PolicyContext, command: PolicyTestCommand): Promise<PolicyDecision> {
  switch (command.language) {
    case 'sql':
      return decideSql(policy, context, command.input);
    case 'shell':
      return decideShell(policy, context, command.input);
    case 'http':
      return decideHttp(policy, context, command.input);
    case 'mcp':
      return decideMcp(policy, context, command.input);
    case 'llm':
      await POLICY_LANGUAGES.llm.ready();
      return decideLlm(policy, context, command.input);
  }
}

function formatDecision(decision: PolicyDecision, file: string): string {
  const lines = [`decision: ${decision.decision}`, `rule: ${decision.ruleId ?? '(none)'}`, `reason: ${decision.reason}`];
  if (decision.clientMessage !== undefined) lines.push(`client message: ${decision.clientMessage}`);
  const approval = decision.approval;
  if (approval !== undefined) {
    const grant = approval.grant === 'window' ? `window of ${approval.windowSeconds ?? 0}s` : 'once';
    lines.push(`approval: ${approval.required} of group(s) ${approval.approverGroups.join(', ')}; timeout ${approval.timeoutSeconds}s; grant ${grant}`);
  }
  const { policy } = decision;
  lines.push(`policy: ${policy.name} v${policy.version} sha256:${policy.digest} (${file})`);
  if (decision.units.length > 1) {
    lines.push(`${POLICY_LANGUAGES[decision.language].unitNoun}s:`);
    const rows = decision.units.map((unit) => [`${unit.index + 1}.`, unit.command, unit.decision, unit.ruleId ?? '(none)', unit.reason]);
    const widths = [0, 1, 2, 3].map((column) => Math.max(...rows.map((row) => row[column]!.length)));
    for (const row of rows) lines.push(`  ${row.map((cell, column) => cell.padEnd(widths[column] ?? 0)).join('  ')}`.trimEnd());
  }
  return `${lines.join('\n')}\n`;
}

/** The decision for `--json`: the classification as the literal-free summary `command.issued` carries. */
function decisionJson(decision: PolicyDecision): Record<string, unknown> {
  const { classification, ...rest } = decision;
  const language = POLICY_LANGUAGES[decision.language];
  return { ...rest, classification: { language: decision.language, ...language.summary(classification as never) } };
}
