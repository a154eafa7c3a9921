// The Claude Agent SDK (npm, with its bundled Claude Code) configured with the gateway as an `http`
// MCP server. The model is a local stand-in for the Anthropic Messages API (the public API cannot be
// reached here; testing/anthropic-model-stand-in.ts) that calls one tool. Checked: the tools the
// model is offered (a blocked tool hidden), the tool result it gets (PII masked), what the upstream
// saw (only the gateway's credential), and the recorded command.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { query } from '@anthropic-ai/claude-agent-sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAnthropicModelStandIn, type AnthropicModelStandIn } from './testing/anthropic-model-stand-in.js';
import { startMcpFixture, type McpFixture } from './testing/gateway-fixture.js';
import { TestOnlyApprovalGate } from '@custodian/session-pipeline/testing';

const approver = { kind: 'human' as const, subject: 'fin-1', issuer: 'https://idp.example', groups: ['finance'] };

describe('Claude Agent SDK through the MCP gateway (model: Anthropic API stand-in)', () => {
  let fx: McpFixture;
  let model: AnthropicModelStandIn;
  let home: string;
  const approvals = new TestOnlyApprovalGate();
  beforeAll(async () => {
    fx = await startMcpFixture({ approvals });
    model = await startAnthropicModelStandIn([
      { prompt: 'Look customer c-42 up.', tool: 'mcp__custodian__lookup_customer', input: { id: 'c-42' } },
      { prompt: 'Move 250 to acct-7.', tool: 'mcp__custodian__transfer', input: { to: 'acct-7', amount: 250 } },
    ]);
    home = mkdtempSync(join(tmpdir(), 'custodian-agent-sdk-'));
  }, 60_000);
  afterAll(async () => {
    await model?.stop();
    await fx?.stop();
    rmSync(home, { recursive: true, force: true });
  });

  const runAgent = async (prompt: string, tool: string): Promise<{ type: string; subtype?: string }[]> => {
    const token = await fx.token('agent');
    const messages: { type: string; subtype?: string }[] = [];
    for await (const message of query({
      prompt,
      options: {
        mcpServers: { custodian: { type: 'http', url: fx.url, headers: { Authorization: `Bearer ${token}` } } },
        tools: [],
        allowedTools: [tool],
        permissionMode: 'dontAsk',
        settingSources: [],
        maxTurns: 4,
        cwd: home,
        env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOME: home, ANTHROPIC_BASE_URL: model.url, ANTHROPIC_API_KEY: 'sk-ant-stand-in', CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1', DISABLE_TELEMETRY: '1' },
      },
    })) {
      messages.push(message as { type: string; subtype?: string });
    }
    return messages;
  };

  it('the agent sees only the tools policy allows, calls one through the gateway, and gets its result masked', async () => {
    const messages = await runAgent('Look customer c-42 up.', 'mcp__custodian__lookup_customer');
    expect(messages.at(-1)).toMatchObject({ type: 'result', subtype: 'success' });
    const offered = new Set(model.requests.flatMap((r) => (r.body.tools ?? []).map((t) => t.name)));
    expect(offered.has('mcp__custodian__lookup_customer')).toBe(true);
    expect(offered.has('mcp__custodian__echo')).toBe(true);
    // Blocked for everyone by rule no-destructive: removed from tools/list, so the agent never sees it.
    expect(offered.has('mcp__custodian__delete_records')).toBe(false);
    const results = model.toolResults();
    expect(results.length).toBe(1);
    // Claude Code hands the model the structured content when there is one: masked there too.
    expect(results[0]).toContain('"email":"[REDACTED:pii-email]"');
    expect(results[0]).toContain('"id":"c-42"');
    expect(results[0]).not.toContain(fx.piiValue);
    expect(fx.upstream.calls.map((c) => c.tool)).toEqual(['lookup_customer']);
    expect(new Set(fx.upstream.authorizations)).toEqual(new Set([`Bearer ${fx.upstreamCredential}`]));
    const events = await fx.events();
    const commands = events.filter((e) => e.type === 'command.issued').map((e) => (e.payload as { text: string }).text);
    expect(commands).toContain('tools/call lookup_customer on tools {"id":"c-42"}');
    const sessions = events.filter((e) => e.type === 'session.opened').map((e) => (e.payload as { client?: { application?: string } }).client?.application ?? '');
    expect(sessions.some((application) => /claude/i.test(application))).toBe(true);
  }, 120_000);

  it("a call held for approval keeps the agent's tool call open until a human grants it; the approver saw the arguments", async () => {
    const before = model.toolResults().length;
    const run = runAgent('Move 250 to acct-7.', 'mcp__custodian__transfer');
    const request = await approvals.nextRequest();
    expect(request.ruleId).toBe('transfers-need-approval');
    expect(request.command).toContain('{"amount":250,"to":"acct-7"}');
    expect(fx.upstream.calls.some((c) => c.tool === 'transfer')).toBe(false);
    approvals.grant(request.approvalId, approver);
    const messages = await run;
    expect(messages.at(-1)).toMatchObject({ type: 'result', subtype: 'success' });
    expect(model.toolResults().slice(before)).toEqual(['transferred 250 to acct-7']);
    expect(fx.upstream.calls.filter((c) => c.tool === 'transfer').length).toBe(1);
  }, 120_000);
});

