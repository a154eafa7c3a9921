// `custodian approvals …` against a real API (with the real OIDC provider of the test harness),
// while a gateway-side approval gate holds commands on the same event store.
import 'reflect-metadata';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiModule } from '@custodian/api-service';
import { EventSourcedApprovalGate } from '@custodian/approvals';
import type { Identity } from '@custodian/event-contracts';
import { SqliteEventStore } from '@custodian/event-store-sqlite';
import { createLogger } from '@custodian/observability';
import { startNestService, type RunningNestService } from '@custodian/observability/nest';
import { loadConfig } from '@custodian/runtime-config';
import { configuredIdentity } from '@custodian/service-host';
import { TEST_POLICY, boundApprovalRequest } from '@custodian/approvals/testing';
import { maskText } from '@custodian/masking';
import type { ApprovalOutcome, ApprovalRequest } from '@custodian/session-pipeline';
import { freePort, startOidcProvider, type StartedOidcProvider } from '@custodian/test-harness';
import { APPROVALS_EXIT, runCli, type CliIo } from './index.js';

const dir = mkdtempSync(join(tmpdir(), 'custodian-cli-approvals-'));
let idp: StartedOidcProvider;
let store: SqliteEventStore;
let service: RunningNestService;
let gate: EventSourcedApprovalGate;
let api: string;
let agent: Identity;

beforeAll(async () => {
  idp = await startOidcProvider({
    clients: [
      { clientId: 'agent-7', kind: 'agent', groups: ['agents'] },
      { clientId: 'bob', kind: 'human', groups: ['dba-approvers'] },
      { clientId: 'mallory', kind: 'human', groups: ['developers'] },
    ],
  });
  agent = { subject: 'agent-7', issuer: idp.issuer, groups: ['agents'], kind: 'agent' };
  const port = await freePort();
  api = `http://127.0.0.1:${port}`;
  const configFile = join(dir, 'custodian.yaml');
  writeFileSync(configFile, JSON.stringify({ dataDir: join(dir, 'data'), identity: { issuers: [{ issuer: idp.issuer, audiences: [idp.defaultAudience] }] }, services: { api: { http: { port } } } }));
  const loaded = loadConfig({ file: configFile, env: {}, cwd: dir });
  store = await SqliteEventStore.open({ path: join(dir, 'events.sqlite'), pollIntervalMs: 50 });
  const logger = createLogger({ service: 'api', level: 'warn', destination: { write: () => undefined } });
  service = await startNestService({
    module: ApiModule.register({ eventStore: store, logger, identity: configuredIdentity(loaded, { logger }), listenHost: '127.0.0.1' }),
    logger,
    listen: { host: '127.0.0.1', port },
    shutdownHooks: false,
  });
  gate = new EventSourcedApprovalGate({ eventStore: store, instance: 'gw-cli-test', pollIntervalMs: 50 });
  await gate.start();
});

afterAll(async () => {
  await gate?.close();
  await service?.close();
  await store?.close();
  await idp?.stop();
  rmSync(dir, { recursive: true, force: true });
});

function io(env: Record<string, string>): { io: CliIo; stdout: () => string; stderr: () => string } {
  const out: string[] = [];
  const err: string[] = [];
  return {
    io: { stdout: (t) => void out.push(t), stderr: (t) => void err.push(t), env, cwd: dir, waitForStop: () => new Promise(() => undefined) },
    stdout: () => out.join(''),
    stderr: () => err.join(''),
  };
}

async function as(clientId: string): Promise<Record<string, string>> {
  return { CUSTODIAN_TOKEN: (await idp.issueToken({ clientId })).accessToken, CUSTODIAN_API_URL: api };
}

async function hold(overrides: Partial<ApprovalRequest> = {}): Promise<{ req: ApprovalRequest; outcome: Promise<ApprovalOutcome> }> {
  const req: ApprovalRequest = boundApprovalRequest({
    approvalId: randomUUID(),
    sessionId: randomUUID(),
    commandId: randomUUID(),
    requester: agent,
    connection: { name: 'orders-prod', protocol: 'postgres' },
    command: 'DELETE FROM orders WHERE id = $1',
    ruleId: 'hold-deletes',
    approverGroups: ['dba-approvers'],
    required: 1,
    timeoutSeconds: 60,
    grantScope: { kind: 'window', windowSeconds: 1800 },
    language: 'sql',
    policy: TEST_POLICY,
    ...overrides,
  });
  const outcome = gate.request(req, new AbortController().signal);
  outcome.catch(() => undefined);
  const env = await as('bob');
  for (let i = 0; i < 200; i++) {
    const run = io(env);
    await runCli(['approvals', 'list', '--json'], run.io);
    if (run.stdout().includes(req.approvalId)) return { req, outcome };
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error('never listed');
}

describe('custodian approvals', () => {
  it('list shows the queue; show gives the command, requester and session', async () => {
    const { req } = await hold();
    const env = await as('bob');
    const list = io(env);
    expect(await runCli(['approvals', 'list'], list.io)).toBe(APPROVALS_EXIT.ok);
    expect(list.stdout()).toMatch(/^ID\s+STATUS\s+REQUESTER\s+CONNECTION\s+RULE\s+APPROVALS\s+EXPIRES\s+YOU\s+COMMAND/);
    const row = list.stdout().split('\n').find((line) => line.startsWith(req.approvalId));
    expect(row).toMatch(/pending\s+agent-7\s+orders-prod\s+hold-deletes\s+0\/1\s+\S+\s+can decide\s+DELETE FROM orders WHERE id = \$1/);

    const show = io(env);
    expect(await runCli(['approvals', 'show', req.approvalId], show.io)).toBe(APPROVALS_EXIT.ok);
    expect(show.stdout()).toContain(`Approval ${req.approvalId}: pending (you can decide)`);
    expect(show.stdout()).toContain('requester   agent-7 (agent');
    expect(show.stdout()).toContain('grant       window of 1800s for this identity on this connection under this rule and policy orders v3');
    expect(show.stdout()).toContain('  DELETE FROM orders WHERE id = $1');
    expect(show.stdout()).toContain(`Session ${req.sessionId}`);

    const json = io(env);
    expect(await runCli(['approvals', 'show', req.approvalId, '--json'], json.io)).toBe(APPROVALS_EXIT.ok);
    expect(JSON.parse(json.stdout())).toMatchObject({ approval: { approvalId: req.approvalId, status: 'pending' } });
  });

  it('show and list print the full command with its literal values and each $n = value parameter, masked only where the gateway masked it', async () => {
    // The gateway masks before it requests: an email in the text, a card number in a parameter.
    const command = maskText("UPDATE customers\nSET status = $1, email = 'jane.doe@example.com'\nWHERE id = 102").text;
    const { req } = await hold({ command, parameters: ['shipped', maskText('4111 1111 1111 1111').text, null, "it's"] });
    const env = await as('bob');
    const show = io(env);
    expect(await runCli(['approvals', 'show', req.approvalId], show.io)).toBe(APPROVALS_EXIT.ok);
    const out = show.stdout();
    expect(out).toContain('  UPDATE customers\n  SET status = $1, email = \'[REDACTED:email]\'\n  WHERE id = 102\n');
    expect(out).toContain("Parameters:\n  $1 = 'shipped'\n  $2 = '[REDACTED:card]'\n  $3 = NULL\n  $4 = 'it''s'\n");
    expect(out).toContain(`  digest      ${req.commandDigest}`);
    expect(out).toContain('  language    sql');
    expect(out).toContain(`  policy      orders v3 (sha256 ${TEST_POLICY.digest})`);
    const list = io(env);
    expect(await runCli(['approvals', 'list'], list.io)).toBe(APPROVALS_EXIT.ok);
    const row = list.stdout().split('\n').find((line) => line.startsWith(req.approvalId));
    expect(row).toContain("UPDATE customers SET status = $1, email = '[REDACTED:email]' WHERE id = 102; $1 = 'shipped'; $2 = '[REDACTED:card]'");
    for (const text of [out, list.stdout()]) {
      expect(text).not.toContain('jane.doe@example.com');
      expect(text).not.toMatch(/4111[ -]?1111/); // the card number, not any '4111' (ids are random hex)
    }
  });

  it('approve releases the held command; a second decision is refused with exit 3', async () => {
    const { req, outcome } = await hold();
    const env = await as('bob');
    const approve = io(env);
    expect(await runCli(['approvals', 'approve', req.approvalId, '--justification', 'ticket OPS-9'], approve.io)).toBe(APPROVALS_EXIT.ok);
    expect(approve.stdout()).toBe(`Approved ${req.approvalId}: granted (1 of 1).\n`);
    expect(await outcome).toMatchObject({ outcome: 'granted', approvers: [{ subject: 'bob' }] });
    const again = io(env);
    expect(await runCli(['approvals', 'deny', req.approvalId, '-j', 'changed my mind'], again.io)).toBe(APPROVALS_EXIT.refused);
    expect(again.stderr()).toContain('approvals deny refused: 409 APPROVAL_NOT_PENDING');
    const shown = io(env);
    await runCli(['approvals', 'show', req.approvalId], shown.io);
    expect(shown.stdout()).toMatch(/Outcome: granted at \S+ \(window until \S+\)/);
    expect(shown.stdout()).toContain(': ticket OPS-9');
  });

  it('deny, and refusals for non-approvers (exit 3); the token is never printed', async () => {
    const { req, outcome } = await hold();
    const mallory = await as('mallory');
    const refused = io(mallory);
    expect(await runCli(['approvals', 'approve', req.approvalId, '-j', 'trust me'], refused.io)).toBe(APPROVALS_EXIT.refused);
    expect(refused.stderr()).toContain('403 APPROVAL_NOT_AN_APPROVER');
    expect(refused.stderr()).not.toContain(mallory.CUSTODIAN_TOKEN ?? 'x');
    const deny = io(await as('bob'));
    expect(await runCli(['approvals', 'deny', req.approvalId, '-j', 'not now'], deny.io)).toBe(APPROVALS_EXIT.ok);
    expect(deny.stdout()).toBe(`Denied ${req.approvalId}.\n`);
    expect(await outcome).toMatchObject({ outcome: 'denied', justification: 'not now' });
  });

  it('usage errors (exit 2): no token, no justification, unknown command; an unreachable API is exit 1', async () => {
    const noToken = io({ CUSTODIAN_API_URL: api });
    expect(await runCli(['approvals', 'list'], noToken.io)).toBe(APPROVALS_EXIT.usage);
    expect(noToken.stderr()).toContain('no access token');
    const env = await as('bob');
    const noWhy = io(env);
    expect(await runCli(['approvals', 'approve', randomUUID()], noWhy.io)).toBe(APPROVALS_EXIT.usage);
    expect(noWhy.stderr()).toContain('--justification is required');
    expect(await runCli(['approvals', 'launch'], io(env).io)).toBe(APPROVALS_EXIT.usage);
    const help = io(env);
    expect(await runCli(['approvals', '--help'], help.io)).toBe(APPROVALS_EXIT.ok);
    expect(help.stdout()).toContain('custodian approvals <command>');
    const down = io({ ...env, CUSTODIAN_API_URL: `http://127.0.0.1:${await freePort()}` });
    expect(await runCli(['approvals', 'list'], down.io)).toBe(APPROVALS_EXIT.failure);
    expect(down.stderr()).toContain('cannot reach the API');
    // Without --api / CUSTODIAN_API_URL, the address comes from the configuration.
    const fromConfig = io({ CUSTODIAN_TOKEN: env.CUSTODIAN_TOKEN ?? '' });
    expect(await runCli(['approvals', 'list', '--config', join(dir, 'custodian.yaml')], fromConfig.io)).toBe(APPROVALS_EXIT.ok);
  });
});
