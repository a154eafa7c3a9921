// A stdio MCP server as a connection: the gateway runs the configured command, one child process
// per gateway session, and speaks newline-delimited JSON-RPC on its stdin/stdout (MCP stdio
// transport). Both eras: a session-era client's child gets `initialize` first (the client's own);
// a stateless-era (2026-07-28) client's child gets its requests as they are (each carries its
// `_meta`), when the server answers `server/discover` with 2026-07-28 (probed once, in a child of
// its own, and remembered). A request's reply is the stream of messages the child writes until the response
// with the request's id; messages that answer nothing (notifications, the server's own requests)
// go to the session's GET stream when one is open, else to the oldest pending request.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { McpGatewayError } from './gateway-errors.js';
import { CLIENT_CAPABILITIES_META_KEY, CLIENT_INFO_META_KEY, LATEST_MODERN_VERSION, MODERN_PROTOCOL_VERSIONS, PROTOCOL_VERSION_META_KEY } from './protocol-eras.js';
import type { UpstreamEra, UpstreamReply, UpstreamState } from './upstream-client.js';

export interface McpStdioTarget {
  /** Program to run (no shell). */
  readonly command: string;
  readonly args?: readonly string[];
  /** The child's whole environment (nothing of the gateway's is inherited except PATH). */
  readonly env?: Readonly<Record<string, string>>;
  /**
   * A secret the server needs (e.g. its API token), put in the child's environment variable `env`;
   * read at each spawn, named by `ref` in events, and scanned for in every client-bound byte.
   */
  readonly credential?: { readonly env: string; readonly ref: string; readonly read: () => Promise<string> | string };
  readonly cwd?: string;
  /** Deadline for each response to start (default 30 s). */
  readonly timeoutMs?: number;
}

/** A queue of messages one consumer reads as an async iterable. */
class MessageQueue implements AsyncIterable<string> {
  private readonly items: string[] = [];
  private waiting: ((result: IteratorResult<string>) => void) | undefined;
  private failure: Error | undefined;
  done = false;

  push(item: string): void {
    if (this.done) return;
    if (this.waiting) {
      const resolve = this.waiting;
      this.waiting = undefined;
      resolve({ value: item, done: false });
    } else this.items.push(item);
  }

  end(error?: Error): void {
    if (this.done) return;
    this.done = true;
    this.failure = error;
    if (this.waiting && this.items.length === 0) {
      const resolve = this.waiting;
      this.waiting = undefined;
      resolve({ value: undefined, done: true });
    }
  }

  [Symbol.asyncIterator](): AsyncIterator<string> {
    return {
      next: () => {
        const item = this.items.shift();
        if (item !== undefined) return Promise.resolve({ value: item, done: false });
        if (this.done) return this.failure ? Promise.reject(this.failure) : Promise.resolve({ value: undefined, done: true });
        return new Promise((resolve) => (this.waiting = resolve));
      },
      return: () => {
        this.end();
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }
}

class StdioChild {
  private readonly child: ChildProcessWithoutNullStreams;
  private buffer = '';
  private readonly pending = new Map<string, MessageQueue>();
  stream: MessageQueue | undefined;
  exited = false;

  constructor(target: McpStdioTarget, private readonly maxMessageBytes: number, secret: string | undefined) {
    this.child = spawn(target.command, [...(target.args ?? [])], {
      env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', ...(target.env ?? {}), ...(target.credential && secret !== undefined ? { [target.credential.env]: secret } : {}) },
      ...(target.cwd ? { cwd: target.cwd } : {}),
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    this.child.stdout.setEncoding('utf8');
    this.child.stdout.on('data', (chunk: string) => this.data(chunk));
    // stderr is the server's log: drained, not kept (it is not part of the protocol).
    this.child.stderr.resume();
    this.child.on('error', () => this.gone());
    this.child.on('exit', () => this.gone());
    this.child.stdin.on('error', () => undefined);
  }

  private gone(): void {
    this.exited = true;
    const error = new McpGatewayError('UPSTREAM_SESSION_EXPIRED', 'the stdio MCP server exited');
    for (const queue of this.pending.values()) queue.end(error);
    this.pending.clear();
    this.stream?.end();
  }

  private data(chunk: string): void {
    this.buffer += chunk;
    for (;;) {
      const newline = this.buffer.indexOf('\n');
      if (newline === -1) break;
      const line = this.buffer.slice(0, newline).replace(/\r$/, '');
      this.buffer = this.buffer.slice(newline + 1);
      if (line.trim() !== '') this.message(line);
    }
    if (this.buffer.length > this.maxMessageBytes) {
      // A message beyond the limit: the server is unusable for this session (fail closed).
      this.buffer = '';
      this.kill();
    }
  }

  private message(line: string): void {
    let id: unknown;
    let isResponse = false;
    try {
      const parsed = JSON.parse(line) as Record<string, unknown>;
      isResponse = parsed['method'] === undefined && ('result' in parsed || 'error' in parsed);
      id = parsed['id'];
    } catch {
      // Not JSON: passed on to be refused by the masking step (it withholds what is not JSON).
    }
    const key = JSON.stringify(id ?? null);
    const queue = isResponse ? this.pending.get(key) : undefined;
    if (queue) {
      this.pending.delete(key);
      queue.push(line);
      queue.end();
      return;
    }
    const target = this.stream ?? this.pending.values().next().value;
    target?.push(line);
  }

  request(id: unknown, message: string): MessageQueue {
    const queue = new MessageQueue();
    this.pending.set(JSON.stringify(id), queue);
    this.write(message);
    return queue;
  }

  write(message: string): void {
    if (this.exited) throw new McpGatewayError('UPSTREAM_SESSION_EXPIRED', 'the stdio MCP server exited');
    // One message per line: JSON.stringify never leaves a raw newline inside.
    this.child.stdin.write(`${JSON.stringify(JSON.parse(message))}\n`);
  }

  kill(): void {
    if (this.exited) return;
    this.child.stdin.end();
    this.child.kill('SIGTERM');
    setTimeout(() => {
      if (!this.exited) this.child.kill('SIGKILL');
    }, 2_000).unref();
  }
}

export class McpStdioUpstream {
  private readonly children = new WeakMap<UpstreamState, Promise<StdioChild>>();
  /** The probe's verdict (kept: the command does not change); a probe without an answer is no verdict. */
  private eraProbe: { readonly at: number; readonly era: Promise<UpstreamEra> } | undefined;
  private discovered: Record<string, unknown> | undefined;
  /** The probe's child when the server speaks 2026-07-28: handed to the first stateless session (one cold start, not two). */
  private spare: { readonly child: Promise<StdioChild>; readonly timer: NodeJS.Timeout } | undefined;

  constructor(
    private readonly target: McpStdioTarget,
    private readonly maxMessageBytes: number,
  ) {}

  get credentialRef(): string | undefined {
    return this.target.credential?.ref;
  }

  async readCredential(): Promise<string | undefined> {
    const credential = this.target.credential;
    return credential ? await credential.read() : undefined;
  }

  discovery(): Record<string, unknown> | undefined {
    return this.discovered;
  }

  /**
   * Whether the server speaks 2026-07-28: asked with `server/discover` in a child of its own, which
   * is then stopped. A server of the session era answers an error (or nothing) instead.
   */
  era(): Promise<UpstreamEra> {
    const cached = this.eraProbe;
    if (cached) return cached.era;
    const era = this.probeEra();
    const probe = { at: Date.now(), era };
    this.eraProbe = probe;
    era.catch(() => {
      // No verdict (the server did not answer in time): asked again by the next request.
      if (this.eraProbe === probe) this.eraProbe = undefined;
    });
    return era;
  }

  private async probeEra(): Promise<UpstreamEra> {
    const state: UpstreamState = { sessionId: undefined, protocolVersion: LATEST_MODERN_VERSION };
    let keep = false;
    const body = JSON.stringify({
      jsonrpc: '2.0',
      id: 'custodian-era-probe',
      method: 'server/discover',
      params: { _meta: { [PROTOCOL_VERSION_META_KEY]: LATEST_MODERN_VERSION, [CLIENT_CAPABILITIES_META_KEY]: {}, [CLIENT_INFO_META_KEY]: { name: 'custodian-mcp-gateway', version: '1' } } },
    });
    try {
      const reply = await this.post(state, body, AbortSignal.timeout(this.target.timeoutMs ?? 30_000));
      if (reply.kind !== 'messages') return 'session';
      let answered = false;
      for await (const text of reply.messages) {
        answered = true;
        let parsed: unknown;
        try {
          parsed = JSON.parse(text);
        } catch {
          continue;
        }
        const result = typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed) ? (parsed as Record<string, unknown>)['result'] : undefined;
        const versions = typeof result === 'object' && result !== null ? (result as Record<string, unknown>)['supportedVersions'] : undefined;
        if (Array.isArray(versions) && versions.some((v) => typeof v === 'string' && MODERN_PROTOCOL_VERSIONS.includes(v))) {
          this.discovered = result as Record<string, unknown>;
          keep = true;
          return 'stateless';
        }
      }
      // An answer without 2026-07-28 (an error: a session-era server) is a verdict; silence is not (a slow start).
      if (!answered) throw new McpGatewayError('UPSTREAM_UNAVAILABLE', 'the stdio MCP server did not answer server/discover in time');
      return 'session';
    } catch (error) {
      // The child exited on the unknown request: a server of the session era.
      if (error instanceof McpGatewayError && error.code === 'UPSTREAM_SESSION_EXPIRED') return 'session';
      throw error;
    } finally {
      const child = this.children.get(state);
      if (keep && child && !this.spare) {
        this.children.delete(state);
        // Unused for a minute: stopped.
        const timer = setTimeout(() => {
          if (this.spare?.child !== child) return;
          this.spare = undefined;
          void child.then((c) => c.kill(), () => undefined);
        }, 60_000);
        timer.unref();
        this.spare = { child, timer };
      } else await this.terminate(state);
    }
  }

  /** The session's child process, started on first use (concurrent first calls share one). */
  private child(state: UpstreamState): Promise<StdioChild> {
    let child = this.children.get(state);
    // Only a stateless session takes the probe's child: a session-era `initialize` after server/discover could be refused.
    if (!child && this.spare && state.protocolVersion !== undefined && MODERN_PROTOCOL_VERSIONS.includes(state.protocolVersion)) {
      child = this.spare.child;
      clearTimeout(this.spare.timer);
      this.spare = undefined;
      this.children.set(state, child);
    }
    if (!child) {
      child = this.readCredential().then((secret) => new StdioChild(this.target, this.maxMessageBytes, secret));
      this.children.set(state, child);
    }
    return child;
  }

  async post(state: UpstreamState, message: string, signal?: AbortSignal): Promise<UpstreamReply> {
    const child = await this.child(state);
    let parsed: Record<string, unknown>;
    try {
      parsed = JSON.parse(message) as Record<string, unknown>;
    } catch {
      throw new McpGatewayError('MESSAGE_MALFORMED', 'not JSON');
    }
    if (parsed['method'] === undefined || parsed['id'] === undefined) {
      child.write(message);
      return { kind: 'accepted', status: 202 };
    }
    const queue = child.request(parsed['id'], message);
    signal?.addEventListener('abort', () => queue.end(), { once: true });
    const timer = setTimeout(() => queue.end(new McpGatewayError('UPSTREAM_UNAVAILABLE', 'the stdio MCP server did not answer in time')), this.target.timeoutMs ?? 30_000);
    timer.unref();
    return {
      kind: 'messages',
      status: 200,
      stream: true,
      sessionId: undefined,
      messages: (async function* () {
        try {
          for await (const item of queue) {
            clearTimeout(timer);
            yield item;
          }
        } finally {
          clearTimeout(timer);
        }
      })(),
    };
  }

  async openStream(state: UpstreamState, signal?: AbortSignal): Promise<UpstreamReply> {
    const child = await this.child(state);
    const queue = new MessageQueue();
    child.stream?.end();
    child.stream = queue;
    signal?.addEventListener(
      'abort',
      () => {
        if (child.stream === queue) child.stream = undefined;
        queue.end();
      },
      { once: true },
    );
    return { kind: 'messages', status: 200, stream: true, sessionId: undefined, messages: queue };
  }

  async terminate(state: UpstreamState): Promise<void> {
    const child = this.children.get(state);
    this.children.delete(state);
    (await child?.catch(() => undefined))?.kill();
  }

  /** Stops the probe's child if no session took it (sessions' children end with their sessions). */
  async close(): Promise<void> {
    const spare = this.spare;
    this.spare = undefined;
    if (!spare) return;
    clearTimeout(spare.timer);
    (await spare.child.catch(() => undefined))?.kill();
  }
}
