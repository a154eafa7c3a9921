import type { RefusalReasonCode } from '@custodian/event-bus';

export type { RefusalReasonCode } from '@custodian/event-bus';

export type SpoolErrorCode = 'SPOOL_FULL' | 'SPOOL_UNWRITABLE' | 'SPOOL_CORRUPT' | 'SPOOL_CLOSED' | 'SPOOL_INVALID_REQUEST';

/** A failure of the gateway's on-disk spool. */
export class SpoolError extends Error {
  override name = 'SpoolError';
  constructor(
    readonly code: SpoolErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/**
 * The pipeline could not make events durable, so the command they describe must not be
 * forwarded (fail closed). The message names the cause and is safe to show to the client.
 */
export class PipelineRefusedError extends Error {
  override name = 'PipelineRefusedError';
  constructor(
    readonly code: RefusalReasonCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export class PipelineClosedError extends Error {
  override name = 'PipelineClosedError';
  readonly code = 'PIPELINE_CLOSED';
  constructor() {
    super('the evidence pipeline is closed');
  }
}
