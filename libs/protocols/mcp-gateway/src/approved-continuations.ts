// Input-required retries of approved calls (MCP 2026-07-28). A tool that needs the user's input
// answers `input_required` with an opaque `requestState`; the client then sends the same
// `tools/call` again with its answers and that requestState. When the first call was held and
// approved, the retry is its continuation, not a new call: asking the approvers again would hold
// every multi-round call twice. The gateway binds each requestState it relayed for an approved call
// to what was approved (the identity, connection, tool, canonical arguments' digest, rule and
// policy version); a retry continues the approval only when all of them are the same. Each binding
// is used once and expires (10 min, the Python SDK's requestState lifetime); memory is bounded.
import { createHash } from 'node:crypto';
import type { Identity } from '@custodian/event-contracts';

export interface ContinuationBinding {
  readonly tool: string;
  /** SHA-256 of the arguments' canonical JSON. */
  readonly argsDigest: string;
  readonly ruleId: string | null;
  readonly policyDigest: string;
  /** The command the approvers approved (every continuation names it). */
  readonly approvedCommandId: string;
}

interface Bound extends ContinuationBinding {
  readonly subject: string;
  readonly issuer: string;
  readonly connection: string;
  readonly expiresAt: number;
}

/** What the gateway knows of the caller: its pipeline identity and connection. */
export interface ContinuationCaller {
  readonly pipeline: { readonly identity: Identity };
  readonly connection: { readonly name: string };
}

const DEFAULT_TTL_MS = 10 * 60_000;
const DEFAULT_MAX_ENTRIES = 10_000;

export class ApprovedContinuations {
  private readonly bound = new Map<string, Bound>();

  constructor(
    private readonly ttlMs = DEFAULT_TTL_MS,
    private readonly maxEntries = DEFAULT_MAX_ENTRIES,
    private readonly now: () => number = Date.now,
  ) {}

  get size(): number {
    return this.bound.size;
  }

  /** Keyed by a digest: the requestState itself (which may carry server data) is not kept. */
  private key(connection: string, requestState: string): string {
    return createHash('sha256').update(connection).update('\n').update(requestState).digest('hex');
  }

  bind(caller: ContinuationCaller, requestState: string, binding: ContinuationBinding): void {
    const now = this.now();
    for (const [key, entry] of this.bound) {
      if (entry.expiresAt > now && this.bound.size < this.maxEntries) break;
      // Oldest first (insertion order): expired ones, then as many as the bound requires.
      this.bound.delete(key);
    }
    const { identity } = caller.pipeline;
    this.bound.set(this.key(caller.connection.name, requestState), { ...binding, subject: identity.subject, issuer: identity.issuer, connection: caller.connection.name, expiresAt: now + this.ttlMs });
  }

  /**
   * The approved call a retry continues, when everything the approval covered is the same
   * (consumed: a requestState continues an approval once). Undefined otherwise: decide afresh.
   */
  take(caller: ContinuationCaller, requestState: string, retry: Omit<ContinuationBinding, 'approvedCommandId'>): ContinuationBinding | undefined {
    const key = this.key(caller.connection.name, requestState);
    const entry = this.bound.get(key);
    if (!entry) return undefined;
    const { identity } = caller.pipeline;
    const same =
      entry.expiresAt > this.now() &&
      entry.subject === identity.subject &&
      entry.issuer === identity.issuer &&
      entry.connection === caller.connection.name &&
      entry.tool === retry.tool &&
      entry.argsDigest === retry.argsDigest &&
      entry.ruleId === retry.ruleId &&
      entry.policyDigest === retry.policyDigest;
    if (!same) return undefined;
    this.bound.delete(key);
    return { tool: entry.tool, argsDigest: entry.argsDigest, ruleId: entry.ruleId, policyDigest: entry.policyDigest, approvedCommandId: entry.approvedCommandId };
  }
}
