// Shorthands for callers that decide one language: `decideSql(policy, context, sql)` instead of
// `policy.decide(sqlLanguage, context, { sql })`. The async forms load the parser first.
import type { CompiledPolicy, PolicyContext, PolicyDecision } from '@custodian/policy';
import type { ShellClassification, ShellClassifyOptions } from '@custodian/shell-classification';
import type { SqlClassification, SqlClassifyOptions } from '@custodian/sql-classification';
import { httpLanguage, type HttpClassification, type HttpPolicyInput } from './http-language.js';
import { llmLanguage, type LlmClassification, type LlmPolicyInput } from './llm-language.js';
import { mcpLanguage, type McpClassification, type McpPolicyInput } from './mcp-language.js';
import { shellLanguage } from './shell-language.js';
import { sqlLanguage } from './sql-language.js';

/** Classifies SQL with the PostgreSQL parser (loaded on first use) and decides every statement. */
export async function decideSql(policy: CompiledPolicy, context: PolicyContext, sql: string | Uint8Array, options: SqlClassifyOptions = {}): Promise<PolicyDecision<SqlClassification>> {
  await sqlLanguage.ready();
  return decideSqlSync(policy, context, sql, options);
}

/**
 * Like decideSql; the parser must be loaded (`await sqlLanguage.ready()`). `options.classification`:
 * the text's classification made elsewhere (e.g. in a worker thread), decided without classifying again.
 */
export function decideSqlSync(policy: CompiledPolicy, context: PolicyContext, sql: string | Uint8Array, options: SqlClassifyOptions & { readonly classification?: SqlClassification } = {}): PolicyDecision<SqlClassification> {
  return policy.decide(sqlLanguage, context, { ...options, sql });
}

/** Classifies a command line with the bash parser (loaded on first use) and decides every program. */
export async function decideShell(policy: CompiledPolicy, context: PolicyContext, command: string, options: ShellClassifyOptions = {}): Promise<PolicyDecision<ShellClassification>> {
  await shellLanguage.ready();
  return decideShellSync(policy, context, command, options);
}

/** Like decideShell; the parser must be loaded (`await shellLanguage.ready()`). */
export function decideShellSync(policy: CompiledPolicy, context: PolicyContext, command: string, options: ShellClassifyOptions = {}): PolicyDecision<ShellClassification> {
  return policy.decide(shellLanguage, context, { ...options, command });
}

export function decideHttp(policy: CompiledPolicy, context: PolicyContext, request: HttpPolicyInput): PolicyDecision<HttpClassification> {
  return policy.decide(httpLanguage, context, request);
}

export function decideMcp(policy: CompiledPolicy, context: PolicyContext, call: McpPolicyInput): PolicyDecision<McpClassification> {
  return policy.decide(mcpLanguage, context, call);
}

/** Decides an Anthropic Messages request body (detectors are built on first use; `await llmLanguage.ready()` to do it early). */
export function decideLlm(policy: CompiledPolicy, context: PolicyContext, body: LlmPolicyInput): PolicyDecision<LlmClassification> {
  return policy.decide(llmLanguage, context, body);
}
