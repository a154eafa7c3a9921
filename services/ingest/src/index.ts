// The ingest service: a Nest module that the embedded host (custodian start) and the
// standalone process (src/main.ts, distributed deployment) both mount.
export { IngestModule, INGEST_WORK, type IngestDependencies } from './ingest.module.js';
export { openIngestWork } from './ingest-work.js';
export const SERVICE_NAME = 'ingest';
