import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { dottedKey, loadPolicyFile, parsePolicy, PolicyError, type PolicyIssue } from './index.js';
import { SAMPLE_POLICY_PATH } from './testing/sample-policy.js';

const dir = mkdtempSync(join(tmpdir(), 'custodian-policy-file-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function issuesOf(text: string, file = 'policy.yaml'): PolicyIssue[] {
  try {
    parsePolicy(text, file);
  } catch (error) {
    if (error instanceof PolicyError) return [...error.issues];
    throw error;
  }
  throw new Error('expected the policy to be rejected');
}

const VALID_RULE = '  - id: r1\n    match: {}\n    decision: allow\n';

describe('loading the sample policy', () => {
  it('validates, exposes rules and masking, and digests the file bytes', () => {
    const policy = loadPolicyFile(SAMPLE_POLICY_PATH);
    expect(policy.name).toBe('orders-analysts');
    expect(policy.version).toBe(1);
    expect(policy.declaredVersion).toBe(1);
    expect(policy.source).toBe(SAMPLE_POLICY_PATH);
    expect(policy.rules.map((rule) => rule.id)).toEqual([
      'block-code-execution',
      'block-schema-and-privilege-changes',
      'analysts-read-public',
      'analysts-transactions',
      'analysts-writes-need-dba',
      'ops-shell-readonly',
      'ops-shell-restart-needs-approval',
      'analysts-orders-api-read',
      'analysts-refunds-need-finance',
      'analysts-files-read-only-tools',
      'analysts-report-writes-need-dba',
      'llm-no-payment-data',
      'analysts-claude',
    ]);
    expect(policy.masking).toEqual([
      { id: 'customer-email', columns: ['public.customers.email'], strategy: 'partial', keepLast: 4 },
      { id: 'card-numbers', detectors: ['card', 'iban'], strategy: 'hmac' },
      { id: 'api-tokens', jsonPaths: ['$..token', '$.auth.apiKey'], strategy: 'redact' },
    ]);
    expect(policy.digest).toBe(createHash('sha256').update(readFileSync(SAMPLE_POLICY_PATH)).digest('hex'));
  });

  it('numbers a policy without a version with the fallback, and the digest follows the bytes', () => {
    const a = parsePolicy(`name: x\nrules:\n${VALID_RULE}`, 'x.yaml');
    const b = parsePolicy(`name: x\nrules:\n${VALID_RULE}\n`, 'x.yaml', { fallbackVersion: 7 });
    expect(a.version).toBe(1);
    expect(a.declaredVersion).toBeUndefined();
    expect(b.version).toBe(7);
    expect(a.digest).not.toBe(b.digest);
    expect(a.digest).toMatch(/^[0-9a-f]{64}$/);
  });

  it('an unreadable or non-UTF-8 file is a typed error', () => {
    expect(() => loadPolicyFile(join(dir, 'missing.yaml'))).toThrow(expect.objectContaining({ code: 'POLICY_FILE_UNREADABLE' }));
    const latin1 = join(dir, 'latin1.yaml');
    writeFileSync(latin1, Buffer.from([0x6e, 0x61, 0x6d, 0x65, 0x3a, 0x20, 0xe9, 0x0a]));
    expect(() => loadPolicyFile(latin1)).toThrow(expect.objectContaining({ code: 'POLICY_FILE_UNREADABLE' }));
  });
});

describe('errors name file, line and key', () => {
  it('an unknown key inside a rule', () => {
    const issues = issuesOf(`name: x\nrules:\n${VALID_RULE}  - id: r2\n    match:\n      sqll: { kinds: [read] }\n    decision: allow\n`);
    expect(issues).toEqual([
      {
        file: 'policy.yaml',
        line: 8,
        column: 7,
        key: 'rules[1].match.sqll',
        message: 'is not a known key (known here: identity, connections, protocols, sql, shell, http, mcp, llm, kubernetes)',
      },
    ]);
  });

  it('a bad enum value and a bad flag in list shorthand', () => {
    const issues = issuesOf(
      'name: x\nrules:\n  - id: r1\n    match:\n      sql:\n        kinds: [read, wrtie]\n        flags: [dml-in-cte, drop-everything]\n    decision: alow\n',
    );
    expect(issues.map((i) => `${i.line}:${i.key}`)).toEqual(expect.arrayContaining(['6:rules[0].match.sql.kinds[1]', '7:rules[0].match.sql.flags[1]', '8:rules[0].decision']));
    expect(issues.find((i) => i.key === 'rules[0].decision')?.message).toBe('must be one of: allow, block, require-approval');
    expect(issues).toHaveLength(3);
  });

  it('require-approval without approval, approval on an allow rule, window without windowSeconds', () => {
    const issues = issuesOf(
      [
        'name: x',
        'rules:',
        '  - id: held',
        '    match: {}',
        '    decision: require-approval',
        '  - id: allowed',
        '    match: {}',
        '    decision: allow',
        '    approval: { approverGroups: [dba], required: 1, timeoutSeconds: 60, grant: once }',
        '  - id: windowed',
        '    match: {}',
        '    decision: require-approval',
        '    approval:',
        '      approverGroups: []',
        '      required: 0',
        '      timeoutSeconds: 60',
        '      grant: window',
        '',
      ].join('\n'),
    );
    const byKey = new Map(issues.map((i) => [i.key, i]));
    expect(byKey.get('rules[0].approval')).toMatchObject({ line: 3, message: 'is required' });
    expect(byKey.get('rules[1].approval')).toMatchObject({ line: 9, message: '`approval` belongs to rules whose decision is require-approval.' });
    expect(byKey.get('rules[2].approval.windowSeconds')).toMatchObject({ line: 13, message: 'is required' });
    expect(byKey.get('rules[2].approval.approverGroups')).toMatchObject({ line: 14, message: 'must NOT have fewer than 1 items' });
    expect(byKey.get('rules[2].approval.required')).toMatchObject({ line: 15, message: 'must be >= 1' });
  });

  it('a value of neither allowed form, and a missing required key', () => {
    const issues = issuesOf('rules:\n  - id: r1\n    match:\n      sql:\n        objects: "public.*"\n    decision: allow\n');
    expect(issues).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ key: 'name', line: 1, message: 'is required' }),
        expect.objectContaining({ key: 'rules[0].match.sql.objects', line: 5, message: expect.stringContaining('A list (shorthand for `only`) or { only, any }') }),
      ]),
    );
  });

  it('http, mcp and llm blocks: unknown keys, bad flags and conditions are located', () => {
    const issues = issuesOf(
      [
        'name: x',
        'rules:',
        '  - id: h',
        '    match:',
        '      http:',
        '        verbs: [GET]',
        '        body:',
        '          "$.a": { greaterThan: 3 }',
        '          "$.b": {}',
        '          nope: { exists: true }',
        '        headers: { x-env: { pattern: 3 } }',
        '        flags: [body-too-big]',
        '    decision: allow',
        '  - id: m',
        '    match:',
        '      mcp:',
        '        annotations: { destructive: true }',
        '    decision: allow',
        '  - id: l',
        '    match:',
        '      llm:',
        '        detectors: [credit-card]',
        '        maxTokens: { atLeast: 10 }',
        '    decision: allow',
        '',
      ].join('\n'),
    );
    const byKey = new Map(issues.map((i) => [i.key, i]));
    expect(byKey.get('rules[0].match.http.verbs')).toMatchObject({ line: 6, message: expect.stringContaining('is not a known key (known here: hosts, methods, paths, query, headers, body, flags)') });
    expect(byKey.get('rules[0].match.http.body.$.a.greaterThan')).toMatchObject({ line: 8, message: expect.stringContaining('is not a known key') });
    expect(byKey.get('rules[0].match.http.body.$.b')).toMatchObject({ line: 9, message: 'needs at least one of: equals, oneOf, pattern, exists' });
    expect(byKey.get('rules[0].match.http.flags[0]')).toMatchObject({ line: 12, message: 'must be one of: body-too-large, body-unparseable' });
    expect(byKey.get('rules[0].match.http.body.nope')).toMatchObject({ line: 10, message: expect.stringMatching(/^is not allowed as a key here \(JSONPath subset/) });
    expect(byKey.get('rules[0].match.http.headers.x-env')).toMatchObject({ line: 11, message: 'A glob or list of globs (shorthand for `{ pattern }`), or a value condition.' });
    expect(byKey.get('rules[1].match.mcp.annotations.destructive')).toMatchObject({ line: 17 });
    expect(byKey.get('rules[2].match.llm.detectors[0]')).toMatchObject({ line: 22, message: expect.stringContaining('must be one of: private-key') });
    expect(byKey.get('rules[2].match.llm.maxTokens.atLeast')).toMatchObject({ line: 23 });
    for (const issue of issues) expect(issue.file).toBe('policy.yaml');
  });

  it('a rule names at most one language', () => {
    const issues = issuesOf('name: x\nrules:\n  - id: r1\n    match:\n      sql: { kinds: [read] }\n      http: { methods: [GET] }\n    decision: allow\n');
    expect(issues).toEqual([
      expect.objectContaining({ key: 'rules[0].match', line: 4, message: "A rule's match names at most one language block (sql, shell, http, mcp, llm)." }),
    ]);
  });

  it('object form of a name set reports its own problems', () => {
    const issues = issuesOf('name: x\nrules:\n  - id: r1\n    match:\n      sql:\n        objects: { every: ["public.*"] }\n    decision: allow\n');
    expect(issues).toEqual([expect.objectContaining({ key: 'rules[0].match.sql.objects.every', line: 6, message: 'is not a known key (known here: only, any)' })]);
  });

  it('duplicate rule ids and reserved ids', () => {
    const issues = issuesOf(`name: x\nrules:\n${VALID_RULE}${VALID_RULE}`);
    expect(issues).toEqual([{ file: 'policy.yaml', line: 6, column: 5, key: 'rules[1].id', message: 'duplicates the id of rules[0]; ids must be unique' }]);
    const reserved = issuesOf('name: x\nrules:\n  - { id: "custodian:guarded-flag", match: {}, decision: allow }\n');
    expect(reserved).toEqual([expect.objectContaining({ key: 'rules[0].id', line: 3 })]);
  });

  it('defaults may not turn the default deny into allow', () => {
    const issues = issuesOf('name: x\ndefaults:\n  decision: allow\nrules: []\n');
    expect(issues).toEqual([expect.objectContaining({ key: 'defaults.decision', line: 3, message: expect.stringMatching(/^must be "block"/) })]);
  });

  it('masking rules need a target and a known strategy', () => {
    const issues = issuesOf('name: x\nrules: []\nmasking:\n  - id: m1\n    strategy: shred\n  - id: m2\n    detectors: [card, dna]\n    strategy: redact\n');
    expect(issues).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ key: 'masking[0]', line: 4, message: 'needs at least one of: columns, jsonPaths, detectors' }),
        expect.objectContaining({ key: 'masking[0].strategy', line: 5 }),
        expect.objectContaining({ key: 'masking[1].detectors[1]', line: 7 }),
      ]),
    );
  });

  it('YAML syntax errors and non-mapping documents', () => {
    const syntax = issuesOf('name: x\nrules:\n  - id: [unclosed\n');
    expect(syntax[0]).toMatchObject({ file: 'policy.yaml', key: '(yaml)' });
    expect(syntax[0]!.line).toBeGreaterThanOrEqual(3);
    const duplicateKey = issuesOf('name: x\nname: y\nrules: []\n');
    expect(duplicateKey[0]).toMatchObject({ key: '(yaml)', line: 2 });
    expect(issuesOf('- just\n- a list\n')).toEqual([expect.objectContaining({ key: '(root)', line: 1 })]);
  });

  it('the error message lists file:line:column: key for each issue, without echoing values', () => {
    try {
      parsePolicy('name: x\nrules:\n  - id: r1\n    match: { connections: ["ok"] }\n    decision: s3cr3t-value\n', '/etc/custodian/policy.yaml');
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(PolicyError);
      const policyError = error as PolicyError;
      expect(policyError.code).toBe('POLICY_INVALID');
      expect(policyError.message).toContain('/etc/custodian/policy.yaml:5:5: rules[0].decision: must be one of');
      expect(policyError.message).not.toContain('s3cr3t-value');
    }
  });

  it('dottedKey formats array indexes', () => {
    expect(dottedKey([])).toBe('(root)');
    expect(dottedKey(['rules', '2', 'approval', 'required'])).toBe('rules[2].approval.required');
  });
});
