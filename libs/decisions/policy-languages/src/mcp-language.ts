// MCP requests through the policy-language interface: one unit per JSON-RPC request (a tool
// call, a resource read, a prompt get…), matched by server, method, tool name, argument paths
// and the tool's annotations.
import { FlagCriterion, NamePatternList, protocolsOfLanguage, type McpMatch, type PolicyLanguage, type PolicyUnit, type UnitMatcher } from '@custodian/policy';
import { JsonConditions, jsonShapeProblem } from './value-conditions.js';

/** Tool annotations as the server declared them in `tools/list` (hints: the server's word, not a guarantee). */
export interface McpToolAnnotations {
  readonly readOnlyHint?: boolean;
  readonly destructiveHint?: boolean;
  readonly idempotentHint?: boolean;
  readonly openWorldHint?: boolean;
}

export interface McpPolicyInput {
  /** The configured MCP server (connection) the request goes to. */
  readonly server: string;
  /** JSON-RPC method: `tools/call`, `resources/read`, `prompts/get`, … */
  readonly method: string;
  /** Tool name (`tools/call`). */
  readonly tool?: string;
  /** `params.arguments` (tools/call, prompts/get) as parsed JSON. */
  readonly arguments?: unknown;
  /** The tool's annotations from `tools/list`, when the gateway has seen them. */
  readonly annotations?: McpToolAnnotations;
}

export type McpFlag =
  /** The gateway has no annotations for the tool: the MCP defaults (not read-only, destructive, open world) apply. */
  'no-annotations';

/** No MCP flag is guarded: an unannotated tool is matched with the spec's pessimistic defaults instead. */
export const GUARDED_MCP_FLAGS: readonly McpFlag[] = [];

/** The request as rules see it; annotations are effective values (declared, else the MCP defaults). */
export interface McpCallView {
  readonly server: string;
  readonly method: string;
  readonly tool?: string;
  readonly arguments: unknown;
  readonly annotations: Required<McpToolAnnotations>;
}

export type McpClassificationErrorCode =
  /** Missing server or method, a `tools/call` without a tool name, annotations that are not booleans. */
  | 'MCP_INVALID_REQUEST'
  /** Arguments nest deeper or hold more values than conditions evaluate. */
  | 'MCP_ARGUMENTS_TOO_COMPLEX'
  | 'MCP_CLASSIFICATION_FAILED';

export type McpClassification =
  | { readonly ok: true; readonly call: McpCallView; readonly flags: readonly McpFlag[] }
  | { readonly ok: false; readonly error: { readonly code: McpClassificationErrorCode } };

export interface McpUnit extends PolicyUnit {
  readonly call: McpCallView;
}

const METHOD = /^[A-Za-z][A-Za-z0-9_./-]{0,127}$/;
const ANNOTATIONS = ['readOnlyHint', 'destructiveHint', 'idempotentHint', 'openWorldHint'] as const;

export function classifyMcp(input: McpPolicyInput): McpClassification {
  const fail = (code: McpClassificationErrorCode): McpClassification => ({ ok: false, error: { code } });
  try {
    if (typeof input.server !== 'string' || input.server === '' || typeof input.method !== 'string' || !METHOD.test(input.method)) return fail('MCP_INVALID_REQUEST');
    if (input.tool !== undefined && (typeof input.tool !== 'string' || input.tool === '')) return fail('MCP_INVALID_REQUEST');
    if (input.method === 'tools/call' && input.tool === undefined) return fail('MCP_INVALID_REQUEST');
    if (input.arguments !== undefined && jsonShapeProblem(input.arguments) !== undefined) return fail('MCP_ARGUMENTS_TOO_COMPLEX');
    const declared = input.annotations;
    if (declared !== undefined && ANNOTATIONS.some((key) => declared[key] !== undefined && typeof declared[key] !== 'boolean')) return fail('MCP_INVALID_REQUEST');
    // MCP defaults: readOnlyHint false, destructiveHint true, idempotentHint false, openWorldHint
    // true; destructiveHint is meaningful only for a tool that is not read-only.
    const readOnlyHint = declared?.readOnlyHint ?? false;
    const annotations = {
      readOnlyHint,
      destructiveHint: readOnlyHint ? false : (declared?.destructiveHint ?? true),
      idempotentHint: declared?.idempotentHint ?? false,
      openWorldHint: declared?.openWorldHint ?? true,
    };
    const call: McpCallView = {
      server: input.server,
      method: input.method,
      ...(input.tool === undefined ? {} : { tool: input.tool }),
      arguments: input.arguments,
      annotations,
    };
    return { ok: true, call, flags: declared === undefined ? ['no-annotations'] : [] };
  } catch {
    return fail('MCP_CLASSIFICATION_FAILED');
  }
}

class McpMatcher implements UnitMatcher<McpUnit> {
  private readonly servers: NamePatternList | undefined;
  private readonly methods: NamePatternList | undefined;
  private readonly tools: NamePatternList | undefined;
  private readonly arguments: JsonConditions | undefined;
  private readonly annotations: readonly (readonly [keyof McpToolAnnotations, boolean])[] | undefined;
  private readonly flags: FlagCriterion | undefined;

  constructor(match: McpMatch) {
    this.servers = match.servers === undefined ? undefined : new NamePatternList(match.servers);
    // `tools/*`: `*` does not cross `/`.
    this.methods = match.methods === undefined ? undefined : new NamePatternList(match.methods, '/');
    this.tools = match.tools === undefined ? undefined : new NamePatternList(match.tools);
    this.arguments = match.arguments === undefined ? undefined : new JsonConditions(match.arguments, 'arguments');
    this.annotations =
      match.annotations === undefined
        ? undefined
        : ANNOTATIONS.flatMap((key) => (match.annotations?.[key] === undefined ? [] : [[key, match.annotations[key]] as const]));
    this.flags = FlagCriterion.of(match.flags);
  }

  matches({ call, flags }: McpUnit): boolean {
    if (this.servers !== undefined && !this.servers.matches(call.server)) return false;
    if (this.methods !== undefined && !this.methods.matches(call.method)) return false;
    if (this.tools !== undefined && (call.tool === undefined || !this.tools.matches(call.tool))) return false;
    if (this.arguments !== undefined && !this.arguments.matches(call.arguments)) return false;
    if (this.annotations !== undefined && !this.annotations.every(([key, value]) => call.annotations[key] === value)) return false;
    return this.flags === undefined || this.flags.matches(flags);
  }

  names(flag: string): boolean {
    return this.flags?.names(flag) === true;
  }
}

export const mcpLanguage: PolicyLanguage<'mcp', McpPolicyInput, McpClassification, McpUnit> = {
  name: 'mcp',
  protocols: protocolsOfLanguage('mcp'),
  unitNoun: 'tool call',
  guardedFlags: GUARDED_MCP_FLAGS,
  whenEmpty: { decision: 'deny', reason: 'no call to decide (default deny)' },
  ready: () => Promise.resolve(),
  classify: classifyMcp,
  units: (classification) =>
    classification.ok
      ? {
          ok: true,
          units: [{ command: classification.call.tool === undefined ? classification.call.method : `${classification.call.method} ${classification.call.tool}`, flags: classification.flags, call: classification.call }],
        }
      : { ok: false, code: classification.error.code },
  compileMatch: (match) => new McpMatcher(match),
  // Names and hints only, never argument values.
  summary: (classification) =>
    classification.ok
      ? {
          ok: true,
          server: classification.call.server,
          method: classification.call.method,
          ...(classification.call.tool === undefined ? {} : { tool: classification.call.tool }),
          annotations: classification.call.annotations,
          flags: classification.flags,
        }
      : { ok: false, error: classification.error.code },
};
