export { McpGateway, TOOL_CHANGED_RULE, HEADER_MISMATCH_RULE } from './mcp-gateway.js';
export { MODERN_PROTOCOL_VERSIONS, HANDSHAKE_PROTOCOL_VERSIONS } from './protocol-eras.js';
export { McpGatewayError, type McpGatewayErrorCode } from './gateway-errors.js';
export type { McpConnection, McpGatewayOptions, GatewayLogger } from './gateway-options.js';
export type { McpUpstreamCredential, McpUpstreamTarget, UpstreamEra } from './upstream-client.js';
export { toolFingerprint } from './tool-pins.js';
export type { StructuredMaskingConflict } from './result-masking.js';
export { JsonRpcErrorCode, canonicalJson } from './json-rpc.js';
export type { McpStdioTarget } from './stdio-upstream.js';
export { ClientCredentialsToken, type ClientCredentialsOptions, type ClientSecretMethod } from './client-credentials.js';
export {
  ApprovedContinuations,
  continuationStream,
  CONTINUATION_STREAM_PREFIX,
  CONTINUATION_REPLAYED_RULE,
  CONTINUATION_MISMATCH_RULE,
  CONTINUATION_UNAVAILABLE_RULE,
  type ApprovedCall,
  type ContinuationClaim,
  type ContinuationCaller,
  type ContinuationRetry,
} from './approved-continuations.js';
