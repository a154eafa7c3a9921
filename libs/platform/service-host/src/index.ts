// Composition-root helpers shared by the service processes and the CLI's embedded host.
export * from './configured-event-store.js';
export * from './standalone-service.js';
export * from './service-core.js';
export * from './configured-identity.js';
export * from './authentication-event-recorder.js';
export * from './configured-pipeline.js';
export * from './service-work.js';
export * from './module-worker.js';
