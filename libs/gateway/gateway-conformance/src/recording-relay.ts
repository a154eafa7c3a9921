// A loopback TCP relay between a real client and the gateway that keeps every byte the gateway
// sent towards the client: what the client could see on the wire, whatever the client prints.
// Cutting it is an abrupt disconnect from the gateway's point of view.
import { createServer, connect, type Server, type Socket } from 'node:net';

export interface RecordingRelay {
  readonly host: string;
  readonly port: number;
  /** Every byte the gateway sent to the client, so far (plaintext only: put it outside TLS). */
  clientBound(): Buffer;
  /** Destroys both sides at once (no protocol goodbye): the client vanished. */
  cut(): void;
  close(): Promise<void>;
}

/** Starts a relay to `target` on 127.0.0.1 (one client connection at a time is what tests need; more work too). */
export async function startRecordingRelay(target: { readonly host: string; readonly port: number }): Promise<RecordingRelay> {
  const received: Buffer[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer({ noDelay: true }, (client) => {
    const upstream = connect({ host: target.host, port: target.port, noDelay: true });
    sockets.add(client);
    sockets.add(upstream);
    upstream.on('data', (chunk: Buffer) => received.push(Buffer.from(chunk)));
    client.pipe(upstream);
    upstream.pipe(client);
    const end = (): void => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  if (typeof address !== 'object' || address === null) throw new Error('the recording relay has no address');
  return {
    host: '127.0.0.1',
    port: address.port,
    clientBound: () => Buffer.concat(received),
    cut() {
      for (const socket of sockets) socket.resetAndDestroy();
      sockets.clear();
    },
    close() {
      for (const socket of sockets) socket.destroy();
      sockets.clear();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
