// One client TCP connection: the sessions it carries and a tap on every byte the server writes
// to it, so each session records exactly what its client received (the custody statement's digest
// covers those bytes). A session is opened by the first authenticated request for its connection
// and identity. HTTP/1.1: one session at a time (requests are served in order); a request for
// another connection or identity ends it and opens the next. HTTP/2: a session per (connection,
// identity), side by side: streams of one never wait for another's.
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
/** Tokens remembered per session (a refreshed token of the same agent joins its session). */
const TOKENS_KEPT = 8;
/** HTTP/1.1 bytes are on channel 0; an HTTP/2 stream's on its id. */
const HTTP1_CHANNEL = 0;

/** One session on this connection and what it holds. */
interface LinkSession {
  readonly session: PipelineSession;
  /** `protocol|connection`. */
  readonly key: string;
  /** Token digests accepted for it, with their expiry (ms). */
  readonly tokens: Map<string, number>;
  /** Requests holding it (sessionFor → release): it is not ended under them. */
  users: number;
  readonly idleWaiters: (() => void)[];
  /** The last credential injection recorded (ref, method, secret digest): recorded again only when it changes. */
  injected: string | undefined;
}

export class ClientLink {
  private readonly sessions: LinkSession[] = [];
  /** HTTP/2: the session each stream (channel) is served in, from sessionFor until the stream closes. */
  private readonly streamSessions = new Map<number, LinkSession>();
  private preSession: Buffer[] = [];
  private preSessionBytes = 0;
  private opening: Promise<unknown> | undefined;
  /** Client-bound bytes not yet recorded, per session and channel. */
  private readonly pending = new Map<LinkSession, Map<number, Buffer[]>>();
  private pendingBytes = 0;
  private flushTimer: NodeJS.Timeout | undefined;
  /** Serialises HTTP/1.1 requests on this socket (pipelined requests run one after another). */
  queue: Promise<void> = Promise.resolve();
  /** Serialises session openings (HTTP/2 streams arrive concurrently); never waits for a stream to finish. */
  private sessionLock: Promise<unknown> = Promise.resolve();
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
        this.clientBoundChunk(chunk, rest[0], HTTP1_CHANNEL);
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
    stream.once('close', () => {
      // Its bytes go to its session before the stream is forgotten.
      if (this.streamSessions.has(channel)) this.flushClientBound();
      this.streamSessions.delete(channel);
    });
  }

  private clientBoundChunk(chunk: unknown, encoding: unknown, channel: number): void {
    if (typeof chunk === 'string') this.clientBound(Buffer.from(chunk, typeof encoding === 'string' ? (encoding as BufferEncoding) : 'utf8'), channel);
    else if (chunk instanceof Uint8Array) this.clientBound(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength), channel);
  }

  get clientAddress(): string {
    return `${this.socket.remoteAddress ?? 'unknown'}:${this.socket.remotePort ?? 0}`;
  }

  /** The session a channel's bytes belong to: HTTP/1.1 has one at a time; an h2 stream the one it was served in. */
  private sessionOf(channel: number): LinkSession | undefined {
    return this.version === 'http/2' ? this.streamSessions.get(channel) : this.sessions[0];
  }

  private clientBound(bytes: Buffer, channel: number): void {
    if (bytes.length === 0) return;
    const owner = this.sessionOf(channel);
    if (owner) {
      let byChannel = this.pending.get(owner);
      if (!byChannel) this.pending.set(owner, (byChannel = new Map()));
      // Copied: Node may reuse a written buffer once the write completes.
      const pending = byChannel.get(channel);
      if (pending) pending.push(Buffer.from(bytes));
      else byChannel.set(channel, [Buffer.from(bytes)]);
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
   * The session for this request's connection and token: one this link holds when both match
   * (the token re-verified once it expires), else a new one (authenticate → openSession). HTTP/2:
   * `channel` is the request's stream id, whose response bytes are then recorded in that session.
   * Throws SessionRefusal. Pair with `release(session)`.
   */
  async sessionFor(protocol: Protocol, connection: string, connectionExists: boolean, token: string, presentedAs: CredentialPresentation, channel = HTTP1_CHANNEL): Promise<PipelineSession> {
    const digest = createHash('sha256').update(token).digest('base64url');
    const key = `${protocol}|${connection}`;
    let held = this.heldFor(key, digest);
    if (!held) {
      // Concurrent HTTP/2 streams: one opens a session at a time; the rest then find it.
      const turn = this.sessionLock.then(() => this.openFor(protocol, key, connection, connectionExists, token, digest, presentedAs));
      this.sessionLock = turn.catch(() => undefined);
      held = await turn;
    }
    held.users++;
    if (this.version === 'http/2') this.streamSessions.set(channel, held);
    return held.session;
  }

  private heldFor(key: string, digest: string): LinkSession | undefined {
    const now = Date.now();
    for (const held of this.sessions) {
      if (held.key !== key) continue;
      const expiresAt = held.tokens.get(digest);
      if (expiresAt !== undefined && now < expiresAt) return held;
    }
    return undefined;
  }

  /** The request that got `session` from sessionFor is done with it. */
  release(session: PipelineSession): void {
    const held = this.sessions.find((candidate) => candidate.session === session);
    if (!held) return;
    held.users = Math.max(0, held.users - 1);
    if (held.users === 0) for (const wake of held.idleWaiters.splice(0)) wake();
  }

  /**
   * Records the injection of the held credential into this session's upstream request, once per
   * session while the credential (reference, method, value) stays the same: each HTTP request
   * carries it, but an event per request would only repeat the first.
   */
  credentialInjected(session: PipelineSession, credentialRef: string, method: Parameters<PipelineSession['credentialInjected']>[1], secret: string): void {
    const held = this.sessions.find((candidate) => candidate.session === session);
    const injected = `${credentialRef}\u0000${method}\u0000${createHash('sha256').update(secret).digest('base64url')}`;
    if (held?.injected === injected) return;
    if (held) held.injected = injected;
    session.credentialInjected(credentialRef, method, secret);
  }

  private async openFor(protocol: Protocol, key: string, connection: string, connectionExists: boolean, token: string, digest: string, presentedAs: CredentialPresentation): Promise<LinkSession> {
    const found = this.heldFor(key, digest);
    if (found) return found;
    const client = await this.pipeline.authenticate({ protocol, presentedAs, connection, connectionExists, token, clientAddress: this.clientAddress, signal: this.abort.signal });
    const expiresAt = client.verified.expiresAt.getTime();
    const same = this.sessions.find((held) => held.key === key && held.session.identity.subject === client.identity.subject && held.session.identity.issuer === client.identity.issuer);
    if (same) {
      // The same agent with a refreshed (or another) token: its session goes on.
      if (same.tokens.size >= TOKENS_KEPT) same.tokens.delete(same.tokens.keys().next().value as string);
      same.tokens.set(digest, expiresAt);
      return same;
    }
    if (this.version === 'http/1.1') {
      // Another connection or identity: the current session ends (requests on this socket are served in order, so none holds it).
      for (const held of [...this.sessions]) {
        if (held.users > 0) await new Promise<void>((resolve) => held.idleWaiters.push(resolve));
        await this.endOne(held, 'client-closed');
      }
    }
    const opening = this.pipeline.openSession(client, { address: this.clientAddress, application: 'http', tls: 'encrypted' in this.socket });
    this.opening = opening;
    const session = await opening.finally(() => {
      if (this.opening === opening) this.opening = undefined;
    });
    const held: LinkSession = { session, key, tokens: new Map([[digest, expiresAt]]), users: 0, idleWaiters: [], injected: undefined };
    this.sessions.push(held);
    const pending = this.preSession;
    this.preSession = [];
    this.preSessionBytes = 0;
    for (const bytes of pending) session.recordFrame('upstream-to-client', 'http-response', bytes);
    if (this.closed) await this.endOne(held, 'client-closed');
    return held;
  }

  /** Records the client-bound bytes written so far, one frame per session and channel (before any other frame, to keep order). */
  flushClientBound(): void {
    clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    if (this.pendingBytes === 0) return;
    for (const [held, byChannel] of this.pending) {
      for (const [channel, chunks] of byChannel) {
        const bytes = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
        if (this.version === 'http/2') held.session.recordFrame('upstream-to-client', 'http-response', bytes, { channel });
        else held.session.recordFrame('upstream-to-client', 'http-response', bytes);
      }
    }
    this.pending.clear();
    this.pendingBytes = 0;
  }

  private async endOne(held: LinkSession, reason: 'client-closed' | 'error' | 'shutdown'): Promise<void> {
    this.flushClientBound();
    const index = this.sessions.indexOf(held);
    if (index < 0) return;
    this.sessions.splice(index, 1);
    for (const [channel, owner] of this.streamSessions) if (owner === held) this.streamSessions.delete(channel);
    await held.session.close(reason);
  }

  /** Ends every session this link holds. */
  async endSession(reason: 'client-closed' | 'error' | 'shutdown'): Promise<void> {
    const opening = this.opening;
    if (opening) await opening.catch(() => undefined);
    this.flushClientBound();
    await Promise.all([...this.sessions].map((held) => this.endOne(held, reason)));
  }
}
