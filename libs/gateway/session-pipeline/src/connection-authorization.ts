// May this identity use this connection at all? The policy engine decides it
// (CompiledPolicy.authorizeConnection, with the protocol→language table); this delegation keeps
// the pipeline's import until the pipeline is rewritten around the engine.
import type { CompiledPolicy, ConnectionAuthorization, PolicyContext } from '@custodian/policy';

export type { ConnectionAuthorization } from '@custodian/policy';

/** Whether any allow / require-approval rule of the policy covers this identity, connection and protocol. */
export function authorizeConnection(policy: CompiledPolicy, context: PolicyContext): ConnectionAuthorization {
  return policy.authorizeConnection(context);
}
