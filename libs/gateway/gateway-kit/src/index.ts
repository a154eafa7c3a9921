// The gateway kit: plumbing every protocol gateway (PostgreSQL, SSH, HTTP, Anthropic, MCP,
// Kubernetes exec) needs, written once. Protocol-neutral: nothing here knows a wire format.
export { ConnectError, acceptTls, connect, connectTcp, deadlineSignal, startTls, type AcceptTlsOptions, type ConnectErrorCode, type ConnectOptions, type DeadlineOptions, type TlsClientOptions } from './connect.js';
export { FlowControl, type DrainingWritable, type PausableReadable } from './flow-control.js';
export { CredentialError, CredentialReference, type CredentialErrorCode, type CredentialReferenceOptions, type CredentialSource } from './credential-reference.js';
export { SILENT_GATEWAY_LOGGER, gatewayLogger, type GatewayLogger } from './gateway-logger.js';
export { listenOn, type ListeningServer } from './listen.js';
