// The login's frame reader over a real loopback socket: what a client sends while nobody asks for
// a frame is read ahead only so far (TCP holds back the rest), and asking again resumes reading,
// also for a frame larger than the read-ahead bound.
import { createServer, connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { SocketFrameReader } from './socket-frame-reader.js';

const sockets: Socket[] = [];
afterEach(() => {
  for (const socket of sockets.splice(0)) socket.destroy();
});

async function socketPair(): Promise<{ client: Socket; server: Socket }> {
  const listener = createServer();
  await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
  const port = (listener.address() as { port: number }).port;
  const accepted = new Promise<Socket>((resolve) => listener.once('connection', resolve));
  const client = connect(port, '127.0.0.1');
  const server = await accepted;
  listener.close();
  sockets.push(client, server);
  return { client, server };
}

/** A Query message ('Q', length, text, NUL) of `bytes` bytes of text. */
function query(bytes: number): Buffer {
  const message = Buffer.alloc(1 + 4 + bytes + 1, 0x61);
  message[0] = 0x51;
  message.writeInt32BE(4 + bytes + 1, 1);
  message[message.length - 1] = 0;
  return message;
}

describe('SocketFrameReader', () => {
  it('reads ahead at most about 256 KiB while nobody asks, then delivers an 8 MiB message when asked', async () => {
    const { client, server } = await socketPair();
    const reader = new SocketFrameReader(server, { side: 'frontend', maxMessageBytes: 16 * 1024 * 1024 });
    reader.framer.inStartupPhase = false;
    const message = query(8 * 1024 * 1024);
    client.write(message);
    // Nobody calls next(): give the client time to push as much as TCP lets it.
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(server.isPaused()).toBe(true);
    // The bound plus at most one socket read beyond it.
    expect(reader.framer.bufferedBytes).toBeLessThan(1024 * 1024);
    const frame = await reader.next(AbortSignal.timeout(10_000));
    expect(frame.type).toBe(0x51);
    expect(frame.raw.length).toBe(message.length);
  });

  it('hands the socket over flowing: bytes read ahead come back from detach(), the rest reaches the next listener', async () => {
    const { client, server } = await socketPair();
    const reader = new SocketFrameReader(server, { side: 'frontend', maxMessageBytes: 16 * 1024 * 1024 });
    reader.framer.inStartupPhase = false;
    const message = query(2 * 1024 * 1024);
    client.write(message);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(server.isPaused()).toBe(true);
    const leftover = reader.detach();
    const rest: Buffer[] = [];
    server.on('data', (chunk: Buffer) => rest.push(chunk));
    const deadline = Date.now() + 10_000;
    while (leftover.length + rest.reduce((n, chunk) => n + chunk.length, 0) < message.length && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    expect(Buffer.concat([leftover, ...rest]).equals(message)).toBe(true);
  });
});
