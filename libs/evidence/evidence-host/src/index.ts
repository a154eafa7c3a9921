// Composition-root glue for the evidence log (projector, api, cli).
export * from './configured-evidence.js';
