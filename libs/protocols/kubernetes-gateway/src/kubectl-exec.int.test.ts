// The real kubectl (the one on this machine: v1.32, which speaks WebSocket exec, v5.channel.k8s.io)
// through the gateway to the STAND-IN API server: discovery, the pod GET kubectl makes first
// (answered with a projection), exec with exit codes, stdin, a block, a namespace off the list.
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLUSTER, startKubernetesFixture, type KubernetesFixture } from './testing/gateway-fixture.js';
import { STAND_IN_LOG_EMAIL, STAND_IN_POD_SECRET } from './testing/stand-in-api-server.js';

const KUBECTL = '/usr/bin/kubectl';
const haveKubectl = existsSync(KUBECTL);
if (!haveKubectl) console.warn(`kubectl-exec.int.test.ts: ${KUBECTL} is missing; the kubectl tests are skipped`);

let fixture: KubernetesFixture;
let dir: string;
let kubeconfig: string;

interface KubectlResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

function kubectl(args: readonly string[], stdin?: string): Promise<KubectlResult> {
  return new Promise((resolve) => {
    // No proxy, no cache dir outside the test's own: the kubeconfig is the only input.
    const child = execFile(KUBECTL, ['--kubeconfig', kubeconfig, '--cache-dir', join(dir, 'cache'), ...args], { timeout: 30_000, env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOME: dir } }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
      resolve({ code, stdout, stderr });
    });
    if (stdin !== undefined) child.stdin?.end(stdin);
    else child.stdin?.end();
  });
}

beforeAll(async () => {
  fixture = await startKubernetesFixture();
  dir = mkdtempSync(join(tmpdir(), 'custodian-kubectl-'));
  kubeconfig = join(dir, 'config');
  writeFileSync(
    kubeconfig,
    `apiVersion: v1
kind: Config
clusters:
  - name: custodian
    cluster:
      server: https://127.0.0.1:${fixture.gateway.port}/clusters/${CLUSTER}
      certificate-authority-data: ${fixture.pki.ca.toString('base64')}
users:
  - name: agent
    user:
      token: ${await fixture.token()}
contexts:
  - name: custodian
    context: { cluster: custodian, user: agent, namespace: default }
current-context: custodian
`,
    { mode: 0o600 },
  );
}, 60_000);

afterAll(async () => {
  await fixture?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe.skipIf(!haveKubectl)('kubectl exec through the gateway (stand-in API server)', () => {
  it('runs an allowed command over WebSocket exec with the held token (kubectl reads the pod first)', async () => {
    const result = await kubectl(['exec', 'web-0', '-c', 'app', '--', 'echo', 'kubectl-allowed']);
    expect(result, result.stderr).toMatchObject({ code: 0, stdout: 'kubectl-allowed\n' });
    expect(fixture.apiServer.podGets).toContain('default/web-0');
    expect(fixture.apiServer.execs.find((e) => e.command.includes('kubectl-allowed'))).toMatchObject({ namespace: 'default', pod: 'web-0', container: 'app', protocol: 'v5.channel.k8s.io', authenticatedBy: 'token' });
  });

  it("passes the command's exit code through", async () => {
    const result = await kubectl(['exec', 'web-0', '-c', 'app', '--', 'sh', '-c', 'echo out; exit 3']);
    expect(result.stdout).toBe('out\n');
    expect(result.code).toBe(3);
    expect(result.stderr).toContain('exit code 3');
  });

  it('passes stdin (exec -i) and ends it (v5 close)', async () => {
    const result = await kubectl(['exec', '-i', 'web-0', '-c', 'app', '--', 'wc', '-l'], 'one\ntwo\nthree\n');
    expect(result, result.stderr).toMatchObject({ code: 0 });
    expect(result.stdout.trim()).toBe('3');
  });

  it('a blocked command never runs; kubectl shows the rule', async () => {
    const result = await kubectl(['exec', 'web-0', '-c', 'app', '--', 'rm', '-rf', '/kubectl-blocked']);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain('block-destructive');
    expect(fixture.apiServer.execs.some((e) => e.command.includes('/kubectl-blocked'))).toBe(false);
  });

  it('a namespace off the cluster list is refused at the pod read', async () => {
    const result = await kubectl(['exec', '-n', 'kube-system', 'etcd-0', '--', 'echo', 'kubectl-kube-system']);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain('namespace kube-system is not allowed');
    expect(fixture.apiServer.execs.some((e) => e.command.includes('kubectl-kube-system'))).toBe(false);
  });

  it('kubectl get pod shows names, containers and phase, never env values or annotations from the spec', async () => {
    const result = await kubectl(['get', 'pod', 'multi-web-0', '-o', 'json']);
    expect(result, result.stderr).toMatchObject({ code: 0 });
    const pod = JSON.parse(result.stdout) as { metadata: { name: string }; spec: { containers: { name: string }[] }; status: { phase: string } };
    expect(pod.metadata.name).toBe('multi-web-0');
    expect(pod.spec.containers.map((c) => c.name)).toEqual(['app', 'sidecar']);
    expect(pod.status.phase).toBe('Running');
    expect(result.stdout).not.toContain(STAND_IN_POD_SECRET);
    expect(result.stdout).not.toContain('volumes');
    // The read is a recorded session: its frames are what kubectl got, the credential held by reference.
    // kubectl can exit before the read's session events are durable: wait for them (up to 30 s).
    const podGets = (events: Awaited<ReturnType<typeof fixture.events>>): string[] =>
      events.flatMap((e) => (e.type === 'frame.recorded' && e.payload.messageType === 'pod-get' && Buffer.from(e.payload.data, 'base64').toString('utf8') === 'GET /api/v1/namespaces/default/pods/multi-web-0' ? [e.payload.sessionId] : []));
    let sessions = podGets(await fixture.events());
    for (let i = 0; i < 600 && sessions.length === 0; i++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      sessions = podGets(await fixture.events());
    }
    expect(sessions.length).toBeGreaterThan(0);
    const stream = `session-${sessions.at(-1)!}`;
    let types: string[] = [];
    for (let i = 0; i < 600 && !types.includes('custody.attested'); i++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      types = (await fixture.events()).filter((e) => e.stream === stream).map((e) => e.type);
    }
    expect(types).toEqual(['authentication.succeeded', 'session.opened', 'frame.recorded', 'credential.injected', 'frame.recorded', 'session.closed', 'custody.attested']);
    const recorded = (await fixture.events()).filter((e) => e.stream === stream);
    const podFrame = recorded.find((e) => e.type === 'frame.recorded' && e.payload.messageType === 'pod');
    expect(podFrame && podFrame.type === 'frame.recorded' ? Buffer.from(podFrame.payload.data, 'base64').toString('utf8') : '').toContain('"phase":"Running"');
    const attested = recorded.find((e) => e.type === 'custody.attested');
    expect((attested?.payload as { exposed?: boolean } | undefined)?.exposed).toBe(false);
  });

  it('a missing pod is NotFound; pod lists are refused by name', async () => {
    expect((await kubectl(['exec', 'missing-0', '--', 'echo', 'x'])).stderr).toContain('pods "missing-0" not found');
    const listed = await kubectl(['get', 'pods']);
    expect(listed.code).not.toBe(0);
    expect(listed.stderr).toContain('not served by the Custodian gateway');
  });

  it('kubectl logs: allowed by a rule (http GET on the log path, web-* pods), streamed masked and recorded; refused by default elsewhere', async () => {
    const logs = await kubectl(['logs', 'web-0', '-c', 'app', '--tail=10']);
    expect(logs, logs.stderr).toMatchObject({ code: 0 });
    expect(logs.stdout).toContain('started default/web-0 container app');
    expect(logs.stdout).not.toContain(STAND_IN_LOG_EMAIL);
    expect(logs.stdout).toContain('ready');
    expect(fixture.apiServer.logGets).toContain('default/web-0?container=app&tailLines=10');
    // The log session's events are durable shortly after kubectl has its answer: wait for its close.
    let issued: Awaited<ReturnType<typeof fixture.events>>[number] | undefined;
    for (let i = 0; i < 200; i++) {
      const events = await fixture.events();
      issued = events.find((e) => e.type === 'command.issued' && e.payload.text === 'GET /api/v1/namespaces/default/pods/web-0/log?container=app&tailLines=10');
      const sessionId = (issued?.payload as { sessionId?: string } | undefined)?.sessionId;
      if (sessionId && events.some((e) => e.type === 'session.closed' && e.payload.sessionId === sessionId)) break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(issued).toBeDefined();
    const frames = (await fixture.events()).filter((e) => e.type === 'frame.recorded' && 'sessionId' in e.payload && e.payload.sessionId === (issued?.payload as { sessionId: string }).sessionId);
    const recorded = frames.map((e) => (e.type === 'frame.recorded' && e.payload.messageType === 'log' ? Buffer.from(e.payload.data, 'base64').toString('utf8') : '')).join('');
    expect(recorded).toContain('started default/web-0 container app');
    expect(recorded).not.toContain(STAND_IN_LOG_EMAIL);
    // No rule allows logs of other pods: the default deny, and the API server never asked.
    const refused = await kubectl(['logs', 'job-1', '-n', 'team-a', '-c', 'app']);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain('Not permitted through the gateway.');
    expect(fixture.apiServer.logGets.some((get) => get.startsWith('team-a/job-1'))).toBe(false);
  });

  it('the held cluster token appears in no kubectl output and no event', async () => {
    const result = await kubectl(['exec', 'web-0', '-c', 'app', '--', 'env']);
    expect(result.code).toBe(0);
    expect(result.stdout + result.stderr).not.toContain(fixture.upstreamToken);
    expect(JSON.stringify(await fixture.events())).not.toContain(fixture.upstreamToken);
  });
});

describe.skipIf(!haveKubectl || !existsSync('/usr/bin/script'))('kubectl exec -it through the gateway (a terminal from script(1))', () => {
  it('a tty exec sends the terminal size on the resize channel and relays the output', async () => {
    const result = await new Promise<KubectlResult>((resolve) => {
      const command = `stty cols 132 rows 43; ${KUBECTL} --kubeconfig ${kubeconfig} --cache-dir ${join(dir, 'cache')} exec -it web-0 -c app -- echo kubectl-tty-marker`;
      execFile('script', ['-q', '-e', '-c', command, '/dev/null'], { timeout: 30_000, env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOME: dir } }, (error, stdout, stderr) => resolve({ code: error ? (typeof error.code === 'number' ? error.code : -1) : 0, stdout, stderr }));
    });
    expect(result, result.stderr).toMatchObject({ code: 0 });
    expect(result.stdout).toContain('kubectl-tty-marker');
    const upstream = fixture.apiServer.execs.find((e) => e.command.includes('kubectl-tty-marker'));
    expect(upstream?.tty).toBe(true);
    expect(upstream?.resizes.map((r) => JSON.parse(r) as unknown)).toContainEqual({ Width: 132, Height: 43 });
  });
});
