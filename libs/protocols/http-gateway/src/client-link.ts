// One client TCP connection (HTTP/1.1 keep-alive): the session it carries and a tap on every byte
// the server writes to it, so the session records exactly what the client received (the custody
// statement's digest covers those bytes). A session is opened by the first authenticated request;
// a request for another connection or identity on the same socket ends it and opens the next.
import { createHash } from 'node:crypto';
import type { OutgoingHttpHeaders, ServerHttp2Stream, ServerStreamResponseOptions } from 'node:http2';
import type { Socket } from 'node:net';
import type { Protocol } from '@custodian/event-contracts';
import type { AuthenticationRequest, PipelineSession, SessionPipeline } from '@custodian/session-pipeline';

type CredentialPresentation = AuthenticationRequest['presentedAs'];

/** Client-bound bytes kept from before the session opened (401s, 404s), recorded once it does. */
const MAX_PRE_SESSION_BYTES = 1024 * 1024;
/**
 * Client-bound writes are coalesced into one frame per this many bytes or this many ms: Node's
 * HTTP server writes a chunk as three socket writes (size line, data, CRLF) and a Messages stream
 * is one chunk per delta, so a frame per write meant thousands of events per reply. The client
 * gets every byte at once; only the recording waits (its offset is the flush time).
 */
const COALESCE_BYTES = 16 * 1024;
const COALESCE_MS = 20;

export class ClientLink {
  session: PipelineSession | undefined;
  private sessionKey: string | undefined;
  private tokenDigest: string | undefined;
  private tokenExpiresAt = 0;
  private preSession: Buffer[] = [];
  private preSessionBytes = 0;
  private opening: Promise<PipelineSession> | undefined;
  /** Client-bound bytes not yet recorded, per channel (0: HTTP/1.1; an HTTP/2 stream's id). */
  private readonly pending = new Map<number, Buffer[]>();
  private pendingBytes = 0;
  private flushTimer: NodeJS.Timeout | undefined;
  /** Serialises HTTP/1.1 requests on this socket (pipelined requests run one after another). */
  queue: Promise<void> = Promise.resolve();
  /** Serialises session changes (HTTP/2 streams arrive concurrently). */
  private sessionLock: Promise<unknown> = Promise.resolve();
  /** Requests holding the current session (sessionFor → release): it is not ended under them. */
  private users = 0;
  private readonly idleWaiters: (() => void)[] = [];
  readonly abort = new AbortController();
  closed = false;

  constructor(
    readonly socket: Socket,
    private readonly pipeline: SessionPipeline,
    /** `http/2`: frames bypass `socket.write`, so each response stream is tapped instead (`tapStream`). */
    readonly version: 'http/1.1' | 'http/2' = 'http/1.1',
  ) {
    if (version === 'http/1.1') {
      const write = socket.write.bind(socket) as (...args: unknown[]) => boolean;
      // Every byte Node's HTTP server sends this client passes here (heads, chunk framing, bodies).
      socket.write = ((chunk: unknown, ...rest: unknown[]): boolean => {
        this.clientBoundChunk(chunk, rest[0]);
        return write(chunk, ...rest);
      }) as Socket['write'];
    }
    socket.once('close', () => {
      this.closed = true;
      this.abort.abort();
      void this.endSession('client-closed');
    });
  }

  /**
   * HTTP/2: records what this response stream sends the client, as the HTTP message it carries
   * (a status line and header lines as `HTTP/2 <status>`, then the body bytes), since HPACK and
   * frame bytes never pass through JavaScript.
   */
  tapStream(stream: ServerHttp2Stream): void {
    // Streams run concurrently: each one's bytes are recorded on its own channel (the stream id).
    const channel = stream.id ?? 0;
    const respond = stream.respond.bind(stream);
    stream.respond = ((headers?: OutgoingHttpHeaders, options?: ServerStreamResponseOptions): void => {
      const lines = [`HTTP/2 ${String(headers?.[':status'] ?? 200)}`];
      for (const [name, value] of Object.entries(headers ?? {})) if (!name.startsWith(':') && value !== undefined) lines.push(`${name}: ${Array.isArray(value) ? value.join(', ') : String(value)}`);
      this.clientBound(Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1'), channel);
      respond(headers, options);
    }) as ServerHttp2Stream['respond'];
    const write = stream.write.bind(stream) as (...args: unknown[]) => boolean;
    stream.write = ((chunk: unknown, ...rest: unknown[]): boolean => {
      this.clientBoundChunk(chunk, rest[0], channel);
      return write(chunk, ...rest);
    }) as ServerHttp2Stream['write'];
    const end = stream.end.bind(stream) as (...args: unknown[]) => ServerHttp2Stream;
    stream.end = ((chunk?: unknown, ...rest: unknown[]): ServerHttp2Stream => {
      if (typeof chunk !== 'function') this.clientBoundChunk(chunk, rest[0], channel);
      return end(chunk, ...rest);
    }) as ServerHttp2Stream['end'];
  }

  private clientBoundChunk(chunk: unknown, encoding: unknown, channel = 0): void {
    if (typeof chunk === 'string') this.clientBound(Buffer.from(chunk, typeof encoding === 'string' ? (encoding as BufferEncoding) : 'utf8'), channel);
    else if (chunk instanceof Uint8Array) this.clientBound(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength), channel);
  }

  get clientAddress(): string {
    return `${this.socket.remoteAddress ?? 'unknown'}:${this.socket.remotePort ?? 0}`;
  }

  private clientBound(bytes: Buffer, channel = 0): void {
    if (bytes.length === 0) return;
    if (this.session) {
      // Copied: Node may reuse a written buffer once the write completes.
      const pending = this.pending.get(channel);
      if (pending) pending.push(Buffer.from(bytes));
      else this.pending.set(channel, [Buffer.from(bytes)]);
      this.pendingBytes += bytes.length;
      if (this.pendingBytes >= COALESCE_BYTES) this.flushClientBound();
      else this.flushTimer ??= setTimeout(() => this.flushClientBound(), COALESCE_MS);
      return;
    }
    if (this.preSessionBytes + bytes.length <= MAX_PRE_SESSION_BYTES) {
      this.preSession.push(Buffer.from(bytes));
      this.preSessionBytes += bytes.length;
    }
  }

  /**
   * The session for this request's connection and token: the current one when both match (the
   * token re-verified once it expires), else a new one (authenticate → openSession). Throws
   * SessionRefusal.
   */
  async sessionFor(protocol: Protocol, connection: string, connectionExists: boolean, token: string, presentedAs: CredentialPresentation): Promise<PipelineSession> {
    const digest = createHash('sha256').update(token).digest('base64url');
    const key = `${protocol}|${connection}`;
    if (this.session && this.sessionKey === key && this.tokenDigest === digest && Date.now() < this.tokenExpiresAt) {
      this.users++;
      return this.session;
    }
    // Concurrent HTTP/2 streams: one opens (or changes) the session at a time; the rest then find it.
    const turn = this.sessionLock.then(() => this.changeSession(protocol, key, connection, connectionExists, token, digest, presentedAs));
    this.sessionLock = turn.catch(() => undefined);
    const session = await turn;
    this.users++;
    return session;
  }

  /** The request that got a session from sessionFor is done with it. */
  release(): void {
    this.users = Math.max(0, this.users - 1);
    if (this.users === 0) for (const wake of this.idleWaiters.splice(0)) wake();
  }

  private async changeSession(protocol: Protocol, key: string, connection: string, connectionExists: boolean, token: string, digest: string, presentedAs: CredentialPresentation): Promise<PipelineSession> {
    if (this.session && this.sessionKey === key && this.tokenDigest === digest && Date.now() < this.tokenExpiresAt) return this.session;
    const client = await this.pipeline.authenticate({ protocol, presentedAs, connection, connectionExists, token, clientAddress: this.clientAddress, signal: this.abort.signal });
    if (this.session && this.sessionKey === key && this.session.identity.subject === client.identity.subject && this.session.identity.issuer === client.identity.issuer) {
      // The same agent with a refreshed token: the session goes on.
      this.tokenDigest = digest;
      this.tokenExpiresAt = client.verified.expiresAt.getTime();
      return this.session;
    }
    // Another connection or identity: the current session ends once no request holds it (HTTP/2 streams in flight finish first).
    if (this.session && this.users > 0) await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
    await this.endSession('client-closed');
    this.opening = this.pipeline.openSession(client, { address: this.clientAddress, application: 'http', tls: 'encrypted' in this.socket });
    const session = await this.opening;
    this.opening = undefined;
    this.session = session;
    this.sessionKey = key;
    this.tokenDigest = digest;
    this.tokenExpiresAt = client.verified.expiresAt.getTime();
    const pending = this.preSession;
    this.preSession = [];
    this.preSessionBytes = 0;
    for (const bytes of pending) session.recordFrame('upstream-to-client', 'http-response', bytes);
    if (this.closed) await this.endSession('client-closed');
    return session;
  }

  /** Records the client-bound bytes written so far as one frame (before any other frame, to keep order). */
  flushClientBound(): void {
    clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    if (this.pendingBytes === 0 || !this.session) return;
    for (const [channel, chunks] of this.pending) {
      const bytes = Buffer.concat(chunks);
      if (this.version === 'http/2') this.session.recordFrame('upstream-to-client', 'http-response', bytes, { channel });
      else this.session.recordFrame('upstream-to-client', 'http-response', bytes);
    }
    this.pending.clear();
    this.pendingBytes = 0;
  }

  async endSession(reason: 'client-closed' | 'error' | 'shutdown'): Promise<void> {
    const opening = this.opening;
    if (opening) await opening.catch(() => undefined);
    this.flushClientBound();
    const session = this.session;
    this.session = undefined;
    this.sessionKey = undefined;
    this.tokenDigest = undefined;
    if (session) await session.close(reason);
  }
}
