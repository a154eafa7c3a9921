// The Kubernetes exec protocol adapter onto the session pipeline: see README.md.
export { KubernetesGateway } from './kubernetes-gateway.js';
export type { KubernetesGatewayOptions, KubernetesCluster, UpstreamCredential } from './gateway-options.js';
export { KubernetesGatewayError, type KubernetesGatewayErrorCode } from './gateway-errors.js';
export { LINE_MODE_RULE, NAMESPACE_RULE, PROTOCOL_RULE, execCommandText } from './exec-session.js';
export { ApiRequestError, argvToShellText, execQuery, parseExecRequest, routeOf, type ApiRoute, type ExecRequest } from './exec-request.js';
export * from './channel-protocol.js';
