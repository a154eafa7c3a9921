// Legacy scp (`scp -O`, and every scp before OpenSSH 9.0): the client runs `scp -t <target>`
// (upload: the upstream is the sink) or `scp -f <paths>` (download: the upstream is the source)
// as an exec command, and the files travel in-band as records: `C<mode> <size> <name>\n` then
// <size> bytes and one status byte, `D<mode> 0 <name>\n` … `E\n` around a directory, `T…\n`
// times, `\x01`/`\x02` errors; the other side answers each record with one status byte (0 ok,
// 1 warning + message line, 2 fatal). The gateway parses the record stream and decides each file
// and directory like the SFTP operation with its path (upload `tee`, mkdir for a directory;
// download `cat`, `ls` for a directory). A refused record is not forwarded: its sender gets a
// `\x01custodian: … (rule …)` status (scp skips that file and goes on, exit status 1 at the end)
// and the receiver never sees it. Each file's bytes are hashed (SHA-256, recorded per file); a
// download's file bytes go through the detectors length-preserving (the record's size stays true).
import { createHash } from 'node:crypto';
import { posix } from 'node:path';
import { createStreamMasker, MaskingFindings, type StreamMasker } from '@custodian/masking';
import type { PipelineSession } from '@custodian/session-pipeline';
import { decideFileOperation, overLimitMessage, recordOverLimit, shellQuote, transferLimitOf } from './file-operation.js';
import { lengthPreservingProfile } from './masked-file-reader.js';

/** A recognised legacy scp command line. */
export interface LegacyScpCommand {
  readonly mode: 'sink' | 'source';
  readonly recursive: boolean;
  /** `-d`: the target must be a directory. */
  readonly targetIsDirectory: boolean;
  /** The sink's target, or the source's paths, as written (relative to the upstream's home). */
  readonly paths: readonly string[];
}

const SCP_FLAGS = new Set(['-v', '-r', '-p', '-d', '-t', '-f', '-q']);
/** Longest record line accepted (OpenSSH's sink reads into a 2048-byte buffer). */
export const MAX_SCP_RECORD = 2048;

/** Shell words of a simple command: quotes and backslashes, no operators or expansions (else undefined). */
function simpleWords(command: string): string[] | undefined {
  const words: string[] = [];
  let word: string | undefined;
  for (let i = 0; i < command.length; i++) {
    const c = command[i]!;
    if (c === ' ' || c === '\t') {
      if (word !== undefined) words.push(word);
      word = undefined;
    } else if (c === "'") {
      const end = command.indexOf("'", i + 1);
      if (end < 0) return undefined;
      word = (word ?? '') + command.slice(i + 1, end);
      i = end;
    } else if (c === '"') {
      let text = '';
      let j = i + 1;
      for (; j < command.length && command[j] !== '"'; j++) {
        if ('$`'.includes(command[j]!)) return undefined;
        if (command[j] === '\\' && j + 1 < command.length && '"\\'.includes(command[j + 1]!)) j++;
        text += command[j];
      }
      if (j >= command.length) return undefined;
      word = (word ?? '') + text;
      i = j;
    } else if (c === '\\') {
      if (i + 1 >= command.length) return undefined;
      word = (word ?? '') + command[++i];
    } else if (';&|<>()$`\n{}!#~'.includes(c)) {
      return undefined;
    } else word = (word ?? '') + c;
  }
  if (word !== undefined) words.push(word);
  return words;
}

/** `scp [-v] [-r] [-p] [-d] -t|-f [--] path…` as OpenSSH's scp sends it, else undefined. */
export function parseLegacyScp(command: string): LegacyScpCommand | undefined {
  const words = simpleWords(command);
  if (!words || (words[0] !== 'scp' && words[0] !== '/usr/bin/scp')) return undefined;
  const flags = new Set<string>();
  let i = 1;
  for (; i < words.length && words[i]!.startsWith('-'); i++) {
    if (words[i] === '--') {
      i++;
      break;
    }
    if (!SCP_FLAGS.has(words[i]!)) return undefined;
    flags.add(words[i]!);
  }
  const paths = words.slice(i);
  if (flags.has('-t') === flags.has('-f') || paths.length === 0) return undefined;
  if (flags.has('-t') && paths.length !== 1) return undefined;
  if (paths.some((p) => p.length === 0 || p.includes('\0'))) return undefined;
  return { mode: flags.has('-t') ? 'sink' : 'source', recursive: flags.has('-r'), targetIsDirectory: flags.has('-d'), paths };
}

export interface LegacyScpContext {
  readonly session: PipelineSession;
  readonly channel: number;
  readonly abort: AbortSignal;
  /** The upstream's starting directory (relative paths). */
  readonly home: string;
  /** Sink: whether the target exists upstream as a directory (as the sink itself checks). */
  readonly targetIsDirectory: boolean;
  /** Bytes toward the sender of records / toward their receiver (each records and writes). */
  toRecordSender(bytes: Buffer): void;
  toRecordReceiver(bytes: Buffer): void;
  /** A line on the client's stderr. */
  notice(text: string): void;
  /** Pauses / resumes the record stream while a record is decided. */
  pauseRecords(): void;
  resumeRecords(): void;
  /** A record the gateway cannot parse: the channel is ended after `\x02` to both sides. */
  fatal(message: string): void;
}

interface FileInTransit {
  readonly path: string;
  readonly commandId: string;
  remaining: number;
  readonly size: number;
  readonly hash: ReturnType<typeof createHash>;
  readonly masker: StreamMasker | undefined;
  readonly findings: MaskingFindings;
}

const RECORD = /^([CD])([0-7]{4}) (\d{1,19}) ([^\n]+)$/;

/**
 * The record stream of one legacy scp channel: `records(chunk)` takes bytes from the side that
 * sends records (the client for `-t`, the upstream for `-f`); acknowledgements from the other
 * side are passed by the caller unchanged.
 */
export class LegacyScpBridge {
  private line: Buffer[] = [];
  private lineLength = 0;
  private file: FileInTransit | undefined;
  /** After a file's bytes, its sender's one status byte. */
  private trailer = false;
  /** Full paths of the directories entered (D … E). */
  private readonly dirs: string[] = [];
  /** Bytes that arrived while a record was being decided. */
  private pending: Buffer[] = [];
  private deciding = false;
  private failed = false;

  constructor(
    private readonly command: LegacyScpCommand,
    private readonly context: LegacyScpContext,
  ) {}

  private get session(): PipelineSession {
    return this.context.session;
  }

  records(chunk: Buffer): void {
    if (this.failed) return;
    if (this.deciding) {
      this.pending.push(chunk);
      return;
    }
    let at = 0;
    while (at < chunk.length && !this.deciding && !this.failed) {
      if (this.file) {
        const take = Math.min(this.file.remaining, chunk.length - at);
        this.fileBytes(chunk.subarray(at, at + take));
        at += take;
        continue;
      }
      if (this.trailer) {
        this.trailer = false;
        this.context.toRecordReceiver(chunk.subarray(at, at + 1));
        at++;
        continue;
      }
      const newline = chunk.indexOf(0x0a, at);
      const end = newline < 0 ? chunk.length : newline + 1;
      this.line.push(chunk.subarray(at, end));
      this.lineLength += end - at;
      at = end;
      if (this.lineLength > MAX_SCP_RECORD) return this.fail(`an scp record longer than ${MAX_SCP_RECORD} bytes`);
      if (newline >= 0) {
        const record = Buffer.concat(this.line);
        this.line = [];
        this.lineLength = 0;
        this.record(record);
      }
    }
    if (at < chunk.length && this.deciding && !this.failed) this.pending.push(chunk.subarray(at));
  }

  /** The channel ended: a file cut short is recorded as such. */
  end(): void {
    if (this.file) this.transferred(this.file, 'channel-closed');
    this.file = undefined;
  }

  private fail(message: string): void {
    this.failed = true;
    this.context.fatal(`custodian: ${message}`);
  }

  private record(record: Buffer): void {
    const type = String.fromCharCode(record[0]!);
    if (type === 'E' || type === 'T' || type === '\x01' || type === '\x02') {
      if (type === 'E') this.dirs.pop();
      if (type === 'E' && record.length !== 2) return this.fail('a malformed scp E record');
      this.context.toRecordReceiver(record);
      return;
    }
    const match = RECORD.exec(record.subarray(0, record.length - 1).toString('utf8'));
    if (!match) return this.fail('an scp record the gateway does not recognise');
    const [, kind, , sizeText, name] = match as unknown as [string, 'C' | 'D', string, string, string];
    if (name === '.' || name === '..' || name.includes('/')) return this.fail(`an scp record naming ${JSON.stringify(name.slice(0, 100))}`);
    const path = this.pathOf(name);
    if (path === undefined) return this.fail(`a downloaded name (${JSON.stringify(name.slice(0, 100))}) that matches none of the requested paths`);
    const size = Number(sizeText);
    const sink = this.command.mode === 'sink';
    const command = kind === 'D' ? `${sink ? 'mkdir' : 'ls'} -- ${shellQuote(path)}` : `${sink ? 'tee' : 'cat'} -- ${shellQuote(path)}`;
    this.deciding = true;
    this.context.pauseRecords();
    void decideFileOperation(this.session, { scp: sink ? 'upload' : 'download', record: kind }, command, (text) => this.context.notice(text), this.context.abort)
      .then(async (outcome) => {
        if (!outcome.forward) return this.refuse(outcome.message);
        const limit = kind === 'C' ? transferLimitOf(this.session, outcome.ruleId) : undefined;
        if (limit && size > limit.bytes) {
          const message = overLimitMessage(path, limit);
          this.context.notice(`${message}\n`);
          await recordOverLimit(this.session, command, sink ? 'write' : 'read', size, limit, { scp: sink ? 'upload' : 'download' });
          return this.refuse(message);
        }
        this.context.toRecordReceiver(record);
        if (kind === 'D') this.dirs.push(path);
        else this.startFile(path, outcome.commandId, size);
      })
      .catch((error: unknown) => this.fail(`the record could not be decided (${error instanceof Error ? error.message : String(error)})`))
      .finally(() => {
        this.deciding = false;
        const pending = this.pending;
        this.pending = [];
        for (const chunk of pending) this.records(chunk);
        if (!this.deciding) this.context.resumeRecords();
      });
  }

  /** The record's sender gets a warning status (scp skips the file or directory); the receiver never sees it. */
  private refuse(message: string): void {
    const status = Buffer.from(`\x01${message.replace(/\n/g, ' ')}\n`, 'utf8');
    this.context.toRecordSender(status);
    // A downloading client learns it too (its sink prints the warning and exits 1 at the end).
    if (this.command.mode === 'source') this.context.toRecordReceiver(status);
  }

  /** The upstream path a record names, as the sink resolves it (or the source's requested path). */
  private pathOf(name: string): string | undefined {
    const resolve = (p: string): string => {
      const normalised = posix.normalize(posix.isAbsolute(p) ? p : posix.join(this.context.home, p));
      return normalised.length > 1 && normalised.endsWith('/') ? normalised.slice(0, -1) : normalised;
    };
    const dir = this.dirs.at(-1);
    if (dir !== undefined) return posix.join(dir, name);
    if (this.command.mode === 'sink') {
      const target = resolve(this.command.paths[0]!);
      return this.context.targetIsDirectory ? posix.join(target, name) : target;
    }
    // Source: the requested path this top-level name came from (a glob the remote shell expanded names its directory).
    for (const requested of this.command.paths) {
      const full = resolve(requested);
      if (posix.basename(full) === name && !/[*?[]/.test(full)) return full;
    }
    for (const requested of this.command.paths) {
      const full = resolve(requested);
      const parent = posix.dirname(full);
      if (/[*?[]/.test(posix.basename(full)) && !/[*?[]/.test(parent)) return posix.join(parent, name);
    }
    return undefined;
  }

  private startFile(path: string, commandId: string, size: number): void {
    const detection = this.session.masking.detection;
    const findings = new MaskingFindings();
    const masker = this.command.mode === 'source' && detection.compiled.length > 0 ? createStreamMasker({ profile: lengthPreservingProfile(detection), location: 'scp.download', findings }) : undefined;
    this.file = { path, commandId, remaining: size, size, hash: createHash('sha256'), masker, findings };
    if (size === 0) this.fileBytes(Buffer.alloc(0));
  }

  private fileBytes(bytes: Buffer): void {
    const file = this.file!;
    file.remaining -= bytes.length;
    let out = file.masker ? Buffer.from(file.masker.push(bytes.toString('latin1')), 'latin1') : bytes;
    if (file.remaining === 0 && file.masker) out = Buffer.concat([out, Buffer.from(file.masker.end(), 'latin1')]);
    if (out.length > 0) {
      file.hash.update(out);
      this.context.toRecordReceiver(out);
    }
    if (file.remaining === 0) {
      this.transferred(file, 'complete');
      this.file = undefined;
      this.trailer = true;
    }
  }

  private transferred(file: FileInTransit, how: 'complete' | 'channel-closed'): void {
    const summary = { op: 'transfer', path: file.path, commandId: file.commandId, how, direction: this.command.mode === 'sink' ? 'upload' : 'download', size: file.size, bytes: file.size - file.remaining, sha256: file.hash.digest('hex'), ...(file.masker ? { masked: { findings: file.findings.total } } : {}) };
    this.session.recordFrame('client-to-upstream', 'scp-op', Buffer.from(JSON.stringify(summary), 'utf8'), { channel: this.context.channel, control: true });
    if (file.findings.total > 0) this.session.recordMasked(file.commandId, file.findings);
  }
}
