// Exec streams through the Kubernetes gateway with a raw WebSocket client (v5.channel.k8s.io), in
// front of the STAND-IN API server: a tty exec with resize messages, a long output relayed
// completely under backpressure from a client that stops reading, and a client that goes away
// mid-command.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { CustodianEvent } from '@custodian/event-contracts';
import { Channel, encodeChannelMessage } from './channel-protocol.js';
import { CLUSTER, startKubernetesFixture, type KubernetesFixture } from './testing/gateway-fixture.js';

type EventOf<T extends CustodianEvent['type']> = Extract<CustodianEvent, { type: T }>;
const ofType = <T extends CustodianEvent['type']>(events: readonly CustodianEvent[], type: T): EventOf<T>[] => events.filter((e): e is EventOf<T> => e.type === type);
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

let fixture: KubernetesFixture;

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
    await waitFor('session.closed', (events) => ofType(events, 'session.closed').find((e) => e.payload.sessionId === issued.payload.sessionId));
    const frames = ofType(await fixture.events(), 'frame.recorded').filter((f) => f.payload.sessionId === issued.payload.sessionId);
    const resizes = frames.filter((f) => f.payload.channel === Channel.resize).map((f) => Buffer.from(f.payload.data, 'base64').subarray(1).toString('utf8'));
    expect(resizes).toEqual(['{"Width":120,"Height":40}', '{"Width":80,"Height":24}']);
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
