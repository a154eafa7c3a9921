// Custodian's policy engine: YAML policy files validated against schemas/policy, compiled into
// rules that decide every SQL statement (real PostgreSQL parser) and every program of a shell
// command line (real bash parser). Default deny; unparseable input is blocked (fail closed).
export {
  CompiledPolicy,
  DEFAULT_DENY_REASON,
  GUARDED_FLAG_RULE_ID,
  GUARDED_SHELL_FLAGS,
  GUARDED_SQL_FLAGS,
  type CompiledPolicyMetadata,
  type PolicyClassification,
  type PolicyContext,
  type PolicyDecision,
  type PolicyIdentity,
  type PolicyRef,
  type PolicyVerdict,
  type UnitDecision,
} from './compiled-policy.js';
export { PolicyError, formatPolicyIssue, type PolicyErrorCode, type PolicyIssue } from './errors.js';
export { NamePattern, NamePatternList } from './name-pattern.js';
export type * from './policy-document.js';
export { dottedKey, loadPolicyFile, parsePolicy, parsePolicyBytes, policyDigest, readPolicyDocument, type ParsePolicyOptions } from './policy-file.js';
export { policyActivation, policyStream, toPolicyActivatedPayload, toPolicyDecidedPayload, type DecidedCommand, type PolicyActivation } from './policy-events.js';
export { POLICY_SCHEMA_SPECIFIER, policySchema } from './policy-schema.js';
export { PolicyStore, PolicyWatcher, type PolicyLoadResult, type PolicyStoreOptions, type PolicyWatcherOptions } from './policy-store.js';
