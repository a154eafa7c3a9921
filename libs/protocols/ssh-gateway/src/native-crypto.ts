// Whether ssh2 runs its ciphers through its optional native binding (`sshcrypto.node`, built by
// ssh2's install script with node-gyp; scripts/setup.sh builds it). Without it ssh2 still works,
// but AES-GCM creates a cipher object per packet: about 15% of the gateway's thread in a bulk
// SFTP transfer. The gateway logs which one it runs on.
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/** True when ssh2 loaded its native crypto binding (read from ssh2's crypto module; false if that module's shape changes). */
export function sshNativeCrypto(): boolean {
  try {
    const crypto = require('ssh2/lib/protocol/crypto.js') as { bindingAvailable?: unknown };
    return crypto.bindingAvailable === true;
  } catch {
    return false;
  }
}
