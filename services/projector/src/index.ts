// The projector service: a Nest module that the embedded host (custodian start) and the
// standalone process (src/main.ts, distributed deployment) both mount.
export { CHECKPOINT_PUBLISHING, ProjectorModule, SIEM_WORK, type CheckpointPublishing, type ProjectorDependencies } from './projector.module.js';
export { EvidenceLogService, checkEvidenceLog, EVIDENCE_LOG_OPTIONS, type EvidenceLogOptions, type EvidenceLogStatus } from './evidence-log.service.js';
export { openCheckpointPublishing, openSiemWork } from './siem-work.js';
export const SERVICE_NAME = 'projector';
