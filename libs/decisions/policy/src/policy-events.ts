import type { PolicyActivated, PolicyDecided } from '@custodian/event-contracts';
import type { CompiledPolicy, PolicyDecision } from './compiled-policy.js';

/** What the policy.decided payload allows for reason and clientMessage. */
const TEXT_LIMIT = 2048;

function clip(text: string): string {
  return text.length <= TEXT_LIMIT ? text : `${text.slice(0, TEXT_LIMIT - 1)}…`;
}

/** One activated policy version, as reported to `onActivated`. */
export interface PolicyActivation {
  readonly name: string;
  readonly version: number;
  readonly digest: string;
  /** File path it was loaded from. */
  readonly source: string;
  /** Number of rules (masking rules not counted). */
  readonly rules: number;
  readonly policy: CompiledPolicy;
}

export function policyActivation(policy: CompiledPolicy): PolicyActivation {
  return { name: policy.name, version: policy.version, digest: policy.digest, source: policy.source, rules: policy.rules.length, policy };
}

/** Payload of a `policy.activated` event (build the event with EventFactory). */
export function toPolicyActivatedPayload(activation: PolicyActivation | CompiledPolicy): PolicyActivated {
  const { name, version, digest, source, rules } = 'policy' in activation ? activation : policyActivation(activation);
  return { policyName: name, version, digest, source, rules };
}

export interface DecidedCommand {
  readonly sessionId: string;
  readonly commandId: string;
}

/** Payload of a `policy.decided` event for a decision on one command of a session. */
export function toPolicyDecidedPayload(decision: PolicyDecision, command: DecidedCommand): PolicyDecided {
  return {
    sessionId: command.sessionId,
    commandId: command.commandId,
    decision: decision.decision,
    policy: { ...decision.policy },
    ruleId: decision.ruleId,
    reason: clip(decision.reason),
    ...(decision.clientMessage === undefined ? {} : { clientMessage: clip(decision.clientMessage) }),
  };
}

/**
 * Stream for a policy's activations: `policy-<name>`, the name reduced to the characters stream
 * names allow (other runs become `-`).
 */
export function policyStream(policyName: string): string {
  const id = policyName.replace(/[^A-Za-z0-9._:]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 190).replace(/-+$/, '');
  return `policy-${id === '' ? 'unnamed' : id}`;
}
