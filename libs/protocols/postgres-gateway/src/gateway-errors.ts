export type PostgresGatewayErrorCode =
  | 'UPSTREAM_UNAVAILABLE'
  | 'UPSTREAM_TLS_REQUIRED'
  | 'UPSTREAM_LOGIN_FAILED'
  | 'UPSTREAM_AUTH_UNSUPPORTED'
  | 'UPSTREAM_PROTOCOL_ERROR'
  | 'UPSTREAM_CLOSED'
  | 'CATALOG_UNAVAILABLE'
  | 'GATEWAY_CONFIG_INVALID';

/** A failure of the gateway's own side of a session. Messages never contain the held credential. */
export class PostgresGatewayError extends Error {
  override readonly name = 'PostgresGatewayError';
  constructor(
    readonly code: PostgresGatewayErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
