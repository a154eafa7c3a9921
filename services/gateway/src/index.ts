// The gateway service: a Nest module that the embedded host (custodian start) and the
// standalone process (src/main.ts, distributed deployment) both mount.
export { GatewayModule, GATEWAY_EVIDENCE, type GatewayDependencies, type GatewayEvidence } from './gateway.module.js';
export { openGatewayEvidence } from './gateway-evidence.js';
export const SERVICE_NAME = 'gateway';
export { openGatewayCore, type GatewayCore, type GatewayCoreDependencies, type GatewayEvidenceChannel } from './gateway-core.js';
export { GatewayKeyError, loadCustodySigner, loadMaskingKey, type CustodySigner, type GatewayKeyErrorCode } from './gateway-keys.js';
export { GATEWAY_LISTENERS, anyListenerEnabled, gatewayListenerProviders, startGateway, type GatewayListenerDependencies, type RunningGateway } from './gateway-listeners.js';
export { startPostgresListener, type RunningPostgresListener } from './postgres-listener.js';
export { createSessionPipeline, type ListenerPipelineSettings } from './session-pipelines.js';
