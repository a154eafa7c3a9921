// One SSH session channel: pty/env/window-change/signal requests, then exec (the command decided
// with the shell language before it reaches the upstream) or shell (each line decided at Enter,
// TerminalLineGate from @custodian/terminal-line-policy). Output is masked with the policy's detectors (bounded hold-back); every byte
// both ways is recorded with the channel number; exit status and exit signal are bridged.
import { createByteStreamMasker, MaskingFindings, type ByteStreamMasker } from '@custodian/masking';
import type { GatewayLogger } from '@custodian/gateway-kit';
import type { PolicyDecision } from '@custodian/policy';
import { decideShellSync, shellLanguage } from '@custodian/policy-languages';
import type { PipelineSession } from '@custodian/session-pipeline';
import { lineDecidedShellDecision, StdinLineGate, TerminalLineGate, type TerminalPorts } from '@custodian/terminal-line-policy';
import type ssh2 from 'ssh2';
import { refusalText, SshGatewayError } from './gateway-errors.js';
import type { SshConnection, UnverifiableLinePolicy } from './gateway-options.js';
import { LegacyScpBridge, parseLegacyScp, type LegacyScpCommand } from './legacy-scp.js';
import { SftpBridge } from './sftp-bridge.js';
import type { UpstreamSsh } from './upstream-connection.js';

export { STDIN_LINES_RULE } from '@custodian/terminal-line-policy';
/** Exit status for a command the gateway refused (POSIX "found but not executable"). */
export const REFUSED_EXIT_STATUS = 126;
const MAX_ENV = 64;

export interface SessionChannelContext {
  readonly session: PipelineSession;
  readonly connection: SshConnection;
  readonly upstream: () => Promise<UpstreamSsh>;
  readonly logger: GatewayLogger;
  readonly unverifiableLines: UnverifiableLinePolicy;
  refuse(what: string, ruleId: string, message: string): Promise<void>;
  /** The upstream could not be reached: end the whole client connection with this code. */
  failSession(code: string): void;
  onClosed(): void;
}

/** A legacy scp exec: the command and where its paths resolve upstream. */
interface LegacyScpRun {
  readonly command: LegacyScpCommand;
  readonly home: string;
  readonly targetIsDirectory: boolean;
}

/**
 * The upstream's starting directory and whether a sink's target is a directory there (the sink
 * names a file `target/name` when it is, else `target`), through a short upstream SFTP session;
 * undefined when the upstream has no SFTP (the paths cannot be known: the copy is refused).
 */
async function upstreamPaths(upstream: UpstreamSsh, command: LegacyScpCommand): Promise<{ home: string; targetIsDirectory: boolean } | undefined> {
  const sftp = await new Promise<ssh2.SFTPWrapper | undefined>((resolve) => upstream.client.sftp((error, s) => resolve(error ? undefined : s)));
  if (!sftp) return undefined;
  try {
    const home = await new Promise<string>((resolve) => sftp.realpath('.', (e, path) => resolve(e ? '/' : path)));
    if (command.mode === 'source') return { home, targetIsDirectory: false };
    const target = command.paths[0]!;
    const absolute = target.startsWith('/') ? target : `${home}/${target}`;
    const isDirectory = await new Promise<boolean>((resolve) => sftp.stat(absolute, (e, stats) => resolve(!e && stats.isDirectory())));
    return { home, targetIsDirectory: isDirectory };
  } finally {
    sftp.end();
  }
}

interface Bridge {
  readonly client: ssh2.ServerChannel;
  readonly upstream: ssh2.ClientChannel;
}

export class SessionChannel {
  private pty: ssh2.PseudoTtyInfo | undefined;
  private readonly env: Record<string, string> = {};
  private bridge: Bridge | undefined;
  private started = false;
  private closed = false;
  private readonly abort = new AbortController();

  constructor(
    private readonly channelSession: ssh2.Session,
    private readonly channel: number,
    private readonly context: SessionChannelContext,
  ) {
    channelSession.on('pty', (accept, reject, info) => {
      if (this.started) return reject?.();
      this.pty = info;
      accept?.();
    });
    channelSession.on('env', (accept, reject, info) => {
      if (this.started || Object.keys(this.env).length >= MAX_ENV || info.key.length > 256 || info.val.length > 4096 || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(info.key)) return reject?.();
      this.env[info.key] = info.val;
      accept?.();
    });
    channelSession.on('window-change', (accept, _reject, info) => {
      if (this.pty) this.pty = { ...this.pty, cols: info.cols, rows: info.rows, width: info.width, height: info.height };
      if (this.bridge) this.control('client-to-upstream', 'window-change', { cols: info.cols, rows: info.rows });
      this.bridge?.upstream.setWindow(info.rows, info.cols, info.height, info.width);
      accept?.();
    });
    channelSession.on('signal', (accept, _reject, info) => {
      this.bridge?.upstream.signal(info.name);
      accept?.();
    });
    channelSession.on('x11', (_accept, reject) => {
      reject?.();
      void context.refuse('x11-req', 'custodian:x11-forwarding-refused', 'X11 forwarding is not allowed through the Custodian gateway');
    });
    channelSession.on('auth-agent', (_accept, reject) => {
      reject?.();
      void context.refuse('auth-agent-req@openssh.com', 'custodian:agent-forwarding-refused', 'agent forwarding is not allowed through the Custodian gateway');
    });
    channelSession.on('sftp', (accept, reject) => {
      if (this.started) return reject?.();
      this.started = true;
      this.sftp(accept());
    });
    channelSession.on('subsystem', (_accept, reject, info) => {
      reject?.();
      void context.refuse(`subsystem ${info.name.slice(0, 100)}`, 'custodian:subsystem-refused', 'subsystems are not available through the Custodian gateway');
    });
    channelSession.on('exec', (accept, reject, info) => {
      if (this.started) return reject?.();
      this.started = true;
      void this.exec(accept(), info.command).catch((error: unknown) => this.failed(error));
    });
    channelSession.on('shell', (accept, reject) => {
      if (this.started) return reject?.();
      this.started = true;
      void this.shell(accept()).catch((error: unknown) => this.failed(error));
    });
    channelSession.on('close', () => this.clientGone());
  }

  private get session(): PipelineSession {
    return this.context.session;
  }

  /** The client closed the channel or the connection. */
  clientGone(): void {
    if (this.closed) return;
    this.closed = true;
    this.abort.abort();
    this.bridge?.upstream.close();
    this.context.onClosed();
  }

  upstreamGone(): void {
    this.bridge?.client.close();
  }

  private failed(error: unknown): void {
    this.context.logger.error({ sessionId: this.session.id, channel: this.channel, err: error instanceof Error ? error.message : String(error) }, 'ssh channel failed');
    this.bridge?.upstream.close();
  }

  /** Records protocol metadata (JSON) as a control frame: replayable, not part of the client-bound bytes. */
  private control(direction: 'client-to-upstream' | 'upstream-to-client', label: string, value: object): void {
    this.session.recordFrame(direction, label, Buffer.from(JSON.stringify(value), 'utf8'), { channel: this.channel, control: true });
  }

  /** Writes to the client's stderr (or its terminal, with CRLF, for a pty) and records it. */
  private notice(client: ssh2.ServerChannel, text: string): void {
    const bytes = Buffer.from(this.pty ? `${text.replace(/\r?\n/g, '\r\n')}` : text, 'utf8');
    this.session.recordFrame('upstream-to-client', this.pty ? 'custodian-notice' : 'stderr', bytes, { channel: this.channel });
    if (this.pty) client.write(bytes);
    else client.stderr.write(bytes);
  }

  /** Waits for the upstream login; when it failed, says why on the channel and ends the session. */
  private async upstreamOrRefuse(client: ssh2.ServerChannel): Promise<UpstreamSsh | undefined> {
    try {
      return await this.context.upstream();
    } catch (error) {
      const code = error instanceof SshGatewayError ? error.code : 'UPSTREAM_UNAVAILABLE';
      const message = error instanceof Error ? error.message : String(error);
      this.notice(client, `custodian: could not open connection ${this.context.connection.name}: ${message}\n`);
      client.exit(255);
      client.end();
      this.context.failSession(code);
      return undefined;
    }
  }

  private masker(location: string, findings: MaskingFindings): ByteStreamMasker | undefined {
    const detection = this.session.masking.detection;
    return detection.compiled.length === 0 ? undefined : createByteStreamMasker({ profile: detection, location, findings });
  }

  private async exec(client: ssh2.ServerChannel, command: string): Promise<void> {
    const upstream = await this.upstreamOrRefuse(client);
    if (!upstream || this.closed) return;
    const session = this.session;
    const shellDecision = decideShellSync(session.policy, session.policyContext, command);
    let decision: PolicyDecision = shellDecision;
    let summary: Record<string, unknown> = shellLanguage.summary(shellDecision.classification);
    // A lone shell reading its commands from stdin (`ssh host bash -i`, `ssh -t host sh`): its
    // lines are decided one by one, as for a login shell (line gate with a pty, stdin line gate
    // without). Opened when a rule allows or holds it, or when only the default deny or the
    // guarded flag shell-from-stdin would block it (then under the gateway's rule
    // custodian:stdin-lines); a rule that blocks it blocks it.
    const lineDecided = lineDecidedShellDecision(shellDecision);
    const stdinLines = lineDecided !== undefined;
    if (lineDecided) {
      summary = { ...summary, stdinLines: true };
      decision = lineDecided;
    }
    const textFindings = new MaskingFindings();
    const text = session.masking.maskText(command, 'command', textFindings);
    if (decision.decision === 'require-approval') {
      this.notice(client, `custodian: this command needs approval (rule ${decision.ruleId ?? 'unknown'}); waiting for an approver in Custodian (session ${session.id})…\n`);
    }
    const outcome = await session.issue({ language: 'shell', kind: 'shell', text, summary, decision, signal: this.abort.signal });
    if (textFindings.total > 0) session.recordMasked(outcome.commandId, textFindings);
    if (this.closed) return;
    if (!outcome.forward) {
      this.notice(client, `${refusalText(outcome.message, outcome.ruleId)}\n`);
      client.exit(REFUSED_EXIT_STATUS);
      client.end();
      return;
    }
    // Legacy scp (`scp -t` / `scp -f`): each file inside the stream is decided too (LegacyScpBridge).
    const scp = this.pty ? undefined : parseLegacyScp(command);
    const scpWhere = scp ? await upstreamPaths(upstream, scp) : undefined;
    if (this.closed) return;
    if (scp && !scpWhere) {
      this.notice(client, 'custodian: the files of this scp copy cannot be named (the upstream has no SFTP to resolve its paths); use sftp or scp without -O\n');
      client.exit(REFUSED_EXIT_STATUS);
      client.end();
      return;
    }
    const options: ssh2.ExecOptions = { env: { ...this.env }, ...(this.pty ? { pty: { rows: this.pty.rows, cols: this.pty.cols, height: this.pty.height, width: this.pty.width, term: this.pty.term, modes: this.pty.modes } } : {}) };
    upstream.client.exec(command, options, (error, stream) => {
      if (error) {
        this.notice(client, `custodian: the upstream refused to run the command: ${error.message}\n`);
        client.exit(255);
        client.end();
        return;
      }
      const mode = stdinLines ? (this.pty ? 'shell' : 'shell-no-pty') : 'exec';
      this.connect(client, stream, outcome.commandId, mode, scp && scpWhere ? { command: scp, ...scpWhere } : undefined);
    });
  }

  /** SFTP: terminated here and replayed upstream operation by operation (SftpBridge). */
  private sftp(client: ssh2.SFTPWrapper): void {
    const upstream = this.context.upstream().then(
      (up) => new Promise<{ sftp: ssh2.SFTPWrapper; home: string }>((resolve, reject) =>
        up.client.sftp((error, sftp) => {
          if (error) return reject(error);
          sftp.realpath('.', (e, home) => resolve({ sftp, home: e ? '/' : home }));
        }),
      ),
      (error: unknown) => {
        this.context.failSession(error instanceof SshGatewayError ? error.code : 'UPSTREAM_UNAVAILABLE');
        throw error;
      },
    );
    void upstream.then(({ home }) => this.control('client-to-upstream', 'sftp', { home }), () => undefined);
    const bridge = new SftpBridge(client, upstream, { session: this.session, channel: this.channel, logger: this.context.logger, abort: this.abort.signal });
    if (this.closed) bridge.end();
    this.abort.signal.addEventListener('abort', () => bridge.end(), { once: true });
  }

  private async shell(client: ssh2.ServerChannel): Promise<void> {
    const upstream = await this.upstreamOrRefuse(client);
    if (!upstream || this.closed) return;
    const pty = this.pty;
    const options: ssh2.ShellOptions = { env: { ...this.env } };
    const window: ssh2.PseudoTtyOptions | false = pty ? { rows: pty.rows, cols: pty.cols, height: pty.height, width: pty.width, term: pty.term, modes: pty.modes } : false;
    upstream.client.shell(window, options, (error, stream) => {
      if (error) {
        this.notice(client, `custodian: the upstream refused to start a shell: ${error.message}\n`);
        client.exit(255);
        client.end();
        return;
      }
      this.connect(client, stream, undefined, pty ? 'shell' : 'shell-no-pty');
    });
  }

  /** The record stream of a legacy scp exec: files decided one by one, written and recorded both ways. */
  private scpBridge(client: ssh2.ServerChannel, upstream: ssh2.ClientChannel, run: LegacyScpRun): LegacyScpBridge {
    const session = this.session;
    const channel = this.channel;
    const toClient = (bytes: Buffer): void => {
      session.recordFrame('upstream-to-client', 'stdout', bytes, { channel });
      client.write(bytes);
    };
    const toUpstream = (bytes: Buffer): void => {
      session.recordFrame('client-to-upstream', 'stdin', bytes, { channel });
      upstream.write(bytes);
    };
    const sink = run.command.mode === 'sink';
    const records = sink ? client : upstream;
    return new LegacyScpBridge(run.command, {
      session,
      channel,
      abort: this.abort.signal,
      home: run.home,
      targetIsDirectory: run.targetIsDirectory,
      toRecordSender: sink ? toClient : toUpstream,
      toRecordReceiver: sink ? toUpstream : toClient,
      notice: (text) => this.notice(client, text),
      pauseRecords: () => records.pause(),
      resumeRecords: () => records.resume(),
      fatal: (message) => {
        const status = Buffer.from(`\x02${message}\n`, 'utf8');
        toClient(status);
        toUpstream(status);
        this.notice(client, `${message}\n`);
        upstream.close();
      },
    });
  }

  /** Bridges the two channels: data both ways (client input through the line gate for a shell), stderr, EOF, exit. */
  private connect(client: ssh2.ServerChannel, upstream: ssh2.ClientChannel, commandId: string | undefined, mode: 'exec' | 'shell' | 'shell-no-pty', scpRun?: LegacyScpRun): void {
    if (this.closed) {
      upstream.close();
      return;
    }
    this.bridge = { client, upstream };
    const session = this.session;
    const channel = this.channel;
    // What a replay needs besides the bytes: the channel's kind and terminal size, later resizes and the exit.
    this.control('client-to-upstream', mode === 'exec' ? 'exec' : 'shell', this.pty ? { term: this.pty.term, cols: this.pty.cols, rows: this.pty.rows } : {});
    const findings = new MaskingFindings();
    // A pty's output is a terminal stream (escape sequences): masking it could break them, so it is
    // recorded as sent; exec output (and a shell without a pty) is masked.
    // Legacy scp: stdout is either the record stream (masked per file by the bridge) or status bytes the protocol waits for (never held back).
    const stdoutMasker = mode === 'shell' || scpRun ? undefined : this.masker(`ssh.${mode}.stdout`, findings);
    const stderrMasker = mode === 'shell' ? undefined : this.masker(`ssh.${mode}.stderr`, findings);
    const forward = (source: NodeJS.ReadableStream & { pause(): unknown; resume(): unknown }, target: NodeJS.WritableStream, label: string, masker: ByteStreamMasker | undefined, chunk: Buffer): void => {
      const masked = masker ? Buffer.from(masker.push(chunk)) : chunk;
      if (masked.length > 0) {
        session.recordFrame('upstream-to-client', label, masked, { channel, byteLength: chunk.length });
        if (!target.write(masked)) {
          source.pause();
          target.once('drain', () => source.resume());
        }
      }
      if (session.recorderSaturated) {
        source.pause();
        void session.whenRecorderReady().then(() => source.resume());
      }
    };
    const ports: TerminalPorts = {
      toUpstream: (bytes, label) => {
        session.recordFrame('client-to-upstream', label, bytes, { channel });
        upstream.write(bytes);
      },
      // A pty shows the notice in the terminal (stdout); a shell without one gets it on stderr.
      toClient: (text, label) => {
        const bytes = Buffer.from(text, 'utf8');
        session.recordFrame('upstream-to-client', label, bytes, { channel });
        (mode === 'shell' ? client : client.stderr).write(bytes);
      },
      pauseInput: () => client.pause(),
      resumeInput: () => client.resume(),
    };
    const gate = mode === 'shell' ? new TerminalLineGate(ports, { session, kind: 'shell', unverifiableLines: this.context.unverifiableLines, abort: this.abort.signal }) : undefined;
    const stdinGate = mode === 'shell-no-pty' ? new StdinLineGate({ ...ports, endUpstream: () => upstream.end() }, { session, kind: 'shell', abort: this.abort.signal }) : undefined;
    const scp = scpRun ? this.scpBridge(client, upstream, scpRun) : undefined;
    upstream.on('data', (chunk: Buffer) => {
      if (scp && scpRun?.command.mode === 'source') {
        scp.records(chunk);
        return;
      }
      gate?.observeOutput(chunk);
      forward(upstream, client, 'stdout', stdoutMasker, chunk);
    });
    upstream.stderr.on('data', (chunk: Buffer) => forward(upstream.stderr, client.stderr, 'stderr', stderrMasker, chunk));
    client.on('data', (chunk: Buffer) => {
      if (gate) {
        gate.input(chunk);
        return;
      }
      if (stdinGate) {
        stdinGate.input(chunk);
        return;
      }
      if (scp && scpRun?.command.mode === 'sink') {
        scp.records(chunk);
        return;
      }
      session.recordFrame('client-to-upstream', 'stdin', chunk, { channel });
      if (!upstream.write(chunk)) {
        client.pause();
        upstream.once('drain', () => client.resume());
      }
    });
    client.on('end', () => (stdinGate ? stdinGate.end() : upstream.end()));
    let exit: { code: number } | { signal: string; coreDumped: boolean; description: string } | undefined;
    upstream.on('exit', (code: number | null, signal?: string, coreDumped?: boolean, description?: string) => {
      exit = code === null || code === undefined ? { signal: (signal ?? 'SIGKILL').replace(/^SIG/, ''), coreDumped: coreDumped === true, description: description ?? '' } : { code };
    });
    let finished = false;
    const finish = (): void => {
      if (finished) return;
      finished = true;
      for (const [masker, target, label] of [
        [stdoutMasker, client, 'stdout'],
        [stderrMasker, client.stderr, 'stderr'],
      ] as const) {
        const tail = masker ? Buffer.from(masker.end()) : Buffer.alloc(0);
        if (tail.length > 0) {
          session.recordFrame('upstream-to-client', label, tail, { channel });
          target.write(tail);
        }
      }
      if (findings.total > 0) session.recordMasked(commandId, findings);
      scp?.end();
      gate?.close();
      stdinGate?.close();
      if (exit) this.control('upstream-to-client', 'code' in exit ? 'exit-status' : 'exit-signal', 'code' in exit ? { code: exit.code } : { signal: exit.signal });
      if (exit && 'code' in exit) client.exit(exit.code);
      else if (exit) client.exit(exit.signal, exit.coreDumped, exit.description);
      client.end();
    };
    upstream.on('close', finish);
    upstream.on('end', () => undefined);
  }
}
