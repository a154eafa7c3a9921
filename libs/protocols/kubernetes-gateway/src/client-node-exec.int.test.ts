// The Kubernetes gateway with the real @kubernetes/client-node Exec (kubeconfig pointing at the
// gateway) in front of the STAND-IN API server (src/testing/stand-in-api-server.ts: real
// WebSocket channel framing, TLS from a test cluster CA, the held bearer token / client
// certificate checked, commands run as local processes).
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApproveApprovalCommand, DenyApprovalCommand } from '@custodian/approvals';
import type { CustodianEvent } from '@custodian/event-contracts';
import { CERT_CLUSTER, OTHER_AUDIENCE, UNTRUSTED_CLUSTER, openStdin, startKubernetesFixture, type KubernetesFixture } from './testing/gateway-fixture.js';

type EventOf<T extends CustodianEvent['type']> = Extract<CustodianEvent, { type: T }>;
const ofType = <T extends CustodianEvent['type']>(events: readonly CustodianEvent[], type: T): EventOf<T>[] => events.filter((e): e is EventOf<T> => e.type === type);
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

let fixture: KubernetesFixture;
const approver = { subject: 'sre-1', issuer: 'test', groups: ['sre'], kind: 'human' as const };

beforeAll(async () => {
  fixture = await startKubernetesFixture();
}, 60_000);

afterAll(async () => {
  await fixture?.stop();
});

async function waitFor<T>(what: string, find: (events: CustodianEvent[]) => T | undefined, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = find(await fixture.events());
    if (found !== undefined) return found;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** The session whose command.issued text contains `marker`, once it is closed. */
async function sessionOf(marker: string): Promise<CustodianEvent[]> {
  const issued = await waitFor(`command.issued carrying ${marker}`, (events) => ofType(events, 'command.issued').find((e) => e.payload.text.includes(marker)));
  const sessionId = issued.payload.sessionId;
  await waitFor(`session.closed of ${sessionId}`, (events) => ofType(events, 'session.closed').find((e) => e.payload.sessionId === sessionId));
  return (await fixture.events()).filter((e) => e.stream === `session-${sessionId}`);
}

describe('Kubernetes gateway with @kubernetes/client-node Exec against the stand-in API server', () => {
  it('runs an allowed command with the held token, passes stdout and exit 0 through, and records every channel', async () => {
    const result = await fixture.exec(await fixture.token(), 'default', 'web-0', ['echo', 'hello-allowed'], { container: 'app' });
    expect(result, result.error).toMatchObject({ stdout: 'hello-allowed\n', exitCode: 0 });
    const upstream = fixture.apiServer.execs.find((e) => e.command.includes('hello-allowed'));
    expect(upstream).toMatchObject({ namespace: 'default', pod: 'web-0', container: 'app', authenticatedBy: 'token', protocol: 'v5.channel.k8s.io' });
    const events = await sessionOf('hello-allowed');
    const issued = ofType(events, 'command.issued')[0]!;
    expect(issued.payload.kind).toBe('kubernetes-exec');
    expect(issued.payload.text).toBe('exec -n default web-0 -c app -- echo hello-allowed');
    expect(issued.payload.classification).toMatchObject({ language: 'shell', programs: ['echo'], kubernetes: { namespace: 'default', pod: 'web-0', container: 'app' } });
    expect(ofType(events, 'session.opened')[0]!.payload.connection).toEqual({ name: 'stand-in-cluster', protocol: 'kubernetes' });
    expect(ofType(events, 'credential.injected')[0]!.payload).toMatchObject({ method: 'bearer', credentialRef: 'env:STAND_IN_CLUSTER_TOKEN' });
    const frames = ofType(events, 'frame.recorded');
    const stdout = frames.find((f) => f.payload.channel === 1);
    expect(Buffer.from(stdout!.payload.data, 'base64')).toEqual(Buffer.from('\x01hello-allowed\n', 'latin1'));
    expect(frames.some((f) => f.payload.channel === 3 && f.payload.direction === 'upstream-to-client')).toBe(true);
    // The custody statement follows session.closed.
    const attested = await waitFor('the custody statement', (all) => all.find((e) => e.stream === issued.stream && (e.type as string) === 'custody.attested'));
    expect((attested.payload as { exposed?: boolean }).exposed).toBe(false);
  });

  it('passes the exit code of a failing command through (sh -c script decided as shell)', async () => {
    const result = await fixture.exec(await fixture.token(), 'team-a', 'job-1', ['sh', '-c', 'echo exiting-3 >&2; exit 3']);
    expect(result.stderr).toBe('exiting-3\n');
    expect(result.exitCode).toBe(3);
    expect(result.status?.status).toBe('Failure');
  });

  it('blocks a command by policy: a Status on the error channel names the rule, exit code non-zero, the API server never sees it', async () => {
    const result = await fixture.exec(await fixture.token(), 'default', 'web-0', ['rm', '-rf', '/tmp/blocked-marker'], { container: 'app' });
    expect(result.exitCode).toBe(1);
    expect(result.status?.message).toContain('Destructive commands are blocked in pods.');
    expect(result.status?.message).toContain('block-destructive');
    expect(fixture.apiServer.execs.some((e) => e.command.includes('/tmp/blocked-marker'))).toBe(false);
    const events = await sessionOf('blocked-marker');
    expect(ofType(events, 'policy.decided')[0]!.payload).toMatchObject({ decision: 'block', ruleId: 'block-destructive' });
    expect(ofType(events, 'credential.injected')).toEqual([]);
  });

  it('decides the script of sh -c as shell text: a blocked program hidden inside is blocked', async () => {
    const result = await fixture.exec(await fixture.token(), 'default', 'web-0', ['sh', '-c', 'echo fine; rm -f hidden-rm-marker']);
    expect(result.exitCode).toBe(1);
    expect(result.status?.message).toContain('block-destructive');
    expect(fixture.apiServer.execs.some((e) => e.command.join(' ').includes('hidden-rm-marker'))).toBe(false);
  });

  it('refuses a namespace outside the cluster allow-list before policy', async () => {
    const result = await fixture.exec(await fixture.token(), 'kube-system', 'etcd-0', ['echo', 'ns-marker']);
    expect(result.exitCode).toBe(1);
    expect(result.status?.message).toContain('custodian:namespace-not-allowed');
    expect(fixture.apiServer.execs.some((e) => e.command.includes('ns-marker'))).toBe(false);
  });

  it('decides with rules on where the exec runs (match.kubernetes: namespaces, pods)', async () => {
    const blocked = await fixture.exec(await fixture.token(), 'team-a', 'vault-0', ['echo', 'vault-target-marker']);
    expect(blocked.status?.message).toContain('no-vault-pods');
    expect(fixture.apiServer.execs.some((e) => e.command.includes('vault-target-marker'))).toBe(false);
    const allowed = await fixture.exec(await fixture.token(), 'team-a', 'web-0', ['echo', 'team-web-marker']);
    expect(allowed, allowed.error).toMatchObject({ stdout: 'team-web-marker\n', exitCode: 0 });
  });

  it('exec -i … -- sh that a rule allows: the shell opens, and each stdin line is still decided', async () => {
    const result = await fixture.exec(await fixture.token(), 'default', 'web-0', ['sh'], { stdin: 'echo line-mode-ok\nrm -f /tmp/line-mode-blocked\necho after-block\n' });
    expect(result.stdout, JSON.stringify(result)).toBe('line-mode-ok\nafter-block\n');
    expect(result.stderr).toContain('custodian: Destructive commands are blocked in pods. (rule block-destructive)');
    const upstream = fixture.apiServer.execs.find((e) => e.stdin.includes('line-mode-ok'));
    expect(upstream?.stdin).toBe('echo line-mode-ok\necho after-block\n');
    expect(result.exitCode).toBe(0);
  });

  it('holds a command for approval with a message on stderr, then runs it once granted', async () => {
    const running = fixture.exec(await fixture.token(), 'default', 'web-0', ['touch', 'granted-marker']);
    const requested = await waitFor('approval.requested', (events) => ofType(events, 'approval.requested').find((e) => JSON.stringify(e.payload.command).includes('granted-marker')));
    expect(requested.payload.ruleId).toBe('touch-needs-approval');
    expect(fixture.apiServer.execs.some((e) => e.command.includes('granted-marker'))).toBe(false);
    await fixture.approvals.handlers.approve.execute(new ApproveApprovalCommand(requested.payload.approvalId, approver, 'ok'));
    const result = await running;
    expect(result.stderr).toContain('needs approval (rule touch-needs-approval)');
    expect(result.exitCode).toBe(0);
    expect(existsSync(join(fixture.apiServer.workdir, 'granted-marker'))).toBe(true);
  });

  it('refuses a held command once denied, naming the rule', async () => {
    const running = fixture.exec(await fixture.token(), 'default', 'web-0', ['touch', 'denied-marker']);
    const requested = await waitFor('approval.requested', (events) => ofType(events, 'approval.requested').find((e) => JSON.stringify(e.payload.command).includes('denied-marker')));
    await fixture.approvals.handlers.deny.execute(new DenyApprovalCommand(requested.payload.approvalId, approver, 'not today'));
    const result = await running;
    expect(result.exitCode).toBe(1);
    expect(result.status?.message).toMatch(/denied/i);
    expect(result.status?.message).toContain('touch-needs-approval');
    expect(existsSync(join(fixture.apiServer.workdir, 'denied-marker'))).toBe(false);
  });

  it('relays stdin and half-closes it with the v5 close message (cat ends on EOF)', async () => {
    const stdin = openStdin();
    const running = fixture.exec(await fixture.token(), 'default', 'web-0', ['cat'], { stdin });
    stdin.write('line one\n');
    await sleep(200);
    stdin.write('line two\n');
    stdin.end();
    const result = await running;
    expect(result, result.error).toMatchObject({ stdout: 'line one\nline two\n', exitCode: 0 });
    const upstream = fixture.apiServer.execs.findLast((e) => e.command[0] === 'cat');
    expect(upstream?.stdin).toBe('line one\nline two\n');
  });

  it('masks stdout with the detectors: the client and the recorded frames see the redaction only', async () => {
    const result = await fixture.exec(await fixture.token(), 'default', 'web-0', ['printf', '%s\\n', 'mask-marker contact: alice.secret@example.com']);
    expect(result.stdout).toBe('mask-marker contact: [REDACTED:pii]\n');
    const events = await sessionOf('mask-marker');
    for (const frame of ofType(events, 'frame.recorded')) expect(Buffer.from(frame.payload.data, 'base64').toString('latin1')).not.toContain('alice.secret@example.com');
    expect(ofType(events, 'data.masked').flatMap((e) => e.payload.maskings.map((m) => m.rule))).toContain('pii');
  });

  it('uses a client certificate as the held credential, verified against the cluster CA', async () => {
    const result = await fixture.exec(await fixture.token(), 'any-ns', 'pod-1', ['echo', 'cert-marker'], { cluster: CERT_CLUSTER });
    expect(result, result.error).toMatchObject({ stdout: 'cert-marker\n', exitCode: 0 });
    expect(fixture.apiServer.execs.findLast((e) => e.command.includes('cert-marker'))?.authenticatedBy).toBe('client-certificate:custodian-gateway');
    const events = await sessionOf('cert-marker');
    expect(ofType(events, 'credential.injected')[0]!.payload.method).toBe('client-certificate');
  });

  it('refuses to send the credential to an API server whose certificate does not chain to the configured cluster CA', async () => {
    const before = fixture.apiServer.execs.length;
    const result = await fixture.exec(await fixture.token(), 'default', 'web-0', ['echo', 'untrusted-marker'], { cluster: UNTRUSTED_CLUSTER });
    expect(result.exitCode).toBe(1);
    expect(result.status?.message).toMatch(/failed TLS verification/);
    expect(fixture.apiServer.execs.length).toBe(before);
  });

  it('refuses a token for another audience (401) and records authentication.failed', async () => {
    const wrong = await fixture.token('operator', OTHER_AUDIENCE);
    const result = await fixture.exec(wrong, 'default', 'web-0', ['echo', 'audience-marker']);
    expect(result.error).toMatch(/401/);
    expect(fixture.apiServer.execs.some((e) => e.command.includes('audience-marker'))).toBe(false);
    await waitFor('authentication.failed (audience)', (events) => ofType(events, 'authentication.failed').find((e) => e.payload.protocol === 'kubernetes' && e.payload.presentedAs === 'bearer-header' && /AUDIENCE/.test(e.payload.reasonCode)));
  });

  it('refuses an identity the policy does not open the cluster to (403)', async () => {
    const result = await fixture.exec(await fixture.token('outsider'), 'default', 'web-0', ['echo', 'outsider-marker']);
    expect(result.error).toMatch(/403/);
  });
});
