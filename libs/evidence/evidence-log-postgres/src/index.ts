// The evidence Merkle log in PostgreSQL (`evidence.store.kind: postgres`): the EvidenceLogState
// and TreeStorage ports' PostgreSQL adapter. Contract suites: @custodian/evidence/testing and
// @custodian/transparency-log/testing (run in postgres-evidence-log-state.int.test.ts).
export * from './postgres-evidence-log-state.js';
export * from './postgres-tree-storage.js';
export { type PostgresEvidenceLogConnection } from './evidence-log-database.js';
export { EVIDENCE_LOG_SCHEMA_VERSION, evidenceLogSchema, type EvidenceLogSchema } from './schema.js';
