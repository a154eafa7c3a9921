// The PostgreSQL protocol adapter onto the session pipeline: see README.md.
export { PostgresGateway, sessionApplicationName, upstreamTargetFor } from './postgres-gateway.js';
export type { PostgresGatewayOptions, PostgresConnection, PostgresSessionLimits, UpstreamRoleMapping, UpstreamTarget, UpstreamTlsMode, ClientTlsRequirement, GatewayLogger } from './gateway-options.js';
export { DEFAULT_SESSION_LIMITS } from './gateway-options.js';
export { PostgresGatewayError, type PostgresGatewayErrorCode } from './gateway-errors.js';
export { ScramSha256Client, md5PasswordResponse, ScramError } from './scram-client.js';
export { connectUpstream, cancelUpstream, type UpstreamConnection } from './upstream-connection.js';
export { REFUSAL_STATEMENT } from './proxy-session.js';
export { OffloadRefusal, type OffloadPoolOptions, type OffloadPoolStats, type OffloadRefusalCode } from './offload/offload-pool.js';
