// The SIEM feed: Custodian events as OCSF 1.5.0 JSON (docs/siem-ocsf.md), and the projection
// that publishes them to custodian.siem.ocsf.v1.
export * from './ocsf-mapping.js';
export * from './siem-projection.js';
