// Connection authorization and the protocol→language table: the engine alone, no language loaded.
import { describe, expect, it } from 'vitest';
import type { Protocol } from '@custodian/event-contracts';
import { languageOfProtocol, parsePolicy, PROTOCOL_LANGUAGES, protocolsOfLanguage, type PolicyContext } from './index.js';
import { identity } from './testing/sample-policy.js';

const PROTOCOLS: readonly Protocol[] = ['postgres', 'ssh', 'kubernetes', 'http', 'anthropic', 'mcp'];

function context(protocol: Protocol, groups: readonly string[] = ['analysts']): PolicyContext {
  return { identity: identity('agent-7', groups), connection: 'target-1', protocol };
}

/** The protocols on which the policy lets the analyst open a session. */
function permitted(rules: string): Protocol[] {
  const policy = parsePolicy(`name: auth\nrules:\n${rules}`, 'auth.yaml');
  return PROTOCOLS.filter((protocol) => policy.authorizeConnection(context(protocol)).permitted);
}

describe('protocol → language table', () => {
  it('maps every protocol to the language that decides its commands', () => {
    expect(PROTOCOL_LANGUAGES).toEqual({ postgres: 'sql', ssh: 'shell', kubernetes: 'shell', http: 'http', anthropic: 'llm', mcp: 'mcp' });
    expect(languageOfProtocol('kubernetes')).toBe('shell');
    expect(protocolsOfLanguage('shell')).toEqual(['ssh', 'kubernetes']);
    expect(protocolsOfLanguage('llm')).toEqual(['anthropic']);
  });
});

describe('CompiledPolicy.authorizeConnection', () => {
  it('a rule of one language opens only the protocols that language serves', () => {
    // The bug this fixes: a `sql:` allow rule without `protocols:` authorized MCP and HTTP connections.
    expect(permitted('  - { id: r, match: { sql: { kinds: [read] } }, decision: allow }\n')).toEqual(['postgres']);
    expect(permitted('  - { id: r, match: { shell: { programs: [ls] } }, decision: allow }\n')).toEqual(['ssh', 'kubernetes']);
    expect(permitted('  - { id: r, match: { http: { methods: [GET] } }, decision: allow }\n')).toEqual(['http']);
    expect(permitted('  - { id: r, match: { mcp: { tools: [read_file] } }, decision: allow }\n')).toEqual(['mcp']);
    expect(permitted('  - { id: r, match: { llm: { models: ["claude-*"] } }, decision: allow }\n')).toEqual(['anthropic']);
  });

  it('a rule with no language block opens every protocol its criteria cover; `protocols` narrows it', () => {
    expect(permitted('  - { id: r, match: { identity: { groups: [analysts] } }, decision: allow }\n')).toEqual(PROTOCOLS);
    expect(permitted('  - { id: r, match: { protocols: [mcp, http] }, decision: allow }\n')).toEqual(['http', 'mcp']);
    expect(permitted('  - { id: r, match: { protocols: [mcp], sql: {} }, decision: allow }\n')).toEqual([]);
    expect(permitted('  - { id: r, match: { identity: { groups: [ops] } }, decision: allow }\n')).toEqual([]);
  });

  it('require-approval rules open sessions, block rules never do; the first permitting rule is named', () => {
    const approval = 'approval: { approverGroups: [dba], required: 1, timeoutSeconds: 60, grant: once }';
    expect(permitted(`  - { id: held, match: { mcp: {} }, decision: require-approval, ${approval} }\n`)).toEqual(['mcp']);
    expect(permitted('  - { id: nope, match: {}, decision: block }\n')).toEqual([]);
    const policy = parsePolicy(
      'name: auth\nrules:\n  - { id: sql-read, match: { sql: { kinds: [read] } }, decision: allow }\n  - { id: tools, match: { mcp: {} }, decision: allow }\n',
      'auth.yaml',
    );
    expect(policy.authorizeConnection(context('mcp'))).toEqual({ permitted: true, ruleId: 'tools', reason: 'rule tools covers this identity on target-1' });
    expect(policy.authorizeConnection(context('http'))).toEqual({ permitted: false, reason: 'no rule of policy "auth" lets this identity use connection "target-1" over http' });
  });
});
