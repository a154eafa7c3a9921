// Await-able frames from a socket, for the request/response phases (TLS negotiation, logins,
// catalog queries). The streaming proxy phase reads sockets directly; `detach()` hands over the
// bytes read ahead.
import type { Socket } from 'node:net';
import { MessageFramer, type Frame } from '@custodian/postgres-wire';

export class SocketClosedError extends Error {
  override readonly name = 'SocketClosedError';
  readonly code = 'SOCKET_CLOSED';
}

/**
 * Bytes read ahead while nobody asks for a frame (the gateway awaits a token check, or the
 * recording of a refusal): beyond this the socket is paused until the next next() or byte(), so a
 * client pushing data during a login is held back by TCP, not buffered here.
 */
const READ_AHEAD_BYTES = 256 * 1024;

export class SocketFrameReader {
  readonly framer: MessageFramer;
  private waiter: { resolve: () => void; reject: (error: unknown) => void } | undefined;
  private failure: Error | undefined;
  /** This reader paused the socket (read-ahead bound); it resumes it when asked for more, or on detach. */
  private paused = false;
  private readonly onData = (chunk: Buffer): void => {
    this.framer.push(chunk);
    if (this.waiter === undefined && this.framer.bufferedBytes > READ_AHEAD_BYTES && !this.paused) {
      this.paused = true;
      this.socket.pause();
    }
    this.wake();
  };
  private readonly onClose = (): void => this.fail(new SocketClosedError('connection closed'));
  private readonly onError = (error: Error): void => this.fail(error);

  constructor(
    private socket: Socket,
    options: { side: 'frontend' | 'backend'; maxMessageBytes: number; startup?: boolean },
  ) {
    this.framer = new MessageFramer(options);
    this.attach(socket);
  }

  private attach(socket: Socket): void {
    this.socket = socket;
    socket.on('data', this.onData);
    socket.on('close', this.onClose);
    socket.on('error', this.onError);
  }

  /** Stops reading from the current socket (e.g. before a TLS upgrade wraps it). */
  detach(): Buffer {
    this.socket.off('data', this.onData);
    this.socket.off('close', this.onClose);
    this.socket.off('error', this.onError);
    // Flowing again for whoever reads next (it attaches its listener in the same tick).
    this.resumeReading();
    return this.framer.drain();
  }

  private resumeReading(): void {
    if (!this.paused) return;
    this.paused = false;
    this.socket.resume();
  }

  /** Reads from another socket (the TLS socket wrapping the previous one). */
  reattach(socket: Socket): void {
    this.failure = undefined;
    this.attach(socket);
  }

  private fail(error: Error): void {
    this.failure ??= error;
    this.wake();
  }

  private wake(): void {
    const waiter = this.waiter;
    this.waiter = undefined;
    waiter?.resolve();
  }

  /** The next frame; rejects on close, socket error, a protocol error, or `signal`. */
  async next(signal?: AbortSignal): Promise<Frame> {
    for (;;) {
      const frame = this.framer.next();
      if (frame) return frame;
      if (this.failure) throw this.failure;
      signal?.throwIfAborted();
      this.resumeReading();
      await new Promise<void>((resolve, reject) => {
        this.waiter = { resolve, reject };
        const onAbort = (): void => reject(signal?.reason);
        signal?.addEventListener('abort', onAbort, { once: true });
      });
    }
  }

  /** One raw byte outside message framing (the SSLRequest answer). */
  async byte(signal?: AbortSignal): Promise<number> {
    for (;;) {
      if (this.framer.bufferedBytes > 0) {
        const all = this.framer.drain();
        const first = all[0]!;
        if (all.length > 1) this.framer.push(all.subarray(1));
        return first;
      }
      if (this.failure) throw this.failure;
      signal?.throwIfAborted();
      this.resumeReading();
      await new Promise<void>((resolve, reject) => {
        this.waiter = { resolve, reject };
        signal?.addEventListener('abort', () => reject(signal.reason), { once: true });
      });
    }
  }
}
