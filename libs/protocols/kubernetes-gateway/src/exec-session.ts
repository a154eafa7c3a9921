// One exec through the gateway: the command decided by the shell language (argv joined as a shell
// line, so `sh -c '<script>'` has its script decided too), held for approval with a message on
// stderr, refused with a Status on the error channel naming the rule, or run on the cluster with
// the credential the gateway holds. Then every channel is relayed both ways: stdout and stderr
// masked by the policy's detectors (bounded hold-back per channel), every message recorded after
// masking with its channel byte, the API server's exit Status passed through.
import { MaskingFindings, type StreamMasker } from '@custodian/masking';
import type { PolicyContext, PolicyDecision } from '@custodian/policy';
import { decideShellSync, shellLanguage } from '@custodian/policy-languages';
import type { GatewayLogger } from '@custodian/gateway-kit';
import type { PipelineSession, SessionCloseReason } from '@custodian/session-pipeline';
import { lineDecidedShellDecision, STDIN_LINES_RULE, StdinLineGate, TerminalLineGate, type TerminalPorts, type UnverifiableLinePolicy } from '@custodian/terminal-line-policy';
import type WebSocket from 'ws';
import {
  CHANNEL_NAMES,
  Channel,
  ChannelProtocolError,
  JsonObjectStream,
  decodeChannelMessage,
  encodeChannelMessage,
  exitCodeOf,
  refusalStatus,
  terminalSizeOf,
  type ChannelProtocol,
  type ExecStatus,
} from './channel-protocol.js';
import { argvToShellText, type ExecRequest } from './exec-request.js';
import { KubernetesGatewayError } from './gateway-errors.js';
import type { KubernetesCluster } from './gateway-options.js';
import { readUpstreamPod } from './pod-read.js';
import { openUpstreamExec, type UpstreamExec } from './upstream-cluster.js';

export interface ExecSessionOptions {
  readonly session: PipelineSession;
  readonly cluster: KubernetesCluster;
  readonly request: ExecRequest;
  readonly protocol: ChannelProtocol;
  /** Whether the namespace is on the cluster's allow-list (decided by the gateway before policy). */
  readonly namespaceAllowed: boolean;
  readonly logger: GatewayLogger;
  readonly maxMessageBytes: number;
  readonly maxBufferedBytes: number;
  readonly maxHeldInputBytes: number;
  /** How long output masking may hold back a channel's tail while the API server is quiet (ms). */
  readonly maskingIdleFlushMs: number;
  /** A tty shell line the gateway cannot follow (full-screen program, keys it does not model). */
  readonly unverifiableLines: UnverifiableLinePolicy;
}

/** The rule id of the gateway's own refusal of a namespace outside the cluster's allow-list. */
export const NAMESPACE_RULE = 'custodian:namespace-not-allowed';
/** The rule id of the gateway's refusal of a malformed client message. */
export const PROTOCOL_RULE = 'custodian:protocol-violation';

/** The rule id of the gateway's own decision to open a shell whose stdin lines it decides one by one. */
export const LINE_MODE_RULE = STDIN_LINES_RULE;
/** The rule id of the gateway's refusal of an exec without a container on a pod with several. */
export const CONTAINER_RULE = 'custodian:container-not-named';

/** The command as events record it and approvers see it: where it runs, then the argv as a shell line. */
export function execCommandText(request: ExecRequest): string {
  const where = `-n ${request.namespace} ${request.pod}${request.container ? ` -c ${request.container}` : ''}`;
  const modes = `${request.stdin ? ' -i' : ''}${request.tty ? ' -t' : ''}`;
  return `exec ${where}${modes} -- ${argvToShellText(request.command)}`;
}

interface ChannelMasker {
  readonly masker: StreamMasker;
  readonly decoder: InstanceType<typeof TextDecoder>;
  /** Flushes the held-back tail once the channel has been quiet for maskingIdleFlushMs. */
  idleFlush?: NodeJS.Timeout;
}

export class ExecSession {
  private readonly session: PipelineSession;
  private readonly abort = new AbortController();
  private upstream: UpstreamExec | undefined;
  /** Client messages that arrived before the upstream was open (stdin sent at once by clients). */
  private held: Buffer[] = [];
  private heldBytes = 0;
  private clientGone = false;
  private finished = false;
  private commandId: string | undefined;
  /** The command's issue() while it runs: the session is closed only after it settles. */
  private deciding: Promise<unknown> | undefined;
  private readonly findings = new MaskingFindings();
  /** An interactive shell's stdin is decided line by line (`exec -i … -- sh`: see lineDecidedShellDecision): whole lines without a tty, at Enter with one. */
  private stdinGate: StdinLineGate | undefined;
  private terminalGate: TerminalLineGate | undefined;
  /** The exec as run: the container is filled in when the client named none. */
  private request: ExecRequest;
  private credentialUsed = false;
  private readonly maskers = new Map<number, ChannelMasker>();
  private readonly resize = new JsonObjectStream(1024);
  private readonly status = new JsonObjectStream(64 * 1024);
  private statusSent = false;
  private exitCode: number | undefined;
  /** Bytes handed to each socket and not yet written (backpressure). */
  private clientQueued = 0;
  private upstreamQueued = 0;
  private readonly pauses = { upstream: new Set<string>(), client: new Set<string>() };
  private done!: () => void;
  readonly ended = new Promise<void>((resolve) => (this.done = resolve));

  constructor(
    private readonly client: WebSocket,
    private readonly options: ExecSessionOptions,
  ) {
    this.session = options.session;
    this.request = options.request;
    client.on('message', (data: Buffer, isBinary: boolean) => this.fromClient(isBinary ? data : Buffer.from(data)));
    client.on('close', () => {
      this.clientGone = true;
      this.abort.abort();
      void this.finish('client-closed');
    });
    client.on('error', (error: Error & { code?: string }) => {
      // ws reports an oversized message (1009) or a broken frame here, then closes.
      this.options.logger.warn({ sessionId: this.session.id, code: error.code }, `kubernetes exec: client WebSocket error: ${error.message}`);
      this.clientGone = true;
      this.abort.abort();
      void this.finish('error', error.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH' ? 'MESSAGE_TOO_LARGE' : 'CLIENT_PROTOCOL_ERROR');
    });
  }

  /** The session's policy context plus where this exec runs (rules may match namespace, pod, container). */
  private get policyContext(): PolicyContext {
    const { request } = this;
    return { ...this.session.policyContext, kubernetes: { namespace: request.namespace, pod: request.pod, ...(request.container ? { container: request.container } : {}) } };
  }

  /** The exit code the API server reported, once it has. */
  get reportedExitCode(): number | undefined {
    return this.exitCode;
  }

  /** Decides, waits for approval if needed, runs the command upstream and relays until either side ends. */
  async run(): Promise<void> {
    const { session } = this.options;
    // Only a rule on containers needs the container named (reading the pod uses the held credential).
    if (!this.request.container && this.options.namespaceAllowed && session.policy.rules.some((rule) => rule.match.kubernetes?.containers !== undefined)) {
      const refused = await this.resolveContainer();
      if (refused) return;
    }
    const { request } = this;
    const findings = new MaskingFindings();
    const rawText = execCommandText(request);
    const text = session.masking.detection.compiled.length === 0 ? rawText : session.masking.maskText(rawText, 'command', findings);
    const shellText = argvToShellText(request.command);
    let decision: PolicyDecision;
    let summary: Record<string, unknown>;
    const kubernetes = { namespace: request.namespace, pod: request.pod, ...(request.container ? { container: request.container } : {}), stdin: request.stdin, tty: request.tty };
    if (!this.options.namespaceAllowed) {
      decision = session.gatewayBlock('shell', NAMESPACE_RULE, `namespace ${request.namespace} is not on the allow-list of cluster ${this.options.cluster.name}`, `namespace ${request.namespace} is not open through Custodian on cluster ${this.options.cluster.name}`);
      summary = { kubernetes };
    } else {
      const shellDecision = decideShellSync(session.policy, this.policyContext, shellText);
      decision = shellDecision;
      summary = { ...shellLanguage.summary(shellDecision.classification), kubernetes };
      // A shell reading its commands from stdin (`exec -i … -- sh`): the gateway decides each
      // stdin line as its own command. Blocked only by the default deny or the guarded flag
      // (shell-from-stdin, which no rule permits): the gateway opens it (its own rule). A rule
      // allowing or holding it: it opens (once granted), and its lines are still decided. A rule
      // blocking it: blocked.
      const lineDecided = request.stdin ? lineDecidedShellDecision(shellDecision) : undefined;
      if (lineDecided) {
        this.openLineGate();
        summary = { ...summary, stdinLines: true };
        decision = lineDecided;
      }
    }
    if (decision.decision === 'require-approval' && session.canHoldForApproval) {
      this.sendToClient(Channel.stderr, `Custodian: this command needs approval (rule ${decision.ruleId ?? 'unknown'}); waiting for an approver…\n`);
    }
    const issuing = session.issue({ language: 'shell', kind: 'kubernetes-exec', text, summary, decision, signal: this.abort.signal });
    this.deciding = issuing;
    const outcome = await issuing;
    this.deciding = undefined;
    this.commandId = outcome.commandId;
    if (!findings.isEmpty) session.recordMasked(outcome.commandId, findings);
    if (this.clientGone) return this.finish('client-closed');
    if (!outcome.forward) {
      this.refuse(refusalStatus(outcome.message, 'Forbidden', 403));
      return this.finish('policy');
    }
    try {
      this.upstream = await openUpstreamExec(this.options.cluster, request, this.options.protocol, this.options.maxMessageBytes, this.abort.signal);
    } catch (error) {
      const failure = error instanceof KubernetesGatewayError ? error : new KubernetesGatewayError('UPSTREAM_UNAVAILABLE', 'the API server could not be reached');
      if (this.clientGone) return this.finish('client-closed');
      this.options.logger.warn({ sessionId: session.id, cluster: this.options.cluster.name, code: failure.code }, `kubernetes exec: upstream failed: ${failure.message}`);
      this.refuse(refusalStatus(`Custodian could not run the command on cluster ${this.options.cluster.name}: ${failure.message}`, 'InternalError', 500));
      return this.finish('error', failure.code);
    }
    const upstream = this.upstream;
    // From here the held credential is in play: every client-bound byte and event is scanned for it.
    this.credentialInjected(upstream.method, upstream.secret);
    // The exec's start, for replays (a control frame: not part of the custody digest).
    session.recordFrame('client-to-upstream', request.tty ? 'shell' : 'exec', Buffer.from(JSON.stringify({ tty: request.tty }), 'utf8'), { channel: 0, control: true });
    if (this.clientGone) {
      upstream.socket.terminate();
      return this.finish('client-closed');
    }
    upstream.socket.on('message', (data: Buffer, isBinary: boolean) => this.fromUpstream(isBinary ? data : Buffer.from(data)));
    upstream.socket.on('close', () => void this.upstreamClosed());
    upstream.socket.on('error', (error: Error & { code?: string }) => {
      this.options.logger.warn({ sessionId: session.id, code: error.code }, `kubernetes exec: upstream WebSocket error: ${error.message}`);
    });
    const held = this.held;
    this.held = [];
    this.heldBytes = 0;
    for (const message of held) this.fromClient(message);
    await this.ended;
  }

  // ---- client → upstream ----

  private fromClient(message: Buffer): void {
    if (this.finished) return;
    if (!this.upstream) {
      this.heldBytes += message.length;
      if (this.heldBytes > this.options.maxHeldInputBytes) {
        this.violation('CLIENT_INPUT_OVERFLOW', `more than ${this.options.maxHeldInputBytes} bytes of input arrived before the command was allowed to run`);
        return;
      }
      this.held.push(message);
      return;
    }
    let decoded;
    try {
      decoded = decodeChannelMessage(message, this.options.protocol, 'client');
      if (decoded.channel === Channel.resize) for (const size of this.resize.push(decoded.payload)) terminalSizeOf(size);
    } catch (error) {
      if (error instanceof ChannelProtocolError) {
        this.violation(error.code, error.message);
        return;
      }
      throw error;
    }
    if (this.terminalGate && decoded.channel === Channel.stdin) {
      this.terminalGate.input(decoded.payload);
      return;
    }
    if (this.stdinGate && (decoded.channel === Channel.stdin || decoded.channel === Channel.close)) {
      if (decoded.channel === Channel.stdin) this.stdinGate.input(decoded.payload);
      else {
        this.closeAfterLines = message;
        this.stdinGate.end();
      }
      return;
    }
    const label = decoded.channel === Channel.close ? `close:${CHANNEL_NAMES[decoded.payload[0]!] ?? decoded.payload[0]}` : CHANNEL_NAMES[decoded.channel]!;
    this.session.recordFrame('client-to-upstream', label, message, { channel: decoded.channel });
    this.sendToUpstream(message);
  }

  private sendToUpstream(message: Buffer): void {
    const socket = this.upstream?.socket;
    if (!socket || socket.readyState !== socket.OPEN) return;
    this.upstreamQueued += message.length;
    if (this.upstreamQueued > this.options.maxBufferedBytes) this.pause('client', 'upstream-full');
    socket.send(message, { binary: true }, () => {
      this.upstreamQueued -= message.length;
      if (this.upstreamQueued <= this.options.maxBufferedBytes / 2) this.resume('client', 'upstream-full');
    });
  }

  // ---- stdin lines of an interactive shell ----

  /** The client's close of stdin (v5), passed on once every line before it is decided. */
  private closeAfterLines: Buffer | undefined;

  /** The line gate for this exec: at Enter with a tty (the keys are echoed by the shell), whole lines without. */
  private openLineGate(): void {
    const { request } = this;
    const ports: TerminalPorts = {
      toUpstream: (bytes, label) => {
        const message = encodeChannelMessage(Channel.stdin, bytes);
        this.session.recordFrame('client-to-upstream', label, message, { channel: Channel.stdin });
        this.sendToUpstream(message);
      },
      // With a tty the terminal is stdout; without one, the gateway's words go to stderr.
      toClient: (text) => this.sendToClient(request.tty ? Channel.stdout : Channel.stderr, text),
      pauseInput: () => this.pause('client', 'line-gate'),
      resumeInput: () => this.resume('client', 'line-gate'),
    };
    const context = {
      session: this.session,
      policyContext: this.policyContext,
      kind: 'kubernetes-exec' as const,
      summary: { kubernetes: { namespace: request.namespace, pod: request.pod, ...(request.container ? { container: request.container } : {}), stdinLine: true } },
      abort: this.abort.signal,
    };
    if (request.tty) this.terminalGate = new TerminalLineGate(ports, { ...context, unverifiableLines: this.options.unverifiableLines });
    else
      this.stdinGate = new StdinLineGate(
        {
          ...ports,
          endUpstream: () => {
            const close = this.closeAfterLines;
            if (!close || this.finished) return;
            this.session.recordFrame('client-to-upstream', 'close:stdin', close, { channel: Channel.close });
            this.sendToUpstream(close);
          },
        },
        context,
      );
  }

  /** The held credential's first use in this session (the pod read or the exec): recorded once, and the custody scan starts. */
  private credentialInjected(method: UpstreamExec['method'], secret: string): void {
    if (this.credentialUsed) return;
    this.credentialUsed = true;
    this.session.credentialInjected(this.options.cluster.credentialRef, method, secret);
  }

  /**
   * An exec without a container runs in the pod's only container (the API server refuses it on a
   * pod with several). When rules match containers, the gateway names it before deciding, so that
   * they see the container the command will run in and the upstream runs exactly what was
   * decided. Returns whether the exec was refused.
   */
  private async resolveContainer(): Promise<boolean> {
    const { cluster } = this.options;
    const { namespace, pod } = this.request;
    let containers: string[] = [];
    let failure: string | undefined;
    try {
      const read = await readUpstreamPod(cluster, namespace, pod, this.abort.signal);
      this.credentialInjected(read.method, read.secret);
      if (!read.found) failure = read.status === 404 ? `pod ${namespace}/${pod} was not found on cluster ${cluster.name}` : `the API server of cluster ${cluster.name} refused to read pod ${namespace}/${pod} (${read.status})`;
      else {
        const spec = read.pod['spec'] as { containers?: { name?: unknown }[] } | undefined;
        containers = (Array.isArray(spec?.containers) ? spec.containers : []).map((c) => c?.name).filter((n): n is string => typeof n === 'string');
      }
    } catch (error) {
      failure = error instanceof KubernetesGatewayError ? error.message : `the API server of cluster ${cluster.name} could not be reached`;
    }
    if (failure === undefined && containers.length === 1) {
      this.request = { ...this.request, container: containers[0]! };
      return false;
    }
    const message = failure ?? `a container name must be specified for pod ${namespace}/${pod}, choose one of: [${containers.slice(0, 32).join(' ')}]`;
    const decision = this.session.gatewayBlock('shell', CONTAINER_RULE, message, `Custodian did not run the command: ${message}`);
    const outcome = await this.session.issue({ language: 'shell', kind: 'kubernetes-exec', text: execCommandText(this.request), summary: { kubernetes: { namespace, pod, stdin: this.request.stdin, tty: this.request.tty } }, decision, signal: this.abort.signal });
    this.commandId = outcome.commandId;
    this.refuse(refusalStatus(outcome.forward ? `Custodian did not run the command: ${message}` : outcome.message, failure === undefined ? 'BadRequest' : 'NotFound', failure === undefined ? 400 : 404));
    await this.finish(failure === undefined ? 'policy' : 'error', failure === undefined ? undefined : 'UPSTREAM_POD_UNREADABLE');
    return true;
  }

  // ---- upstream → client ----

  private fromUpstream(message: Buffer): void {
    if (this.finished) return;
    let decoded;
    try {
      decoded = decodeChannelMessage(message, this.options.protocol, 'server');
    } catch (error) {
      if (!(error instanceof ChannelProtocolError)) throw error;
      this.options.logger.warn({ sessionId: this.session.id, code: error.code }, `kubernetes exec: the API server sent an invalid message: ${error.message}`);
      this.refuse(refusalStatus(`Custodian refused a malformed message from the API server (${error.code})`, 'InternalError', 500));
      void this.finish('error', error.code);
      return;
    }
    const { channel, payload } = decoded;
    if (channel === Channel.stdout || channel === Channel.stderr) {
      this.sendMasked(channel, payload);
    } else if (channel === Channel.error) {
      let statuses: unknown[];
      try {
        statuses = this.status.push(payload);
      } catch (error) {
        if (!(error instanceof ChannelProtocolError)) throw error;
        this.refuse(refusalStatus(`Custodian refused the API server's status (${error.code})`, 'InternalError', 500));
        void this.finish('error', error.code);
        return;
      }
      for (const status of statuses) this.passStatus(status);
    } else if (channel === Channel.close) {
      // The API server will write no more on a channel: flush what masking held back. Not passed
      // on: @kubernetes/client-node ends process.stdout on a close for stdout.
      const closed = payload[0]!;
      if (closed === Channel.stdout || closed === Channel.stderr) this.flushMasker(closed);
    }
    if (this.session.recorderSaturated) {
      this.pause('upstream', 'recorder');
      void this.session.whenRecorderReady().then(() => this.resume('upstream', 'recorder'));
    }
  }

  private maskerFor(channel: number): ChannelMasker | undefined {
    if (this.session.masking.detection.compiled.length === 0) return undefined;
    let entry = this.maskers.get(channel);
    if (!entry) {
      entry = { masker: this.session.masking.createStreamMasker(CHANNEL_NAMES[channel]!, this.findings), decoder: new TextDecoder('utf-8', { fatal: false, ignoreBOM: true }) };
      this.maskers.set(channel, entry);
    }
    return entry;
  }

  /** stdout/stderr through the channel's stream masker (bounded hold-back), then to the client. */
  private sendMasked(channel: number, payload: Buffer): void {
    if (channel === Channel.stdout) this.terminalGate?.observeOutput(payload);
    const entry = this.maskerFor(channel);
    if (!entry) {
      this.sendToClient(channel, payload);
      return;
    }
    const out = entry.masker.push(entry.decoder.decode(payload, { stream: true }));
    if (out.length > 0) this.sendToClient(channel, out);
    // An interactive command's output must not wait for bytes that may never come (a detector
    // can hold a complete match back until its window fills): once the channel is quiet, the
    // tail is masked as if the stream ended there and masking starts afresh.
    if (entry.idleFlush) clearTimeout(entry.idleFlush);
    const { stats } = entry.masker;
    entry.idleFlush = stats.consumed > stats.emittedInput ? setTimeout(() => this.flushMasker(channel), this.options.maskingIdleFlushMs) : undefined;
  }

  private flushMasker(channel: number): void {
    const entry = this.maskers.get(channel);
    if (!entry) return;
    if (entry.idleFlush) clearTimeout(entry.idleFlush);
    this.maskers.delete(channel);
    const tail = entry.decoder.decode();
    const out = (tail ? entry.masker.push(tail) : '') + entry.masker.end();
    if (out.length > 0) this.sendToClient(channel, out);
  }

  private flushMaskers(): void {
    for (const channel of [...this.maskers.keys()]) this.flushMasker(channel);
  }

  /** The API server's exit Status, after everything it wrote before it (masked; detectors apply to its message too). */
  private passStatus(status: unknown): void {
    this.flushMaskers();
    this.exitCode = exitCodeOf(status);
    const json = JSON.stringify(status);
    const masked = this.session.masking.detection.compiled.length === 0 ? json : this.session.masking.maskText(json, 'error', this.findings);
    this.sendToClient(Channel.error, masked);
    this.statusSent = true;
  }

  /** Every client-bound message goes through here: recorded (and custody-scanned) exactly as sent. */
  private sendToClient(channel: number, payload: Uint8Array | string): void {
    const message = encodeChannelMessage(channel, payload);
    this.session.recordFrame('upstream-to-client', CHANNEL_NAMES[channel] ?? String(channel), message, { channel });
    if (this.client.readyState !== this.client.OPEN) return;
    this.clientQueued += message.length;
    if (this.clientQueued > this.options.maxBufferedBytes) this.pause('upstream', 'client-full');
    this.client.send(message, { binary: true }, () => {
      this.clientQueued -= message.length;
      if (this.clientQueued <= this.options.maxBufferedBytes / 2) this.resume('upstream', 'client-full');
    });
  }

  private pause(side: 'upstream' | 'client', reason: string): void {
    const reasons = this.pauses[side];
    if (reasons.size === 0) (side === 'upstream' ? this.upstream?.socket : this.client)?.pause();
    reasons.add(reason);
  }

  private resume(side: 'upstream' | 'client', reason: string): void {
    const reasons = this.pauses[side];
    if (!reasons.delete(reason) || reasons.size > 0) return;
    (side === 'upstream' ? this.upstream?.socket : this.client)?.resume();
  }

  // ---- endings ----

  /** A Status on the error channel, then a normal close (clients read the Status as the command's failure). */
  private refuse(status: ExecStatus): void {
    if (this.statusSent) return;
    this.flushMaskers();
    this.sendToClient(Channel.error, JSON.stringify(status));
    this.statusSent = true;
    if (this.client.readyState === this.client.OPEN) this.client.close(1000);
  }

  /** A client message the gateway will not forward: recorded as the gateway's block, the exec ends. */
  private violation(code: string, message: string): void {
    const decision = this.session.gatewayBlock('shell', PROTOCOL_RULE, `${code}: ${message}`, `Custodian refused a client message: ${message}`);
    this.options.logger.warn({ sessionId: this.session.id, code }, `kubernetes exec: ${message}`);
    this.refuse(refusalStatus(`Custodian refused a client message (${code}): ${message} [rule ${decision.ruleId ?? PROTOCOL_RULE}]`, 'BadRequest', 400));
    this.upstream?.socket.terminate();
    void this.finish('error', code);
  }

  private async upstreamClosed(): Promise<void> {
    if (this.finished) return;
    this.flushMaskers();
    if (!this.statusSent) {
      this.refuse(refusalStatus('the API server ended the exec without a status', 'InternalError', 500));
    } else if (this.client.readyState === this.client.OPEN) {
      this.client.close(1000);
    }
    await this.finish('upstream-closed');
  }

  private async finish(reason: SessionCloseReason, errorCode?: string): Promise<void> {
    if (this.finished) return;
    this.finished = true;
    this.abort.abort();
    this.terminalGate?.close();
    this.stdinGate?.close();
    for (const entry of this.maskers.values()) if (entry.idleFlush) clearTimeout(entry.idleFlush);
    if (this.upstream && this.upstream.socket.readyState !== this.upstream.socket.CLOSED) this.upstream.socket.close(1000);
    if (this.commandId && !this.findings.isEmpty) this.session.recordMasked(this.commandId, this.findings);
    if (this.client.readyState === this.client.OPEN) this.client.close(1000);
    await this.deciding?.catch(() => undefined);
    try {
      await this.session.close(reason, errorCode);
    } finally {
      this.done();
    }
  }

  /** Gateway shutdown: the client gets a Status, the upstream exec is closed. */
  async shutdown(): Promise<void> {
    this.refuse(refusalStatus('the Custodian gateway is shutting down', 'ServiceUnavailable', 503));
    await this.finish('shutdown');
  }
}
