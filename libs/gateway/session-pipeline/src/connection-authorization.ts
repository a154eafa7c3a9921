// May this identity use this connection at all? Checked once at login, before any credential is
// used upstream. The policy has no separate connection grants: a connection is usable when at
// least one rule that could let a command through (allow or require-approval) matches the
// identity, the connection and the protocol. Block rules and the default deny cannot open a
// session, so an identity no rule mentions never reaches the target.
import { NamePatternList, type CompiledPolicy, type PolicyContext, type PolicyRule } from '@custodian/policy';

export interface ConnectionAuthorization {
  readonly permitted: boolean;
  /** The first rule that permits it, when permitted. */
  readonly ruleId?: string;
  readonly reason: string;
}

function ruleMatchesContext(rule: PolicyRule, context: PolicyContext): boolean {
  const { identity, connections, protocols } = rule.match;
  if (identity?.subjects !== undefined && !identity.subjects.includes(context.identity.subject)) return false;
  if (identity?.issuers !== undefined && !identity.issuers.includes(context.identity.issuer)) return false;
  if (identity?.groups !== undefined && !identity.groups.some((group) => context.identity.groups.includes(group))) return false;
  if (identity?.kinds !== undefined && !identity.kinds.includes(context.identity.kind)) return false;
  if (connections !== undefined && !new NamePatternList(connections).matches(context.connection)) return false;
  if (protocols !== undefined && !protocols.includes(context.protocol)) return false;
  return true;
}

/** Whether any allow / require-approval rule of the policy covers this identity, connection and protocol. */
export function authorizeConnection(policy: CompiledPolicy, context: PolicyContext): ConnectionAuthorization {
  for (const rule of policy.rules) {
    if (rule.decision === 'block') continue;
    // A rule for the other language (shell rules on a SQL connection) cannot let anything through here.
    if (context.protocol === 'postgres' && rule.match.shell !== undefined) continue;
    if (context.protocol === 'ssh' && rule.match.sql !== undefined) continue;
    if (ruleMatchesContext(rule, context)) return { permitted: true, ruleId: rule.id, reason: `rule ${rule.id} covers this identity on ${context.connection}` };
  }
  return { permitted: false, reason: `no rule of policy "${policy.name}" lets this identity use connection ${JSON.stringify(context.connection)} over ${context.protocol}` };
}
