// The gateway service: a Nest module that the embedded host (custodian start) and the
// standalone process (src/main.ts, distributed deployment) both mount.
export { GatewayModule, type GatewayDependencies } from './gateway.module.js';
export const SERVICE_NAME = 'gateway';
