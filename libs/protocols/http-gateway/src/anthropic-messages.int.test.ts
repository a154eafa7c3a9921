// The Messages API adapter with the real @anthropic-ai/sdk as the client and the STAND-IN upstream
// (a local server replaying Messages API responses as SSE: the public API cannot be reached here).
import Anthropic from '@anthropic-ai/sdk';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { CustodianEvent } from '@custodian/event-contracts';
import { parsePolicy } from '@custodian/policy';
import { startFixture, type Fixture } from './testing/gateway-fixture.js';

let f: Fixture;

beforeAll(async () => {
  f = await startFixture();
}, 120_000);

afterAll(async () => {
  await f?.stop();
});

async function client(as: 'x-api-key' | 'bearer' = 'x-api-key', extra: { defaultHeaders?: Record<string, string> } = {}): Promise<Anthropic> {
  const token = await f.token();
  return new Anthropic({
    baseURL: `${f.base}/c/claude`,
    ...(as === 'x-api-key' ? { apiKey: token } : { apiKey: null, authToken: token }),
    maxRetries: 0,
    ...extra,
  });
}

const MODEL = 'claude-standin-1';

describe('Anthropic Messages API through the gateway (stand-in upstream)', () => {
  it('streams a reply with the token as x-api-key; the gateway sends the held API key; anthropic headers and ?beta=true pass unchanged', async () => {
    const sdk = await client('x-api-key', { defaultHeaders: { 'anthropic-beta': 'interleaved-thinking-2025-05-14', 'anthropic-version': '2023-06-01' } });
    const before = f.standIn.requests.length;
    const stream = sdk.messages.stream({ model: MODEL, max_tokens: 256, messages: [{ role: 'user', content: 'hello there' }] }, { query: { beta: 'true' } });
    const message = await stream.finalMessage();
    expect(message.content).toEqual([{ type: 'text', text: 'Reply to: hello there' }]);
    const seen = f.standIn.requests.slice(before);
    expect(seen).toHaveLength(1);
    expect(seen[0]!.url).toBe('/v1/messages?beta=true');
    expect(seen[0]!.headers['x-api-key']).toBe(f.anthropicKey);
    expect(seen[0]!.headers['anthropic-version']).toBe('2023-06-01');
    expect(seen[0]!.headers['anthropic-beta']).toBe('interleaved-thinking-2025-05-14');
    expect(seen[0]!.headers['authorization']).toBeUndefined();
    expect(JSON.stringify(seen[0]!.headers)).not.toContain(await f.token());
  });

  it('accepts the token as Authorization: Bearer (ANTHROPIC_AUTH_TOKEN) too, non-streaming', async () => {
    const sdk = await client('bearer');
    const message = await sdk.messages.create({ model: MODEL, max_tokens: 256, messages: [{ role: 'user', content: 'plain' }] });
    expect(message.content[0]).toMatchObject({ type: 'text', text: 'Reply to: plain' });
  });

  it('masks PII streamed across text deltas and inside tool input fragments: nothing unmasked reaches the SDK', async () => {
    const sdk = await client();
    const stream = sdk.messages.stream({ model: MODEL, max_tokens: 256, tools: [{ name: 'send_mail', input_schema: { type: 'object' } }], messages: [{ role: 'user', content: 'pii and a tool please' }] });
    const raw: string[] = [];
    stream.on('streamEvent', (event) => raw.push(JSON.stringify(event)));
    const message = await stream.finalMessage();
    expect(raw.join('\n')).not.toContain(f.piiValue);
    expect(message.content[0]).toMatchObject({ type: 'text', text: 'You can reach them at [REDACTED:pii] any time.' });
    expect(message.content[1]).toMatchObject({ type: 'tool_use', name: 'send_mail', input: { to: '[REDACTED:pii]', subject: 'hi' } });
    expect(message.stop_reason).toBe('tool_use');
  });

  it('masks a non-streamed reply and its tool input the same way', async () => {
    const sdk = await client();
    const message = await sdk.messages.create({ model: MODEL, max_tokens: 256, messages: [{ role: 'user', content: 'pii tool' }] });
    expect(JSON.stringify(message)).not.toContain(f.piiValue);
    expect(message.content[1]).toMatchObject({ type: 'tool_use', input: { to: '[REDACTED:pii]' } });
  });

  it('on a maskPrompt connection, PII in the prompt is masked before it leaves; decided on as sent', async () => {
    const token = await f.token();
    const sdk = new Anthropic({ baseURL: `${f.base}/c/claude-masked`, apiKey: token, maxRetries: 0 });
    const before = f.standIn.requests.length;
    const message = await sdk.messages.create({ model: MODEL, max_tokens: 64, system: `Escalations go to ${f.piiValue}.`, messages: [{ role: 'user', content: `write to ${f.piiValue} today` }] });
    const seen = f.standIn.requests.slice(before);
    expect(seen).toHaveLength(1);
    expect(seen[0]!.body).not.toContain(f.piiValue);
    expect(JSON.parse(seen[0]!.body)).toMatchObject({ system: 'Escalations go to [REDACTED:pii].', messages: [{ role: 'user', content: 'write to [REDACTED:pii] today' }] });
    // (The stand-in answers a prompt containing "pii" with an address of its own: masked on the way back.)
    expect(JSON.stringify(message)).not.toContain(f.piiValue);
    // The session is still open on the keep-alive socket: its events reach the store as the recorder flushes.
    await vi.waitFor(
      async () => {
        const events = await f.events();
        const masked = events.filter((e) => e.type === 'data.masked').flatMap((e) => (e.payload as { maskings: { field: string }[] }).maskings.map((m) => m.field));
        expect(masked).toEqual(expect.arrayContaining(['request.system', 'request.messages[0].content']));
      },
      { timeout: 10_000, interval: 100 },
    );
  });

  it('prompt masking as a policy decision: the deciding rule (maskPrompt) masks what its detectors find (PII and a secret) before it leaves; another rule on the same connection does not', async () => {
    const sdk = await client();
    const secret = `ghp_${'Zx9Qw3Er7Ty1'.repeat(3)}`;
    const before = f.standIn.requests.length;
    const message = await sdk.messages.create({
      model: 'claude-standin-masked-1',
      max_tokens: 64,
      system: `Escalations go to ${f.piiValue}.`,
      messages: [
        { role: 'user', content: [{ type: 'text', text: `deploy with ${secret}` }] },
        { role: 'assistant', content: 'Which address?' },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_1', content: `mail ${f.piiValue}` }] },
      ],
    });
    expect(message.role).toBe('assistant');
    const seen = f.standIn.requests.slice(before);
    expect(seen).toHaveLength(1);
    expect(seen[0]!.body).not.toContain(f.piiValue);
    expect(seen[0]!.body).not.toContain(secret);
    expect(JSON.parse(seen[0]!.body)).toMatchObject({
      system: 'Escalations go to [REDACTED:claude-mask-prompt].',
      messages: [
        { role: 'user', content: [{ type: 'text', text: 'deploy with [REDACTED:claude-mask-prompt]' }] },
        { role: 'assistant', content: 'Which address?' },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_1', content: 'mail [REDACTED:claude-mask-prompt]' }] },
      ],
    });
    // The same connection, a model the masking rule does not match: claude-allowed decides, nothing is masked.
    const plainBefore = f.standIn.requests.length;
    await sdk.messages.create({ model: MODEL, max_tokens: 64, messages: [{ role: 'user', content: `write to ${f.piiValue}` }] });
    expect(f.standIn.requests.slice(plainBefore)[0]!.body).toContain(f.piiValue);
    // Without the masking rule a secret is blocked (the guarded-flag rule), never sent.
    const blockedBefore = f.standIn.requests.length;
    const blocked = await sdk.messages.create({ model: MODEL, max_tokens: 64, messages: [{ role: 'user', content: `deploy with ${secret}` }] }).catch((error: unknown) => error);
    expect(blocked).toBeInstanceOf(Anthropic.PermissionDeniedError);
    expect(f.standIn.requests.length).toBe(blockedBefore);
    await vi.waitFor(
      async () => {
        const events = await f.events();
        const decided = events.find((e) => e.type === 'policy.decided' && (e.payload as { ruleId: string | null }).ruleId === 'claude-mask-prompt');
        expect(decided).toBeDefined();
        const masked = events.filter((e) => e.type === 'data.masked').flatMap((e) => (e.payload as { maskings: { field: string; rule: string }[] }).maskings);
        expect(masked).toEqual(expect.arrayContaining([expect.objectContaining({ field: 'request.system', rule: 'claude-mask-prompt' }), expect.objectContaining({ field: 'request.messages[0].content[0].text', rule: 'claude-mask-prompt' })]));
      },
      { timeout: 10_000, interval: 100 },
    );
  });

  it('a policy with maskPrompt on a block rule, or on a rule without an llm block, is refused at load', () => {
    const rule = (extra: string): string => `name: t\nrules:\n  - id: r\n${extra}\n    maskPrompt: true\n`;
    expect(() => parsePolicy(rule('    match: { llm: { detectors: [email] } }\n    decision: block'), 'p.yaml')).toThrow(/maskPrompt|decision/);
    expect(() => parsePolicy(rule('    match: { http: { methods: [GET] } }\n    decision: allow'), 'p.yaml')).toThrow(/maskPrompt|llm/);
    expect(parsePolicy(rule('    match: { llm: { detectors: [email] } }\n    decision: allow'), 'p.yaml').rules[0]!.maskPrompt).toBe(true);
  });

  it('passes thinking blocks (signed) byte for byte by default; a thinking: refuse connection ends the stream with an error event, and refuses a whole response', async () => {
    const token = await f.token();
    const passing = await client();
    const passed = await passing.messages.stream({ model: MODEL, max_tokens: 256, messages: [{ role: 'user', content: 'think first' }] }).finalMessage();
    expect(passed.content).toEqual([
      { type: 'thinking', thinking: 'Let me think about this.', signature: 'EqQBCkYIARgCIkB0ZXN0c2lnbmF0dXJl' },
      { type: 'text', text: 'Thought it through.' },
    ]);
    const refusing = new Anthropic({ baseURL: `${f.base}/c/claude-no-thinking`, apiKey: token, maxRetries: 0 });
    const stream = refusing.messages.stream({ model: MODEL, max_tokens: 256, messages: [{ role: 'user', content: 'think first' }] });
    const raw: string[] = [];
    stream.on('streamEvent', (event) => raw.push(JSON.stringify(event)));
    await expect(stream.finalMessage()).rejects.toThrow(/custodian:thinking-refused/);
    expect(raw.join('\n')).not.toContain('Let me think');
    const whole = await refusing.messages.create({ model: MODEL, max_tokens: 256, messages: [{ role: 'user', content: 'think first' }] }).catch((e: unknown) => e);
    expect(whole).toBeInstanceOf(Anthropic.APIError);
    expect((whole as Error).message).toContain('custodian:thinking-refused');
    // A reply without thinking passes on that connection.
    const plain = await refusing.messages.create({ model: MODEL, max_tokens: 256, messages: [{ role: 'user', content: 'plain' }] });
    expect(plain.content[0]).toMatchObject({ type: 'text', text: 'Reply to: plain' });
  });

  it('passes an overloaded error event through; the SDK raises it', async () => {
    const sdk = await client();
    const stream = sdk.messages.stream({ model: MODEL, max_tokens: 256, messages: [{ role: 'user', content: 'overloaded' }] });
    await expect(stream.finalMessage()).rejects.toThrow(/Overloaded|overloaded_error/);
  });

  it('a mid-stream disconnect upstream reaches the client as a broken stream, never as unmasked or invented text', async () => {
    const sdk = await client();
    const stream = sdk.messages.stream({ model: MODEL, max_tokens: 256, messages: [{ role: 'user', content: 'pii disconnect' }] });
    const raw: string[] = [];
    stream.on('streamEvent', (event) => raw.push(JSON.stringify(event)));
    await expect(stream.finalMessage()).rejects.toThrow();
    expect(raw.join('\n')).not.toContain(f.piiValue);
  });

  it('serves count_tokens and models', async () => {
    const sdk = await client();
    const counted = await sdk.messages.countTokens({ model: MODEL, messages: [{ role: 'user', content: 'count me' }] });
    expect(counted.input_tokens).toBeGreaterThan(0);
    const models = await sdk.models.list();
    expect(models.data.map((m) => m.id)).toEqual(['claude-standin-1']);
  });

  it('blocks a model the policy forbids (permission error naming the rule); the stand-in never sees it', async () => {
    const sdk = await client();
    const before = f.standIn.requests.length;
    const error = await sdk.messages.create({ model: 'claude-blocked-9', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Anthropic.PermissionDeniedError);
    expect(String((error as Error).message)).toContain('claude-block-big');
    expect(f.standIn.requests.length).toBe(before);
  });

  it('blocks a prompt carrying a secret (detectors over the prompt)', async () => {
    const sdk = await client();
    const before = f.standIn.requests.length;
    const key = `-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA${'A'.repeat(64)}\n-----END RSA PRIVATE KEY-----`;
    const error = await sdk.messages.create({ model: MODEL, max_tokens: 10, messages: [{ role: 'user', content: `use this key ${key}` }] }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Anthropic.PermissionDeniedError);
    expect(String((error as Error).message)).toContain('claude-secrets-held');
    expect(f.standIn.requests.length).toBe(before);
  });

  it('records each request as an llm command, each tool call as a tool-use.emitted event, and never the API key or the token', async () => {
    const token = await f.token();
    const events: CustodianEvent[] = await f.events();
    const llm = events.filter((e) => e.type === 'command.issued' && (e.payload as { kind: string }).kind === 'llm');
    expect(llm.length).toBeGreaterThanOrEqual(6);
    // Streamed and whole responses: each tool call is a tool-use.emitted event with its masked input, tied to its command.
    const toolUses = events.filter((e) => e.type === 'tool-use.emitted').map((e) => e.payload as { name: string; input: string; commandId?: string });
    const sendMail = toolUses.filter((use) => use.name === 'send_mail');
    expect(sendMail.length).toBeGreaterThanOrEqual(2);
    for (const use of sendMail) {
      expect(JSON.parse(use.input)).toMatchObject({ to: '[REDACTED:pii]', subject: 'hi' });
      expect(llm.some((e) => (e.payload as { commandId: string }).commandId === use.commandId)).toBe(true);
    }
    expect(JSON.stringify(toolUses)).not.toContain(f.piiValue);
    const all = JSON.stringify(events) + events.filter((e) => e.type === 'frame.recorded').map((e) => Buffer.from((e.payload as { data: string }).data, 'base64').toString('latin1')).join('');
    expect(all.includes(f.anthropicKey)).toBe(false);
    expect(all.includes(token)).toBe(false);
    expect(f.logLines.join('\n').includes(f.anthropicKey)).toBe(false);
  });
});
