import { describe, expect, it } from 'vitest';
import { parsePolicy, type PolicyContext } from '@custodian/policy';
import { identity } from '@custodian/policy/testing';
import { classifyMcp, decideMcp, type McpPolicyInput } from './index.js';

const context: PolicyContext = { identity: identity('agent-7', ['analysts']), connection: 'files', protocol: 'mcp' };

const rules = parsePolicy(
  [
    'name: mcp-test',
    'rules:',
    '  - id: no-destructive',
    '    match: { mcp: { annotations: { destructiveHint: true }, tools: ["delete_*", "drop_*"] } }',
    '    decision: block',
    '  - id: read-only',
    '    match: { mcp: { servers: [files, "docs-*"], methods: [tools/call], annotations: { readOnlyHint: true } } }',
    '    decision: allow',
    '  - id: resources',
    '    match: { mcp: { methods: ["resources/*"] } }',
    '    decision: allow',
    '  - id: report-writes',
    '    match:',
    '      mcp:',
    '        servers: [files]',
    '        tools: [write_file]',
    '        arguments:',
    '          "$.path": { pattern: ["/srv/reports/*", "/tmp/*"] }',
    '          "$.mode": { oneOf: [create, append] }',
    '          "$.options.force": { exists: false }',
    '    decision: require-approval',
    '    approval: { approverGroups: [dba], required: 1, timeoutSeconds: 60, grant: once }',
    '',
  ].join('\n'),
  'mcp-test.yaml',
);

const call = (overrides: Partial<McpPolicyInput> = {}): McpPolicyInput => ({ server: 'files', method: 'tools/call', tool: 'read_file', arguments: { path: '/etc/motd' }, ...overrides });

describe('MCP classification', () => {
  it('applies the MCP defaults to undeclared annotations and flags their absence', () => {
    const classified = classifyMcp(call({ annotations: undefined }));
    expect(classified).toMatchObject({ ok: true, flags: ['no-annotations'], call: { annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: false, openWorldHint: true } } });
    // A read-only tool is not destructive, whatever it declares.
    expect(classifyMcp(call({ annotations: { readOnlyHint: true, destructiveHint: true } }))).toMatchObject({ ok: true, flags: [], call: { annotations: { destructiveHint: false } } });
  });

  it('fails closed on malformed requests and oversized arguments', () => {
    expect(classifyMcp(call({ server: '' }))).toEqual({ ok: false, error: { code: 'MCP_INVALID_REQUEST' } });
    expect(classifyMcp(call({ method: 'tools call' }))).toEqual({ ok: false, error: { code: 'MCP_INVALID_REQUEST' } });
    expect(classifyMcp({ server: 'files', method: 'tools/call' })).toEqual({ ok: false, error: { code: 'MCP_INVALID_REQUEST' } });
    expect(classifyMcp(call({ annotations: { readOnlyHint: 'yes' as unknown as boolean } }))).toEqual({ ok: false, error: { code: 'MCP_INVALID_REQUEST' } });
    let deep: unknown = 'x';
    for (let i = 0; i < 70; i++) deep = [deep];
    expect(classifyMcp(call({ arguments: deep }))).toEqual({ ok: false, error: { code: 'MCP_ARGUMENTS_TOO_COMPLEX' } });
    expect(classifyMcp(null as unknown as McpPolicyInput)).toEqual({ ok: false, error: { code: 'MCP_CLASSIFICATION_FAILED' } });
  });
});

describe('MCP decisions', () => {
  it('server, method, tool and annotation criteria', () => {
    expect(decideMcp(rules, context, call({ annotations: { readOnlyHint: true } }))).toMatchObject({ decision: 'allow', ruleId: 'read-only', language: 'mcp', units: [{ command: 'tools/call read_file' }] });
    expect(decideMcp(rules, context, call({ server: 'docs-eu', annotations: { readOnlyHint: true } })).ruleId).toBe('read-only');
    expect(decideMcp(rules, context, call({ server: 'billing', annotations: { readOnlyHint: true } })).ruleId).toBeNull();
    // Undeclared annotations are not read-only.
    expect(decideMcp(rules, context, call()).ruleId).toBeNull();
    expect(decideMcp(rules, context, { server: 'files', method: 'resources/read', arguments: { uri: 'file:///x' } })).toMatchObject({ ruleId: 'resources', units: [{ command: 'resources/read' }] });
    // `*` does not cross `/`.
    expect(decideMcp(rules, context, { server: 'files', method: 'resources/templates/list' }).ruleId).toBeNull();
    // Undeclared destructiveHint defaults to true.
    expect(decideMcp(rules, context, call({ tool: 'delete_file' }))).toMatchObject({ decision: 'block', ruleId: 'no-destructive' });
    expect(decideMcp(rules, context, call({ tool: 'delete_file', annotations: { destructiveHint: false } })).ruleId).toBeNull();
  });

  it('argument paths and values', () => {
    const write = (args: unknown): McpPolicyInput => call({ tool: 'write_file', arguments: args });
    expect(decideMcp(rules, context, write({ path: '/srv/reports/q3.csv', mode: 'create' }))).toMatchObject({ decision: 'require-approval', ruleId: 'report-writes' });
    expect(decideMcp(rules, context, write({ path: '/tmp/x', mode: 'append' })).ruleId).toBe('report-writes');
    // Patterns see where a path leads, not how it is spelled.
    expect(decideMcp(rules, context, write({ path: '/srv/reports/../../etc/passwd', mode: 'create' })).ruleId).toBeNull();
    expect(decideMcp(rules, context, write({ path: '/srv/reports/./q3.csv', mode: 'create' })).ruleId).toBe('report-writes');
    expect(decideMcp(rules, context, write({ path: '/srv//reports/../reports/q3.csv', mode: 'create' })).ruleId).toBe('report-writes');
    expect(decideMcp(rules, context, write({ path: '/etc/passwd', mode: 'create' })).ruleId).toBeNull();
    expect(decideMcp(rules, context, write({ path: '/tmp/x', mode: 'overwrite' })).ruleId).toBeNull();
    expect(decideMcp(rules, context, write({ path: '/tmp/x', mode: 'create', options: { force: true } })).ruleId).toBeNull();
    expect(decideMcp(rules, context, write({ path: ['/tmp/x'], mode: 'create' })).ruleId).toBeNull();
    expect(decideMcp(rules, context, write(undefined)).ruleId).toBeNull();
  });
});

describe('MCP path arguments with dot segments', () => {
  const guard = parsePolicy(
    [
      'name: dot-segments',
      'rules:',
      '  - id: no-etc',
      '    match: { mcp: { tools: [read_file], arguments: { "$.path": { pattern: "/etc/*" } } } }',
      '    decision: block',
      '  - id: reads',
      '    match: { mcp: { tools: [read_file] } }',
      '    decision: allow',
      '',
    ].join('\n'),
    'dot-segments.yaml',
  );

  it('a deny pattern catches a path that only reaches its directory through ..', () => {
    for (const path of ['/etc/shadow', '/tmp/../etc/shadow', '/srv/./../etc/shadow', '//etc/shadow']) {
      expect(decideMcp(guard, context, call({ arguments: { path } })), path).toMatchObject({ decision: 'block', ruleId: 'no-etc' });
    }
    expect(decideMcp(guard, context, call({ arguments: { path: '/etc/../srv/x' } })).ruleId).toBe('reads');
  });
});
