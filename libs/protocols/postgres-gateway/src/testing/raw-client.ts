// Test-only: a minimal PostgreSQL client on a raw socket, to send exactly the messages a test
// needs (pipelined batches, malformed frames) and to see every byte that comes back.
import { connect, type Socket } from 'node:net';
import {
  BackendType,
  MessageFramer,
  decodeDataRow,
  decodeNoticeFields,
  decodeReadyForQuery,
  encodeBind,
  encodeDescribe,
  encodeExecute,
  encodeParse,
  encodePasswordMessage,
  encodeQuery,
  encodeStartupMessage,
  encodeSync,
  encodeTerminate,
  type Frame,
} from '@custodian/postgres-wire';

export interface ReplySummary {
  readonly frames: readonly Frame[];
  readonly errors: readonly Map<string, string>[];
  readonly rows: readonly (string | null)[][];
  readonly types: readonly string[];
  readonly status: string | undefined;
}

export class RawClient {
  readonly received: Buffer[] = [];
  private readonly framer = new MessageFramer({ side: 'backend', maxMessageBytes: 1 << 26 });
  private readonly frames: Frame[] = [];
  private waiter: (() => void) | undefined;
  closed = false;

  private constructor(readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.received.push(chunk);
      this.framer.push(chunk);
      for (let frame = this.framer.next(); frame; frame = this.framer.next()) this.frames.push(frame);
      this.waiter?.();
    });
    socket.on('close', () => {
      this.closed = true;
      this.waiter?.();
    });
    socket.on('error', () => undefined);
  }

  static async connect(port: number): Promise<RawClient> {
    const socket = connect(port, '127.0.0.1');
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    return new RawClient(socket);
  }

  /** Connects and logs in with the token; resolves once the server is ready for queries. */
  static async login(port: number, token: string, database = 'orders-prod', user = 'agent-7', parameters: Record<string, string> = {}): Promise<RawClient> {
    const client = await RawClient.connect(port);
    client.send(encodeStartupMessage({ user, database, ...parameters }));
    const auth = await client.next();
    if (auth.type !== BackendType.Authentication) throw new Error(`expected an authentication request, got ${String.fromCharCode(auth.type)}`);
    client.send(encodePasswordMessage(token));
    const reply = await client.untilReady();
    if (reply.errors.length > 0) throw new Error(`login failed: ${reply.errors[0]!.get('M')}`);
    return client;
  }

  send(...buffers: Buffer[]): void {
    this.socket.write(Buffer.concat(buffers));
  }

  async next(timeoutMs = 15_000): Promise<Frame> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const frame = this.frames.shift();
      if (frame) return frame;
      if (this.closed) throw new Error('connection closed');
      if (Date.now() > deadline) throw new Error('timed out waiting for a message');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.max(1, deadline - Date.now()));
        this.waiter = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.waiter = undefined;
    }
  }

  /** Collects messages up to the `count`-th ReadyForQuery (or the connection's end). */
  async untilReady(count = 1, timeoutMs = 15_000): Promise<ReplySummary> {
    const frames: Frame[] = [];
    let ready = 0;
    let status: string | undefined;
    while (ready < count) {
      let frame: Frame;
      try {
        frame = await this.next(timeoutMs);
      } catch (error) {
        if (this.closed) break;
        throw error;
      }
      frames.push(frame);
      if (frame.type === BackendType.ReadyForQuery) {
        ready += 1;
        status = decodeReadyForQuery(frame);
      }
    }
    return summarize(frames, status);
  }

  async simple(sql: string): Promise<ReplySummary> {
    this.send(encodeQuery(sql));
    return this.untilReady();
  }

  /** Parse/Bind/Describe/Execute/Sync of one statement (unnamed), text parameters. */
  async extended(sql: string, parameters: readonly (string | null)[] = []): Promise<ReplySummary> {
    this.send(...extendedMessages(sql, parameters), encodeSync());
    return this.untilReady();
  }

  async close(): Promise<void> {
    if (!this.closed) this.socket.end(encodeTerminate());
    await new Promise<void>((resolve) => (this.closed ? resolve() : this.socket.once('close', () => resolve())));
  }
}

/** Parse, Bind, Describe portal, Execute for one statement (no Sync). */
export function extendedMessages(sql: string, parameters: readonly (string | null)[] = [], statement = ''): Buffer[] {
  return [
    encodeParse({ statement, query: sql, parameterTypes: [] }),
    encodeBind({ portal: '', statement, parameterFormats: [], parameters: parameters.map((p) => (p === null ? null : Buffer.from(p))), resultFormats: [] }),
    encodeDescribe('P', ''),
    encodeExecute('', 0),
  ];
}

export function summarize(frames: readonly Frame[], status?: string): ReplySummary {
  return {
    frames,
    errors: frames.filter((f) => f.type === BackendType.ErrorResponse).map((f) => decodeNoticeFields(f)),
    rows: frames.filter((f) => f.type === BackendType.DataRow).map((f) => decodeDataRow(f).map((v) => (v === null ? null : v.toString('utf8')))),
    types: frames.map((f) => String.fromCharCode(f.type)),
    status,
  };
}
