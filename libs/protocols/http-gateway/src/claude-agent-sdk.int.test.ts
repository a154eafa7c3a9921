// The seeds' main story: the Claude Agent SDK (the real Claude Code CLI from npm, run headless by
// @anthropic-ai/claude-agent-sdk) reaches the Messages API through the gateway with nothing changed
// but ANTHROPIC_BASE_URL and a short-lived OIDC token. The upstream is the STAND-IN Messages API
// (the public Claude API cannot be reached here). The CLI gets a clean HOME and only PATH, so it
// reads no settings or credentials of the machine it runs on.
import { query, type SDKMessage } from '@anthropic-ai/claude-agent-sdk';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFixture, type Fixture } from './testing/gateway-fixture.js';

let f: Fixture;
let home: string;

beforeAll(async () => {
  f = await startFixture();
  home = mkdtempSync(join(tmpdir(), 'custodian-agent-home-'));
}, 120_000);

afterAll(async () => {
  await f?.stop();
  if (home) rmSync(home, { recursive: true, force: true });
});

/** Runs one headless agent turn; `auth` is how the token is handed over (the two env variables Claude Code reads). */
async function runAgent(prompt: string, auth: 'ANTHROPIC_API_KEY' | 'ANTHROPIC_AUTH_TOKEN', extra: { model?: string; allowedTools?: string[] } = {}): Promise<SDKMessage[]> {
  const token = await f.token();
  const messages: SDKMessage[] = [];
  const stderr: string[] = [];
  for await (const message of query({
    prompt,
    options: {
      cwd: home,
      model: extra.model ?? 'claude-standin-1',
      maxTurns: 3,
      allowedTools: extra.allowedTools ?? [],
      settingSources: [],
      env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOME: home, ANTHROPIC_BASE_URL: `${f.base}/c/claude`, [auth]: token },
      stderr: (data) => void stderr.push(data),
    },
  })) {
    messages.push(message);
  }
  return messages;
}

function resultOf(messages: readonly SDKMessage[]): Extract<SDKMessage, { type: 'result' }> {
  const result = messages.find((m): m is Extract<SDKMessage, { type: 'result' }> => m.type === 'result');
  if (!result) throw new Error(`no result message among ${messages.map((m) => m.type).join(', ')}`);
  return result;
}

describe('Claude Agent SDK (Claude Code CLI, headless) through the gateway (stand-in upstream)', () => {
  it('answers with only ANTHROPIC_BASE_URL and the token (as ANTHROPIC_API_KEY) changed; the upstream sees the held API key, never the token', async () => {
    const before = f.standIn.requests.length;
    const messages = await runAgent('hello from the agent', 'ANTHROPIC_API_KEY');
    const result = resultOf(messages);
    expect(result.subtype).toBe('success');
    expect(result.is_error).toBe(false);
    expect(result.subtype === 'success' ? result.result : '').toContain('Reply to:');
    const seen = f.standIn.requests.slice(before).filter((r) => r.url.startsWith('/v1/messages'));
    expect(seen.length).toBeGreaterThanOrEqual(1);
    const token = await f.token();
    for (const request of seen) {
      expect(request.headers['x-api-key']).toBe(f.anthropicKey);
      expect(request.headers['authorization']).toBeUndefined();
      expect(JSON.stringify(request.headers)).not.toContain(token);
      // The CLI's own headers reach the upstream unchanged.
      expect(request.headers['anthropic-version']).toBeDefined();
    }
  }, 120_000);

  it('runs a tool turn with the token as ANTHROPIC_AUTH_TOKEN: the PII in the tool input is masked before the agent acts on it, and the tool call is on the record', async () => {
    const target = join(home, 'note.txt');
    const before = f.standIn.requests.length;
    const messages = await runAgent(`agent-write-file ${target}`, 'ANTHROPIC_AUTH_TOKEN', { allowedTools: ['Write'] });
    const result = resultOf(messages);
    expect(result.subtype).toBe('success');
    expect(result.subtype === 'success' ? result.result : '').toContain('The note is written.');
    // The agent wrote what the gateway let it see: the masked value, never the real one.
    expect(existsSync(target)).toBe(true);
    const written = readFileSync(target, 'utf8');
    expect(written).toContain('[REDACTED:pii]');
    expect(written).not.toContain(f.piiValue);
    expect(JSON.stringify(messages)).not.toContain(f.piiValue);
    // Two model calls: the tool call, then the turn carrying the tool result.
    const seen = f.standIn.requests.slice(before).filter((r) => r.url.startsWith('/v1/messages'));
    expect(seen.some((r) => r.body.includes('"tool_result"'))).toBe(true);
    const events = await f.events();
    // The agent's action is on the record: the tool, the target and the masked content.
    const writes = events.filter((e) => e.type === 'tool-use.emitted' && (e.payload as { name: string }).name === 'Write').map((e) => JSON.parse((e.payload as { input: string }).input) as { file_path: string; content: string });
    expect(writes).toContainEqual({ file_path: target, content: 'Customer contact: [REDACTED:pii]\n' });
  }, 120_000);

  it('a model the policy blocks reaches the agent as an API error naming the rule; the upstream never sees the request', async () => {
    const before = f.standIn.requests.length;
    // The SDK raises Claude Code's error result.
    const error = await runAgent('hello', 'ANTHROPIC_API_KEY', { model: 'claude-blocked-9' }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).message).toContain('403');
    expect((error as Error).message).toContain('rule claude-block-big');
    expect(f.standIn.requests.slice(before).filter((r) => r.body.includes('claude-blocked-9'))).toEqual([]);
  }, 120_000);
});
