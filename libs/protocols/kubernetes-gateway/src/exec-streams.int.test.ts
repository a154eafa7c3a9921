// Exec streams through the Kubernetes gateway with a raw WebSocket client (v5.channel.k8s.io), in
// front of the STAND-IN API server: a tty exec with resize messages, a long output relayed
// completely under backpressure from a client that stops reading, and a client that goes away
// mid-command.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { CustodianEvent } from '@custodian/event-contracts';
import { Channel, encodeChannelMessage } from './channel-protocol.js';
import { CLUSTER, startKubernetesFixture, type KubernetesFixture } from './testing/gateway-fixture.js';
import { asciicastFromFrames } from './tty-recording.js';

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
  const socket = new WebSocket(`wss://127.0.0.1:${fixture.gateway.port}/clusters/${CLUSTER}/api/v1/namespaces/default/pods/web-0/exec?${query}`, ['v5.channel.k8s.io'], {
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
  const deadline = Date.now() + 10_000;
  for (;;) {
    const found = find(await fixture.events());
    if (found !== undefined) return found;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
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
    const cast = asciicastFromFrames(frames.map((f) => f.payload)).trimEnd().split('\n').map((line) => JSON.parse(line) as unknown);
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
      writeFileSync(file, asciicastFromFrames(frames.map((f) => f.payload), { version: 2, timestamp: 1_796_600_000 }));
      // asciinema 2.x opens /dev/tty: script(1) gives it a terminal.
      expect(execFileSync('script', ['-q', '-e', '-c', `${ASCIINEMA} cat ${file}`, '/dev/null'], { encoding: 'utf8', timeout: 20_000, env: { PATH: '/usr/bin:/bin', HOME: dir } })).toBe('replayed-line\n');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a tty shell (exec -it -- sh) is blocked by the guarded flag shell-from-stdin unless a rule names it: its lines could not be decided', async () => {
    const exec = await rawExec('command=sh&stdin=true&stdout=true&tty=true&container=app');
    exec.socket.send(encodeChannelMessage(Channel.stdin, 'echo tty-shell-marker\n'));
    await exec.closed;
    const status = JSON.parse(channelBytes(exec.messages, Channel.error).toString('utf8')) as { status?: string; message?: string };
    expect(status.status).toBe('Failure');
    expect(status.message).toContain('custodian:guarded-flag');
    expect(fixture.apiServer.execs.some((e) => e.stdin.includes('tty-shell-marker'))).toBe(false);
  });

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
    const exec = await rawExec('command=sleep&command=30&stdout=true&container=app');
    const issued = await waitFor('the sleep command', (events) => ofType(events, 'command.issued').find((e) => e.payload.text === 'exec -n default web-0 -c app -- sleep 30'));
    await waitFor('the upstream exec', () => (fixture.apiServer.execs.some((e) => e.command.join(' ') === 'sleep 30') ? true : undefined));
    exec.socket.terminate();
    const closed = await waitFor('session.closed', (events) => ofType(events, 'session.closed').find((e) => e.payload.sessionId === issued.payload.sessionId));
    expect(closed.payload.reason).toBe('client-closed');
    // The stand-in kills the command when its WebSocket closes: it ends long before 30 s.
    await waitFor('the upstream command to end', () => (fixture.apiServer.execs.find((e) => e.command.join(' ') === 'sleep 30')?.exitCode !== undefined ? true : undefined));
  });
});
