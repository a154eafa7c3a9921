// The masking engine configured from the active policy's `masking` section: column rules by
// name, JSON-path rules (adapters apply them to every JSON value they mask: json/jsonb columns,
// HTTP and MCP bodies), and the detectors the rules name (with their strategies and rule ids).
// Built once per policy version (building detectors is the expensive part) and shared by every
// session. A path outside the supported subset throws MASKING_INVALID_PATTERN here: masking is
// then unavailable and sessions fail rather than pass the value unmasked.
import { MaskingPolicy, type ColumnRuleSpec, type DetectorId, type JsonPathRuleSpec, type StrategySpec } from '@custodian/masking';
import type { CompiledPolicy, MaskingRule } from '@custodian/policy';

function strategyOf(rule: MaskingRule): StrategySpec {
  switch (rule.strategy) {
    case 'redact':
      return { kind: 'redact', label: rule.id };
    case 'partial':
      return { kind: 'partial', ...(rule.keepFirst === undefined ? {} : { keepFirst: rule.keepFirst }), ...(rule.keepLast === undefined ? {} : { keepLast: rule.keepLast }) };
    case 'hmac':
      return { kind: 'hmac' };
  }
}

/** The policy's masking rules as a MaskingPolicy: column rules, JSON-path rules, and detectors only where a rule names them. */
export function maskingPolicyFromRules(rules: readonly MaskingRule[], hmacKey: Uint8Array): MaskingPolicy {
  const columns: ColumnRuleSpec[] = [];
  const jsonPaths: JsonPathRuleSpec[] = [];
  const enabled: DetectorId[] = [];
  const strategies: Record<string, StrategySpec> = {};
  const ruleIds: Record<string, string> = {};
  for (const rule of rules) {
    for (const column of rule.columns ?? []) columns.push({ column, id: rule.id, strategy: strategyOf(rule) });
    for (const path of rule.jsonPaths ?? []) jsonPaths.push({ path, id: rule.id, strategy: strategyOf(rule) });
    for (const detector of rule.detectors ?? []) {
      // The first rule naming a detector decides how its hits are masked.
      if (enabled.includes(detector)) continue;
      enabled.push(detector);
      strategies[detector] = strategyOf(rule);
      ruleIds[detector] = rule.id;
    }
  }
  return MaskingPolicy.create({ columns, jsonPaths, detection: { enabled, strategies, ruleIds }, hmacKey });
}

/** MaskingPolicy per compiled policy, cached so a policy version builds its detectors once. */
export class PolicyMasking {
  private readonly cache = new WeakMap<CompiledPolicy, MaskingPolicy>();

  constructor(private readonly hmacKey: Uint8Array) {}

  for(policy: CompiledPolicy): MaskingPolicy {
    let masking = this.cache.get(policy);
    if (!masking) {
      masking = maskingPolicyFromRules(policy.masking, this.hmacKey);
      this.cache.set(policy, masking);
    }
    return masking;
  }
}
