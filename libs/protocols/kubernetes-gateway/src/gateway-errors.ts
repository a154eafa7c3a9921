export type KubernetesGatewayErrorCode =
  | 'GATEWAY_CONFIG_INVALID'
  | 'UPSTREAM_CREDENTIAL_UNAVAILABLE'
  | 'UPSTREAM_UNAVAILABLE'
  | 'UPSTREAM_TLS_VERIFICATION_FAILED'
  | 'UPSTREAM_REFUSED'
  | 'UPSTREAM_PROTOCOL'
  | 'UPSTREAM_ABORTED';

export class KubernetesGatewayError extends Error {
  constructor(
    readonly code: KubernetesGatewayErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'KubernetesGatewayError';
  }
}
