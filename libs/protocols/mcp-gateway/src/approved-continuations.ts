// Input-required retries of approved calls (MCP 2026-07-28). A tool that needs the user's input
// answers `input_required` with an opaque `requestState`; the client then sends the same
// `tools/call` again with its answers and that requestState. When the first call was held and
// approved, the retry is its continuation, not a new call: asking the approvers again would hold
// every multi-round call twice.
//
// The binding lives in the event store, not in a gateway's memory, so that a retry reaching another
// replica, or a gateway restarted meanwhile, is honoured exactly once. Relaying the input_required
// of an approved call appends `mcp-continuation.offered` (identity, connection, tool, arguments'
// digest, rule, policy version, the approval and the approved command) to the stream
// `mcp-continuation-<sha256(connection \n requestState)>`; the retry appends `mcp-continuation.used`
// right after the offer with optimistic concurrency, so of two retries racing on two replicas
// exactly one continues, and every later one is refused as a replay. A requestState offered to
// another identity, or for another tool or other arguments, is refused as forged. (A server that
// hands out the same requestState again offers it again: the stream's last offer is the live one.)
import { createHash } from 'node:crypto';
import { EventFactory, type CustodianEvent, type EventSource, type Identity } from '@custodian/event-contracts';
import { EventStoreError, type EventStore } from '@custodian/event-store';

export const CONTINUATION_STREAM_PREFIX = 'mcp-continuation-';
/** Rule id of a retry whose requestState already continued its approval. */
export const CONTINUATION_REPLAYED_RULE = 'custodian:mcp-continuation-replayed';
/** Rule id of a retry whose requestState was relayed for another identity, connection, tool or arguments. */
export const CONTINUATION_MISMATCH_RULE = 'custodian:mcp-continuation-mismatch';
/** Rule id of a retry the gateway cannot check or mark used (the event store did not answer). */
export const CONTINUATION_UNAVAILABLE_RULE = 'custodian:mcp-continuation-unavailable';

/** The stream of one relayed requestState (the state itself is never recorded: it may carry server data). */
export function continuationStream(connection: string, requestState: string): string {
  return `${CONTINUATION_STREAM_PREFIX}${createHash('sha256').update(connection).update('\n').update(requestState).digest('hex')}`;
}

/** SHA-256 (hex) of a call's arguments as canonical JSON. */
export type ArgumentsDigest = string;

export interface PolicyVersion {
  readonly name: string;
  readonly version: number;
  readonly digest: string;
}

/** What an approval covered, carried from the approved call to each of its continuations. */
export interface ApprovedCall {
  readonly tool: string;
  readonly argumentsDigest: ArgumentsDigest;
  readonly ruleId: string;
  readonly policy: PolicyVersion;
  readonly approvalId: string;
  /** The command the approvers approved (every continuation names it). */
  readonly approvedCommandId: string;
}

/** Who relays or retries: the pipeline session's identity and id, and the connection. */
export interface ContinuationCaller {
  readonly identity: Identity;
  readonly sessionId: string;
  readonly connection: string;
}

/** A retry as the gateway decided it: what must equal the offer for it to continue the approval. */
export type ContinuationRetry = Omit<ApprovedCall, 'approvalId' | 'approvedCommandId'>;

export type ContinuationClaim =
  /** This retry continues the approved call (now marked used). */
  | { readonly kind: 'continued'; readonly call: ApprovedCall }
  /** No offer, an expired one, or one under another rule or policy version: decide the call afresh. */
  | { readonly kind: 'none'; readonly reason: string }
  /** Replayed, forged, or not checkable: refuse the call. */
  | { readonly kind: 'refused'; readonly ruleId: string; readonly reason: string; readonly message: string };

export interface ApprovedContinuationsOptions {
  readonly eventStore: EventStore;
  /** `source` of the continuation events (the gateway instance). */
  readonly source: EventSource;
  /** How long a relayed requestState continues its approval (default 10 min, the Python SDK's requestState lifetime). */
  readonly ttlMs?: number;
  readonly now?: () => number;
}

const DEFAULT_TTL_MS = 10 * 60_000;
const APPEND_ATTEMPTS = 5;

function isWrongRevision(error: unknown): boolean {
  return error instanceof EventStoreError && (error.code === 'EVENT_STORE_WRONG_EXPECTED_REVISION' || error.code === 'EVENT_STORE_SEQUENCE_MISMATCH');
}

export class ApprovedContinuations {
  private readonly factory: EventFactory;
  private readonly ttlMs: number;
  private readonly now: () => number;

  constructor(private readonly options: ApprovedContinuationsOptions) {
    this.factory = new EventFactory(options.source);
    this.ttlMs = options.ttlMs ?? DEFAULT_TTL_MS;
    this.now = options.now ?? Date.now;
  }

  /**
   * Records that `requestState`, relayed to `caller` in the result of `commandId`, continues `call`.
   * Awaited before the client gets the requestState, so that its retry finds the offer on any
   * replica. The same requestState offered again (a server that reuses it) replaces the live offer.
   */
  async offer(caller: ContinuationCaller, requestState: string, commandId: string, call: ApprovedCall): Promise<void> {
    const stream = continuationStream(caller.connection, requestState);
    const payload = {
      sessionId: caller.sessionId,
      commandId,
      connection: { name: caller.connection, protocol: 'mcp' as const },
      tool: call.tool,
      argumentsDigest: call.argumentsDigest,
      ruleId: call.ruleId,
      policy: { name: call.policy.name, version: call.policy.version, digest: call.policy.digest },
      approvalId: call.approvalId,
      approvedCommandId: call.approvedCommandId,
      expiresAt: new Date(this.now() + this.ttlMs).toISOString(),
    };
    for (let attempt = 0; attempt < APPEND_ATTEMPTS; attempt++) {
      const revision = await this.options.eventStore.streamRevision(stream);
      const sequence = revision === 'no-stream' ? 0 : revision + 1;
      const event = this.factory.create({ type: 'mcp-continuation.offered', stream, sequence, identity: caller.identity, payload });
      try {
        await this.options.eventStore.append(stream, [event], { expectedRevision: revision });
        return;
      } catch (error) {
        if (!isWrongRevision(error)) throw error;
      }
    }
    throw new Error(`the continuation stream ${stream} kept changing while recording an offer`);
  }

  /**
   * The approved call a retry carrying `requestState` continues, marked used (once, whichever
   * replica asks); or why it does not.
   */
  async claim(caller: ContinuationCaller, requestState: string, retry: ContinuationRetry): Promise<ContinuationClaim> {
    const stream = continuationStream(caller.connection, requestState);
    let last: { readonly event: CustodianEvent; readonly revision: number } | undefined;
    try {
      // The last event decides: an offer not yet used, or a use (every retry after it is a replay).
      for await (const recorded of this.options.eventStore.readStream(stream, { direction: 'backwards', maxCount: 1 })) last = recorded;
    } catch (error) {
      return unavailable(error);
    }
    if (last === undefined) return { kind: 'none', reason: 'no approved call offered this requestState' };
    const offered = last.event;
    if (offered.type === 'mcp-continuation.used') return replayed(offered.payload.approvedCommandId);
    if (offered.type !== 'mcp-continuation.offered') return { kind: 'none', reason: 'no approved call offered this requestState' };
    const offer = offered.payload;
    const sameCaller = offered.identity?.issuer === caller.identity.issuer && offered.identity.subject === caller.identity.subject && offer.connection.name === caller.connection;
    if (!sameCaller || offer.tool !== retry.tool || offer.argumentsDigest !== retry.argumentsDigest) {
      const what = !sameCaller ? 'another identity or connection' : offer.tool !== retry.tool ? `tool ${offer.tool}` : 'other arguments';
      return {
        kind: 'refused',
        ruleId: CONTINUATION_MISMATCH_RULE,
        reason: `the requestState was relayed for ${what} (approved command ${offer.approvedCommandId}); it continues nothing else`,
        message: 'Custodian refused the call: its requestState belongs to another approved call (other identity, tool or arguments).',
      };
    }
    if (Date.parse(offer.expiresAt) <= this.now()) return { kind: 'none', reason: `the continuation of command ${offer.approvedCommandId} expired at ${offer.expiresAt}` };
    const samePolicy = offer.ruleId === retry.ruleId && offer.policy.name === retry.policy.name && offer.policy.version === retry.policy.version && offer.policy.digest === retry.policy.digest;
    if (!samePolicy) return { kind: 'none', reason: `command ${offer.approvedCommandId} was approved under rule ${offer.ruleId} of ${offer.policy.name} v${offer.policy.version}; this retry is decided by the current policy` };
    const event = this.factory.create({
      type: 'mcp-continuation.used',
      stream,
      sequence: last.revision + 1,
      identity: caller.identity,
      causationId: offered.id,
      correlationId: offered.correlationId,
      payload: { sessionId: caller.sessionId, connection: { name: caller.connection, protocol: 'mcp' }, tool: offer.tool, approvalId: offer.approvalId, approvedCommandId: offer.approvedCommandId },
    });
    try {
      await this.options.eventStore.append(stream, [event], { expectedRevision: last.revision });
    } catch (error) {
      // Another retry (on this replica or another) marked it used first.
      if (isWrongRevision(error)) return replayed(offer.approvedCommandId);
      return unavailable(error);
    }
    return {
      kind: 'continued',
      call: { tool: offer.tool, argumentsDigest: offer.argumentsDigest, ruleId: offer.ruleId, policy: offer.policy, approvalId: offer.approvalId, approvedCommandId: offer.approvedCommandId },
    };
  }
}

function replayed(approvedCommandId: string): ContinuationClaim {
  return {
    kind: 'refused',
    ruleId: CONTINUATION_REPLAYED_RULE,
    reason: `the requestState already continued the call approved as command ${approvedCommandId}`,
    message: 'Custodian refused the call: its requestState was already used to continue the approved call (a replay). Call the tool again without it to ask for a new approval.',
  };
}

function unavailable(error: unknown): ContinuationClaim {
  return {
    kind: 'refused',
    ruleId: CONTINUATION_UNAVAILABLE_RULE,
    reason: `the continuation could not be checked or marked used: ${error instanceof Error ? error.message : String(error)}`,
    message: 'Custodian refused the call: it could not check that its approval is still unused; try again later.',
  };
}
