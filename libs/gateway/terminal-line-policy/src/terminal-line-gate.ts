// Line-level policy for an interactive shell with a pty. Keys are forwarded as typed (so the shell
// echoes and edits as usual) except Enter: at Enter the modelled line (LineEditor) is decided with
// the shell language before the newline goes upstream. Allow → the newline is forwarded; block →
// the line is erased upstream (^E^U: end of line, kill to start; in a cooked tty ^U kills the whole
// line), a message is printed and the refusal recorded; approval → input is held until decided.
// A line the gateway cannot know (alternate screen, keys it does not model) follows the
// unverifiable-line policy: refuse, or pass with `unverified: true` in the command's summary.
import { MaskingFindings } from '@custodian/masking';
import { decideShellSync, shellLanguage } from '@custodian/policy-languages';
import { AlternateScreenTracker, LineEditor, type EditorEvent } from './line-editor.js';
import { refusalText } from './refusal-text.js';
import type { LineGateContext, TerminalPorts } from './terminal-ports.js';

/** What happens to a line the gateway cannot know: refused, passed (marked unverified), or refused for agents only. */
export type UnverifiableLinePolicy = 'refuse' | 'pass' | 'agent-refuses';

/** The rule id of the gateway's refusal of a line it cannot verify. */
export const UNVERIFIABLE_LINE_RULE = 'custodian:unverifiable-line';

const ERASE_LINE = Buffer.from([0x05, 0x15]);
/** Client input held while a line waits for its decision; beyond this the client's input is paused. */
const MAX_HELD_INPUT = 256 * 1024;

export interface TerminalLineGateContext extends LineGateContext {
  readonly unverifiableLines: UnverifiableLinePolicy;
}

export class TerminalLineGate {
  private readonly editor = new LineEditor();
  private readonly screen = new AlternateScreenTracker();
  private readonly held: EditorEvent[] = [];
  private heldBytes = 0;
  private deciding = false;
  private closed = false;

  constructor(
    private readonly ports: TerminalPorts,
    private readonly context: TerminalLineGateContext,
  ) {}

  /** The terminal's output, watched for full-screen programs (alternate screen). */
  observeOutput(chunk: Uint8Array): void {
    this.screen.observe(chunk);
  }

  /** Keys from the client. */
  input(chunk: Uint8Array): void {
    for (const event of this.editor.push(chunk)) {
      this.held.push(event);
      this.heldBytes += event.bytes.length;
    }
    if (this.heldBytes > MAX_HELD_INPUT) this.ports.pauseInput();
    void this.drain();
  }

  close(): void {
    this.closed = true;
  }

  private send(bytes: Buffer, label: string): void {
    if (bytes.length === 0) return;
    this.ports.toUpstream(bytes, label);
  }

  private print(text: string): void {
    this.ports.toClient(`\r\n${text.replace(/\r?\n/g, '\r\n')}\r\n`, 'custodian-notice');
  }

  private refusesUnverifiable(): boolean {
    const policy = this.context.unverifiableLines;
    return policy === 'refuse' || (policy === 'agent-refuses' && this.context.session.identity.kind === 'agent');
  }

  private async drain(): Promise<void> {
    if (this.deciding) return;
    this.deciding = true;
    try {
      while (this.held.length > 0 && !this.closed) {
        const event = this.held.shift()!;
        this.heldBytes -= event.bytes.length;
        if (event.kind === 'forward') this.send(event.bytes, 'stdin');
        else await this.enter(event);
      }
    } finally {
      this.deciding = false;
      if (this.heldBytes <= MAX_HELD_INPUT) this.ports.resumeInput();
    }
  }

  private async enter(event: Extract<EditorEvent, { kind: 'enter' }>): Promise<void> {
    const { session, kind, abort } = this.context;
    const alternate = this.screen.alternateScreen;
    const unverified = alternate || event.uncertain;
    if (!unverified && event.line.trim() === '') {
      this.send(event.bytes, 'stdin');
      return;
    }
    const findings = new MaskingFindings();
    const text = session.masking.maskText(event.line, 'command', findings);
    if (unverified && this.refusesUnverifiable()) {
      const why = alternate ? 'a full-screen program is running (alternate screen)' : 'the line was edited with keys the gateway cannot follow (completion, history, …)';
      const decision = session.gatewayBlock('shell', UNVERIFIABLE_LINE_RULE, `line not verifiable: ${why}`, `Custodian cannot verify this line: ${why}; retype it in full`);
      const outcome = await session.issue({ language: 'shell', kind, text, summary: { ...this.context.summary, unverified: true, alternateScreen: alternate }, decision, signal: abort });
      if (findings.total > 0) session.recordMasked(outcome.commandId, findings);
      this.refuse(outcome.forward ? '' : outcome.message, null);
      return;
    }
    if (alternate) {
      // Passed unverified: a full-screen program's Enter is not a shell line.
      this.send(event.bytes, 'stdin-unverified');
      return;
    }
    const decision = decideShellSync(session.policy, this.context.policyContext ?? session.policyContext, event.line);
    if (decision.decision === 'require-approval' && session.canHoldForApproval) this.print(`custodian: this line needs approval (rule ${decision.ruleId ?? 'unknown'}); waiting for an approver in Custodian (session ${session.id})…`);
    const summary = { ...shellLanguage.summary(decision.classification), ...this.context.summary, ...(unverified ? { unverified: true } : {}) };
    const outcome = await session.issue({ language: 'shell', kind, text, summary, decision, signal: abort });
    if (findings.total > 0) session.recordMasked(outcome.commandId, findings);
    if (this.closed) return;
    if (outcome.forward) this.send(event.bytes, 'stdin');
    else this.refuse(outcome.message, outcome.ruleId);
  }

  private refuse(message: string, ruleId: string | null): void {
    this.send(ERASE_LINE, 'custodian-erase-line');
    this.print(refusalText(message, ruleId));
    this.editor.reset();
  }
}
