export { HttpGateway } from './http-gateway.js';
export type { HttpConnection, HttpGatewayLogger, HttpGatewayOptions, HttpUpstream, UpstreamCredential, UpstreamCredentialKind } from './gateway-options.js';
export { SseDecoder, SseError, encodeSseEvent, type SseEvent } from './sse-codec.js';
export { MessagesStreamMasker, maskMessagesResponse, type ToolUseSeen } from './messages-masking.js';
export { problemBody, type Problem } from './problem.js';
