// The one place a listener's SessionPipeline is built from the gateway core: when the pipeline's
// options change, only this function changes.
import { SessionPipeline } from '@custodian/session-pipeline';
import type { GatewayCore } from './gateway-core.js';

/** What a listener section adds to the core's settings. */
export interface ListenerPipelineSettings {
  /** The listener's own audiences (`gateways.<protocol>.audiences`); the gateway's otherwise. */
  readonly audiences?: readonly string[];
}

/** A session pipeline for one listener, over the core's policy, approvals, evidence and keys. */
export function createSessionPipeline(core: GatewayCore, listener: ListenerPipelineSettings = {}): SessionPipeline {
  const audiences = core.audiencesFor(listener);
  return new SessionPipeline({
    verifier: core.verifier,
    policy: core.policy,
    evidence: core.evidence.pipeline,
    strict: core.evidence.strict,
    approvals: core.approvals,
    approvalWaitSeconds: core.settings.approvalWaitSeconds,
    authenticationFailures: core.authenticationFailures,
    source: core.source,
    maskingKey: core.maskingKey,
    custodyKey: core.custodySigner,
    maxFrameBytes: core.settings.maxFrameBytes,
    ...(audiences ? { audiences } : {}),
  });
}
