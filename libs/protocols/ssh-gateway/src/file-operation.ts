// A file operation (an SFTP request, a legacy scp file record) decided with the shell policy
// language as its equivalent command, issued as a command, and refused or held with a line the
// client sees. Shared by the SFTP bridge and the legacy scp bridge so both decide alike.
import { decideShellSync, shellLanguage } from '@custodian/policy-languages';
import type { PipelineSession } from '@custodian/session-pipeline';
import { refusalText } from './gateway-errors.js';

/** POSIX single quotes: the text the shell language parses names the path exactly. */
export function shellQuote(word: string): string {
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

export type FileOperationOutcome = { readonly forward: true; readonly commandId: string; readonly ruleId: string | null } | { readonly forward: false; readonly commandId: string; readonly message: string };

/**
 * Decides `command`, says on `notice` when it waits for an approver, issues it (waiting while
 * held). A refusal carries `custodian: <message> (rule <id>)`, also written to `notice` with the
 * command.
 */
export async function decideFileOperation(session: PipelineSession, summary: Record<string, unknown>, command: string, notice: (text: string) => void, signal: AbortSignal): Promise<FileOperationOutcome> {
  const decision = decideShellSync(session.policy, session.policyContext, command);
  if (decision.decision === 'require-approval') notice(`custodian: ${command} needs approval (rule ${decision.ruleId ?? 'unknown'}); waiting for an approver in Custodian (session ${session.id})…\n`);
  const outcome = await session.issue({ language: 'shell', kind: 'shell', text: command, summary: { ...shellLanguage.summary(decision.classification), ...summary }, decision, signal });
  if (!outcome.forward) {
    const message = refusalText(outcome.message, outcome.ruleId);
    notice(`${message}: ${command}\n`);
    return { forward: false, commandId: outcome.commandId, message };
  }
  return { forward: true, commandId: outcome.commandId, ruleId: decision.ruleId };
}

/** A rule's transfer limit as the bridges enforce it. */
export interface TransferLimit {
  readonly bytes: number;
  readonly ruleId: string;
}

/** Rule id of the gateway's own refusal when a file transfer exceeds its rule's limit. */
export const TRANSFER_LIMIT_RULE_ID = 'custodian:transfer-limit';

/** The deciding rule's `limits.transferBytes` (the rule that allowed, or whose approval granted, the operation). */
export function transferLimitOf(session: PipelineSession, ruleId: string | null | undefined): TransferLimit | undefined {
  if (!ruleId) return undefined;
  const bytes = session.policy.rules.find((rule) => rule.id === ruleId)?.limits?.transferBytes;
  return bytes === undefined ? undefined : { bytes, ruleId };
}

/** The client-facing text of a transfer over its limit. */
export function overLimitMessage(path: string, limit: TransferLimit): string {
  return `custodian: the transfer of ${path} is over the ${limit.bytes}-byte limit of rule ${limit.ruleId} (rule ${TRANSFER_LIMIT_RULE_ID})`;
}

/** Records a transfer over its limit as the gateway's own refusal (`command.issued` + `policy.decided` block). */
export async function recordOverLimit(session: PipelineSession, text: string, direction: 'read' | 'write', wouldBe: number, limit: TransferLimit, summary: Record<string, unknown>): Promise<void> {
  const decision = session.gatewayBlock('shell', TRANSFER_LIMIT_RULE_ID, `${direction} of ${wouldBe} bytes is over the ${limit.bytes}-byte transfer limit of rule ${limit.ruleId}`, overLimitMessage(text, limit));
  await session.issue({ language: 'shell', kind: 'shell', text, summary: { ...summary, limitBytes: limit.bytes, limitRule: limit.ruleId }, decision }).catch(() => undefined);
}
