import type { PolicyContext } from '@custodian/policy';
import type { CommandKind, PipelineSession } from '@custodian/session-pipeline';

/**
 * What a line gate needs from its protocol adapter. The adapter records every byte it is handed
 * (`recordFrame`, with its own channel framing) before sending it: the gates never record.
 */
export interface TerminalPorts {
  /** Sends bytes the client typed to the upstream shell (label: how the frame is recorded). */
  toUpstream(bytes: Buffer, label: string): void;
  /** Shows the gateway's own text to the client (a notice, a refusal). */
  toClient(text: string, label: string): void;
  /** Stops reading client input (too much held while a line waits for its decision). */
  pauseInput(): void;
  resumeInput(): void;
}

export interface LineGateContext {
  readonly session: PipelineSession;
  /** The context rules match against (the session's, plus where the command runs). */
  readonly policyContext?: PolicyContext;
  /** The command kind of the issued lines (`shell`, `kubernetes-exec`, …). */
  readonly kind: CommandKind;
  /** Added to each line's command summary (e.g. the namespace and pod it runs in). */
  readonly summary?: Readonly<Record<string, unknown>>;
  readonly abort: AbortSignal;
}
