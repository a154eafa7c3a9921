// The demo's sample policy, decided by the real policy engine and SQL classifier: TRUNCATE is
// blocked like an unbounded DELETE (issue 20), not held for approval like other writes.
import { beforeAll, describe, expect, it } from 'vitest';
import { DEMO_POLICY_YAML } from '@custodian/demo-environment';
import { parsePolicy, type CompiledPolicy, type PolicyContext } from '@custodian/policy';
import { decideSql, readyPolicyLanguages } from '@custodian/policy-languages';

const AGENT: PolicyContext = { identity: { subject: 'demo-agent', issuer: 'http://127.0.0.1/demo', groups: ['demo-agents'], kind: 'agent' }, connection: 'demo', protocol: 'postgres' };
let policy: CompiledPolicy;

beforeAll(async () => {
  await readyPolicyLanguages();
  policy = parsePolicy(DEMO_POLICY_YAML, 'demo-policy.yaml');
});

describe('demo policy', () => {
  it.each([
    ['TRUNCATE orders', 'block', 'no-truncate'],
    ['TRUNCATE TABLE public.orders, public.customers CASCADE', 'block', 'no-truncate'],
    ['DELETE FROM orders', 'block', 'no-unbounded-deletes'],
    ["UPDATE orders SET status = 'shipped' WHERE id = 102", 'require-approval', 'agents-writes-need-approval'],
    ['SELECT name FROM customers', 'allow', 'agents-read'],
  ])('%s → %s (%s)', async (sql, decision, ruleId) => {
    const verdict = await decideSql(policy, AGENT, sql);
    expect(verdict.decision).toBe(decision);
    expect(verdict.ruleId).toBe(ruleId);
  });
});
