// The ingest service: a Nest module that the embedded host (custodian start) and the
// standalone process (src/main.ts, distributed deployment) both mount.
export { IngestModule, type IngestDependencies } from './ingest.module.js';
export const SERVICE_NAME = 'ingest';
