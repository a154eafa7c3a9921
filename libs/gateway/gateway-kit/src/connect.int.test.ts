// Connect and TLS against real sockets on loopback: a closed port, a server that accepts and
// never speaks (the deadline), a self-signed certificate made with openssl here (verification).
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer as createTcpServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSecureContext, createServer as createTlsServer, type TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, runCommand } from '@custodian/test-harness';
import { ConnectError, acceptTls, connect, connectTcp, startTls } from './index.js';

let dir: string;
let cert: Buffer;
let key: Buffer;
const servers: Server[] = [];
const accepted = new Set<Socket>();

async function listen(server: Server): Promise<number> {
  servers.push(server);
  server.on('connection', (socket: Socket) => {
    accepted.add(socket);
    socket.once('close', () => accepted.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  return typeof address === 'object' && address ? address.port : 0;
}

/** Accepts connections and never sends a byte; counts the sockets still open. */
async function silentServer(): Promise<{ port: number; open: Set<Socket> }> {
  const open = new Set<Socket>();
  const server = createTcpServer((socket) => {
    open.add(socket);
    socket.on('error', () => undefined);
    socket.on('close', () => open.delete(socket));
    // Read (and drop) so the peer's FIN is seen and the socket closes.
    socket.resume();
  });
  return { port: await listen(server), open };
}

async function rejection(promise: Promise<unknown>): Promise<ConnectError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ConnectError);
  return error as ConnectError;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'gateway-kit-tls-'));
  await runCommand('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'key.pem', '-out', 'cert.pem', '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'], { cwd: dir, timeoutMs: 30_000 });
  cert = readFileSync(join(dir, 'cert.pem'));
  key = readFileSync(join(dir, 'key.pem'));
});

afterAll(async () => {
  for (const socket of accepted) socket.destroy();
  await Promise.all(servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
  rmSync(dir, { recursive: true, force: true });
});

describe('connectTcp', () => {
  it('a closed port is CONNECT_REFUSED, with the system code and no address in the message', async () => {
    const port = await freePort();
    const error = await rejection(connectTcp({ host: '127.0.0.1', port, timeoutMs: 5_000 }));
    expect(error.code).toBe('CONNECT_REFUSED');
    expect(error.detail).toBe('ECONNREFUSED');
    expect(error.message).not.toContain(String(port));
  });

  it('an already aborted signal rejects without connecting (CONNECT_ABORTED)', async () => {
    const { port, open } = await silentServer();
    const error = await rejection(connectTcp({ host: '127.0.0.1', port, signal: AbortSignal.abort() }));
    expect(error.code).toBe('CONNECT_ABORTED');
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(open.size).toBe(0);
  });

  it('the deadline covers connecting only: it never destroys the socket the caller got', async () => {
    const { port } = await silentServer();
    const socket = await connectTcp({ host: '127.0.0.1', port, timeoutMs: 100 });
    await new Promise((resolve) => setTimeout(resolve, 250));
    expect(socket.destroyed).toBe(false);
    expect(socket.write('still open')).toBe(true);
    socket.destroy();
  });
});

describe('connect with TLS and a deadline', () => {
  it('a server that accepts and never answers the handshake: CONNECT_TIMEOUT at the deadline, socket closed', async () => {
    const { port, open } = await silentServer();
    const started = Date.now();
    const error = await rejection(connect({ host: '127.0.0.1', port, timeoutMs: 300, tls: { verify: true, ca: cert } }));
    const elapsed = Date.now() - started;
    expect(error.code).toBe('CONNECT_TIMEOUT');
    expect(error.message).toBe('TLS handshake timed out');
    expect(elapsed).toBeGreaterThanOrEqual(280);
    expect(elapsed).toBeLessThan(3_000);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(open.size).toBe(0);
  });

  it('the caller aborting during the handshake: CONNECT_ABORTED', async () => {
    const { port } = await silentServer();
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 100);
    const error = await rejection(connect({ host: '127.0.0.1', port, timeoutMs: 10_000, signal: controller.signal, tls: { verify: false } }));
    expect(error.code).toBe('CONNECT_ABORTED');
  });
});

describe('TLS verification (self-signed certificate)', () => {
  let port: number;

  beforeAll(async () => {
    const server = createTlsServer({ cert, key }, (socket: TLSSocket) => {
      socket.on('error', () => undefined);
      socket.end('hello');
    });
    server.on('tlsClientError', () => undefined);
    port = await listen(server);
  });

  it('verify without the CA: TLS_VERIFICATION_FAILED (self-signed)', async () => {
    const error = await rejection(connect({ host: '127.0.0.1', port, timeoutMs: 5_000, tls: { verify: true } }));
    expect(error.code).toBe('TLS_VERIFICATION_FAILED');
    expect(error.detail).toBe('DEPTH_ZERO_SELF_SIGNED_CERT');
  });

  it('verify with the certificate as CA and a name it carries (DNS and IP): connected', async () => {
    for (const serverName of ['localhost', undefined]) {
      const socket = (await connect({ host: '127.0.0.1', port, timeoutMs: 5_000, tls: { verify: true, ca: cert, ...(serverName ? { serverName } : {}) } })) as TLSSocket;
      expect(socket.authorized).toBe(true);
      const text = await new Promise<string>((resolve) => {
        let data = '';
        socket.on('data', (chunk: Buffer) => (data += chunk.toString()));
        socket.on('end', () => resolve(data));
      });
      expect(text).toBe('hello');
      socket.destroy();
    }
  });

  it('verify against a name the certificate does not carry: TLS_VERIFICATION_FAILED (altname)', async () => {
    const error = await rejection(connect({ host: '127.0.0.1', port, timeoutMs: 5_000, tls: { verify: true, ca: cert, serverName: 'db.example.com' } }));
    expect(error.code).toBe('TLS_VERIFICATION_FAILED');
    expect(error.detail).toBe('ERR_TLS_CERT_ALTNAME_INVALID');
  });

  it('verify: false encrypts without checking (libpq `require`)', async () => {
    const socket = (await connect({ host: '127.0.0.1', port, timeoutMs: 5_000, tls: { verify: false } })) as TLSSocket;
    expect(socket.encrypted).toBe(true);
    expect(socket.authorized).toBe(false);
    socket.destroy();
  });
});

describe('startTls / acceptTls (a protocol-level upgrade, both ends)', () => {
  it('upgrades a plain connection after a one-byte request, as SSLRequest does', async () => {
    const secureContext = createSecureContext({ cert, key });
    const upgraded: Promise<TLSSocket> = new Promise((resolve, reject) => {
      const server = createTcpServer((socket) => {
        socket.once('data', () => {
          socket.write('S');
          acceptTls(socket, { secureContext, timeoutMs: 5_000 }).then(resolve, reject);
        });
      });
      void listen(server).then(async (port) => {
        const plain = await connectTcp({ host: '127.0.0.1', port, timeoutMs: 5_000 });
        plain.write('?');
        plain.once('data', () => {
          void startTls(plain, '127.0.0.1', { verify: true, ca: cert }, { timeoutMs: 5_000 }).then((client) => {
            client.end('over tls');
          });
        });
      });
    });
    const serverSide = await upgraded;
    const text = await new Promise<string>((resolve) => {
      let data = '';
      serverSide.on('data', (chunk: Buffer) => (data += chunk.toString()));
      serverSide.on('end', () => resolve(data));
    });
    expect(text).toBe('over tls');
    serverSide.destroy();
  });

  it('a client that never starts the handshake: acceptTls times out and closes the socket', async () => {
    const secureContext = createSecureContext({ cert, key });
    let closed!: Promise<void>;
    const accepted: Promise<unknown> = new Promise((resolve) => {
      const server = createTcpServer((socket) => {
        socket.on('error', () => undefined);
        closed = new Promise((done) => socket.once('close', () => done()));
        acceptTls(socket, { secureContext, timeoutMs: 200 }).then(resolve, resolve);
      });
      void listen(server).then((port) => connectTcp({ host: '127.0.0.1', port }));
    });
    const error = await accepted;
    expect(error).toBeInstanceOf(ConnectError);
    expect((error as ConnectError).code).toBe('CONNECT_TIMEOUT');
    await closed;
  });
});
