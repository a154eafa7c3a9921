export type SshGatewayErrorCode =
  | 'GATEWAY_CONFIG_INVALID'
  | 'HOST_KEY_INVALID'
  | 'UPSTREAM_HOST_KEY_UNKNOWN'
  | 'UPSTREAM_HOST_KEY_MISMATCH'
  | 'UPSTREAM_HOST_KEY_REVOKED'
  | 'UPSTREAM_UNAVAILABLE'
  | 'UPSTREAM_LOGIN_FAILED'
  | 'UPSTREAM_CREDENTIAL_UNAVAILABLE'
  | 'UPSTREAM_CHANNEL_FAILED';

/** A failure of the gateway's own side of a session. Messages never contain the held credential or the client's token. */
export class SshGatewayError extends Error {
  override readonly name = 'SshGatewayError';
  constructor(
    readonly code: SshGatewayErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export { refusalText } from '@custodian/terminal-line-policy';
