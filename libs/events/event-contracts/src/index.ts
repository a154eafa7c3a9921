// Event contracts: the typed, validated shape of every Custodian event.
// Types are generated from schemas/events (the single source of truth).
export * from './generated/types.js';
export * from './envelope.js';
export * from './errors.js';
export * from './clock.js';
export * from './uuid-v7.js';
export * from './validation.js';
export * from './create-event.js';
export * from './canonical-json.js';
export { UPCASTERS, type Upcaster } from './upcasters.js';
