import type { CustodianEvent } from '@custodian/event-contracts';

/** What accept() promises when it resolves: the events survive a crash of this process. */
export interface Accepted {
  readonly events: number;
  /** Where they are durable: the gateway's spool (distributed) or the event store itself (embedded). */
  readonly durableIn: 'spool' | 'store';
}

/** Refusal state for readiness checks and diagnostics. */
export interface PipelineStatus {
  /** False while new commands would be refused. */
  readonly accepting: boolean;
  /** Why not, when not accepting. */
  readonly refusing?: { readonly code: string; readonly message: string };
  /** Accepted events not yet delivered onwards (spool depth; 0 embedded). */
  readonly undelivered: number;
}

/**
 * Where the gateway hands every event. In strict mode the session pipeline awaits `accept()` for
 * a command's `command.issued` and `policy.decided` events before forwarding the command.
 */
export interface EvidencePipeline {
  /**
   * Makes the events durable, then resolves. Events of one stream must be passed in sequence
   * order (one call after another, or in one call); they are delivered in that order.
   * Rejects with `PipelineRefusedError` (code and a message naming the cause) when they cannot
   * be made durable: the caller refuses the command (fail closed). A refusal is itself recorded
   * as a `command.refused` event once the pipeline accepts events again.
   */
  accept(events: readonly CustodianEvent[]): Promise<Accepted>;
  status(): PipelineStatus;
  /** Stops accepting; delivers what it can within the configured grace period; releases files. */
  close(): Promise<void>;
}
