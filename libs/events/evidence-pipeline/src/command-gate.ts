// Strict mode, in one place: before a command is forwarded to its target, its command.issued and
// policy.decided events must be durable. The session pipeline (protocol gateways) calls this.
import type { CustodianEvent } from '@custodian/event-contracts';
import type { EvidencePipeline } from './evidence-pipeline.js';

export interface CommandGateOptions {
  /** Default true: forwarding waits until the events are durable. */
  readonly strict?: boolean;
  /** Relaxed mode only: told when a handed-off accept() fails after the command went ahead. */
  readonly onLateRefusal?: (error: unknown) => void;
}

export class CommandEvidenceGate {
  readonly strict: boolean;

  constructor(
    private readonly pipeline: EvidencePipeline,
    private readonly options: CommandGateOptions = {},
  ) {
    this.strict = options.strict ?? true;
  }

  /**
   * Resolves when the command may be forwarded; rejects with `PipelineRefusedError` when it must
   * be refused (fail closed). Strict: after `accept()` resolved. Relaxed: at once, always; the
   * events are handed to the pipeline in the background, and a refusal there is counted and later
   * recorded by the pipeline (`command.refused`) and reported to `onLateRefusal`.
   */
  async beforeForward(events: readonly CustodianEvent[]): Promise<void> {
    if (this.strict) {
      await this.pipeline.accept(events);
      return;
    }
    this.pipeline.accept(events).catch((error: unknown) => this.options.onLateRefusal?.(error));
  }
}
