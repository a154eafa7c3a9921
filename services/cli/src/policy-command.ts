import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { loadPolicyFile, PolicyError, type PolicyClassification, type PolicyContext, type PolicyDecision, type PolicyIdentity } from '@custodian/policy';
import type { CliIo } from './cli.js';

export const POLICY_USAGE = `Usage: custodian policy test <policy.yaml> --identity SUBJECT --connection NAME
                             (--sql TEXT | --shell TEXT) [options]

Decides one command under a policy file, as the gateway would, and prints the decision, the
matching rule and the reason (per statement or program when there are several).

Options:
  --identity SUBJECT    Subject (sub) of the caller                           (required)
  --issuer ISSUER       Issuer (iss) of the caller                  (default: custodian-cli)
  --groups A,B          Groups of the caller, comma-separated             (default: none)
  --kind KIND           human, agent or service                         (default: agent)
  --connection NAME     Connection (target) name, e.g. orders-prod            (required)
  --protocol PROTOCOL   postgres, ssh, http, anthropic, mcp, kubernetes
                                          (default: postgres for --sql, ssh for --shell)
  --sql TEXT            SQL to decide (may hold several statements)
  --shell TEXT          Shell command line to decide
  --json                Print the decision as JSON
  -h, --help            Show this help

Exit codes: 0 allowed, 3 blocked or held for approval, 2 bad usage or an invalid policy file
(reported as file:line:column: key: problem).
`;

/** Exit codes of `custodian policy test`. */
export const POLICY_EXIT = { allowed: 0, usage: 2, notAllowed: 3 } as const;

const KINDS: readonly PolicyIdentity['kind'][] = ['human', 'agent', 'service'];
const PROTOCOLS: readonly PolicyContext['protocol'][] = ['postgres', 'ssh', 'http', 'anthropic', 'mcp', 'kubernetes'];

class PolicyUsageError extends Error {
  override readonly name = 'PolicyUsageError';
  readonly code = 'CLI_USAGE';
}

interface PolicyTestRequest {
  readonly file: string;
  readonly context: PolicyContext;
  readonly command: { readonly language: 'sql' | 'shell'; readonly text: string };
  readonly json: boolean;
}

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
  if ((values.sql === undefined) === (values.shell === undefined)) throw new PolicyUsageError('policy test: give exactly one of --sql and --shell');
  const kind = values.kind ?? 'agent';
  if (!isOneOf(kind, KINDS)) throw new PolicyUsageError(`policy test: --kind must be one of ${KINDS.join(', ')}`);
  const language = values.sql !== undefined ? 'sql' : 'shell';
  const protocol = values.protocol ?? (language === 'sql' ? 'postgres' : 'ssh');
  if (!isOneOf(protocol, PROTOCOLS)) throw new PolicyUsageError(`policy test: --protocol must be one of ${PROTOCOLS.join(', ')}`);
  const groups = (values.groups ?? '')
    .split(',')
    .map((group) => group.trim())
    .filter((group) => group !== '');
  return {
    file: resolve(cwd, file),
    context: { identity: { subject: values.identity, issuer: values.issuer ?? 'custodian-cli', groups, kind }, connection: values.connection, protocol },
    command: { language, text: values.sql ?? values.shell ?? '' },
    json: values.json ?? false,
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
    const policy = loadPolicyFile(request.file);
    const { language, text } = request.command;
    decision = language === 'sql' ? await policy.decideSql(request.context, text) : await policy.decideShell(request.context, text);
  } catch (error) {
    if (!(error instanceof PolicyError)) throw error;
    io.stderr(`custodian: ${error.message}\n`);
    return POLICY_EXIT.usage;
  }
  io.stdout(request.json ? `${JSON.stringify(decisionJson(decision), null, 2)}\n` : formatDecision(decision, request.file));
  return decision.decision === 'allow' ? POLICY_EXIT.allowed : POLICY_EXIT.notAllowed;
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
  if (decision.perStatement.length > 1) {
    const noun = decision.classification.language === 'sql' ? 'statements' : 'programs';
    lines.push(`${noun}:`);
    const rows = decision.perStatement.map((unit) => [`${unit.index + 1}.`, unit.command, unit.decision, unit.ruleId ?? '(none)', unit.reason]);
    const widths = [0, 1, 2, 3].map((column) => Math.max(...rows.map((row) => row[column]!.length)));
    for (const row of rows) lines.push(`  ${row.map((cell, column) => cell.padEnd(widths[column] ?? 0)).join('  ')}`.trimEnd());
  }
  return `${lines.join('\n')}\n`;
}

/** The decision for `--json`: classification reduced to what explains the decision. */
function decisionJson(decision: PolicyDecision): Record<string, unknown> {
  const { classification, ...rest } = decision;
  return { ...rest, classification: classificationJson(classification) };
}

function classificationJson(classification: PolicyClassification): Record<string, unknown> {
  const { language, result } = classification;
  if (!result.ok) return { language, ok: false, code: result.error.code, position: result.error.position ?? null };
  if (classification.language === 'sql' && classification.result.ok) {
    const { kind, flags, statements } = classification.result;
    return { language, ok: true, kind, flags, statements };
  }
  return { language, ...result };
}
