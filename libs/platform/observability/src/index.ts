// Observability: structured JSON logs with secret redaction, and liveness/readiness checks.
// NestJS integration (logger adapter, /health endpoints) is at '@custodian/observability/nest'.
export { createLogger, type CreateLoggerOptions, type LogDestination, type Logger, type LogLevel } from './logger.js';
export { isSecretKey, REDACTED, scrubError, scrubText, scrubValue } from './redaction.js';
export {
  HealthError,
  HealthRegistry,
  SHUTTING_DOWN_CHECK,
  type HealthCheck,
  type HealthCheckResult,
  type HealthErrorCode,
  type HealthKind,
  type HealthReport,
} from './health.js';
export { MetricsRegistry, type MetricsRegistryOptions } from './metrics.js';
