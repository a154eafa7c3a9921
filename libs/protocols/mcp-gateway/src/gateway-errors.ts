export type McpGatewayErrorCode =
  | 'GATEWAY_CONFIG_INVALID'
  | 'MESSAGE_TOO_LARGE'
  | 'MESSAGE_MALFORMED'
  | 'UPSTREAM_UNAVAILABLE'
  | 'UPSTREAM_REFUSED'
  | 'UPSTREAM_SESSION_EXPIRED'
  | 'UPSTREAM_PROTOCOL_ERROR';

export class McpGatewayError extends Error {
  override readonly name = 'McpGatewayError';
  constructor(
    readonly code: McpGatewayErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
