// Test helpers for code that builds approval requests by hand (tests of the approvals workflow,
// the API, the CLI): a request whose binding digest matches its fields, as the pipeline makes them.
import { approvalBindingDigest, type ApprovalRequest } from '@custodian/session-pipeline';

/** The request with `commandDigest` computed from its fields (kept when given: a test of a wrong digest passes its own). */
export function boundApprovalRequest(request: Omit<ApprovalRequest, 'commandDigest'> & { readonly commandDigest?: string }): ApprovalRequest {
  const commandDigest =
    request.commandDigest ??
    approvalBindingDigest({
      identity: request.requester,
      connection: request.connection,
      language: request.language,
      command: request.command,
      ...(request.parameters ? { parameters: request.parameters } : {}),
      policy: request.policy,
    });
  return { ...request, commandDigest };
}

/** A policy version for tests. */
export const TEST_POLICY = { name: 'orders', version: 3, digest: 'a'.repeat(64) } as const;
