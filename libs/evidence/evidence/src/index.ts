// Custodian's evidence: the Merkle log projection with signed checkpoints and witness cosignatures,
// log verification against the event store, control catalogue and evidence views (counts, samples,
// findings), signed evidence packs (OSCAL assessment results, DSSE/in-toto) and their offline
// verifier. SQLite state: @custodian/evidence/sqlite.
export * from './errors.js';
export * from './canonical-leaf.js';
export * from './event-attributes.js';
export * from './evidence-log-state.js';
export * from './evidence-logger.js';
export * from './merkle-log-projection.js';
export * from './signing-keys.js';
export * from './witness-cosignatures.js';
export * from './log-verification.js';
export * from './controls/control-catalogue.js';
export * from './deterministic-uuid.js';
export * from './checkpoint-gaps.js';
export * from './evidence-views.js';
export * from './evidence-source.js';
export * from './pack/tar-archive.js';
export * from './pack/dsse.js';
export * from './pack/oscal-assessment-results.js';
export * from './pack/html-report.js';
export * from './pack/evidence-pack.js';
export * from './pack/pack-verification.js';
