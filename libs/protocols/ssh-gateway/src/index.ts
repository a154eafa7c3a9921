// The SSH protocol adapter onto the session pipeline: see README.md.
export { SshGateway } from './ssh-gateway.js';
export type { SshGatewayOptions, SshConnection, SshUpstreamTarget, SshUpstreamCredential, UnverifiableLinePolicy } from './gateway-options.js';
export { SshGatewayError, type SshGatewayErrorCode } from './gateway-errors.js';
export { readOrCreateSshHostKey, sshHostKeyFrom, SSH_HOST_KEY_FILE, type SshHostKey } from './host-key.js';
export { trustedHostKeys, knownHostsName, sshFingerprint, type TrustedHostKey, type TrustedHostKeys } from './known-hosts.js';
export { connectUpstream, type UpstreamSsh } from './upstream-connection.js';
export { REFUSED_EXIT_STATUS } from './session-channel.js';
export { sshNativeCrypto } from './native-crypto.js';
