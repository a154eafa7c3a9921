// FlowControl on real sockets: a paused socket stops reading until every reason is gone, a full
// write buffer pauses the reading side until `drain`.
import { once } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { connectTcp } from './connect.js';
import { FlowControl } from './flow-control.js';

const cleanup: (() => void)[] = [];
afterEach(() => {
  for (const step of cleanup.splice(0)) step();
});

/** A connected pair of sockets on loopback. */
async function socketPair(): Promise<{ client: Socket; server: Socket }> {
  const server: Server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const accepted = once(server, 'connection') as Promise<[Socket]>;
  const client = await connectTcp({ host: '127.0.0.1', port: typeof address === 'object' && address ? address.port : 0 });
  const [serverSide] = await accepted;
  cleanup.push(() => {
    client.destroy();
    serverSide.destroy();
    server.close();
  });
  return { client, server: serverSide };
}

const tick = (ms = 50): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe('FlowControl', () => {
  it('reads again only when the last reason is dropped', async () => {
    const { client, server } = await socketPair();
    const received: string[] = [];
    server.on('data', (chunk: Buffer) => received.push(chunk.toString()));
    const flow = new FlowControl(server);
    flow.pause('upstream-full');
    flow.pause('recorder');
    flow.pause('recorder');
    client.write('one');
    await tick();
    expect(received).toEqual([]);
    expect([...flow.pausedFor].sort()).toEqual(['recorder', 'upstream-full']);
    flow.resume('recorder');
    client.write('two');
    await tick();
    expect(received).toEqual([]);
    expect(flow.paused).toBe(true);
    flow.resume('upstream-full');
    await tick();
    expect(received.join('')).toBe('onetwo');
    expect(flow.paused).toBe(false);
  });

  it('during(): paused while the work runs, resumed after it settles, even when it fails', async () => {
    const { client, server } = await socketPair();
    const received: string[] = [];
    server.on('data', (chunk: Buffer) => received.push(chunk.toString()));
    const flow = new FlowControl(server);
    let finish!: (value: number) => void;
    const work = flow.during('decision', new Promise<number>((resolve) => (finish = resolve)));
    client.write('held');
    await tick();
    expect(received).toEqual([]);
    finish(7);
    await expect(work).resolves.toBe(7);
    await tick();
    expect(received).toEqual(['held']);
    await expect(flow.during('decision', Promise.reject(new Error('refused')))).rejects.toThrow('refused');
    expect(flow.paused).toBe(false);
  });

  it('forward(): a full write buffer pauses the reading side until the writable drains (one drain listener per reason)', async () => {
    const { client, server } = await socketPair();
    const reading = new FlowControl(client);
    // The peer does not read, so the kernel buffers fill and write() reports a full buffer.
    server.pause();
    const chunk = Buffer.alloc(1024 * 1024, 0x61);
    let accepted = true;
    for (let i = 0; i < 64 && accepted; i++) accepted = reading.forward(client, chunk, 'peer-full');
    expect(accepted).toBe(false);
    reading.forward(client, chunk, 'peer-full');
    expect(reading.pausedFor).toEqual(['peer-full']);
    expect(client.listenerCount('drain')).toBe(1);
    server.on('data', () => undefined);
    server.resume();
    await once(client, 'drain');
    await tick(10);
    expect(reading.paused).toBe(false);
  });

  it('stop(): never resumes once the session is over', async () => {
    const { client, server } = await socketPair();
    const received: string[] = [];
    server.on('data', (chunk: Buffer) => received.push(chunk.toString()));
    const flow = new FlowControl(server);
    flow.pause('busy');
    flow.stop();
    flow.resume('busy');
    client.write('late');
    await tick();
    expect(received).toEqual([]);
  });
});
