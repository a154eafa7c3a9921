// The evidence pipeline: the gateway's durable spool and drainer (distributed), the direct store
// path (embedded), fail-closed refusals, strict-mode gating, and the projection runner.
export * from './errors.js';
export * from './evidence-pipeline.js';
export { Spool, encodeRecord, RECORD_HEADER_BYTES, type SpoolDepth, type SpoolOptions, type SpoolPosition, type SpoolRecord, type SpoolRecovery } from './spool.js';
export { SpooledEvidencePipeline, encodeEvents, decodeEventMessages, type SpooledPipelineOptions } from './spooled-pipeline.js';
export { StoreEvidencePipeline, groupByStream, type StorePipelineOptions } from './store-pipeline.js';
export { RefusalLedger, gatewayServiceIdentity } from './refusals.js';
export { CommandEvidenceGate, type CommandGateOptions } from './command-gate.js';
export { runProjection, type Projection, type ProjectionRunnerOptions, type RunningProjection } from './projection-runner.js';
