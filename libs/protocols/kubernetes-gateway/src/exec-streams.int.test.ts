// Exec streams through the Kubernetes gateway with a raw WebSocket client (v5.channel.k8s.io), in
// front of the STAND-IN API server: a tty exec with resize messages, a long output relayed
// completely under backpressure from a client that stops reading, and a client that goes away
// mid-command.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { runInNewContext } from 'node:vm';
import { setFlagsFromString } from 'node:v8';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { CustodianEvent, FrameRecorded } from '@custodian/event-contracts';
import { Channel, encodeChannelMessage } from './channel-protocol.js';
import { CLUSTER, startKubernetesFixture, type KubernetesFixture } from './testing/gateway-fixture.js';
import { terminalFrameFromKubernetes, toAsciicast } from '@custodian/replay';

const ASCIINEMA = '/usr/bin/asciinema';

type EventOf<T extends CustodianEvent['type']> = Extract<CustodianEvent, { type: T }>;
const ofType = <T extends CustodianEvent['type']>(events: readonly CustodianEvent[], type: T): EventOf<T>[] => events.filter((e): e is EventOf<T> => e.type === type);
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

let fixture: KubernetesFixture;
/** Sessions already looked at (the tty tests run the same command). */
const seen = new Set<string>();

beforeAll(async () => {
  fixture = await startKubernetesFixture();
}, 60_000);

afterAll(async () => {
  await fixture?.stop();
});

interface RawExec {
  readonly socket: WebSocket;
  readonly messages: Buffer[];
  readonly closed: Promise<void>;
}

async function rawExec(query: string): Promise<RawExec> {
  return await rawExecAt('web-0', query);
}

async function rawExecAt(pod: string, query: string): Promise<RawExec> {
  const socket = new WebSocket(`wss://127.0.0.1:${fixture.gateway.port}/clusters/${CLUSTER}/api/v1/namespaces/default/pods/${pod}/exec?${query}`, ['v5.channel.k8s.io'], {
    ca: fixture.pki.ca,
    headers: { Authorization: `Bearer ${await fixture.token()}` },
  });
  const messages: Buffer[] = [];
  socket.on('message', (data: Buffer) => messages.push(data));
  const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    socket.once('open', () => resolve());
    socket.once('error', reject);
  });
  return { socket, messages, closed };
}

async function waitFor<T>(what: string, find: (events: CustodianEvent[]) => T | undefined): Promise<T> {
  // Generous: on a loaded machine the session's events can take seconds to become durable.
  const deadline = Date.now() + 30_000;
  for (;;) {
    const found = find(await fixture.events());
    if (found !== undefined) return found;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** The terminal replay of a Kubernetes session's recorded frames (what the API serves at /v1/sessions/{id}/replay). */
function replayOf(frames: readonly FrameRecorded[], format: 'v3' | 'v2' = 'v3'): string {
  return toAsciicast(frames.map(terminalFrameFromKubernetes).filter((f): f is FrameRecorded => f !== undefined), { format });
}

function channelBytes(messages: readonly Buffer[], channel: number): Buffer {
  return Buffer.concat(messages.filter((m) => m[0] === channel).map((m) => m.subarray(1)));
}

describe('Kubernetes gateway exec streams (raw v5 client, stand-in API server)', () => {
  it('tty exec: resize messages reach the API server and are recorded on channel 4; stdin close ends the command', async () => {
    const exec = await rawExec('command=cat&stdin=true&stdout=true&tty=true&container=app');
    exec.socket.send(encodeChannelMessage(Channel.resize, '{"Width":120,"Height":40}'));
    exec.socket.send(encodeChannelMessage(Channel.stdin, 'tty-line\n'));
    exec.socket.send(encodeChannelMessage(Channel.resize, '{"Width":80,"Height":24}'));
    exec.socket.send(Buffer.from([Channel.close, Channel.stdin]));
    await exec.closed;
    expect(channelBytes(exec.messages, Channel.stdout).toString('utf8')).toBe('tty-line\n');
    const upstream = fixture.apiServer.execs.find((e) => e.tty && e.stdin.includes('tty-line'));
    expect(upstream?.resizes).toEqual(['{"Width":120,"Height":40}', '{"Width":80,"Height":24}']);
    const issued = await waitFor('the tty command', (events) => ofType(events, 'command.issued').find((e) => e.payload.text === 'exec -n default web-0 -c app -i -t -- cat'));
    seen.add(issued.payload.sessionId);
    await waitFor('session.closed', (events) => ofType(events, 'session.closed').find((e) => e.payload.sessionId === issued.payload.sessionId));
    const frames = ofType(await fixture.events(), 'frame.recorded').filter((f) => f.payload.sessionId === issued.payload.sessionId);
    const resizes = frames.filter((f) => f.payload.channel === Channel.resize).map((f) => Buffer.from(f.payload.data, 'base64').subarray(1).toString('utf8'));
    expect(resizes).toEqual(['{"Width":120,"Height":40}', '{"Width":80,"Height":24}']);

    // The terminal replay, from the recorded frames alone.
    const cast = replayOf(frames.map((f) => f.payload)).trimEnd().split('\n').map((line) => JSON.parse(line) as unknown);
    expect(cast[0]).toEqual({ version: 3, term: { cols: 120, rows: 40 } });
    const events = cast.slice(1) as [number, string, string][];
    expect(events.every(([interval]) => interval >= 0)).toBe(true);
    // Output and the second resize may interleave either way; input precedes output, the exit is last.
    const pairs = events.map(([, code, data]) => `${code}:${data}`);
    expect([...pairs].sort()).toEqual(['i:tty-line\n', 'o:tty-line\n', 'r:80x24', 'x:0']);
    expect(pairs.indexOf('i:tty-line\n')).toBeLessThan(pairs.indexOf('o:tty-line\n'));
    expect(events.at(-1)?.[1]).toBe('x');
  });

  it.skipIf(!existsSync(ASCIINEMA))('the asciicast (v2) of a tty exec plays in asciinema 2.x (`asciinema cat` prints the output)', async () => {
    const exec = await rawExec('command=cat&stdin=true&stdout=true&tty=true&container=app');
    exec.socket.send(encodeChannelMessage(Channel.resize, '{"Width":100,"Height":30}'));
    exec.socket.send(encodeChannelMessage(Channel.stdin, 'replayed-line\n'));
    exec.socket.send(Buffer.from([Channel.close, Channel.stdin]));
    await exec.closed;
    const issued = await waitFor('the tty command', (events) => ofType(events, 'command.issued').find((e) => e.payload.text === 'exec -n default web-0 -c app -i -t -- cat' && !seen.has(e.payload.sessionId)));
    seen.add(issued.payload.sessionId);
    await waitFor('session.closed', (events) => ofType(events, 'session.closed').find((e) => e.payload.sessionId === issued.payload.sessionId));
    const frames = ofType(await fixture.events(), 'frame.recorded').filter((f) => f.payload.sessionId === issued.payload.sessionId);
    const dir = mkdtempSync(join(tmpdir(), 'k8s-cast-'));
    try {
      const file = join(dir, 'exec.cast');
      writeFileSync(file, replayOf(frames.map((f) => f.payload), 'v2'));
      // asciinema 2.x opens /dev/tty: script(1) gives it a terminal.
      expect(execFileSync('script', ['-q', '-e', '-c', `${ASCIINEMA} cat ${file}`, '/dev/null'], { encoding: 'utf8', timeout: 20_000, env: { PATH: '/usr/bin:/bin', HOME: dir } })).toBe('replayed-line\n');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a tty shell (exec -it -- sh): each line is decided at Enter before the newline goes upstream; a blocked line is erased and never runs', async () => {
    const exec = await rawExec('command=sh&stdin=true&stdout=true&tty=true&container=app');
    exec.socket.send(encodeChannelMessage(Channel.resize, '{"Width":100,"Height":30}'));
    // Typed key by key with a correction (backspace), as a terminal sends it; Enter is CR.
    for (const key of ['echo tty-', 'lint', '\x7f\x7fne-allowed', '\r']) exec.socket.send(encodeChannelMessage(Channel.stdin, key));
    exec.socket.send(encodeChannelMessage(Channel.stdin, 'rm -rf /tmp/tty-blocked-marker; echo tty-blocked-ran\r'));
    exec.socket.send(encodeChannelMessage(Channel.stdin, 'echo tty-after-block\r'));
    exec.socket.send(encodeChannelMessage(Channel.stdin, 'exit\r'));
    await exec.closed;
    const stdout = channelBytes(exec.messages, Channel.stdout).toString('utf8');
    expect(stdout).toContain('tty-line-allowed\n');
    expect(stdout).toContain('tty-after-block\n');
    expect(stdout).not.toContain('tty-blocked-ran\n');
    expect(stdout).toContain('(rule block-destructive)');
    const status = JSON.parse(channelBytes(exec.messages, Channel.error).toString('utf8')) as { status?: string };
    expect(status.status).toBe('Success');
    // Upstream the blocked line's keys were followed by ^E^U (erase), never by a newline.
    const upstream = fixture.apiServer.execs.find((e) => e.tty && e.stdin.includes('tty-blocked-marker'));
    expect(upstream?.stdin).toContain('rm -rf /tmp/tty-blocked-marker; echo tty-blocked-ran\x05\x15');
    // Each line is a command of the session, decided by the shell language with where it runs.
    const opened = await waitFor('the tty shell', (events) => ofType(events, 'command.issued').find((e) => e.payload.text === 'exec -n default web-0 -c app -i -t -- sh' && !seen.has(e.payload.sessionId)));
    seen.add(opened.payload.sessionId);
    await waitFor('session.closed', (events) => ofType(events, 'session.closed').find((e) => e.payload.sessionId === opened.payload.sessionId));
    const events = (await fixture.events()).filter((e) => 'sessionId' in e.payload && e.payload.sessionId === opened.payload.sessionId);
    const lines = ofType(events, 'command.issued').map((e) => e.payload.text);
    expect(lines).toEqual(['exec -n default web-0 -c app -i -t -- sh', 'echo tty-line-allowed', 'rm -rf /tmp/tty-blocked-marker; echo tty-blocked-ran', 'echo tty-after-block', 'exit']);
    const decisions = ofType(events, 'policy.decided').map((e) => `${e.payload.decision}:${e.payload.ruleId ?? ''}`);
    expect(decisions).toContain('block:block-destructive');
    // The replay shows what the client saw: the notice, the output, not the blocked line's output.
    const cast = replayOf(ofType(events, 'frame.recorded').map((e) => e.payload));
    expect(JSON.parse(cast.split('\n')[0]!)).toEqual({ version: 3, term: { cols: 100, rows: 30 } });
    expect(cast).toContain('tty-after-block');
    expect(cast).not.toContain('tty-blocked-ran\\n');
  });

  it('a tty shell line the gateway cannot follow (Tab completion) is refused for an agent, erased, and recorded as unverifiable', async () => {
    const exec = await rawExec('command=sh&stdin=true&stdout=true&tty=true&container=app');
    exec.socket.send(encodeChannelMessage(Channel.stdin, 'echo tty-tab\t-marker\r'));
    exec.socket.send(encodeChannelMessage(Channel.stdin, 'exit\r'));
    await exec.closed;
    const stdout = channelBytes(exec.messages, Channel.stdout).toString('utf8');
    expect(stdout).toContain('custodian:unverifiable-line');
    expect(stdout).not.toContain('tty-tab');
    const issued = await waitFor('the unverifiable line', (events) => ofType(events, 'command.issued').find((e) => e.payload.text.includes('tty-tab')));
    const decided = await waitFor('its decision', (events) => ofType(events, 'policy.decided').find((e) => e.payload.commandId === issued.payload.commandId));
    expect(decided.payload).toMatchObject({ decision: 'block', ruleId: 'custodian:unverifiable-line' });
  });

  it('exec without a container: the gateway names the pod\'s only container before deciding; a pod with several is refused as the API server would', async () => {
    const single = await rawExec('command=echo&command=no-container-marker&stdout=true');
    await single.closed;
    expect(channelBytes(single.messages, Channel.stdout).toString('utf8')).toBe('no-container-marker\n');
    expect(fixture.apiServer.execs.find((e) => e.command.includes('no-container-marker'))?.container).toBe('app');
    await waitFor('the command with its container', (events) => ofType(events, 'command.issued').find((e) => e.payload.text === 'exec -n default web-0 -c app -- echo no-container-marker'));
    const multi = await rawExecAt('multi-web-0', 'command=echo&command=multi-container-marker&stdout=true');
    await multi.closed;
    const status = JSON.parse(channelBytes(multi.messages, Channel.error).toString('utf8')) as { status?: string; message?: string };
    expect(status.status).toBe('Failure');
    expect(status.message).toContain('choose one of: [app sidecar]');
    expect(fixture.apiServer.execs.some((e) => e.command.includes('multi-container-marker'))).toBe(false);
  });

  it('bounded memory: while a client stops reading, the gateway holds a bounded amount of the output, not what the command can produce', async () => {
    const size = 64 * 1024 * 1024;
    // Retained memory is what a bound is about: garbage is collected before reading the heap (RSS is
    // not a measure here: the store's writer thread keeps freed memory mapped).
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    gc();
    const base = process.memoryUsage();
    const exec = await rawExec(`command=head&command=-c&command=${size}&command=/dev/zero&stdout=true&container=app`);
    let received = 0;
    exec.socket.removeAllListeners('message');
    exec.socket.on('message', (data: Buffer) => (received += data[0] === Channel.stdout ? data.length - 1 : 0));
    // The client stops reading at once; an unbounded relay would take in all 64 MiB meanwhile.
    exec.socket.pause();
    await sleep(5_000);
    gc();
    const paused = process.memoryUsage();
    const held = paused.heapUsed - base.heapUsed + (paused.arrayBuffers - base.arrayBuffers);
    exec.socket.resume();
    await exec.closed;
    console.log(`kubernetes exec, client paused 5 s on a 64 MiB output: retained heap+buffers growth ${(held / 1048576).toFixed(1)} MiB; then received ${(received / 1048576).toFixed(0)} MiB`);
    expect(received).toBe(size);
    // 1 MiB queued per side in the gateway, the stand-in's 1 MiB, socket buffers and the recorder's
    // backlog (8 MiB): bounded, and far below the output the command had ready.
    expect(held).toBeLessThan(32 * 1024 * 1024);
  }, 120_000);

  it('relays a long output completely, in order, while the client stops reading for a while', async () => {
    const size = 24 * 1024 * 1024;
    const exec = await rawExec(`command=head&command=-c&command=${size}&command=/dev/zero&stdout=true&container=app`);
    // Stop reading: the gateway's client queue fills and it pauses the API server (maxBufferedBytes).
    exec.socket.pause();
    await sleep(1_500);
    exec.socket.resume();
    await exec.closed;
    expect(channelBytes(exec.messages, Channel.stdout).length).toBe(size);
    const status = JSON.parse(channelBytes(exec.messages, Channel.error).toString('utf8')) as { status?: string };
    expect(status.status).toBe('Success');
  });

  it('a client that goes away mid-command ends the upstream exec and the session (client-closed)', async () => {
    const before = fixture.apiServer.execs.length;
    const exec = await rawExec('command=sleep&command=30&stdout=true&container=app');
    // findLast: this test's command, not one of an earlier attempt.
    const issued = await waitFor('the sleep command', (events) => ofType(events, 'command.issued').findLast((e) => e.payload.text === 'exec -n default web-0 -c app -- sleep 30'));
    await waitFor('the upstream exec', () => (fixture.apiServer.execs.slice(before).some((e) => e.command.join(' ') === 'sleep 30') ? true : undefined));
    exec.socket.terminate();
    const closed = await waitFor('session.closed', (events) => ofType(events, 'session.closed').find((e) => e.payload.sessionId === issued.payload.sessionId));
    expect(closed.payload.reason).toBe('client-closed');
    // The stand-in kills the command when its WebSocket closes: it ends long before 30 s.
    await waitFor('the upstream command to end', () => (fixture.apiServer.execs.slice(before).find((e) => e.command.join(' ') === 'sleep 30')?.exitCode !== undefined ? true : undefined));
  });
});
