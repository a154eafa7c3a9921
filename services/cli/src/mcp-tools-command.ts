// `custodian mcp-tools list | accept`: the tool-definition pins of an MCP connection through the API
// (/v1/mcp/connections/{connection}/tools), with the caller's own bearer access token.
import { parseArgs } from 'node:util';
import type { ToolPinAcceptResponse, ToolPinListResponse } from '@custodian/api-service';
import { apiBase, callApi, refusal, table, type ApiAnswer } from './approvals-command.js';
import type { CliIo } from './cli.js';

export const MCP_TOOLS_USAGE = `Usage: custodian mcp-tools <command> [options]

Commands:
  list CONNECTION                          Each tool's pinned definition (fingerprint) and any
                                           changed definition waiting for a human (the tool is
                                           blocked at the gateway until it is accepted)
  accept CONNECTION TOOL -f FINGERPRINT -j TEXT
                                           Accept the changed definition you reviewed; recorded
                                           with your identity and both fingerprints

Options:
  --api URL                 API base URL (default: $CUSTODIAN_API_URL, else services.api.http
                            of the configuration)
  --token TOKEN             Your OIDC access token (default: $CUSTODIAN_TOKEN)
  -f, --fingerprint HEX     The changed definition's fingerprint, as \`list\` shows it (accept)
  -j, --justification TEXT  Why (accept; required)
  --json                    Print the API's JSON answer
  -c, --config FILE         Configuration file (for the default API URL)
  -h, --help                Show this help

Exit codes: 0 done, 1 the API could not be reached or failed, 2 bad usage,
3 the API refused (not an approver, not a human, fingerprint changed meanwhile, ...).
`;

export const MCP_TOOLS_EXIT = { ok: 0, failure: 1, usage: 2, refused: 3 } as const;

class McpToolsUsageError extends Error {
  override readonly name = 'McpToolsUsageError';
  readonly code = 'CLI_USAGE';
}

interface ParsedMcpTools {
  readonly command: 'list' | 'accept';
  readonly connection: string;
  readonly tool?: string;
  readonly fingerprint?: string;
  readonly justification?: string;
  readonly json: boolean;
  readonly api?: string;
  readonly token?: string;
  readonly config?: string;
}

function parse(argv: readonly string[]): ParsedMcpTools | 'help' {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      allowPositionals: true,
      strict: true,
      options: {
        api: { type: 'string' },
        token: { type: 'string' },
        fingerprint: { type: 'string', short: 'f' },
        justification: { type: 'string', short: 'j' },
        json: { type: 'boolean' },
        config: { type: 'string', short: 'c' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (error) {
    throw new McpToolsUsageError(error instanceof Error ? error.message : String(error));
  }
  const { values, positionals } = parsed;
  if (values.help === true) return 'help';
  const [command, connection, tool, ...extra] = positionals;
  if (command !== 'list' && command !== 'accept') throw new McpToolsUsageError(command === undefined ? 'mcp-tools: missing command (list, accept)' : `unknown command: mcp-tools ${command}`);
  if (connection === undefined) throw new McpToolsUsageError(`mcp-tools ${command}: missing CONNECTION`);
  if (command === 'list' && tool !== undefined) throw new McpToolsUsageError(`mcp-tools list: unexpected argument ${tool}`);
  if (command === 'accept') {
    if (tool === undefined) throw new McpToolsUsageError('mcp-tools accept: missing TOOL');
    if (extra.length > 0) throw new McpToolsUsageError(`mcp-tools accept: unexpected argument ${extra[0]}`);
    if (!/^[0-9a-f]{64}$/.test(values.fingerprint ?? '')) throw new McpToolsUsageError('mcp-tools accept: --fingerprint must be the 64 hex digits `list` shows');
    if ((values.justification ?? '').trim() === '') throw new McpToolsUsageError('mcp-tools accept: --justification is required');
  }
  return {
    command,
    connection,
    ...(tool !== undefined ? { tool } : {}),
    ...(values.fingerprint !== undefined ? { fingerprint: values.fingerprint } : {}),
    ...(values.justification !== undefined ? { justification: values.justification } : {}),
    json: values.json ?? false,
    ...(values.api !== undefined ? { api: values.api } : {}),
    ...(values.token !== undefined ? { token: values.token } : {}),
    ...(values.config !== undefined ? { config: values.config } : {}),
  };
}

function formatList(answer: ToolPinListResponse): string {
  if (answer.tools.length === 0) return `No tool was seen on ${answer.connection} yet.\n`;
  const rows = [
    ['TOOL', 'STATUS', 'PINNED', 'CHANGED TO', 'DETECTED'],
    ...answer.tools.map((t) => [t.tool, t.changed ? 'BLOCKED (changed)' : 'pinned', t.fingerprint, t.changed?.fingerprint ?? '-', t.changed?.detectedAt ?? '-']),
  ];
  const changed = answer.tools.filter((t) => t.changed?.description !== undefined);
  const descriptions = changed.map((t) => `\n${t.tool}: new description (masked)\n  ${t.changed!.description!.split('\n').join('\n  ')}\n`).join('');
  const hint = answer.tools.some((t) => t.changed) ? (answer.canAccept ? '\nAccept a reviewed change: custodian mcp-tools accept CONNECTION TOOL -f <CHANGED TO> -j TEXT\n' : '\nYou may not accept changes (approvals.toolDefinitionApproverGroups).\n') : '';
  return table(rows) + descriptions + hint;
}

/** Runs `custodian mcp-tools …`; resolves with the exit code. Never prints the token. */
export async function runMcpToolsCommand(argv: readonly string[], io: CliIo): Promise<number> {
  let parsed: ParsedMcpTools | 'help';
  let base: string;
  let token: string;
  try {
    parsed = parse(argv);
    if (parsed === 'help') {
      io.stdout(MCP_TOOLS_USAGE);
      return MCP_TOOLS_EXIT.ok;
    }
    token = parsed.token ?? io.env.CUSTODIAN_TOKEN ?? '';
    if (token.trim() === '') throw new McpToolsUsageError('mcp-tools: no access token: set CUSTODIAN_TOKEN (or pass --token)');
    base = apiBase(parsed, io);
  } catch (error) {
    io.stderr(`custodian: ${error instanceof Error ? error.message : String(error)}\n${error instanceof McpToolsUsageError ? `\n${MCP_TOOLS_USAGE}` : ''}`);
    return MCP_TOOLS_EXIT.usage;
  }
  const path = `/v1/mcp/connections/${encodeURIComponent(parsed.connection)}/tools`;
  let answer: ApiAnswer;
  try {
    answer =
      parsed.command === 'list'
        ? await callApi(base, token, 'GET', path)
        : await callApi(base, token, 'POST', `${path}/${encodeURIComponent(parsed.tool ?? '')}/accept`, { fingerprint: parsed.fingerprint, justification: parsed.justification });
  } catch (error) {
    io.stderr(`custodian: cannot reach the API at ${base}: ${error instanceof Error ? error.message : String(error)}\n`);
    return MCP_TOOLS_EXIT.failure;
  }
  if (answer.status < 200 || answer.status >= 300) {
    const { code, message } = refusal(answer);
    io.stderr(`custodian: mcp-tools ${parsed.command} refused: ${answer.status} ${code}${message ? `: ${message}` : ''}\n`);
    return answer.status >= 500 ? MCP_TOOLS_EXIT.failure : MCP_TOOLS_EXIT.refused;
  }
  if (parsed.json) io.stdout(`${JSON.stringify(answer.body, null, 2)}\n`);
  else if (parsed.command === 'list') io.stdout(formatList(answer.body as ToolPinListResponse));
  else {
    const accepted = answer.body as ToolPinAcceptResponse;
    io.stdout(`Accepted ${accepted.tool.tool} on ${accepted.connection}: pinned at ${accepted.tool.fingerprint}.\n`);
  }
  return MCP_TOOLS_EXIT.ok;
}
