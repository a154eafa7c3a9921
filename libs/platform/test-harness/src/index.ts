// Real services for tests and benchmarks, on free loopback ports, always cleaned up.
// Local processes by default; testcontainers where a Docker engine exists.
export * from './service.js';
export * from './process-service.js';
export * from './postgres.js';
export * from './pgbouncer.js';
export * from './sshd.js';
export * from './oidc-provider.js';
export * from './kafka/index.js';
export * from './eventstoredb.js';
