// The projector service: a Nest module that the embedded host (custodian start) and the
// standalone process (src/main.ts, distributed deployment) both mount.
export { ProjectorModule, SIEM_WORK, type ProjectorDependencies } from './projector.module.js';
export { EvidenceLogService, checkEvidenceLog, EVIDENCE_LOG_OPTIONS, type EvidenceLogOptions, type EvidenceLogStatus } from './evidence-log.service.js';
export { openSiemWork } from './siem-work.js';
export const SERVICE_NAME = 'projector';
