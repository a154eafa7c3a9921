// A shell started as a command (`ssh host bash -i`, `kubectl exec -it pod -- bash`) reads its
// commands from stdin: the gateway sees that stdin, so it can decide each line instead of the
// shell as a whole. Which commands are such shells, and the decision that opens one.
import { GUARDED_FLAG_RULE_ID, type PolicyDecision } from '@custodian/policy';
import type { ShellClassification } from '@custodian/shell-classification';

/** The rule id of the gateway's own decision to open a shell whose lines it decides one by one. */
export const STDIN_LINES_RULE = 'custodian:stdin-lines';

const STDIN_SHELLS = new Set(['sh', 'bash', 'dash', 'ash', 'zsh', 'ksh', 'mksh']);

/** A lone shell whose only flag is that it reads its commands from stdin (`bash`, `bash -i`, `sh -s`). */
export function isShellReadingStdin(classification: ShellClassification): boolean {
  if (!classification.ok) return false;
  const [program, ...others] = classification.programs;
  return program !== undefined && others.length === 0 && STDIN_SHELLS.has(program.name) && classification.flags.length === 1 && classification.flags[0] === 'shell-from-stdin';
}

/**
 * The decision for a command that is a shell reading stdin, whose lines will be decided one by
 * one: opened when a rule allows or holds it (as decided), and when only the default deny or the
 * guarded flag `shell-from-stdin` would block it (then allowed under STDIN_LINES_RULE); a rule that
 * blocks the shell itself blocks it. `undefined` when the command is not such a shell, or a rule
 * blocks it: the caller keeps its decision.
 */
export function lineDecidedShellDecision(decision: PolicyDecision<ShellClassification>): PolicyDecision | undefined {
  const blockedByRule = decision.decision === 'block' && decision.ruleId !== null && decision.ruleId !== GUARDED_FLAG_RULE_ID;
  if (blockedByRule || !isShellReadingStdin(decision.classification)) return undefined;
  if (decision.decision !== 'block') return decision;
  // The block's client message does not belong on the gateway's allow.
  const { clientMessage, ...opened } = decision;
  void clientMessage;
  return { ...opened, decision: 'allow', ruleId: STDIN_LINES_RULE, reason: 'a shell reading stdin: every line is decided as its own command' };
}
