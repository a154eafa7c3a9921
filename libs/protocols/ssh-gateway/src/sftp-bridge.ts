// SFTP terminated in the gateway: every request the client sends is replayed upstream through the
// gateway's own SFTP client, so each operation is seen with its path. Operations that read or
// change files are decided by the shell policy language as the equivalent command (SFTP remove is
// `rm`, so a rule that blocks `rm` blocks it here too; `shell.arguments` path globs match the
// path), issued as a command (block → PERMISSION_DENIED naming the rule; approval → the request
// waits), and file data both ways is recorded as frames. Each file handle's transferred bytes are
// hashed (SHA-256) and reported when it closes. Metadata lookups (stat, realpath, readlink) are
// recorded, not decided.
import { createHash, type Hash } from 'node:crypto';
import { posix } from 'node:path';
import type { GatewayLogger } from '@custodian/gateway-kit';
import type { PipelineSession } from '@custodian/session-pipeline';
import ssh2 from 'ssh2';
import { recordWhole } from './frame-recording.js';
import { announceSftpLimits, LIMITS_EXTENSION, replySftpLimits } from './sftp-limits.js';
import { decideFileOperation, overLimitMessage, recordOverLimit, shellQuote, transferLimitOf, type TransferLimit } from './file-operation.js';
import { lengthPreservingProfile, MaskedFileReader, MaskedReadRefused } from './masked-file-reader.js';

const { STATUS_CODE, OPEN_MODE } = ssh2.utils.sftp;

/** Open handles per SFTP channel (OpenSSH's sftp-server allows 512). */
export const MAX_SFTP_HANDLES = 256;
/** Requests in flight upstream per channel: beyond it the client gets FAILURE (bounded memory). */
export const MAX_SFTP_IN_FLIGHT = 256;
/** Largest READ forwarded (a server may return fewer bytes than asked). */
export const MAX_SFTP_READ = 256 * 1024;
/** WRITE data held by requests in flight per channel: beyond it a WRITE gets FAILURE (the client's data is already in memory). */
export const MAX_SFTP_WRITE_BYTES_IN_FLIGHT = 16 * 1024 * 1024;
/** READ bytes asked of the upstream at once per channel: further READs wait (only their request is held). */
export const MAX_SFTP_READ_BYTES_IN_FLIGHT = 8 * 1024 * 1024;
/**
 * Replies waiting for the client's SSH window: while more than this is queued (a client that
 * does not adjust its window), READs wait before reading upstream.
 */
export const MAX_SFTP_CLIENT_BACKLOG = 4 * 1024 * 1024;

type Attributes = Partial<ssh2.Attributes>;

interface FileHandle {
  readonly kind: 'file';
  readonly upstream: Buffer;
  readonly path: string;
  readonly commandId: string;
  readonly read: Transfer;
  readonly written: Transfer;
  /** Present when the policy's detectors apply: READs are answered from the masked stream. */
  readonly masked: MaskedFileReader | undefined;
  /** Opened with WRITE/APPEND/CREAT/TRUNC. */
  readonly writes: boolean;
  /** The deciding rule's `limits.transferBytes`, per direction. */
  readonly limit: TransferLimit | undefined;
  /** Set once a transfer went past the limit: every later READ/WRITE on the handle is refused. */
  limitRefusal?: SftpRequestError;
}


interface DirHandle {
  readonly kind: 'dir';
  readonly upstream: Buffer;
  readonly path: string;
}

/** Bytes one way through a handle: a running SHA-256, and whether they came in order. */
class Transfer {
  readonly hash: Hash = createHash('sha256');
  bytes = 0;
  nextOffset = 0;
  sequential = true;

  add(offset: number, data: Buffer): void {
    if (offset !== this.nextOffset) this.sequential = false;
    this.nextOffset = offset + data.length;
    this.bytes += data.length;
    this.hash.update(data);
  }

  summary(): { bytes: number; sha256: string; sequential: boolean } {
    return { bytes: this.bytes, sha256: this.hash.digest('hex'), sequential: this.sequential };
  }
}

export interface SftpBridgeContext {
  readonly session: PipelineSession;
  readonly channel: number;
  readonly logger: GatewayLogger;
  readonly abort: AbortSignal;
}

function opensForWriting(flags: number): boolean {
  return (flags & (OPEN_MODE.WRITE | OPEN_MODE.APPEND | OPEN_MODE.CREAT | OPEN_MODE.TRUNC)) !== 0;
}

/** The shell command an SFTP OPEN is decided as: reading is `cat`, writing `tee` (`tee -a` to append). */
export function openCommand(path: string, flags: number): string {
  const writes = opensForWriting(flags);
  if (!writes) return `cat -- ${shellQuote(path)}`;
  return `tee ${flags & OPEN_MODE.APPEND ? '-a ' : ''}-- ${shellQuote(path)}`;
}

/** The shell commands a SETSTAT/FSETSTAT is decided as (each attribute it changes). */
export function setstatCommand(path: string, attrs: Attributes): string {
  const p = shellQuote(path);
  const parts: string[] = [];
  if (attrs.mode !== undefined) parts.push(`chmod ${(attrs.mode & 0o7777).toString(8).padStart(4, '0')} -- ${p}`);
  if (attrs.uid !== undefined || attrs.gid !== undefined) parts.push(`chown ${attrs.uid ?? ''}:${attrs.gid ?? ''} -- ${p}`);
  if (attrs.size !== undefined) parts.push(`truncate -s ${attrs.size} -- ${p}`);
  if (attrs.mtime !== undefined || attrs.atime !== undefined) parts.push(`touch -d @${attrs.mtime ?? attrs.atime} -- ${p}`);
  return parts.length > 0 ? parts.join(' && ') : `touch -c -- ${p}`;
}

function statusOf(error: unknown): { code: number; message: string } {
  const e = error as { code?: unknown; message?: unknown } | undefined;
  const code = typeof e?.code === 'number' && e.code > 0 && e.code <= 8 ? e.code : STATUS_CODE.FAILURE;
  return { code, message: typeof e?.message === 'string' ? e.message.slice(0, 200) : 'failure' };
}

export class SftpBridge {
  private readonly handles = new Map<number, FileHandle | DirHandle>();
  private nextHandle = 1;
  private inFlight = 0;
  private writeBytesInFlight = 0;
  private readBytesInFlight = 0;
  private readonly readWaiters: (() => void)[] = [];
  private windowExhaustedRecorded = false;
  private writes: { chunks: Buffer[]; bytes: number; timer: NodeJS.Timeout | undefined } = { chunks: [], bytes: 0, timer: undefined };
  private closed = false;
  private upstream!: ssh2.SFTPWrapper;
  /** The upstream's directory for relative paths (its realpath of `.`). */
  private home = '/';
  private readonly ready: Promise<void>;

  /**
   * Listens at once (a request without a listener would be answered OP_UNSUPPORTED by ssh2);
   * requests wait for the upstream SFTP session, which `upstream` opens.
   */
  constructor(
    private readonly client: ssh2.SFTPWrapper,
    upstream: Promise<{ readonly sftp: ssh2.SFTPWrapper; readonly home: string }>,
    private readonly context: SftpBridgeContext,
  ) {
    this.ready = upstream.then(
      ({ sftp, home }) => {
        this.upstream = sftp;
        this.home = home;
        sftp.on('close', () => this.end());
        sftp.on('error', () => this.end());
        if (this.closed) sftp.end();
      },
      (error: unknown) => {
        this.context.logger.warn({ sessionId: this.session.id, channel: this.context.channel, err: error instanceof Error ? error.message : String(error) }, 'sftp: the upstream SFTP session could not be opened');
        this.end();
        throw error;
      },
    );
    this.ready.catch(() => undefined);
    const limitsAnnounced = announceSftpLimits(client);
    client.on('OPEN', (id: number, filename: string, flags: number, attrs: Attributes) => this.run(id, () => this.open(id, filename, flags, attrs)));
    client.on('READ', (id: number, handle: Buffer, offset: number, length: number) => this.run(id, () => this.read(id, handle, offset, length)));
    client.on('WRITE', (id: number, handle: Buffer, offset: number, data: Buffer) => {
      if (this.closed) return;
      if (this.writeBytesInFlight + data.length > MAX_SFTP_WRITE_BYTES_IN_FLIGHT) {
        this.client.status(id, STATUS_CODE.FAILURE, `too many bytes in outstanding writes (at most ${MAX_SFTP_WRITE_BYTES_IN_FLIGHT})`);
        return;
      }
      this.writeBytesInFlight += data.length;
      this.run(id, () => this.write(id, handle, offset, data).finally(() => (this.writeBytesInFlight -= data.length)));
    });
    client.on('CLOSE', (id: number, handle: Buffer) => this.run(id, () => this.close(id, handle)));
    client.on('FSTAT', (id: number, handle: Buffer) => this.run(id, () => this.withHandle(id, handle, (h) => this.attrsReply(id, 'fstat', h.path, (cb) => this.upstream.fstat(h.upstream, cb)))));
    client.on('FSETSTAT', (id: number, handle: Buffer, attrs: Attributes) =>
      this.run(id, () => this.withHandle(id, handle, (h) => this.decided(id, 'fsetstat', setstatCommand(h.path, attrs), (cb) => this.upstream.fsetstat(h.upstream, attrs, cb)))),
    );
    client.on('OPENDIR', (id: number, path: string) => this.run(id, () => this.opendir(id, path)));
    client.on('READDIR', (id: number, handle: Buffer) => this.run(id, () => this.readdir(id, handle)));
    client.on('STAT', (id: number, path: string) => this.run(id, () => this.attrsReply(id, 'stat', this.resolve(path), (cb) => this.upstream.stat(this.resolve(path), cb))));
    client.on('LSTAT', (id: number, path: string) => this.run(id, () => this.attrsReply(id, 'lstat', this.resolve(path), (cb) => this.upstream.lstat(this.resolve(path), cb))));
    client.on('REALPATH', (id: number, path: string) => this.run(id, () => this.nameReply(id, 'realpath', this.resolve(path), (cb) => this.upstream.realpath(this.resolve(path), cb))));
    client.on('READLINK', (id: number, path: string) => this.run(id, () => this.nameReply(id, 'readlink', this.resolve(path), (cb) => this.upstream.readlink(this.resolve(path), cb))));
    client.on('REMOVE', (id: number, path: string) => this.run(id, () => this.decided(id, 'remove', `rm -- ${shellQuote(this.resolve(path))}`, (cb) => this.upstream.unlink(this.resolve(path), cb))));
    client.on('RMDIR', (id: number, path: string) => this.run(id, () => this.decided(id, 'rmdir', `rmdir -- ${shellQuote(this.resolve(path))}`, (cb) => this.upstream.rmdir(this.resolve(path), cb))));
    client.on('MKDIR', (id: number, path: string, attrs: Attributes) =>
      this.run(id, () => this.decided(id, 'mkdir', `mkdir -- ${shellQuote(this.resolve(path))}`, (cb) => this.upstream.mkdir(this.resolve(path), attrs, cb))),
    );
    client.on('SETSTAT', (id: number, path: string, attrs: Attributes) =>
      this.run(id, () => this.decided(id, 'setstat', setstatCommand(this.resolve(path), attrs), (cb) => this.upstream.setstat(this.resolve(path), attrs, cb))),
    );
    client.on('RENAME', (id: number, from: string, to: string) =>
      this.run(id, () => this.decided(id, 'rename', `mv -- ${shellQuote(this.resolve(from))} ${shellQuote(this.resolve(to))}`, (cb) => this.upstream.rename(this.resolve(from), this.resolve(to), cb))),
    );
    client.on('SYMLINK', (id: number, target: string, link: string) =>
      this.run(id, () => this.decided(id, 'symlink', `ln -s -- ${shellQuote(target)} ${shellQuote(this.resolve(link))}`, (cb) => this.upstream.symlink(target, this.resolve(link), cb))),
    );
    // limits@openssh.com (announced in the VERSION reply) is answered; other extensions are not offered.
    client.on('EXTENDED', (id: number, name: string) => {
      if (name === LIMITS_EXTENSION && limitsAnnounced && replySftpLimits(client, id, MAX_SFTP_HANDLES)) return;
      client.status(id, STATUS_CODE.OP_UNSUPPORTED, 'extensions are not supported through the Custodian gateway');
    });
    // The client's EOF ends the subsystem: both sides are closed (ssh waits for the channel close).
    client.on('end', () => this.end());
    client.on('close', () => this.end());
    // ssh2 reports a malformed or oversized SFTP packet (over 256 KiB) as an error: recorded, then both sides close.
    client.on('error', (error: Error) => {
      if (!this.closed) this.op('protocol-error', { message: error.message.slice(0, 200) });
      this.end();
    });
  }

  private get session(): PipelineSession {
    return this.context.session;
  }

  /** Closes both sides; open handles are reported as closed (their transfer summaries recorded). */
  end(): void {
    if (this.closed) return;
    this.closed = true;
    this.flushWrites();
    for (const [, handle] of this.handles) if (handle.kind === 'file') this.transferred(handle, 'channel-closed');
    this.handles.clear();
    for (const wake of this.readWaiters.splice(0)) wake();
    sendExitStatus(this.client, 0);
    this.client.end();
    this.upstream?.end();
  }

  /** An absolute, normalised path (relative ones from the upstream's starting directory); NUL is refused. */
  private resolve(path: string): string {
    if (path.includes('\0')) throw new SftpRequestError(STATUS_CODE.BAD_MESSAGE, 'a path must not contain NUL');
    const normalised = posix.normalize(posix.isAbsolute(path) ? path : posix.join(this.home, path));
    return normalised.length > 1 && normalised.endsWith('/') ? normalised.slice(0, -1) : normalised;
  }

  /** Runs one request, bounded in flight; a thrown SftpRequestError becomes its status. */
  private run(id: number, body: () => Promise<void> | void): void {
    if (this.closed) return;
    if (this.inFlight >= MAX_SFTP_IN_FLIGHT) {
      this.client.status(id, STATUS_CODE.FAILURE, 'too many outstanding requests');
      return;
    }
    this.inFlight++;
    void this.ready
      .then(() => (this.closed ? undefined : body()))
      .catch((error: unknown) => this.fail(id, error))
      .finally(() => this.inFlight--);
  }

  private fail(id: number, error: unknown): void {
    if (this.closed) return;
    if (error instanceof SftpRequestError) this.client.status(id, error.status, error.message);
    else {
      this.context.logger.error({ sessionId: this.session.id, channel: this.context.channel, err: error instanceof Error ? error.message : String(error) }, 'sftp request failed');
      this.client.status(id, STATUS_CODE.FAILURE, 'the gateway could not complete the request');
    }
  }

  /**
   * Every frame the bridge records goes through here, after the WRITE data gathered so far (order
   * kept). Data over the pipeline's frame size (a READ reply of up to 256 KiB) is recorded whole,
   * in several frames; control frames are small JSON, one frame each.
   */
  private frame(direction: 'client-to-upstream' | 'upstream-to-client', label: string, bytes: Buffer, control = false): void {
    this.flushWrites();
    if (control) this.session.recordFrame(direction, label, bytes, { channel: this.context.channel, control: true });
    else recordWhole(this.session, direction, label, bytes, this.context.channel);
  }

  /**
   * WRITE data is recorded in frames of up to the pipeline's frame size (64 KiB by default) rather
   * than one per request (OpenSSH and ssh2 write 32 KiB at a time): half the events for an upload,
   * the same bytes in the same order. Gathered data is recorded before any other frame, when the
   * next chunk would not fit, within 20 ms, and when the channel ends.
   */
  private recordWrite(data: Buffer): void {
    const limit = this.session.maxFrameBytes;
    if (this.writes.bytes + data.length > limit) this.flushWrites();
    if (data.length >= limit) {
      recordWhole(this.session, 'client-to-upstream', 'sftp-data', data, this.context.channel);
      return;
    }
    this.writes.chunks.push(data);
    this.writes.bytes += data.length;
    this.writes.timer ??= setTimeout(() => this.flushWrites(), 20);
  }

  private flushWrites(): void {
    const { chunks, bytes, timer } = this.writes;
    if (timer) clearTimeout(timer);
    this.writes = { chunks: [], bytes: 0, timer: undefined };
    if (bytes > 0) this.session.recordFrame('client-to-upstream', 'sftp-data', chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, bytes), { channel: this.context.channel });
  }

  private op(label: string, value: object): void {
    this.frame('client-to-upstream', 'sftp-op', Buffer.from(JSON.stringify({ op: label, ...value }), 'utf8'), true);
  }

  /**
   * A line on the channel's stderr (OpenSSH's sftp and scp print it; SFTP status messages are often
   * not shown), recorded like every client-bound byte.
   */
  private notice(text: string): void {
    if (this.closed) return;
    const bytes = Buffer.from(text, 'utf8');
    const internal = this.client as unknown as { _protocol?: { channelExtData?: (channel: number, data: Buffer, type: number) => void }; outgoing?: { id?: number; state?: string } };
    const channel = internal.outgoing?.id;
    if (typeof channel !== 'number' || internal.outgoing?.state !== 'open' || typeof internal._protocol?.channelExtData !== 'function') return;
    this.frame('upstream-to-client', 'stderr', bytes);
    internal._protocol.channelExtData(channel, bytes, 1); // SSH_EXTENDED_DATA_STDERR
  }

  /** Decides `command` with the shell language; issues it; returns its command id and deciding rule, or throws a refusal. */
  private async decide(op: string, command: string): Promise<{ commandId: string; ruleId: string | null }> {
    const outcome = await decideFileOperation(this.session, { sftp: op }, command, (text) => this.notice(text), this.context.abort);
    if (!outcome.forward) throw new SftpRequestError(STATUS_CODE.PERMISSION_DENIED, outcome.message);
    return { commandId: outcome.commandId, ruleId: outcome.ruleId };
  }

  /** A decided operation answered by a status. */
  private async decided(id: number, op: string, command: string, call: (cb: (error?: Error | null) => void) => void): Promise<void> {
    await this.decide(op, command);
    await new Promise<void>((resolve) =>
      call((error) => {
        if (!this.closed) {
          if (error) {
            const status = statusOf(error);
            this.client.status(id, status.code, status.message);
          } else this.client.status(id, STATUS_CODE.OK);
        }
        resolve();
      }),
    );
  }

  private attrsReply(id: number, op: string, path: string, call: (cb: (error: Error | undefined, stats: ssh2.Stats) => void) => void): Promise<void> {
    this.op(op, { path });
    return new Promise((resolve) =>
      call((error, stats) => {
        if (!this.closed) {
          if (error) this.client.status(id, statusOf(error).code, statusOf(error).message);
          else this.client.attrs(id, { mode: stats.mode, uid: stats.uid, gid: stats.gid, size: stats.size, atime: stats.atime, mtime: stats.mtime });
        }
        resolve();
      }),
    );
  }

  private nameReply(id: number, op: string, path: string, call: (cb: (error: Error | undefined, name: string) => void) => void): Promise<void> {
    this.op(op, { path });
    return new Promise((resolve) =>
      call((error, name) => {
        if (!this.closed) {
          if (error) this.client.status(id, statusOf(error).code, statusOf(error).message);
          else this.client.name(id, [{ filename: name, longname: name, attrs: {} as ssh2.Attributes }]);
        }
        resolve();
      }),
    );
  }

  private newHandle(handle: FileHandle | DirHandle): Buffer {
    if (this.handles.size >= MAX_SFTP_HANDLES) throw new SftpRequestError(STATUS_CODE.FAILURE, `too many open handles (at most ${MAX_SFTP_HANDLES})`);
    const n = this.nextHandle++;
    this.handles.set(n, handle);
    const id = Buffer.alloc(4);
    id.writeUInt32BE(n >>> 0);
    return id;
  }

  private lookup(handle: Buffer): FileHandle | DirHandle {
    const found = handle.length === 4 ? this.handles.get(handle.readUInt32BE(0)) : undefined;
    if (!found) throw new SftpRequestError(STATUS_CODE.FAILURE, 'invalid handle');
    return found;
  }

  private withHandle(_id: number, handle: Buffer, body: (h: FileHandle | DirHandle) => Promise<void>): Promise<void> {
    return body(this.lookup(handle));
  }

  private async open(id: number, filename: string, flags: number, attrs: Attributes): Promise<void> {
    const path = this.resolve(filename);
    const { commandId, ruleId } = await this.decide('open', openCommand(path, flags));
    const upstreamHandle = await new Promise<Buffer>((resolve, reject) => this.upstream.open(path, flags, attrs, (error, handle) => (error ? reject(new SftpRequestError(statusOf(error).code, statusOf(error).message)) : resolve(handle))));
    if (this.closed) {
      this.upstream.close(upstreamHandle, () => undefined);
      return;
    }
    let handle: Buffer;
    try {
      handle = this.newHandle({ kind: 'file', upstream: upstreamHandle, path, commandId, read: new Transfer(), written: new Transfer(), masked: this.maskedReader(upstreamHandle, flags), writes: opensForWriting(flags), limit: transferLimitOf(this.session, ruleId) });
    } catch (error) {
      this.upstream.close(upstreamHandle, () => undefined);
      throw error;
    }
    this.client.handle(id, handle);
  }

  /** A masked reader for a handle opened for reading while the policy's detectors apply. */
  private maskedReader(upstreamHandle: Buffer, flags: number): MaskedFileReader | undefined {
    const detection = this.session.masking.detection;
    if (detection.compiled.length === 0 || (flags & OPEN_MODE.READ) === 0) return undefined;
    const readUpstream = (offset: number, length: number): Promise<Buffer | undefined> =>
      new Promise((resolve, reject) => {
        const buffer = Buffer.allocUnsafe(length);
        this.upstream.read(upstreamHandle, buffer, 0, length, offset, (error, bytesRead) => (error ? reject(new SftpRequestError(statusOf(error).code, statusOf(error).message)) : resolve(bytesRead > 0 ? buffer.subarray(0, bytesRead) : undefined)));
      });
    return new MaskedFileReader(lengthPreservingProfile(detection), readUpstream, 'sftp.read');
  }

  private async opendir(id: number, requested: string): Promise<void> {
    const path = this.resolve(requested);
    await this.decide('opendir', `ls -- ${shellQuote(path)}`);
    const upstreamHandle = await new Promise<Buffer>((resolve, reject) => this.upstream.opendir(path, (error, handle) => (error ? reject(new SftpRequestError(statusOf(error).code, statusOf(error).message)) : resolve(handle))));
    if (this.closed) {
      this.upstream.close(upstreamHandle, () => undefined);
      return;
    }
    this.client.handle(id, this.newHandle({ kind: 'dir', upstream: upstreamHandle, path }));
  }

  private async readdir(id: number, handle: Buffer): Promise<void> {
    const dir = this.lookup(handle);
    if (dir.kind !== 'dir') throw new SftpRequestError(STATUS_CODE.FAILURE, 'not a directory handle');
    await new Promise<void>((resolve) =>
      this.upstream.readdir(dir.upstream, (error, list) => {
        if (!this.closed) {
          if (error) this.client.status(id, statusOf(error).code, statusOf(error).message);
          else {
            const names = list.map((entry) => ({ filename: entry.filename, longname: entry.longname, attrs: { mode: entry.attrs.mode, uid: entry.attrs.uid, gid: entry.attrs.gid, size: entry.attrs.size, atime: entry.attrs.atime, mtime: entry.attrs.mtime } }));
            // Listings reach the client: recorded (and scanned) like any client-bound bytes.
            const listing = Buffer.from(names.map((n) => n.longname).join('\n'), 'utf8');
            this.frame('upstream-to-client', 'sftp-names', listing);
            this.client.name(id, names);
          }
        }
        resolve();
      }),
    );
  }

  private async read(id: number, handle: Buffer, offset: number, length: number): Promise<void> {
    const file = this.lookup(handle);
    if (file.kind !== 'file') throw new SftpRequestError(STATUS_CODE.FAILURE, 'not a file handle');
    if (file.limitRefusal) throw file.limitRefusal;
    const size = Math.max(1, Math.min(length, MAX_SFTP_READ));
    await this.readCredit(size);
    try {
      await this.readWithin(id, file, offset, size);
    } finally {
      this.readBytesInFlight -= size;
      this.readWaiters.shift()?.();
    }
  }

  /** Bytes queued in ssh2 for the client (its SSH window is closed), read from ssh2's SFTP object; 0 if that internal shape changes. */
  private clientBacklog(): number {
    const queued = (this.client as unknown as { _buffer?: unknown })._buffer;
    return Array.isArray(queued) ? queued.reduce((n: number, b: unknown) => n + (Buffer.isBuffer(b) ? b.length : 0), 0) : 0;
  }

  /**
   * Waits until this READ may go upstream: the recorder is not saturated, the bytes asked of the upstream stay under
   * MAX_SFTP_READ_BYTES_IN_FLIGHT and replies queued for a client that does not open its window
   * stay under MAX_SFTP_CLIENT_BACKLOG (recorded once per channel as `client-window-exhausted`).
   */
  private async readCredit(size: number): Promise<void> {
    // The recorder's backpressure holds the READ before it goes upstream, unanswered: a client
    // gets no more replies than its requests, so the requests in flight stay bounded (waiting
    // after the reply let a client with 64 requests out push the count past MAX_SFTP_IN_FLIGHT).
    while (!this.closed && this.session.recorderSaturated) await this.session.whenRecorderReady();
    while (!this.closed && this.readBytesInFlight > 0 && this.readBytesInFlight + size > MAX_SFTP_READ_BYTES_IN_FLIGHT) {
      await new Promise<void>((resolve) => this.readWaiters.push(resolve));
    }
    while (!this.closed && this.clientBacklog() > MAX_SFTP_CLIENT_BACKLOG) {
      if (!this.windowExhaustedRecorded) {
        this.windowExhaustedRecorded = true;
        this.op('client-window-exhausted', { queuedBytes: this.clientBacklog() });
      }
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    this.readBytesInFlight += size;
  }

  private async readWithin(id: number, file: FileHandle, offset: number, size: number): Promise<void> {
    let data: Buffer | undefined;
    if (file.masked) {
      if (file.writes) throw this.refusedRead(file, 'a file opened for writing cannot be read while masking rules apply; open it read-only');
      try {
        data = await file.masked.read(offset, size);
      } catch (error) {
        if (error instanceof MaskedReadRefused) throw this.refusedRead(file, error.message);
        throw error;
      }
    } else {
      const buffer = Buffer.allocUnsafe(size);
      data = await new Promise<Buffer | undefined>((resolve, reject) =>
        this.upstream.read(file.upstream, buffer, 0, buffer.length, offset, (error, bytesRead) => (error ? reject(new SftpRequestError(statusOf(error).code, statusOf(error).message)) : resolve(bytesRead > 0 ? buffer.subarray(0, bytesRead) : undefined))),
      );
    }
    if (this.closed) return;
    if (!data) {
      this.client.status(id, STATUS_CODE.EOF);
      return;
    }
    if (file.limit && file.read.bytes + data.length > file.limit.bytes) throw await this.overLimit(file, 'read', file.read.bytes + data.length);
    file.read.add(offset, data);
    this.frame('upstream-to-client', 'sftp-data', data);
    this.client.data(id, data);
  }

  /**
   * The transfer went past its rule's `limits.transferBytes`: recorded as a gateway refusal (a
   * `command.issued` + `policy.decided` block with rule `custodian:transfer-limit`), said on stderr,
   * and this and every later READ/WRITE on the handle fail with PERMISSION_DENIED.
   */
  private async overLimit(file: FileHandle, direction: 'read' | 'write', wouldBe: number): Promise<SftpRequestError> {
    const limit = file.limit!;
    if (file.limitRefusal) return file.limitRefusal;
    const message = overLimitMessage(file.path, limit);
    const refusal = new SftpRequestError(STATUS_CODE.PERMISSION_DENIED, message);
    file.limitRefusal = refusal;
    this.notice(`${message}\n`);
    await recordOverLimit(this.session, `${direction === 'read' ? 'cat' : 'tee'} -- ${shellQuote(file.path)}`, direction, wouldBe, limit, { sftp: direction });
    return refusal;
  }

  /** A READ the masked stream cannot answer: FAILURE naming why, a stderr line and a recorded `sftp-op`. */
  private refusedRead(file: FileHandle, why: string): SftpRequestError {
    const message = `custodian: ${why} (${file.path})`;
    this.op('read-refused', { path: file.path, commandId: file.commandId, reason: why });
    this.notice(`${message}\n`);
    return new SftpRequestError(STATUS_CODE.FAILURE, message);
  }

  private async write(id: number, handle: Buffer, offset: number, data: Buffer): Promise<void> {
    const file = this.lookup(handle);
    if (file.kind !== 'file') throw new SftpRequestError(STATUS_CODE.FAILURE, 'not a file handle');
    if (file.limitRefusal) throw file.limitRefusal;
    if (file.limit && file.written.bytes + data.length > file.limit.bytes) throw await this.overLimit(file, 'write', file.written.bytes + data.length);
    file.written.add(offset, data);
    this.recordWrite(data);
    await new Promise<void>((resolve, reject) => this.upstream.write(file.upstream, data, 0, data.length, offset, (error) => (error ? reject(new SftpRequestError(statusOf(error).code, statusOf(error).message)) : resolve())));
    if (this.session.recorderSaturated) await this.session.whenRecorderReady();
    if (!this.closed) this.client.status(id, STATUS_CODE.OK);
  }

  private async close(id: number, handle: Buffer): Promise<void> {
    const found = this.lookup(handle);
    this.handles.delete(handle.readUInt32BE(0));
    if (found.kind === 'file') this.transferred(found, 'closed');
    await new Promise<void>((resolve) =>
      this.upstream.close(found.upstream, (error?: Error | null) => {
        if (!this.closed) {
          if (error) this.client.status(id, statusOf(error).code, statusOf(error).message);
          else this.client.status(id, STATUS_CODE.OK);
        }
        resolve();
      }),
    );
  }

  /** The handle's transfer summary (SHA-256 and size each way) as a control frame naming its command. */
  private transferred(file: FileHandle, how: 'closed' | 'channel-closed'): void {
    const masked = file.masked ? { masked: { restarts: file.masked.restartCount, findings: file.masked.findings.total } } : {};
    this.op('transfer', { path: file.path, commandId: file.commandId, how, read: file.read.summary(), written: file.written.summary(), ...masked });
    if (file.masked && file.masked.findings.total > 0) this.session.recordMasked(file.commandId, file.masked.findings);
  }
}

/**
 * `exit-status` 0 before the channel closes, as OpenSSH's sftp-server does: `scp` (SFTP mode)
 * fails without it. ssh2's server-side SFTP object has no public call for it, so this uses its
 * protocol handle, guarded: if that internal shape changes, nothing is sent (scp then reports 1).
 */
function sendExitStatus(sftp: ssh2.SFTPWrapper, code: number): void {
  const internal = sftp as unknown as { _protocol?: { exitStatus?: (channel: number, status: number) => void }; outgoing?: { id?: number; state?: string } };
  const channel = internal.outgoing?.id;
  if (typeof channel !== 'number' || internal.outgoing?.state !== 'open' || typeof internal._protocol?.exitStatus !== 'function') return;
  internal._protocol.exitStatus(channel, code);
}

export class SftpRequestError extends Error {
  override readonly name = 'SftpRequestError';
  readonly code = 'SFTP_REQUEST_REFUSED';
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}
