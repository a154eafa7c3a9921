// The policy languages: SQL (PostgreSQL parser), shell (bash parser), HTTP, MCP and LLM
// (Anthropic Messages) as plugins of @custodian/policy's PolicyLanguage interface, the registry
// by name and protocol, and shorthands such as decideSql(policy, context, sql).
export { ALL_POLICY_LANGUAGES, POLICY_LANGUAGES, languageFor, readyPolicyLanguages, type PolicyLanguages } from './registry.js';
export { decideHttp, decideLlm, decideMcp, decideShell, decideShellSync, decideSql, decideSqlSync } from './decide.js';
export { GUARDED_SQL_FLAGS, sqlClassificationSummary, sqlLanguage, sqlWritesPermitted, type SqlPolicyInput, type SqlUnit } from './sql-language.js';
export { GUARDED_SHELL_FLAGS, shellLanguage, type ShellPolicyInput, type ShellUnit } from './shell-language.js';
export {
  GUARDED_HTTP_FLAGS,
  HttpPathPattern,
  classifyHttp,
  httpBody,
  httpLanguage,
  normaliseHttpPath,
  type HttpBodyState,
  type HttpClassification,
  type HttpClassificationErrorCode,
  type HttpFlag,
  type HttpPolicyInput,
  type HttpRequestView,
  type HttpUnit,
} from './http-language.js';
export {
  GUARDED_MCP_FLAGS,
  classifyMcp,
  mcpLanguage,
  type McpCallView,
  type McpClassification,
  type McpClassificationErrorCode,
  type McpFlag,
  type McpPolicyInput,
  type McpToolAnnotations,
  type McpUnit,
} from './mcp-language.js';
export {
  GUARDED_LLM_FLAGS,
  MAX_LLM_PROMPT_CHARS,
  classifyLlm,
  llmLanguage,
  type LlmClassification,
  type LlmClassificationErrorCode,
  type LlmDetection,
  type LlmDetectionFlag,
  type LlmFlag,
  type LlmPolicyInput,
  type LlmRequestView,
  type LlmUnit,
} from './llm-language.js';
export {
  JsonConditions,
  JsonPathSelector,
  MAX_JSON_DEPTH,
  MAX_JSON_NODES,
  TextConditions,
  ValueConditionMatcher,
  jsonShapeProblem,
  type JsonShapeProblem,
} from './value-conditions.js';
