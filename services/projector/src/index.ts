// The projector service: a Nest module that the embedded host (custodian start) and the
// standalone process (src/main.ts, distributed deployment) both mount.
export { ProjectorModule, type ProjectorDependencies } from './projector.module.js';
export const SERVICE_NAME = 'projector';
