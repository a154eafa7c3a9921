// Rules that match where a Kubernetes exec runs (`match.kubernetes`: namespaces, pods, containers),
// decided with the shell language as the Kubernetes gateway does.
import { beforeAll, describe, expect, it } from 'vitest';
import { parsePolicy, type PolicyContext } from '@custodian/policy';
import { identity } from '@custodian/policy/testing';
import { decideShellSync, readyPolicyLanguages } from './index.js';

beforeAll(() => readyPolicyLanguages());

const POLICY = parsePolicy(
  `name: k8s-targets
rules:
  - id: no-prod-db-shell
    match: { kubernetes: { namespaces: [prod], containers: [db] }, shell: {} }
    decision: block
  - id: web-pods-read
    match: { kubernetes: { namespaces: [prod, "team-*"], pods: ["web-*"] }, shell: { programs: [cat, ls] } }
    decision: allow
`,
  'k8s.yaml',
);

const base: PolicyContext = { identity: identity('agent-1', ['operators']), connection: 'shop', protocol: 'kubernetes' };
const at = (namespace: string, pod: string, container?: string): PolicyContext => ({ ...base, kubernetes: { namespace, pod, ...(container ? { container } : {}) } });

describe('policy: match.kubernetes (namespaces, pods, containers)', () => {
  it('matches the namespace and pod globs of the exec', () => {
    expect(decideShellSync(POLICY, at('prod', 'web-0', 'app'), 'ls /srv')).toMatchObject({ decision: 'allow', ruleId: 'web-pods-read' });
    expect(decideShellSync(POLICY, at('team-a', 'web-7'), 'cat x')).toMatchObject({ decision: 'allow', ruleId: 'web-pods-read' });
    expect(decideShellSync(POLICY, at('prod', 'batch-0', 'app'), 'ls')).toMatchObject({ decision: 'block', ruleId: null });
    expect(decideShellSync(POLICY, at('staging', 'web-0', 'app'), 'ls')).toMatchObject({ decision: 'block', ruleId: null });
  });

  it('matches containers; an exec naming none matches only patterns that match the empty string', () => {
    expect(decideShellSync(POLICY, at('prod', 'web-0', 'db'), 'ls')).toMatchObject({ decision: 'block', ruleId: 'no-prod-db-shell' });
    expect(decideShellSync(POLICY, at('prod', 'web-0'), 'ls')).toMatchObject({ decision: 'allow', ruleId: 'web-pods-read' });
  });

  it('a rule with kubernetes criteria never matches without an exec target or on another protocol, but can open the connection', () => {
    expect(decideShellSync(POLICY, base, 'ls')).toMatchObject({ decision: 'block', ruleId: null });
    expect(decideShellSync(POLICY, { ...at('prod', 'web-0'), protocol: 'ssh' }, 'ls')).toMatchObject({ decision: 'block', ruleId: null });
    expect(POLICY.authorizeConnection(base)).toMatchObject({ permitted: true, ruleId: 'web-pods-read' });
    expect(POLICY.authorizeConnection({ ...base, protocol: 'ssh' }).permitted).toBe(false);
  });

  it('the schema refuses unknown keys and an empty block', () => {
    expect(() => parsePolicy('name: x\nrules:\n  - { id: r, match: { kubernetes: { nodes: [a] } }, decision: allow }\n', 'x.yaml')).toThrow(/kubernetes/);
    expect(() => parsePolicy('name: x\nrules:\n  - { id: r, match: { kubernetes: {} }, decision: allow }\n', 'x.yaml')).toThrow(/kubernetes/);
  });
});
