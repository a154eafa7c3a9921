import { fileURLToPath } from 'node:url';
import type { PolicyContext, PolicyIdentity } from '../compiled-policy.js';

/** The sample policy the tests (and the CLI tests) decide against. */
export const SAMPLE_POLICY_PATH = fileURLToPath(new URL('../../test-fixtures/sample-policy.yaml', import.meta.url));

export function identity(subject: string, groups: readonly string[], kind: PolicyIdentity['kind'] = 'agent'): PolicyIdentity {
  return { subject, issuer: 'https://idp.example.test', groups, kind };
}

export const ANALYST_AGENT: PolicyContext = { identity: identity('agent-7', ['analysts']), connection: 'orders-prod', protocol: 'postgres' };
