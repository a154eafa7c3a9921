// The gateway service: a Nest module that the embedded host (custodian start) and the
// standalone process (src/main.ts, distributed deployment) both mount.
export { GatewayModule, GATEWAY_EVIDENCE, type GatewayDependencies, type GatewayEvidence } from './gateway.module.js';
export { openGatewayEvidence } from './gateway-evidence.js';
export const SERVICE_NAME = 'gateway';
export { POSTGRES_GATEWAY, postgresGatewayProviders, startPostgresGateway, type RunningPostgresGateway } from './postgres-listener.js';
