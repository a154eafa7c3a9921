import { beforeAll, describe, expect, it } from 'vitest';
import { GUARDED_FLAG_RULE_ID, parsePolicy, type PolicyContext } from '@custodian/policy';
import { identity } from '@custodian/policy/testing';
import { classifyLlm, decideLlm, llmLanguage, MAX_LLM_PROMPT_CHARS } from './index.js';

const context: PolicyContext = { identity: identity('agent-7', ['analysts']), connection: 'claude', protocol: 'anthropic' };
beforeAll(() => llmLanguage.ready());

const rules = parsePolicy(
  [
    'name: llm-test',
    'rules:',
    '  - id: no-pii',
    '    match: { llm: { detectors: [card, ssn] } }',
    '    decision: block',
    '  - id: keys-need-security',
    '    match: { identity: { groups: [secops] }, llm: { detectors: [private-key] } }',
    '    decision: require-approval',
    '    approval: { approverGroups: [security], required: 1, timeoutSeconds: 60, grant: once }',
    '  - id: small-sonnet',
    '    match: { llm: { models: ["claude-sonnet-*"], maxTokens: { atMost: 4096 }, tools: [Read, "mcp__files__*"] } }',
    '    decision: allow',
    '  - id: web-search-held',
    '    match: { llm: { tools: { any: [web_search] } } }',
    '    decision: require-approval',
    '    approval: { approverGroups: [leads], required: 1, timeoutSeconds: 60, grant: once }',
    '  - id: anything',
    '    match: {}',
    '    decision: allow',
    '',
  ].join('\n'),
  'llm-test.yaml',
);

const PRIVATE_KEY = ['-----BEGIN RSA PRIVATE KEY-----', 'MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun', 'VTLw7onLRnrq0/IzW7yWR7QkrmBL7jTKEn5u+qKhbwKfBstIs+bMY2Zkp18gnTxK', '-----END RSA PRIVATE KEY-----'].join('\n');

function body(overrides: Record<string, unknown> = {}, text: unknown = 'Summarise yesterday’s orders.'): Record<string, unknown> {
  return { model: 'claude-sonnet-4-5', max_tokens: 1024, tools: [{ name: 'Read', input_schema: {} }], messages: [{ role: 'user', content: text }], ...overrides };
}

describe('LLM classification', () => {
  it('reads model, token limit, tools and what the detectors find in system, messages, tool uses and tool results', () => {
    const classified = classifyLlm(
      body({
        system: [{ type: 'text', text: 'You are careful. Contact ops@example.com.' }],
        messages: [
          { role: 'user', content: 'Look up the customer.' },
          { role: 'assistant', content: [{ type: 'tool_use', id: 't1', name: 'Read', input: { file: 'cards.csv' } }] },
          { role: 'user', content: [{ type: 'tool_result', tool_use_id: 't1', content: [{ type: 'text', text: 'card 4111 1111 1111 1111' }] }, { type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'AAAA' } }] },
        ],
      }),
    );
    expect(classified).toMatchObject({
      ok: true,
      request: { model: 'claude-sonnet-4-5', maxTokens: 1024, stream: false, tools: ['Read'], detections: [{ detector: 'card', count: 1 }, { detector: 'email', count: 1 }] },
      flags: ['detected-card', 'detected-email', 'tool-results', 'unscanned-content'],
    });
    expect(llmLanguage.summary(classified)).not.toHaveProperty('text');
    expect(JSON.stringify(llmLanguage.summary(classified))).not.toContain('4111');
  });

  it('scans system-role messages inside `messages` (as Claude Code sends them) like the system prompt', () => {
    const classified = classifyLlm(body({ messages: [{ role: 'user', content: 'hi' }, { role: 'system', content: [{ type: 'text', text: 'Reminder: mail ops@example.com' }] }] }));
    expect(classified).toMatchObject({ ok: true, request: { detections: [{ detector: 'email', count: 1 }] }, flags: ['detected-email'] });
  });

  it('fails closed on requests it cannot read and on oversized prompts', () => {
    for (const input of [null, [], 'x', { model: 'm' }, body({ model: '' }), body({ max_tokens: -1 }), body({ tools: [{}] }), body({}, 42), body({}, [{ text: 'no type' }]), body({ messages: [{ role: 'tool', content: 'x' }] })]) {
      expect({ input, result: classifyLlm(input) }).toEqual({ input, result: { ok: false, error: { code: 'LLM_INVALID_REQUEST' } } });
    }
    expect(classifyLlm(body({}, 'x'.repeat(MAX_LLM_PROMPT_CHARS + 1)))).toEqual({ ok: false, error: { code: 'LLM_PROMPT_TOO_LARGE' } });
    let deep: unknown = 1;
    for (let i = 0; i < 20_000; i++) deep = [deep];
    const messages = [{ role: 'assistant', content: [{ type: 'tool_use', id: 't', name: 'Read', input: deep }] }];
    expect(classifyLlm(body({ messages }))).toEqual({ ok: false, error: { code: 'LLM_CLASSIFICATION_FAILED' } });
  });
});

describe('LLM decisions', () => {
  it('model, token cap and offered tools (only / any)', () => {
    expect(decideLlm(rules, context, body())).toMatchObject({ decision: 'allow', ruleId: 'small-sonnet', language: 'llm', units: [{ command: 'claude-sonnet-4-5' }] });
    expect(decideLlm(rules, context, body({ tools: [{ name: 'mcp__files__read' }] })).ruleId).toBe('small-sonnet');
    expect(decideLlm(rules, context, body({ tools: [] })).ruleId).toBe('small-sonnet');
    expect(decideLlm(rules, context, body({ max_tokens: 8192 })).ruleId).toBe('anything');
    expect(decideLlm(rules, context, body({ max_tokens: undefined })).ruleId).toBe('anything');
    expect(decideLlm(rules, context, body({ model: 'claude-opus-4' })).ruleId).toBe('anything');
    expect(decideLlm(rules, context, body({ tools: [{ name: 'Read' }, { name: 'Bash' }] })).ruleId).toBe('anything');
    expect(decideLlm(rules, context, body({ tools: [{ name: 'Read' }, { type: 'web_search_20250305', name: 'web_search' }] }))).toMatchObject({ decision: 'require-approval', ruleId: 'web-search-held' });
  });

  it('detectors over the prompt decide, and never put the value in the decision', () => {
    const card = decideLlm(rules, context, body({}, 'Refund 4111-1111-1111-1111 today'));
    expect(card).toMatchObject({ decision: 'block', ruleId: 'no-pii' });
    expect(JSON.stringify({ ...card, classification: llmLanguage.summary(card.classification) })).not.toContain('4111');
    expect(decideLlm(rules, context, body({ system: 'SSN on file: 536-22-8146' })).ruleId).toBe('no-pii');
    expect(decideLlm(rules, context, body({}, 'Write to ops@example.com')).ruleId).toBe('small-sonnet');
  });

  it('credentials in the prompt are guarded: a catch-all allow does not send them, a rule naming the detector can hold them', () => {
    const key = decideLlm(rules, context, body({ model: 'claude-opus-4' }, `Fix this deploy: ${PRIVATE_KEY}`));
    expect(key).toMatchObject({ decision: 'block', ruleId: GUARDED_FLAG_RULE_ID });
    expect(key.reason).toMatch(/detected-private-key/);
    const secops = { ...context, identity: identity('sam', ['secops'], 'human') };
    expect(decideLlm(rules, secops, body({}, PRIVATE_KEY))).toMatchObject({ decision: 'require-approval', ruleId: 'keys-need-security' });
  });
});
