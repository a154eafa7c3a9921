// Custodian's policy engine: YAML policy files validated against schemas/policy, compiled into
// rules that decide every unit of a command (SQL statements, programs, requests, tool calls,
// messages) through a language plugin (@custodian/policy-languages). The engine itself imports
// no classifier. Default deny; unclassifiable input is blocked (fail closed).
export {
  CompiledPolicy,
  DEFAULT_DENY_REASON,
  GUARDED_FLAG_RULE_ID,
  type CompiledPolicyMetadata,
  type ConnectionAuthorization,
  type PolicyContext,
  type PolicyDecision,
  type KubernetesTarget,
  type PolicyIdentity,
  type PolicyRef,
  type PolicyVerdict,
  type UnitDecision,
} from './compiled-policy.js';
export { PolicyError, formatPolicyIssue, type PolicyErrorCode, type PolicyIssue } from './errors.js';
export { FlagCriterion, NameCriterion, isList } from './match-criteria.js';
export { NamePattern, NamePatternList } from './name-pattern.js';
export type * from './policy-document.js';
export { dottedKey, loadPolicyFile, parsePolicy, parsePolicyBytes, policyDigest, readPolicyDocument, type ParsePolicyOptions } from './policy-file.js';
export { policyActivation, policyStream, toPolicyActivatedPayload, toPolicyDecidedPayload, type DecidedCommand, type PolicyActivation } from './policy-events.js';
export {
  POLICY_LANGUAGE_NAMES,
  PROTOCOL_LANGUAGES,
  PolicyMatchError,
  languageOfProtocol,
  protocolsOfLanguage,
  type AnyPolicyLanguage,
  type MatchCompileContext,
  type PolicyLanguage,
  type PolicyLanguageName,
  type PolicyUnit,
  type PolicyUnits,
  type UnitMatcher,
} from './policy-language.js';
export { POLICY_SCHEMA_SPECIFIER, policySchema } from './policy-schema.js';
export { PolicyStore, PolicyWatcher, type PolicyLoadResult, type PolicyStoreOptions, type PolicyWatcherOptions } from './policy-store.js';
