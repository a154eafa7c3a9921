// The registry, and the engine's language rules exercised with every real language.
import { beforeAll, describe, expect, it } from 'vitest';
import { assertValidEvent, EventFactory, type Protocol } from '@custodian/event-contracts';
import {
  DEFAULT_DENY_REASON,
  loadPolicyFile,
  parsePolicy,
  POLICY_LANGUAGE_NAMES,
  PolicyError,
  protocolsOfLanguage,
  toPolicyDecidedPayload,
  type CompiledPolicy,
  type PolicyContext,
  type PolicyDecision,
  type PolicyLanguageName,
} from '@custodian/policy';
import { ANALYST_AGENT, identity, SAMPLE_POLICY_PATH } from '@custodian/policy/testing';
import { ALL_POLICY_LANGUAGES, decideHttp, decideLlm, decideMcp, decideShellSync, decideSqlSync, languageFor, POLICY_LANGUAGES, readyPolicyLanguages } from './index.js';

beforeAll(() => readyPolicyLanguages());

/** One command per language that an empty block of that language matches. */
function decideSample(policy: CompiledPolicy, language: PolicyLanguageName, context: PolicyContext): PolicyDecision {
  switch (language) {
    case 'sql':
      return decideSqlSync(policy, context, 'SELECT 1');
    case 'shell':
      return decideShellSync(policy, context, 'ls');
    case 'http':
      return decideHttp(policy, context, { host: 'api.example', method: 'GET', path: '/v1/orders' });
    case 'mcp':
      return decideMcp(policy, context, { server: 'files', method: 'tools/call', tool: 'read_file' });
    case 'llm':
      return decideLlm(policy, context, { model: 'claude-sonnet-4-5', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] });
  }
}

describe('registry', () => {
  it('holds the five languages under their names, each serving the protocols of the core table', () => {
    expect(Object.keys(POLICY_LANGUAGES)).toEqual([...POLICY_LANGUAGE_NAMES]);
    for (const name of POLICY_LANGUAGE_NAMES) {
      expect(POLICY_LANGUAGES[name].name).toBe(name);
      expect(POLICY_LANGUAGES[name].protocols).toEqual(protocolsOfLanguage(name));
    }
    expect(ALL_POLICY_LANGUAGES).toHaveLength(5);
  });

  it('languageFor(protocol) follows the table', () => {
    const table: Record<Protocol, PolicyLanguageName> = { postgres: 'sql', ssh: 'shell', kubernetes: 'shell', http: 'http', anthropic: 'llm', mcp: 'mcp' };
    for (const [protocol, name] of Object.entries(table) as [Protocol, PolicyLanguageName][]) expect(languageFor(protocol)).toBe(POLICY_LANGUAGES[name]);
    expect(languageFor('postgres').unitNoun).toBe('statement');
  });
});

describe('rules and languages', () => {
  it('a rule whose block is for another language never matches a unit; a rule with its own empty block does', () => {
    for (const ruleLanguage of POLICY_LANGUAGE_NAMES) {
      const policy = parsePolicy(`name: x\nrules:\n  - { id: r, match: { ${ruleLanguage}: {} }, decision: allow }\n`, 'x.yaml');
      for (const inputLanguage of POLICY_LANGUAGE_NAMES) {
        const context: PolicyContext = { identity: identity('u', []), connection: 'c', protocol: protocolsOfLanguage(inputLanguage)[0]! };
        const decision = decideSample(policy, inputLanguage, context);
        expect({ ruleLanguage, inputLanguage, ruleId: decision.ruleId, language: decision.language }).toEqual({
          ruleLanguage,
          inputLanguage,
          ruleId: ruleLanguage === inputLanguage ? 'r' : null,
          language: inputLanguage,
        });
      }
    }
  });

  it('matchers are compiled once per policy and language', () => {
    const policy = parsePolicy('name: x\nrules:\n  - { id: r, match: { http: { paths: ["/v1/**"] } }, decision: allow }\n', 'x.yaml');
    let compiled = 0;
    const counting = { ...POLICY_LANGUAGES.http, compileMatch: (...args: Parameters<typeof POLICY_LANGUAGES.http.compileMatch>) => (compiled++, POLICY_LANGUAGES.http.compileMatch(...args)) };
    const context: PolicyContext = { ...ANALYST_AGENT, protocol: 'http' };
    for (let i = 0; i < 3; i++) expect(policy.decide(counting, context, { host: 'a.example', method: 'GET', path: '/v1/x' }).ruleId).toBe('r');
    expect(compiled).toBe(1);
  });

  it('a criterion a language cannot compile: POLICY_INVALID at load with languages, a fail-closed block without', () => {
    const text = 'name: x\nrules:\n  - id: r\n    match:\n      http:\n        body:\n          "$.items[": { exists: true }\n    decision: allow\n';
    let error: unknown;
    try {
      parsePolicy(text, 'x.yaml', { languages: ALL_POLICY_LANGUAGES });
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(PolicyError);
    expect((error as PolicyError).code).toBe('POLICY_INVALID');
    expect((error as PolicyError).issues).toEqual([expect.objectContaining({ file: 'x.yaml', line: 7, key: 'rules[0].match.http.body.$.items[', message: expect.stringMatching(/^is not a supported JSON path/) })]);
    const lazy = parsePolicy(text, 'x.yaml');
    const decision = decideHttp(lazy, { ...ANALYST_AGENT, protocol: 'http' }, { host: 'a.example', method: 'GET', path: '/' });
    expect(decision).toMatchObject({ decision: 'block', ruleId: null, reason: 'POLICY_MATCH_INVALID: rule r has a http criterion that cannot be compiled (fail closed)' });
    // Other languages still decide.
    expect(decideSqlSync(lazy, ANALYST_AGENT, 'SELECT 1').reason).toBe(DEFAULT_DENY_REASON);
  });
});

describe('event payloads', () => {
  const factory = new EventFactory({ service: 'gateway', instance: 'policy-test' });
  const sessionId = '0190c8e2-4b5a-7c3d-8e9f-0a1b2c3d4e5f';
  const commandId = '0190c8e2-4b5a-7c3d-8e9f-0a1b2c3d4e60';

  it('builds valid policy.decided and command.issued events for every language, allow, block (default deny) and require-approval', () => {
    const policy = loadPolicyFile(SAMPLE_POLICY_PATH, { languages: ALL_POLICY_LANGUAGES });
    const analyst = (connection: string, protocol: Protocol): PolicyContext => ({ ...ANALYST_AGENT, connection, protocol });
    const decisions: PolicyDecision[] = [
      ...['SELECT 1', 'SELECT * FROM secrets.k', 'DELETE FROM orders WHERE id = 1', 'SEL/**/ECT 1', `SELECT 1; ${'DROP TABLE x; '.repeat(400)}`].map((sql) => decideSqlSync(policy, ANALYST_AGENT, sql)),
      decideShellSync(policy, { identity: identity('olga', ['ops'], 'human'), connection: 'orders-db1-ssh', protocol: 'ssh' }, 'ls; systemctl restart x'),
      decideHttp(policy, analyst('orders-api', 'http'), { host: 'orders.example', method: 'GET', path: '/v1/orders/1' }),
      decideHttp(policy, analyst('orders-api', 'http'), { host: 'orders.example', method: 'POST', path: '/v1/orders/1/refunds', headers: { 'content-type': 'application/json' }, body: { amount: 1, currency: 'EUR' } }),
      decideMcp(policy, analyst('files', 'mcp'), { server: 'files', method: 'tools/call', tool: 'write_file', arguments: { path: '/etc/x' } }),
      decideLlm(policy, analyst('claude', 'anthropic'), { model: 'claude-sonnet-4-5', max_tokens: 100, messages: [{ role: 'user', content: 'IBAN DE89 3704 0044 0532 0130 00' }] }),
    ];
    expect(decisions.map((decision) => `${decision.language}:${decision.decision}`)).toEqual([
      'sql:allow', 'sql:block', 'sql:require-approval', 'sql:block', 'sql:block', 'shell:require-approval', 'http:allow', 'http:require-approval', 'mcp:block', 'llm:block',
    ]);
    let sequence = 0;
    for (const decision of decisions) {
      const identityClaims = { ...ANALYST_AGENT.identity, groups: [...ANALYST_AGENT.identity.groups] };
      const summary = POLICY_LANGUAGES[decision.language].summary(decision.classification as never);
      const issued = factory.create({ type: 'command.issued', stream: `session-${sessionId}`, sequence: sequence++, identity: identityClaims, payload: { sessionId, commandId, kind: 'sql', text: 'x', classification: summary } });
      expect(() => assertValidEvent(issued)).not.toThrow();
      const payload = toPolicyDecidedPayload(decision, { sessionId, commandId });
      expect(payload.ruleId).toBe(decision.ruleId);
      const event = factory.create({ type: 'policy.decided', stream: `session-${sessionId}`, sequence: sequence++, identity: identityClaims, payload });
      expect(() => assertValidEvent(event)).not.toThrow();
      expect(event.payload.policy).toEqual({ name: 'orders-analysts', version: 1, digest: policy.digest });
    }
    // The detectors' finding is counted, never quoted.
    expect(JSON.stringify(POLICY_LANGUAGES.llm.summary(decisions[9]!.classification as never))).not.toContain('DE89');
  });
});
