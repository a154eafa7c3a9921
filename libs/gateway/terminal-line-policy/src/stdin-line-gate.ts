// A shell without a terminal (`ssh -T host`, `kubectl exec -i pod -- sh`, a script piped into a
// login shell): there is no echo, so each line can be held whole until its newline, decided with
// the shell language and only then forwarded. A refused line never reaches the shell: a message
// goes to the client and the next line is read. A line that does not parse on its own (a
// multi-line `if`, a here-document, a trailing backslash, unbalanced quotes) is denied by the
// shell language: fail closed.
import { MaskingFindings } from '@custodian/masking';
import { decideShellSync, shellLanguage } from '@custodian/policy-languages';
import { refusalText } from './refusal-text.js';
import type { LineGateContext, TerminalPorts } from './terminal-ports.js';

/** Longest line held while waiting for its newline; a longer one is refused whole. */
export const MAX_STDIN_LINE = 64 * 1024;
/** The rule id of the gateway's refusal of a line longer than MAX_STDIN_LINE. */
export const LINE_TOO_LONG_RULE = 'custodian:line-too-long';
/** Lines waiting for decisions before the client's input is paused. */
const MAX_QUEUED_LINES = 8;

export interface StdinLineGatePorts extends TerminalPorts {
  /** The client ended its input: after the last line is decided, the upstream's input is ended. */
  endUpstream(): void;
}

export class StdinLineGate {
  private pending = Buffer.alloc(0);
  private chain: Promise<void> = Promise.resolve();
  private queued = 0;
  private discarding = false;
  private closed = false;

  constructor(
    private readonly ports: StdinLineGatePorts,
    private readonly context: LineGateContext,
  ) {}

  input(chunk: Uint8Array): void {
    let data = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    for (;;) {
      const newline = data.indexOf(0x0a);
      if (newline < 0) break;
      const line = Buffer.concat([this.pending, data.subarray(0, newline + 1)]);
      this.pending = Buffer.alloc(0);
      data = data.subarray(newline + 1);
      if (this.discarding) this.discarding = false;
      else this.enqueue(line);
    }
    if (this.discarding) return;
    this.pending = Buffer.concat([this.pending, data]);
    if (this.pending.length > MAX_STDIN_LINE) {
      this.pending = Buffer.alloc(0);
      this.discarding = true;
      this.enqueue(undefined);
    }
  }

  /** The client's EOF: a last line without a newline is decided too, then the upstream gets EOF. */
  end(): void {
    if (this.pending.length > 0 && !this.discarding) this.enqueue(this.pending);
    this.pending = Buffer.alloc(0);
    this.chain = this.chain.then(() => {
      if (!this.closed) this.ports.endUpstream();
    });
  }

  /** The session ended: lines still queued are dropped. */
  close(): void {
    this.closed = true;
  }

  /** Settles when every line received so far has been decided (and forwarded or refused). */
  settled(): Promise<void> {
    return this.chain;
  }

  private enqueue(line: Buffer | undefined): void {
    this.queued++;
    // Keys stop being read while lines wait for their decisions (bounded memory).
    if (this.queued > MAX_QUEUED_LINES) this.ports.pauseInput();
    this.chain = this.chain
      .then(() => (this.closed ? undefined : line ? this.decide(line) : this.tooLong()))
      .catch(() => undefined)
      .finally(() => {
        this.queued--;
        if (this.queued <= MAX_QUEUED_LINES) this.ports.resumeInput();
      });
  }

  private async tooLong(): Promise<void> {
    const { session, kind, abort } = this.context;
    const decision = session.gatewayBlock('shell', LINE_TOO_LONG_RULE, `a line longer than ${MAX_STDIN_LINE} bytes`, `a line longer than ${MAX_STDIN_LINE} bytes was not run`);
    await session.issue({ language: 'shell', kind, text: `(line longer than ${MAX_STDIN_LINE} bytes)`, summary: { ...this.context.summary, stdin: true }, decision, signal: abort });
    this.ports.toClient(`custodian: a line longer than ${MAX_STDIN_LINE} bytes was not run\n`, 'custodian-notice');
  }

  private async decide(line: Buffer): Promise<void> {
    const { session, kind, abort } = this.context;
    const text = line.toString('utf8').replace(/\r?\n$/, '');
    // Blank and comment-only lines run nothing.
    if (/^\s*(#.*)?$/.test(text)) {
      this.ports.toUpstream(line, 'stdin');
      return;
    }
    const decision = decideShellSync(session.policy, this.context.policyContext ?? session.policyContext, text);
    if (decision.decision === 'require-approval' && session.canHoldForApproval) this.ports.toClient(`custodian: this line needs approval (rule ${decision.ruleId ?? 'unknown'}); waiting for an approver in Custodian (session ${session.id})…\n`, 'custodian-notice');
    const findings = new MaskingFindings();
    const masked = session.masking.maskText(text, 'command', findings);
    const outcome = await session.issue({ language: 'shell', kind, text: masked, summary: { ...shellLanguage.summary(decision.classification), ...this.context.summary, stdin: true }, decision, signal: abort });
    if (findings.total > 0) session.recordMasked(outcome.commandId, findings);
    if (this.closed) return;
    if (outcome.forward) this.ports.toUpstream(line, 'stdin');
    else this.ports.toClient(`${refusalText(outcome.message, outcome.ruleId)}\n`, 'custodian-notice');
  }
}
