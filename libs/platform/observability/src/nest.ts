// NestJS integration: pino-backed Nest logger, /health endpoints, and service start-up.
import 'reflect-metadata';
export { PinoNestLogger } from './nest/pino-nest-logger.js';
export { HEALTH_LOGGER, HEALTH_REGISTRY, HealthController, HealthModule, ReadinessDrain, type HealthModuleOptions, type HealthResponse } from './nest/health.module.js';
export { startNestService, type RunningNestService, type StartNestServiceOptions } from './nest/start-service.js';
export { METRICS_REGISTRY, MetricsController, MetricsModule } from './nest/metrics.module.js';
