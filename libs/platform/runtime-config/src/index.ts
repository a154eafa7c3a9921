// Runtime configuration: custodian.yaml → validated, typed config. The JSON Schema in
// schemas/config/custodian.config.schema.json is the single source of truth; the types
// in ./generated are generated from it (`npm run generate:config-types`, checked by a test).
export type * from './generated/config-types.js';
export { ConfigError, formatIssue, type ConfigErrorCode, type ConfigIssue, type ConfigIssueSource } from './errors.js';
export { loadConfig, parseConfig, type LoadConfigOptions, type LoadedConfig, type ParseConfigOptions } from './load-config.js';
export {
  applyEnvOverrides,
  CONFIG_FILE_ENV,
  ENV_PREFIX,
  envSegment,
  envVariableFor,
  isAcceptedEnvVariable,
  parseEnvOverrides,
  type EnvOverride,
} from './env-overrides.js';
export { isSecretRef, resolveSecret, resolveSecretAsync, type SecretContext, type SecretValue } from './secrets.js';
export { redactConfig, REDACTED } from './redact-config.js';
export { configSchema, CONFIG_SCHEMA_SPECIFIER } from './config-schema.js';

import type { CustodianConfig } from './generated/config-types.js';
/** The deployable services, in start order. */
export const SERVICE_NAMES = ['gateway', 'ingest', 'projector', 'api'] as const satisfies readonly (keyof CustodianConfig['services'])[];
export type ServiceName = (typeof SERVICE_NAMES)[number];
/** Where a service's HTTP server listens (derived from the generated type, so it cannot drift). */
export type HttpListenerConfig = CustodianConfig['services'][ServiceName]['http'];
