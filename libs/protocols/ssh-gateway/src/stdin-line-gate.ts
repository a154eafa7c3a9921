// A shell without a pty (`ssh -T host`, `ssh host < script` into a login shell): there is no
// terminal echo, so each line can be held whole until its newline, decided with the shell language
// and only then forwarded. A refused line never reaches the shell: a message goes to stderr and the
// next line is read. A line that does not parse on its own (a multi-line `if`, a here-document,
// a trailing backslash, unbalanced quotes) is denied by the shell language: fail closed.
import { MaskingFindings } from '@custodian/masking';
import { decideShellSync, shellLanguage } from '@custodian/policy-languages';
import type { PipelineSession } from '@custodian/session-pipeline';
import type ssh2 from 'ssh2';
import { refusalText } from './gateway-errors.js';

/** Longest line held while waiting for its newline; a longer one is refused whole. */
export const MAX_STDIN_LINE = 64 * 1024;

export interface StdinLineGateContext {
  readonly session: PipelineSession;
  readonly channel: number;
  readonly abort: AbortSignal;
  notice(text: string): void;
}

export class StdinLineGate {
  private pending = Buffer.alloc(0);
  private chain: Promise<void> = Promise.resolve();
  private queued = 0;
  private discarding = false;

  constructor(
    private readonly client: ssh2.ServerChannel,
    private readonly upstream: ssh2.ClientChannel,
    private readonly context: StdinLineGateContext,
  ) {}

  input(chunk: Buffer): void {
    let data = chunk;
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
    this.chain = this.chain.then(() => void this.upstream.end());
  }

  private enqueue(line: Buffer | undefined): void {
    this.queued++;
    // Keys stop being read while lines wait for their decisions (bounded memory).
    if (this.queued > 8) this.client.pause();
    this.chain = this.chain
      .then(() => (line ? this.decide(line) : this.tooLong()))
      .catch(() => undefined)
      .finally(() => {
        this.queued--;
        if (this.queued <= 8) this.client.resume();
      });
  }

  private async tooLong(): Promise<void> {
    const session = this.context.session;
    const decision = session.gatewayBlock('shell', 'custodian:line-too-long', `a line longer than ${MAX_STDIN_LINE} bytes`, `a line longer than ${MAX_STDIN_LINE} bytes was not run`);
    await session.issue({ language: 'shell', kind: 'shell', text: `(line longer than ${MAX_STDIN_LINE} bytes)`, summary: { stdin: true }, decision, signal: this.context.abort });
    this.context.notice(`custodian: a line longer than ${MAX_STDIN_LINE} bytes was not run\n`);
  }

  private async decide(line: Buffer): Promise<void> {
    const session = this.context.session;
    const text = line.toString('utf8').replace(/\r?\n$/, '');
    if (text.trim() === '') {
      this.forward(line);
      return;
    }
    const decision = decideShellSync(session.policy, session.policyContext, text);
    const findings = new MaskingFindings();
    const masked = session.masking.maskText(text, 'command', findings);
    const outcome = await session.issue({ language: 'shell', kind: 'shell', text: masked, summary: { ...shellLanguage.summary(decision.classification), stdin: true }, decision, signal: this.context.abort });
    if (findings.total > 0) session.recordMasked(outcome.commandId, findings);
    if (outcome.forward) this.forward(line);
    else this.context.notice(`${refusalText(outcome.message, outcome.ruleId)}\n`);
  }

  private forward(line: Buffer): void {
    this.context.session.recordFrame('client-to-upstream', 'stdin', line, { channel: this.context.channel });
    this.upstream.write(line);
  }
}
